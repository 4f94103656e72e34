//! workflows/Snakefile end to end on the reference model at tiny settings: Snakemake
//! (installed by scripts/setup-workflow.sh into .venv/workflow) runs every rule locally
//! with the local profile and `--cores 2`; each rule leaves the directory its biasprune
//! command writes, the release verifies against the base, and a second run finds nothing
//! to do and touches nothing. The Slurm profile plans the same jobs with its resources.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the release lies: results/release/ and the base's name with "-pruned".
const RELEASE: &str = "results/release/SmolLM2-135M-Instruct-pruned";

/// Jobs of the tiny use case: calibration, score x 2 (car x two groups), mask, baseline,
/// pruned, keygen, release, verify and the final target.
const JOBS: usize = 10;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn snakemake() -> PathBuf {
    let path = repo().join(".venv/workflow/bin/snakemake");
    assert!(path.is_file(), "{} is missing: run scripts/setup-workflow.sh (scripts/test.sh does)", path.display());
    path
}

/// The shipped use case (workflows/config.yaml) at tiny settings: one training variation,
/// one answer per prompt, short answers; the binary under test and the reference model.
fn tiny_config(model: &Path) -> Vec<String> {
    let mut args = vec!["--config".to_string()];
    args.push(format!("biasprune={}", env!("CARGO_BIN_EXE_biasprune")));
    args.push(format!("base={}", model.display()));
    args.extend(["train_variations=[car]", "samples=1", "max_new_tokens=12"].map(String::from));
    args
}

/// Runs snakemake with `profile` in `dir`; returns its exit code and its whole output.
fn run_snakemake(dir: &Path, profile: &str, extra: &[&str], model: &Path) -> (i32, String) {
    let out = Command::new(snakemake())
        .args(["--snakefile", repo().join("workflows/Snakefile").to_str().unwrap()])
        .args(["--profile", repo().join("workflows/profiles").join(profile).to_str().unwrap()])
        .arg("--directory")
        .arg(dir)
        .args(extra)
        .args(tiny_config(model))
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().expect("an exit code"), text)
}

fn json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every rule's output is the directory (or file) its biasprune command writes.
fn assert_each_rule_left_its_output(results: &Path) {
    for file in [
        "calibration/records.jsonl",
        "calibration/summary.json",
        "scores/car-minority/scores.json",
        "scores/car-majority/scores.json",
        "mask/mask.json",
        "baseline/summary.json",
        "pruned/summary.json",
        "release/SmolLM2-135M-Instruct-pruned/model.safetensors",
        "release/SmolLM2-135M-Instruct-pruned/model.sig",
    ] {
        assert!(results.join(file).is_file(), "results/{file} is missing");
    }
    let scores = json(&results.join("scores/car-minority/scores.json"));
    assert_eq!(scores["group"], "minority", "{scores}");
}

/// The release names the use case and carries both evaluations of the target.
fn assert_the_release_carries_the_use_case(release: &Path) {
    let manifest = json(&release.join("biasprune-manifest.json"));
    assert_eq!(manifest["use_case"]["regime"], "within-context", "{}", manifest["use_case"]);
    assert_eq!(manifest["use_case"]["held_out"], serde_json::json!(["bicycle"]));
    for run in ["baseline", "pruned"] {
        let evidence = &manifest["evidence"][run]["variations"]["bicycle"];
        assert_eq!(evidence["answers"], 40, "{run}: {evidence}");
    }
}

/// verify.json from the workflow, then `biasprune verify` on the release as it lies now.
fn assert_the_release_verifies(dir: &Path, model: &Path) {
    let report = json(&dir.join("results/verify.json"));
    assert_eq!(report["passed"], true, "{report}");
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["passed"] == true), "{report}");
    for name in ["signature.dsse", "files.unsigned", "base.unchanged", "manifest.evidence"] {
        assert!(checks.iter().any(|c| c["name"] == name), "no check {name} in {report}");
    }
    let verify = Command::new(env!("CARGO_BIN_EXE_biasprune"))
        .args(["verify", dir.join(RELEASE).to_str().unwrap()])
        .args(["--public-key", dir.join("keys/release.pub").to_str().unwrap()])
        .args(["--base", model.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stdout));
}

fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn the_workflow_releases_a_verified_model_and_a_second_run_does_nothing() {
    let model = common::reference_model();
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let (code, log) = run_snakemake(dir.path(), "local", &["--cores", "2"], &model);
    assert_eq!(code, 0, "{log}");
    eprintln!("workflow: {JOBS} jobs in {:.0} s", started.elapsed().as_secs_f64());
    assert!(log.contains(&format!("{JOBS} of {JOBS} steps (100%) done")), "{log}");
    let results = dir.path().join("results");
    assert_each_rule_left_its_output(&results);
    assert_the_release_carries_the_use_case(&dir.path().join(RELEASE));
    assert_the_release_verifies(dir.path(), &model);

    let signature = dir.path().join(RELEASE).join("model.sig");
    let (signed, verified) = (modified(&signature), modified(&results.join("verify.json")));
    let (code, again) = run_snakemake(dir.path(), "local", &["--cores", "2"], &model);
    assert_eq!(code, 0, "{again}");
    assert!(again.contains("Nothing to be done (all requested files are present and up to date)."), "{again}");
    assert!(!again.contains("localrule "), "the second run ran a job:\n{again}");
    assert_eq!((modified(&signature), modified(&results.join("verify.json"))), (signed, verified));
}

#[test]
fn the_slurm_profile_plans_every_job_with_its_resources() {
    let model = common::reference_model();
    let dir = tempfile::tempdir().unwrap();
    let (code, plan) = run_snakemake(dir.path(), "slurm", &["--dry-run"], &model);
    assert_eq!(code, 0, "{plan}");
    assert!(plan.contains("This was a dry-run"), "{plan}");
    let counts: Vec<(&str, usize)> = plan
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (rule, count) = (words.next()?, words.next()?.parse().ok()?);
            words.next().is_none().then_some((rule, count))
        })
        .collect();
    for (rule, count) in [("calibration", 1), ("score", 2), ("mask", 1), ("pruned", 1), ("verify", 1), ("total", JOBS)]
    {
        assert!(counts.contains(&(rule, count)), "expected {count} {rule} job(s) in {counts:?}");
    }
    let score = plan.split("rule score:").nth(1).expect("a score job is planned");
    let resources = score.lines().find(|l| l.trim_start().starts_with("resources:")).unwrap();
    assert!(resources.contains("slurm_partition=gpu") && resources.contains("gres=gpu:1"), "{resources}");
    assert!(!dir.path().join("results").exists(), "a dry run writes nothing");
}
