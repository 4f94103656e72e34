//! A `biasprune apply` killed mid-write (SIGKILL) leaves no OUT and an unchanged input; the
//! next run removes the clearly named partial directory and succeeds.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use biasprune::fixture::{FixtureDtype, FixtureSpec};
use biasprune::mask::{save_mask, PruneMask};
use support::{biasprune, fixture, hash_tree, stderr};

fn partial_dirs(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".out.biasprune-partial-"))
        .map(|e| e.path())
        .collect()
}

fn written_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
}

#[test]
fn sigkill_mid_write_leaves_no_output_and_next_run_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = FixtureSpec::with_total_bytes(512 << 20, FixtureDtype::BF16, 4);
    let input = fixture(tmp.path(), "in", &spec);
    let before = hash_tree(&input);
    let mask = tmp.path().join("mask");
    save_mask(&mask, &PruneMask { heads: BTreeMap::from([(0, BTreeSet::from([0]))]), ..PruneMask::default() }).unwrap();
    let out = tmp.path().join("out");
    let args = ["apply", input.to_str().unwrap(), "--mask", mask.to_str().unwrap(), "--out", out.to_str().unwrap()];

    let mut child = Command::new(env!("CARGO_BIN_EXE_biasprune")).args(args).spawn().unwrap();
    let started = Instant::now();
    let caught = loop {
        if let Some(dir) = partial_dirs(tmp.path()).first() {
            if written_bytes(dir) > 64 << 20 {
                break true;
            }
        }
        if child.try_wait().unwrap().is_some() || started.elapsed() > Duration::from_secs(60) {
            break false;
        }
        std::thread::sleep(Duration::from_micros(500));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(caught, "apply finished before it could be interrupted; enlarge the checkpoint");

    assert!(!out.exists(), "a killed run leaves no OUT");
    assert_eq!(partial_dirs(tmp.path()).len(), 1, "only the clearly named partial directory remains");
    assert_eq!(hash_tree(&input), before, "input unchanged");

    let rerun = biasprune(&args);
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert!(partial_dirs(tmp.path()).is_empty(), "the rerun removed the stale partial directory");
    assert_eq!(hash_tree(&input), before);
    assert!(out.join("config.json").exists());
}
