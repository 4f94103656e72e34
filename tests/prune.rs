//! `biasprune prune` end to end on the reference model: an uninterrupted run; a run killed
//! (SIGKILL) while it scores, then rerun, which must reuse the finished stages and give the
//! same manifest byte for byte; a rerun with one setting changed, which redoes only the
//! stages downstream of it; the self-fenced baseline reproduced by `eval --baseline`; the
//! signed release verified against the base, its evaluations reproduced by `verify`; the
//! three uses of data kept apart (seeds and names); and the release gate (exit 3 when
//! there is nothing significant to remove or the outcome is not `reduced`, the outcome
//! stated everywhere with `--release-anyway`).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EPOCH: &str = "1767225600";

/// A job on the reference model that the gate lets through and releases whatever the
/// outcome: at 2 samples the base's disparity is not significant.
fn prune_args(model: &str, out: &Path, key: &Path) -> Vec<String> {
    let mut args = gated_args(model, out);
    args.extend(["--allow-no-disparity", "--release-anyway"].map(String::from));
    args.extend(["--sign-key".into(), key.display().to_string()]);
    args
}

/// The same job under the default release rules.
fn gated_args(model: &str, out: &Path) -> Vec<String> {
    let mut args: Vec<String> =
        ["prune", model, "--scenario", "purchase", "--variations", "bicycle"].into_iter().map(String::from).collect();
    args.extend(
        ["--samples", "2", "--confirmation-samples", "2", "--seed", "3", "--max-new-tokens", "12"].map(String::from),
    );
    args.extend(["--quiet".into(), "--out".into(), out.display().to_string()]);
    args
}

fn run_json(args: &[String]) -> serde_json::Value {
    run_json_expecting(args, 0)
}

fn run_json_expecting(args: &[String], code: i32) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_biasprune"))
        .args(args)
        .arg("--json")
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(code), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The names in a records file.
fn names_in(records: &Path) -> std::collections::BTreeSet<String> {
    read(records.to_path_buf())
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["name"].as_str().unwrap().to_string())
        .collect()
}

