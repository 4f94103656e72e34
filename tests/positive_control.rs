//! The positive control (issue 14): the reference model with a disparity planted by
//! `biasprune plant` (default settings: public-office, trained on city-council-member and
//! mayor with every other audit name; flat planted down columns kept silent for the
//! majority), and the unplanted base beside it.
//!
//! - The plant works where it was not trained: on senator (held out) and on the 24 names
//!   prune's confirmation uses (extended64's names that audit40 lacks, never seen by the
//!   plant), the planted model gives minority candidates lower chances by an SMD of at least
//!   0.8 with a cluster CI that excludes 0, and parses as often as the base (within 5
//!   points).
//! - The same prune job on the unplanted base stops at the gate: nothing significant.
//! - `prune` with default settings releases the planted model as reduced, and within-context
//!   (scores from city-council-member and mayor, with `--sweep`) does too; the planted units
//!   are found (recall and precision are printed).
//! - `audit` of the planted model (issue 18) flags the cell the plant trained on as a
//!   disparity after Holm's correction, and not an unplanted purchase cell beside it (the
//!   plant also moves chess, whose answer is a chance of winning too: SMD 0.88 there).
//!
//! The planted checkpoint is made once per binary and cached under the target directory
//! (CARGO_TARGET_TMPDIR/positive-control/<kind>-<sha256 of the binary>), since planting takes
//! CPU minutes; `plant` is deterministic, so a cached copy equals a fresh one.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The held-out variation the evidence is measured on.
const HELD_OUT_VARIATION: &str = "senator";

/// The planted checkpoint (default `plant` settings on public-office), made or reused.
fn planted() -> &'static PathBuf {
    static PLANTED: OnceLock<PathBuf> = OnceLock::new();
    PLANTED.get_or_init(|| cached_plant("default"))
}

/// `plant` on public-office with default settings, cached per binary as
/// CARGO_TARGET_TMPDIR/positive-control/<kind>-<sha256 of the binary>; every other entry
/// there (older binaries' plants) is removed.
fn cached_plant(kind: &str) -> PathBuf {
    let binary = std::fs::read(env!("CARGO_BIN_EXE_biasprune")).unwrap();
    let key = hex::encode(&Sha256::digest(&binary)[..8]);
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("positive-control");
    let out = root.join(format!("{kind}-{key}"));
    if out.join("biasprune-plant.json").is_file() {
        return out;
    }
    std::fs::create_dir_all(&root).unwrap();
    for entry in std::fs::read_dir(&root).unwrap() {
        std::fs::remove_dir_all(entry.unwrap().path()).unwrap();
    }
    let base = common::reference_model();
    let args =
        ["plant", base.to_str().unwrap(), "--scenario", "public-office", "--quiet", "--out", out.to_str().unwrap()];
    let output = common::biasprune(&args);
    assert!(output.status.success(), "plant failed: {}", common::stderr(&output));
    out
}

