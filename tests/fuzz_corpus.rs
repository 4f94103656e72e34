//! The fuzz targets' committed seeds (fuzz/seeds/TARGET/*), each fed once through the same
//! harness the cargo-fuzz targets run (fuzz/harness/mod.rs): no parser may panic on them,
//! and every seed made from a real file passes every parser it reaches (seeds named
//! `rejected-*` must be refused cleanly instead).
//! CI does not fuzz (scripts/fuzz.sh does, for as long as asked); this keeps the seeds, the
//! harness and the entry points it calls compiling and sound on every test run.

#[path = "../fuzz/harness/mod.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn seeds_of(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("seeds").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("seed entry").path())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_has_seeds_and_every_seed_runs_without_a_panic_with_the_expected_outcome() {
    for (target, run) in harness::TARGETS {
        let seeds = seeds_of(target);
        assert!(!seeds.is_empty(), "fuzz/seeds/{target} holds no seed");
        for seed in seeds {
            let data = std::fs::read(&seed).unwrap_or_else(|e| panic!("{}: {e}", seed.display()));
            let outcome = std::panic::catch_unwind(|| run(&data));
            let passed = outcome.unwrap_or_else(|_| panic!("fuzz target {target} panicked on {}", seed.display()));
            let rejected = seed.file_name().unwrap().to_string_lossy().starts_with("rejected-");
            assert_eq!(passed, !rejected, "fuzz target {target}: seed {} passed: {passed}", seed.display());
        }
    }
}

#[test]
fn every_fuzz_target_runs_its_harness_function() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("fuzz_targets");
    for (target, _) in harness::TARGETS {
        let file = dir.join(format!("{target}.rs"));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            text.contains(&format!("harness::{target}(data)")),
            "{} does not run harness::{target}",
            file.display()
        );
    }
    let listed = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(listed, harness::TARGETS.len(), "every file in fuzz/fuzz_targets is a target listed in the harness");
}
