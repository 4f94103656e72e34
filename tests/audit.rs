//! `biasprune audit` on the reference model, kept tiny (one scenario, three names per group,
//! two samples): an audit killed between cells resumes to the same bytes, its page passes
//! the headless-Chromium check, and bad settings exit 2 naming the value before any model
//! loads.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{assert_bad_input, biasprune};

fn audit_args<'a>(model: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "audit",
        model,
        "--scenarios",
        "purchase",
        "--contexts",
        "low",
        "--names-per-group",
        "3",
        "--samples",
        "2",
        "--seed",
        "5",
        "--bootstrap",
        "500",
        "--out",
        out,
        "--quiet",
        "--json",
    ]
}

fn run(args: &[&str]) -> serde_json::Value {
    let output = biasprune(args);
    assert!(output.status.success(), "{}", common::stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
}

#[test]
fn an_interrupted_audit_resumes_to_the_same_bytes_and_its_page_passes_chromium() {
    let model = common::reference_model();
    let model = model.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (whole, interrupted) = (tmp.path().join("whole"), tmp.path().join("interrupted"));

    let result = run(&audit_args(model, whole.to_str().unwrap()));
    assert_eq!(result["cells"], 3, "{result}");
    let audit: serde_json::Value = serde_json::from_slice(&read(&whole, "audit.json")).unwrap();
    let ids: Vec<&str> = audit["cells"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["purchase/bicycle/low", "purchase/car/low", "purchase/house/low"]);
    for cell in audit["cells"].as_array().unwrap() {
        assert_eq!(cell["answers"], 2 * 3 * 2, "{cell}");
        if let (Some(p), Some(holm), Some(bh)) =
            (cell["p_value"].as_f64(), cell["p_holm"].as_f64(), cell["p_bh"].as_f64())
        {
            assert!(p <= bh && bh <= holm && holm <= 1.0, "{cell}");
        }
        let finding = cell["finding"].as_str().unwrap();
        assert!(["disparity", "none detected", "not tested"].contains(&finding), "{cell}");
        assert_eq!(finding == "disparity", cell["prune_command"].is_string(), "{cell}");
    }
    assert_eq!(audit["scenarios"][0]["majority"].as_array().unwrap().len(), 3);
    let csv = String::from_utf8(read(&whole, "audit.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");

    let first_cell = interrupted.join("cells/purchase/bicycle/low/summary.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_biasprune"))
        .args(audit_args(model, interrupted.to_str().unwrap()))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !first_cell.exists() {
        assert!(child.try_wait().unwrap().is_none(), "the audit finished before it could be interrupted");
        assert!(started.elapsed() < Duration::from_secs(300), "no cell finished in time");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!interrupted.join("audit.json").exists(), "killed after the first of three cells");
    run(&audit_args(model, interrupted.to_str().unwrap()));
    for file in ["audit.json", "audit.csv", "audit.html", "cells/purchase/house/low/records.jsonl"] {
        assert_eq!(read(&whole, file), read(&interrupted, file), "{file}: a resumed audit gives the same bytes");
    }

    let check = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/check-audit.sh"))
        .arg(whole.join("audit.html"))
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
    assert!(check.status.success(), "check-audit.sh failed (exit {:?}):\n{stdout}\n{stderr}", check.status.code());
    assert!(stdout.contains("check-audit: ok: 1 heatmap(s) visible, 3 cells"), "{stdout}");
}

#[test]
fn bad_settings_exit_2_naming_the_value() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let out = out.to_str().unwrap();
    let missing = tmp.path().join("no-such-model");
    let ckpt = missing.to_str().unwrap();
    let cases: [(&[&str], &[&str]); 6] = [
        (&["--scenarios", "purchase,nosuch"], &["nosuch", "purchase"]),
        (&["--scenarios", "all,purchase"], &["--scenarios", "all"]),
        (&["--contexts", "low,medium"], &["--contexts", "\"medium\"", "expected low, high or numeric"]),
        (&["--names", "nosuch"], &["--names", "\"nosuch\"", "audit40"]),
        (&["--alpha", "1.5"], &["--alpha", "1.5"]),
        (&["--correction", "bonferroni"], &["--correction", "\"bonferroni\"", "holm or bh"]),
    ];
    for (extra, needles) in cases {
        let mut args = vec!["audit", ckpt, "--out", out];
        args.extend_from_slice(extra);
        assert_bad_input(&biasprune(&args), needles);
    }
    assert!(!Path::new(out).exists(), "nothing written for bad settings");
}