fn status_of(outcome: &serde_json::Value, stage_prefix: &str) -> String {
    let stage = outcome["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().starts_with(stage_prefix))
        .unwrap_or_else(|| panic!("no stage {stage_prefix:?} in {outcome}"));
    stage["status"].as_str().unwrap().to_string()
}

/// Starts a prune, waits until the log says it is scoring, lets it score a moment and kills it.
fn kill_while_scoring(args: &[String]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_biasprune"))
        .args(args)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("BIASPRUNE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(900);
    for line in stderr.lines() {
        let line = line.unwrap();
        assert!(Instant::now() < deadline, "scoring never started");
        if line.contains("scoring minority answers") {
            std::thread::sleep(Duration::from_secs(3));
            break;
        }
    }
    assert!(child.try_wait().unwrap().is_none(), "prune finished before it could be interrupted");
    child.kill().unwrap();
    child.wait().unwrap();
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_bytes(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn prune_resumes_after_a_kill_and_gives_the_same_signed_release() {
    let model = common::reference_model();
    let model = model.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("key");
    let keygen = Command::new(env!("CARGO_BIN_EXE_biasprune"))
        .args(["keygen", "--out", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let key = key.with_extension("priv");

    // The same OUT name in two places: the model card names OUT, so it is part of the input.
    let straight_out = tmp.path().join("straight/release");
    let straight = run_json(&prune_args(model, &straight_out, &key));
    assert!(straight["stages"].as_array().unwrap().iter().all(|s| s["status"] == "ran"), "{straight}");

    let resumed_out = tmp.path().join("resumed/release");
    let args = prune_args(model, &resumed_out, &key);
    kill_while_scoring(&args);
    assert!(!resumed_out.exists(), "a killed run must leave no OUT");
    let work = tmp.path().join("resumed/release.work");
    let partial =
        std::fs::read_dir(&work).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".partial"));
    assert!(partial, "the kill should have caught a score directory mid-way");

    let resumed = run_json(&args);
    assert_eq!(status_of(&resumed, "sample calibration answers"), "reused", "{resumed}");
    assert_eq!(status_of(&resumed, "fence baseline"), "reused");
    assert_eq!(status_of(&resumed, "score minority"), "ran");
    assert_eq!(
        read(straight_out.join("biasprune-manifest.json")),
        read(resumed_out.join("biasprune-manifest.json")),
        "the resumed run's manifest must equal the uninterrupted run's"
    );
    for file in
        ["evidence/pruned/records.jsonl", "evidence/baseline/summary.json", "pruning-mask.safetensors", "README.md"]
    {
        assert!(read_bytes(straight_out.join(file)) == read_bytes(resumed_out.join(file)), "{file} differs");
    }

    let mut changed = args.clone();
    changed.extend(["--q".to_string(), "0.2".to_string()]);
    let rerun = run_json(&changed);
    for reused in [
        "sample calibration answers",
        "fence baseline",
        "score minority",
        "score majority",
        "sample confirmation answers (base)",
    ] {
        assert_eq!(status_of(&rerun, reused), "reused", "{reused}: {rerun}");
    }
    for redone in ["build mask", "evaluate pruned", "write release"] {
        assert_eq!(status_of(&rerun, redone), "ran", "{redone}: {rerun}");
    }
    assert_eq!(rerun["q"], 0.2);
    let manifest: serde_json::Value = serde_json::from_str(&read(resumed_out.join("biasprune-manifest.json"))).unwrap();
    assert_eq!(manifest["method"]["q"], 0.2);
    let direction = &manifest["method"]["direction"];
    assert!(direction["reason"].as_str().unwrap().starts_with("auto: "), "{direction}");
    assert_eq!(direction["significant"], false, "{direction}");
    assert_eq!(manifest["use_case"]["direction"], "minority-minus-majority", "auto keeps the paper's direction");
    assert_the_splits_are_disjoint(&resumed_out, &manifest);
    let outcome = assert_the_outcome_is_stated_everywhere(&resumed_out, &manifest);

    let mut elsewhere = changed.clone();
    elsewhere.extend(["--work-dir".to_string(), tmp.path().join("other.work").display().to_string()]);
    let refused = Command::new(env!("CARGO_BIN_EXE_biasprune")).args(&elsewhere).output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("was not written from the work directory"), "{stderr}");

    let public = tmp.path().join("key.pub");
    let verify = Command::new(env!("CARGO_BIN_EXE_biasprune"))
        .args(["verify", resumed_out.to_str().unwrap(), "--public-key", public.to_str().unwrap(), "--base", model])
        .args(["--reproduce", "--quiet"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{report}");
    assert!(report.contains("PASS reproduce.pruned") && report.contains("PASS reproduce.baseline"), "{report}");
    assert!(
        report.contains(&format!("evidence outcome: {outcome}")) && report.contains("released anyway"),
        "verify must print the outcome: {report}"
    );
}

/// Calibration, selection and confirmation seeds differ, and the confirmation's held-out
/// names are absent from the records scoring used.
fn assert_the_splits_are_disjoint(out: &Path, manifest: &serde_json::Value) {
    let splits = &manifest["evidence"]["splits"];
    let seed = |split: &str| splits[split]["seed"].as_u64().unwrap_or_else(|| panic!("no {split} seed: {splits}"));
    assert_eq!(seed("calibration"), 3);
    assert_ne!(seed("confirmation"), seed("calibration"));
    let selection = manifest["method"]["seeds"]["selection"].as_u64().unwrap();
    assert!(selection != seed("confirmation") && selection != seed("calibration"), "{splits}");
    let run = |folder: &str| -> serde_json::Value {
        serde_json::from_str(&read(out.join(format!("evidence/{folder}/run.json")))).unwrap()
    };
    assert_eq!(run("calibration")["seed"].as_u64(), Some(seed("calibration")));
    assert_eq!(run("baseline")["seed"].as_u64(), Some(seed("confirmation")));
    assert_eq!(run("pruned")["seed"].as_u64(), Some(seed("confirmation")));

    let scored = names_in(&out.join("evidence/calibration/records.jsonl"));
    let confirmed = names_in(&out.join("evidence/pruned/records.jsonl"));
    assert_eq!(confirmed, names_in(&out.join("evidence/baseline/records.jsonl")), "paired: the same names");
    assert_eq!((scored.len(), confirmed.len()), (40, 24), "audit40 scores, extended64's other 24 confirm");
    assert!(
        scored.is_disjoint(&confirmed),
        "held-out names were used for scoring: {:?}",
        scored.intersection(&confirmed)
    );
    let listed: std::collections::BTreeSet<String> =
        splits["confirmation"]["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect();
    assert_eq!(listed, confirmed, "the manifest names the confirmation names");
    assert_eq!(splits["confirmation"]["variations"], serde_json::json!(["bicycle"]));
}

/// `--release-anyway`: the outcome is in the manifest, the first lines of the card and the
/// report's banner; returns it.
fn assert_the_outcome_is_stated_everywhere(out: &Path, manifest: &serde_json::Value) -> String {
    let outcome = manifest["evidence"]["outcome"].as_str().unwrap_or_else(|| panic!("no outcome: {manifest}"));
    assert!(["reduced", "not-reduced", "harmed"].contains(&outcome), "{outcome}");
    assert_eq!(manifest["evidence"]["verdict"]["outcome"], outcome);
    assert_eq!(manifest["evidence"]["verdict"]["released_anyway"], outcome != "reduced");
    let delta = &manifest["evidence"]["verdict"]["targets"]["bicycle"];
    assert!(delta["delta"].is_number() || delta["delta"].is_null(), "{delta}");
    let card = read(out.join("README.md"));
    let first_lines: String = card
        .split("---")
        .nth(2)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(first_lines.contains(&format!("**Outcome: {outcome}**")), "{first_lines}");
    let report = read(out.join("report.html"));
    let banner = report.find("id=\"verdict\"").expect("report.html has no verdict banner");
    assert!(banner < report.find("<h2>").unwrap(), "the banner leads the report");
    let gate_found_disparity = manifest["method"]["gate"]["disparity"]["significant"].as_bool().unwrap();
    let stated = if gate_found_disparity {
        format!("Outcome: {outcome}</div>")
    } else {
        format!("Outcome: nothing to remove (pruned anyway: {outcome})</div>")
    };
    assert!(report[banner..].contains(&stated), "the banner must say {stated:?}");
    outcome.to_string()
}

#[test]
fn the_gate_stops_before_scoring_when_there_is_nothing_significant_to_remove() {
    let model = common::reference_model();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("release");
    let refused = run_json_expecting(&gated_args(model.to_str().unwrap(), &out), 3);
    assert_eq!(refused["status"], "no-disparity", "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("nothing significant to remove") && message.contains("detect"), "{message}");
    assert!(refused["disparity"]["minimum_detectable_smd"].as_f64().unwrap() > 0.0, "{refused}");
    assert!(!out.exists(), "no release may be written");
    let work: Vec<String> = std::fs::read_dir(tmp.path().join("release.work"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!work.iter().any(|name| name.starts_with("score-")), "the gate must stop before scoring: {work:?}");
    assert!(refused["evidence_dirs"][0].as_str().unwrap().contains("baseline-"), "{refused}");
}

#[test]
fn an_outcome_other_than_reduced_exits_3_and_keeps_the_evidence() {
    let model = common::reference_model();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("release");
    let mut args = gated_args(model.to_str().unwrap(), &out);
    args.extend(["--allow-no-disparity", "--layers", "29-29", "--components", "down", "--q", "0.01"].map(String::from));
    let refused = run_json_expecting(&args, 3);
    assert_eq!(refused["status"], "not-released", "{refused}");
    assert_eq!(refused["verdict"]["outcome"], "not-reduced", "{refused}");
    assert!(!out.exists(), "no release may be written");
    let dirs = refused["evidence_dirs"].as_array().unwrap();
    assert_eq!(dirs.len(), 3, "{refused}");
    for dir in dirs {
        assert!(Path::new(dir.as_str().unwrap()).join("summary.json").is_file(), "{dir}");
    }
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("not-reduced") && message.contains("--release-anyway"), "{message}");
}

/// `eval` of the reference model on the job's prompts (bicycle, 2 samples, 12 tokens) under
/// `seed`, fenced by the records at `baseline`; returns the output directory.
fn eval_like_the_job(model: &str, seed: &str, baseline: &Path, out: &Path) -> PathBuf {
    let output = Command::new(env!("CARGO_BIN_EXE_biasprune"))
        .args(["eval", model, "--scenario", "purchase", "--variations", "bicycle", "--samples", "2", "--seed", seed])
        .args(["--max-new-tokens", "12", "--quiet", "--baseline", baseline.to_str().unwrap()])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    out.to_path_buf()
}

/// The calibration evidence is the base's answers fenced by themselves, and a sweep's points
/// are compared with the base's own answers to the selection prompts and seed, fenced like
/// the points by the calibration answers (not with the calibration answers, another seed's).
#[test]
fn the_self_fenced_baseline_and_the_sweeps_reference_are_what_eval_gives() {
    let model = common::reference_model();
    let model = model.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut args = prune_args(model, &out, Path::new("unused"));
    let key_at = args.iter().position(|a| a == "--sign-key").unwrap();
    args.drain(key_at..key_at + 2);
    args.extend(["--sweep", "--p-grid", "0.3", "--q-grid", "0.05"].map(String::from));
    let outcome = run_json(&args);
    assert_eq!((outcome["p"].as_f64(), outcome["q"].as_f64()), (Some(0.3), Some(0.05)), "{outcome}");
    let evidence = out.join("evidence/calibration");
    let again = eval_like_the_job(model, "3", &evidence.join("records.jsonl"), &tmp.path().join("again"));
    for file in ["records.jsonl", "summary.json", "run.json"] {
        assert_eq!(read(evidence.join(file)), read(again.join(file)), "{file}");
    }

    let stage = outcome["stages"].as_array().unwrap().iter().find(|s| s["name"] == "sample selection answers (base)");
    let reference_dir = PathBuf::from(stage.expect("a selection reference stage")["dir"].as_str().unwrap());
    let selection_seed = outcome["seeds"]["selection"].as_u64().unwrap().to_string();
    let expected =
        eval_like_the_job(model, &selection_seed, &evidence.join("records.jsonl"), &tmp.path().join("selection"));
    assert_eq!(read(reference_dir.join("records.jsonl")), read(expected.join("records.jsonl")));
    let summary: serde_json::Value = serde_json::from_str(&read(expected.join("summary.json"))).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&read(out.join("biasprune-manifest.json"))).unwrap();
    let reference = &manifest["method"]["sweep"]["reference"];
    for metric in ["inlier_ratio", "parse_rate"] {
        let (stated, measured) = (reference[metric].as_f64().unwrap(), summary["overall"][metric].as_f64().unwrap());
        assert!((stated - measured).abs() < 1e-12, "{metric}: {stated} against {measured}");
    }
    assert!(manifest["method"]["sweep"]["rule"].as_str().unwrap().contains("same selection prompts and seed"));
}

#[test]
fn bad_settings_fail_before_any_work_naming_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let model = common::reference_model();
    let out = tmp.path().join("out");
    let cases: [(&[&str], &str); 9] = [
        (&["--scenario", "purchase", "--variations", "boat"], "no variation \"boat\""),
        (&["--scenario", "purchase", "--granularity", "head", "--head-score", "gradients"], "--head-score"),
        (&["--scenario", "purchase", "--granularity", "head", "--head-ranking", "sideways"], "--head-ranking"),
        (&["--scenario", "purchase", "--granularity", "unit", "--components", "gate,down"], "missing: up"),
        (&["--scenario", "purchase", "--head-ranking", "global"], "apply to granularity head only"),
        (&["--scenario", "purchase", "--regime", "sideways"], "regime"),
        (&["--scenario", "purchase", "--confirmation-samples", "0"], "confirmation_samples must be at least 1"),
        (&["--scenario", "purchase", "--variations", "bicycle", "--held-out", "bicycle"], "both a target and held out"),
        (&["--variations", "bicycle"], "--scenario is required"),
    ];
    for (flags, needle) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_biasprune"))
            .arg("prune")
            .arg(&model)
            .args(flags)
            .args(["--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(needle), "{flags:?}: {stderr}");
        assert!(!out.exists() && !tmp.path().join("out.work").exists(), "{flags:?} left files behind");
    }
}

#[test]
fn a_pipeline_file_is_checked_and_named_in_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let model = common::reference_model();
    let file = tmp.path().join("job.toml");
    let job = |extra: &str| {
        format!("base = {:?}\nout = \"out\"\n[use_case]\nscenario = \"purchase\"\n{extra}", model.display())
    };
    for (extra, needles) in [
        ("variations = [\"boat\"]\n", &["no variation \"boat\""][..]),
        ("[evaluation]\nsampels = 4\n", &["job.toml", "sampels"][..]),
    ] {
        std::fs::write(&file, job(extra)).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_biasprune"))
            .args(["prune", "--config", file.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(needles.iter().all(|n| stderr.contains(n)), "{needles:?}: {stderr}");
        assert!(!tmp.path().join("out").exists() && !tmp.path().join("out.work").exists());
    }
}
