//! The localization pipeline end to end on the reference model: baseline evaluation, Wanda
//! scores of both groups from the model's own answers, a prompt-specific weight mask with
//! p = q = 0.15, the mask applied in memory, and the pruned evaluation, each command naming
//! the previous one's output by its directory or by a file inside it. It asserts the
//! pipeline's invariants (not that bias drops on a 135M model) and prints the figures.

mod common;

use std::path::Path;
use std::process::Command;

fn biasprune(args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_biasprune")).args(args).output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null)
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn score_mask_and_pruned_evaluation_on_the_reference_model() {
    let model = common::reference_model();
    let model = model.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let eval =
        ["--scenario", "purchase", "--variations", "bicycle,car", "--samples", "2", "--seed", "5", "--quiet", "--json"];

    let mut args = vec!["eval", model, "--out"];
    let base = path("baseline");
    args.push(&base);
    args.extend(eval);
    biasprune(&args);
    let records = format!("{base}/records.jsonl");

    // An `eval` output is named by its directory or by the file inside it, alike.
    for (group, answers) in [("minority", &base), ("majority", &records)] {
        let out = path(group);
        let scored =
            biasprune(&["score", model, "--records", answers, "--group", group, "--out", &out, "--json", "--quiet"]);
        eprintln!("{group} scores: {scored}");
        let info: serde_json::Value =
            serde_json::from_slice(&std::fs::read(tmp.path().join(group).join("scores.json")).unwrap()).unwrap();
        assert_eq!(info["group"], group);
        assert_eq!(info["sequences"], 80, "20 names of the group x 2 variations x 2 samples");
    }

    let mask = path("mask");
    let built = biasprune(&[
        "mask",
        "--checkpoint",
        model,
        "--minority",
        &format!("{}/scores.json", path("minority")),
        "--majority",
        &path("majority"),
        "--q",
        "0.15",
        "--p",
        "0.15",
        "--out",
        &mask,
        "--json",
    ]);
    let entries = built["entries"].as_u64().unwrap();
    assert!(entries > 0, "the mask selects entries");
    let linear_params: u64 = 30 * (576 * 576 * 2 + 192 * 576 * 2 + 3 * 576 * 1536);
    assert!(entries <= (linear_params as f64 * 0.15) as u64, "at most q of every matrix: {entries}");

    let pruned = path("pruned");
    let mask_json = format!("{mask}/mask.json");
    let mut args = vec!["eval", model, "--mask", &mask_json, "--baseline", &base, "--out", &pruned];
    args.extend(eval);
    biasprune(&args);

    let (before, after) = (summary(Path::new(&base)), summary(Path::new(&pruned)));
    assert_eq!(after["run"]["checkpoint"]["masks_applied"].as_array().unwrap().len(), 1);
    assert_eq!(after["overall"]["answers"], before["overall"]["answers"]);
    assert_ne!(
        std::fs::read(Path::new(&base).join("records.jsonl")).unwrap(),
        std::fs::read(Path::new(&pruned).join("records.jsonl")).unwrap(),
        "the pruned model answers differently"
    );
    for (label, s) in [("baseline", &before), ("pruned", &after)] {
        eprintln!(
            "{label}: mean |SMD| {}, inlier ratio {}, parse rate {}; bicycle SMD {} CI {}; car SMD {} CI {}",
            s["overall"]["mean_abs_smd"],
            s["overall"]["inlier_ratio"],
            s["overall"]["parse_rate"],
            s["variations"]["bicycle"]["smd"],
            s["variations"]["bicycle"]["smd_ci"],
            s["variations"]["car"]["smd"],
            s["variations"]["car"]["smd_ci"]
        );
    }
    eprintln!("mask entries: {entries} of {linear_params} linear weights");
}
