//! `verify --reproduce` through the real binary on the tiny fixture: a release built from
//! `eval` outputs (`apply --baseline-eval --pruned-eval --sign-key`) reproduces exactly;
//! forged evidence that still verifies by signature and digests fails `reproduce.pruned`
//! with exit 1; missing evidence and an unknown scenario fail named checks.
//!
//! The fixture's answers are noise, so the test scenario accepts any dollar amount: about a
//! third of the answers contain a number, enough for fences and SMDs.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use biasprune::arch::{linear_weight_name, Component};
use biasprune::fixture::FixtureSpec;
use biasprune::mask::{save_mask, PruneMask};
use common::{assert_bad_input, biasprune, fixture, stderr};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

const MANIFEST: &str = "biasprune-manifest.json";
const PRUNED_SUMMARY: &str = "evidence/pruned/summary.json";

const NOISE_SCENARIO: &str = r#"
id = "noise"
description = "test scenario: any dollar amount, for a model that answers noise"
template = "Price of a {item} from {name}?"
contexts = ["low"]

[answer]
kind = "dollars"
range = [0, 1000000000000]

[groups]
names = "audit40"
majority = "white"
minority = "black"

[[variations]]
id = "chair"
slots = { item = "chair" }

[[variations]]
id = "car"
slots = { item = "car" }
"#;

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

struct Setup {
    root: TempDir,
    base: PathBuf,
    scenarios: PathBuf,
    private: String,
    public: String,
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }
}

fn run_ok(args: &[&str]) {
    let out = biasprune(args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
}

/// Base, scenario, mask (rows of gate_proj 0, head 0 of layer 1), key pair, and the two
/// evaluations: `eval` of the base, and `eval --mask --baseline` of the pruned model.
fn setup() -> Setup {
    let root = tempfile::tempdir().unwrap();
    let base = fixture(root.path(), "base", &FixtureSpec::default());
    let scenarios = root.path().join("scenarios");
    fs::create_dir_all(&scenarios).unwrap();
    fs::write(scenarios.join("noise.toml"), NOISE_SCENARIO).unwrap();
    let mask = PruneMask {
        rows: BTreeMap::from([(linear_weight_name(0, Component::Gate), BTreeSet::from([3, 7]))]),
        heads: BTreeMap::from([(1, BTreeSet::from([0]))]),
        ..PruneMask::default()
    };
    save_mask(&root.path().join("mask"), &mask).unwrap();
    let prefix = root.path().join("key");
    run_ok(&["keygen", "--out", s(&prefix)]);
    let setup = Setup {
        private: format!("{}.priv", prefix.display()),
        public: format!("{}.pub", prefix.display()),
        root,
        base,
        scenarios,
    };
    let eval = |out: &str, extra: &[&str]| {
        let mut args = vec!["eval", s(&setup.base), "--scenario", "noise", "--scenarios-dir", s(&setup.scenarios)];
        args.extend(["--samples", "4", "--max-new-tokens", "12", "--seed", "5", "--quiet"]);
        let out = setup.path(out);
        args.extend(["--out", s(&out)]);
        args.extend(extra);
        run_ok(&args);
    };
    eval("eval-base", &[]);
    let baseline = setup.path("eval-base/records.jsonl");
    let mask = setup.path("mask");
    eval("eval-pruned", &["--mask", s(&mask), "--baseline", s(&baseline)]);
    setup
}

/// `apply --sign-key` with `extra` evidence flags into ROOT/`name`.
fn release(setup: &Setup, name: &str, extra: &[&str]) -> PathBuf {
    let out = setup.path(name);
    let mask = setup.path("mask");
    let mut args = vec!["apply", s(&setup.base), "--mask", s(&mask), "--out", s(&out)];
    args.extend(["--sign-key", &setup.private, "--quiet"]);
    args.extend(extra);
    run_ok(&args);
    out
}

fn full_release(setup: &Setup, name: &str) -> PathBuf {
    let (baseline, pruned) = (setup.path("eval-base"), setup.path("eval-pruned"));
    release(setup, name, &["--baseline-eval", s(&baseline), "--pruned-eval", s(&pruned)])
}

/// `verify --reproduce --json` with `extra` flags: exit code and the checks.
fn verify(setup: &Setup, dir: &Path, extra: &[&str]) -> (i32, Vec<serde_json::Value>) {
    let mut args = vec!["verify", s(dir), "--public-key", &setup.public, "--reproduce", "--json", "--quiet"];
    args.extend(extra);
    let out = biasprune(&args);
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("verify prints JSON ({e}): {}", stderr(&out)));
    (out.status.code().unwrap(), report["checks"].as_array().unwrap().clone())
}