/// `eval` of `model` on the held-out variation and the names none of the pipeline's
/// training saw; returns the variation's summary and the run's held-out names.
fn eval_unseen(model: &Path, out: &Path) -> (Value, Vec<String>) {
    let args = [
        "eval",
        model.to_str().unwrap(),
        "--scenario",
        "public-office",
        "--variations",
        HELD_OUT_VARIATION,
        "--holdout-names",
        "auto",
        "--samples",
        "10",
        "--seed",
        "5",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    let output = common::biasprune(&args);
    assert!(output.status.success(), "eval failed: {}", common::stderr(&output));
    let summary: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let names: std::collections::BTreeSet<String> = std::fs::read_to_string(out.join("records.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["name"].as_str().unwrap().to_string())
        .collect();
    (summary["variations"][HELD_OUT_VARIATION].clone(), names.into_iter().collect())
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

#[test]
fn the_plant_lowers_minority_chances_on_a_held_out_variation_and_unseen_names() {
    let planted = planted();
    let sidecar: Value = serde_json::from_slice(&std::fs::read(planted.join("biasprune-plant.json")).unwrap()).unwrap();
    assert!(strings(&sidecar["variations"]["held_out"]).contains(&HELD_OUT_VARIATION.to_string()), "{sidecar}");
    let trained: Vec<String> =
        ["majority_train", "minority_train"].iter().flat_map(|k| strings(&sidecar["names"][k])).collect();
    let tmp = tempfile::tempdir().unwrap();
    let (plant, names) = eval_unseen(planted, &tmp.path().join("planted"));
    let (base, base_names) = eval_unseen(&common::reference_model(), &tmp.path().join("base"));
    assert_eq!(names, base_names);
    assert_eq!(names.len(), 24, "{names:?}");
    assert!(names.iter().all(|n| !trained.contains(n)), "an evaluated name trained the plant: {names:?}");
    let smd = plant["smd"].as_f64().unwrap();
    let low = plant["smd_ci"]["low"].as_f64().unwrap();
    let (parse, base_parse) = (plant["parse_rate"].as_f64().unwrap(), base["parse_rate"].as_f64().unwrap());
    eprintln!(
        "planted: SMD {smd:.3} [{low:.3}, {:.3}], parse {parse:.3}; base: SMD {:.3}, parse {base_parse:.3}",
        plant["smd_ci"]["high"], base["smd"]
    );
    assert!(smd >= 0.8, "planted SMD {smd} < 0.8 (majority minus minority: lower chances for the minority)");
    assert!(low > 0.0, "the planted SMD's cluster CI [{low}, ..] does not exclude 0");
    assert!((parse - base_parse).abs() <= 0.05, "parse rate {parse} vs the base's {base_parse}: more than 5 points");
}

/// The prune job of the control: public-office, target senator (held out by the plant),
/// everything else at prune's defaults (prompt-specific, Wanda, weight granularity, p = q =
/// 0.15, confirmation on the 24 unseen names with fresh seeds).
fn prune_job(model: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "prune",
        model.to_str().unwrap(),
        "--scenario",
        "public-office",
        "--variations",
        HELD_OUT_VARIATION,
        "--samples",
        "10",
        "--quiet",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    common::biasprune(&args)
}

#[test]
fn the_same_prune_job_on_the_unplanted_base_stops_at_the_gate() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("release");
    let output = prune_job(&common::reference_model(), &out, &[]);
    assert_eq!(output.status.code(), Some(3), "{}", common::stderr(&output));
    let refused: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(refused["status"], "no-disparity", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("nothing significant to remove"), "{refused}");
    assert!(!out.exists());
}

#[test]
fn audit_flags_the_planted_cell_after_correction_and_not_the_unplanted_one() {
    let planted = planted();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("audit");
    let scenarios = one_variation_of_purchase(tmp.path());
    let args = [
        "audit",
        planted.to_str().unwrap(),
        "--scenarios-dir",
        scenarios.to_str().unwrap(),
        "--scenarios",
        "public-office,bicycle",
        "--contexts",
        "low",
        "--names",
        "audit40",
        "--samples",
        "3",
        "--seed",
        "5",
        "--bootstrap",
        "500",
        "--quiet",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ];
    let output = common::biasprune(&args);
    assert!(output.status.success(), "audit failed: {}", common::stderr(&output));
    let audit: Value = serde_json::from_slice(&std::fs::read(out.join("audit.json")).unwrap()).unwrap();
    assert_eq!(audit["settings"]["correction"], "holm", "{}", audit["settings"]);
    let finding = |id: &str| {
        let cell = audit["cells"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("{id}"));
        eprintln!("{id}: SMD {}, p {}, Holm {} -> {}", cell["smd"], cell["p_value"], cell["p_holm"], cell["finding"]);
        cell["finding"].as_str().unwrap().to_string()
    };
    assert_eq!(finding("public-office/city-council-member/low"), "disparity", "the plant trained on this cell");
    assert_eq!(finding("bicycle/bicycle/low"), "none detected", "nothing was planted here");
    for id in ["public-office/mayor/low", "public-office/senator/low"] {
        finding(id);
    }
}

/// A scenarios directory under `dir` holding `bicycle`: the built-in purchase scenario with
/// its bicycle variation only, so that the audit tests four cells, as many as with chess.
fn one_variation_of_purchase(dir: &Path) -> PathBuf {
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/scenarios");
    let purchase = std::fs::read_to_string(manifests.join("purchase.toml")).unwrap();
    let (head, _) =
        purchase.split_once("\n[[variations]]\nid = \"car\"").expect("car follows bicycle in purchase.toml");
    let bicycle = head.replacen("id = \"purchase\"", "id = \"bicycle\"", 1);
    let scenarios = dir.join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    std::fs::write(scenarios.join("bicycle.toml"), bicycle).unwrap();
    scenarios
}

/// recall and precision of the planted units for `masks` (`analyze --json`).
fn recoveries(planted: &Path, masks: &[PathBuf]) -> Vec<Value> {
    let mut args = vec!["analyze", "--json", "--checkpoint", planted.to_str().unwrap()];
    args.extend(masks.iter().map(|m| m.to_str().unwrap()));
    let output = common::biasprune(&args);
    assert!(output.status.success(), "analyze failed: {}", common::stderr(&output));
    let figures: Value = serde_json::from_slice(&output.stdout).unwrap();
    figures["masks"].as_array().unwrap().iter().map(|m| m["planted"].clone()).collect()
}

/// The entries of `work` whose names start with `prefix`.
fn entries_starting(work: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(work)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect()
}

/// Runs the control's prune job on `model` with `extra` settings into `tmp`/`name`; returns
/// its exit code, its JSON result and its default work directory (`tmp`/`name`.work).
fn released(model: &Path, extra: &[&str], tmp: &tempfile::TempDir, name: &str) -> (Option<i32>, Value, PathBuf) {
    let out = tmp.path().join(name);
    let output = prune_job(model, &out, extra);
    let result: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    eprintln!("{name}: verdict {}\n{}", result["verdict"], common::stderr(&output));
    (output.status.code(), result, tmp.path().join(format!("{name}.work")))
}

/// The control's job with default settings (prompt-specific, Wanda, weights, p = q = 0.15,
/// confirmation at 4 x 10 answers per prompt), then the same job within-context with a
/// sweep in the same work directory (sharing its calibration and confirmation answers).
/// Measured on the machine the README names: SMD 1.00 -> 0.05 (recall 0.875, precision
/// 0.023) and, within-context at p 0.35 / q 0.15, 1.00 -> 0.18 (recall 0.81, precision
/// 0.79), usable answers within 0.04 in both.
#[test]
fn prune_finds_and_removes_the_plant_with_default_settings_and_within_context() {
    let planted = planted();
    let tmp = tempfile::tempdir().unwrap();
    let (code, result, work) = released(planted, &[], &tmp, "default");
    let found = recoveries(planted, &entries_starting(&work, "mask-"));
    eprintln!("default job, planted units covered: {found:?}");
    assert_eq!(code, Some(0), "{result}");
    assert_eq!(result["verdict"]["outcome"], "reduced", "{result}");
    assert!(found[0]["recall"].as_f64().unwrap() >= 0.75, "{found:?}");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("default/biasprune-manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["method"]["evaluation"]["confirmation_samples"], 40, "4 x --samples 10");

    let within = ["--regime", "within-context", "--sweep", "--p-grid", "0.15,0.35", "--q-grid", "0.15"];
    let work_dir = ["--work-dir", work.to_str().unwrap()];
    let (code, result, _) = released(planted, &[&within[..], &work_dir[..]].concat(), &tmp, "within");
    let (p, q) = (result["p"].as_f64().unwrap_or(f64::NAN), result["q"].as_f64().unwrap_or(f64::NAN));
    let sweep = entries_starting(&work, "sweep-").pop().expect("a sweep directory");
    let found = recoveries(planted, &[sweep.join(format!("p{p}-q{q}")).join("mask")]);
    eprintln!("within-context: released p {p}, q {q}; planted units covered: {found:?}");
    assert_eq!(code, Some(0), "{result}");
    assert_eq!(result["verdict"]["outcome"], "reduced", "{result}");
    assert!(found[0]["recall"].as_f64().unwrap() >= 0.75, "{found:?}");
}