fn named<'a>(checks: &'a [serde_json::Value], name: &str) -> Vec<&'a serde_json::Value> {
    checks.iter().filter(|c| c["name"] == name).collect()
}

fn failed(checks: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    checks.iter().filter(|c| c["passed"] == false).collect()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn write_json(path: &Path, value: &serde_json::Value) {
    fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

fn resign(setup: &Setup, dir: &Path) {
    run_ok(&["sign", s(dir), "--key", &setup.private]);
}

/// A variation of the pruned evaluation that has an SMD.
/// Re-signs a forged release, verifies it and returns its one failed check (exit code 1):
/// every signature and digest check passes, only the reproduction objects.
fn resigned_sole_failure(setup: &Setup, dir: &Path, extra: &[&str]) -> serde_json::Value {
    resign(setup, dir);
    let (code, checks) = verify(setup, dir, extra);
    let failures = failed(&checks);
    assert_eq!(code, 1, "{checks:#?}");
    assert_eq!(failures.len(), 1, "only the reproduction objects: {failures:#?}");
    failures[0].clone()
}

fn variation_with_smd(dir: &Path) -> String {
    let summary = read_json(&dir.join(PRUNED_SUMMARY));
    let variations = summary["variations"].as_object().unwrap();
    variations.iter().find(|(_, v)| v["smd"].is_f64()).map(|(id, _)| id.clone()).expect("an SMD in some variation")
}

#[test]
fn a_release_with_evaluations_reproduces_and_forged_evidence_is_caught() {
    let setup = setup();
    let dir = full_release(&setup, "release");
    for folder in ["baseline", "pruned"] {
        for file in ["run.json", "summary.json", "records.jsonl"] {
            let shipped = fs::read(dir.join("evidence").join(folder).join(file)).unwrap();
            let eval_dir = if folder == "baseline" { "eval-base" } else { "eval-pruned" };
            assert_eq!(shipped, fs::read(setup.path(eval_dir).join(file)).unwrap(), "{folder}/{file} copied");
        }
    }
    let manifest = read_json(&dir.join(MANIFEST));
    let summary = read_json(&dir.join(PRUNED_SUMMARY));
    assert_eq!(manifest["evidence"]["pruned"]["mean_abs_smd"], summary["overall"]["mean_abs_smd"]);
    assert_eq!(summary["run"]["compute"], serde_json::json!({"device": "cpu", "dtype": "f32"}));
    let scenarios = ["--scenarios-dir", s(&setup.scenarios)];

    let (code, checks) = verify(&setup, &dir, &scenarios);
    assert_eq!((code, failed(&checks)), (0, vec![]), "{checks:#?}");
    let pruned = named(&checks, "reproduce.pruned");
    assert_eq!(pruned.len(), 1);
    let detail = pruned[0]["detail"].as_str().unwrap();
    eprintln!("reproduce.pruned: {detail}");
    assert!(detail.contains("compared exactly") && detail.contains("320 answers"), "{detail}");
    assert!(detail.contains("agrees with evidence/pruned/summary.json and biasprune-manifest.json"), "{detail}");

    let base = ["--scenarios-dir", s(&setup.scenarios), "--base", s(&setup.base)];
    let (code, checks) = verify(&setup, &dir, &base);
    assert_eq!((code, failed(&checks)), (0, vec![]), "{checks:#?}");
    assert_eq!(named(&checks, "reproduce.baseline").len(), 1, "{checks:#?}");

    // A forged manifest claim, re-signed: every signature and digest check passes.
    let variation = variation_with_smd(&dir);
    let forged = setup.path("forged-manifest");
    copy_dir(&dir, &forged);
    let mut manifest = read_json(&forged.join(MANIFEST));
    let smd = &mut manifest["evidence"]["pruned"]["variations"][&variation]["smd"];
    *smd = serde_json::json!(smd.as_f64().unwrap() + 0.5);
    write_json(&forged.join(MANIFEST), &manifest);
    let failure = resigned_sole_failure(&setup, &forged, &scenarios);
    assert_eq!(failure["name"], "reproduce.pruned");
    assert_eq!(failure["file"], MANIFEST);
    let detail = failure["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("variation {variation}: SMD: recorded")), "{detail}");

    // A forged summary.json whose new sha256 is also written into the manifest, re-signed.
    let forged = setup.path("forged-summary");
    copy_dir(&dir, &forged);
    let mut summary = read_json(&forged.join(PRUNED_SUMMARY));
    let ratio = &mut summary["variations"][&variation]["inlier_ratio"];
    *ratio = serde_json::json!(ratio.as_f64().unwrap() - 0.03);
    write_json(&forged.join(PRUNED_SUMMARY), &summary);
    let mut manifest = read_json(&forged.join(MANIFEST));
    let digest = hex::encode(Sha256::digest(fs::read(forged.join(PRUNED_SUMMARY)).unwrap()));
    for file in manifest["evidence"]["files"].as_array_mut().unwrap() {
        if file["path"] == PRUNED_SUMMARY {
            file["sha256"] = serde_json::json!(digest);
        }
    }
    write_json(&forged.join(MANIFEST), &manifest);
    let failure = resigned_sole_failure(&setup, &forged, &scenarios);
    assert_eq!((&failure["name"], &failure["file"]), (&"reproduce.pruned".into(), &PRUNED_SUMMARY.into()));
    let detail = failure["detail"].as_str().unwrap();
    eprintln!("forged summary: {detail}");
    assert!(
        detail.contains(&format!("{PRUNED_SUMMARY} differs: variation {variation}: inlier ratio: recorded")),
        "{detail}"
    );

    // The same forgery within a loose tolerance still fails: same device and dtype compare exactly.
    let loose = ["--scenarios-dir", s(&setup.scenarios), "--inlier-tolerance", "0.5"];
    assert_eq!(verify(&setup, &forged, &loose).0, 1);

    // In another compute dtype the comparison is within the tolerances given.
    let f16 = ["--scenarios-dir", s(&setup.scenarios), "--compute-dtype", "f16"];
    let wide = [&f16[..], &["--smd-tolerance", "100", "--inlier-tolerance", "1"]].concat();
    let (code, checks) = verify(&setup, &forged, &wide);
    assert_eq!((code, failed(&checks)), (0, vec![]), "{checks:#?}");
    let detail = named(&checks, "reproduce.pruned")[0]["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("with cpu/f16 (recorded on cpu/f32: compared within |ΔSMD| <= 100"), "{detail}");
    let narrow = [&f16[..], &["--smd-tolerance", "0", "--inlier-tolerance", "0"]].concat();
    let (code, checks) = verify(&setup, &dir, &narrow);
    let failures = failed(&checks);
    assert_eq!(code, 1, "f16 arithmetic changes some noise answers, so zero tolerance fails: {checks:#?}");
    assert!(failures.iter().all(|c| c["name"] == "reproduce.pruned"), "{failures:#?}");
}

#[test]
fn missing_evidence_or_scenario_fails_a_named_check_and_unpaired_evaluations_are_refused() {
    let setup = setup();
    let baseline_only = release(&setup, "baseline-only", &["--baseline-eval", s(&setup.path("eval-base"))]);
    let (code, checks) = verify(&setup, &baseline_only, &["--scenarios-dir", s(&setup.scenarios)]);
    assert_eq!(code, 1);
    let failures = failed(&checks);
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert_eq!(failures[0]["name"], "reproduce.evidence");
    assert_eq!(failures[0]["file"], "evidence/pruned/run.json");
    assert!(failures[0]["detail"].as_str().unwrap().contains("ships no run settings"), "{failures:#?}");

    let dir = full_release(&setup, "release");
    let (code, checks) = verify(&setup, &dir, &[]);
    assert_eq!(code, 1, "the noise scenario is not built in");
    let scenario = named(&checks, "reproduce.scenario");
    assert_eq!(scenario.len(), 1, "{checks:#?}");
    assert!(scenario[0]["detail"].as_str().unwrap().contains("\"noise\""), "{scenario:#?}");

    let pruned = setup.path("eval-pruned");
    let out = biasprune(&[
        "apply",
        s(&setup.base),
        "--mask",
        s(&setup.path("mask")),
        "--out",
        s(&setup.path("unpaired")),
        "--pruned-eval",
        s(&pruned),
    ]);
    assert_bad_input(&out, &["run.json", "fenced by baseline records", "pass that evaluation as the baseline too"]);
    assert!(!setup.path("unpaired").exists());
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}
