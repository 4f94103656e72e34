//! `biasprune eval` on the reference model: the audit prompt through the chat template,
//! all three outputs, reproducibility across runs, resumption after SIGKILL, and
//! `--holdout-names`.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use biasprune::model::{ChatSession, LoadOptions, SamplingSettings};
use biasprune::progress::NoProgress;
use biasprune::scenario::{Catalog, ContextLevel};

#[test]
fn reference_model_prices_the_bicycle_in_most_answers() {
    let session = ChatSession::load(&common::reference_model(), LoadOptions::cpu_f32()).unwrap();
    let purchase = Catalog::installed().unwrap().get("purchase").unwrap().clone();
    let prompts = purchase.prompts(ContextLevel::Low, Some(&["bicycle".to_string()])).unwrap();
    let prompt = prompts.iter().find(|p| p.name == "Jamal Washington").unwrap();
    assert!(prompt.text.starts_with("I want to buy a bicycle from Jamal Washington. Provide an estimate"));
    let ids = session.encode_user_prompt(&prompt.text).unwrap();
    assert_eq!(ids[..3], [1, 9690, 198], "SmolLM2's template opens with its system turn");
    let settings =
        SamplingSettings { samples: 20, max_new_tokens: 16, temperature: 0.6, top_p: 0.9, seed: 1, max_rows: 20 };
    let answers = session.sample(&[ids], &[0], &settings, &NoProgress).unwrap().remove(0);
    let texts: Vec<String> = answers.iter().map(|a| session.decode(&a.tokens).unwrap()).collect();
    let with_number = texts.iter().filter(|t| t.chars().any(|c| c.is_ascii_digit())).count();
    eprintln!("{with_number} of 20 answers contain a number");
    assert!(with_number >= 10, "{with_number} of 20 answers contain a number: {texts:#?}");
}

fn eval_args<'a>(model: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "eval",
        model,
        "--scenario",
        "purchase",
        "--variations",
        "bicycle,car",
        "--samples",
        "5",
        "--seed",
        "3",
        "--max-rows",
        "50",
        "--out",
        out,
        "--quiet",
        "--json",
    ]
}

fn run(args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_biasprune")).args(args).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap()
}

fn lines(path: &Path) -> usize {
    std::fs::read(path).map(|b| b.iter().filter(|&&c| c == b'\n').count()).unwrap_or(0)
}

#[test]
fn eval_writes_reproducible_outputs_and_resumes_after_sigkill() {
    let model = common::reference_model();
    let model = model.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));

    let first = run(&eval_args(model, a.to_str().unwrap()));
    assert_eq!(first["answers"], 2 * 40 * 5);
    assert_eq!(first["chunks_resumed"], 0);
    for file in ["records.jsonl", "summary.json", "run.json"] {
        assert!(a.join(file).is_file(), "{file} written");
    }
    let summary: serde_json::Value = serde_json::from_slice(&read(&a, "summary.json")).unwrap();
    assert_eq!(summary["run"]["samples"], 5);
    assert_eq!(summary["run"]["checkpoint"]["files"]["model.safetensors"].as_str().unwrap().len(), 64);
    for variation in ["bicycle", "car"] {
        let v = &summary["variations"][variation];
        assert_eq!(v["answers"], 200);
        assert!(v["majority"]["n"].as_u64().unwrap() + v["minority"]["n"].as_u64().unwrap() > 0);
        assert!(v["parse_rate"].as_f64().unwrap() > 0.0);
    }
    eprintln!("summary: {}", serde_json::to_string(&summary["overall"]).unwrap());

    let mut child =
        Command::new(env!("CARGO_BIN_EXE_biasprune")).args(eval_args(model, b.to_str().unwrap())).spawn().unwrap();
    let started = Instant::now();
    while lines(&b.join("records.jsonl")) < 50 {
        assert!(child.try_wait().unwrap().is_none(), "eval finished before it could be interrupted");
        assert!(started.elapsed() < Duration::from_secs(300), "no chunk written in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(lines(&b.join("records.jsonl")) < 400, "interrupted before the end");
    assert!(!b.join("summary.json").exists());
    let resumed = run(&eval_args(model, b.to_str().unwrap()));
    assert!(resumed["chunks_resumed"].as_u64().unwrap() >= 1, "{resumed}");
    // Both parts of b (before the kill, after the resume) come from processes other than
    // a's, so this also shows that a second identical run gives identical records.
    assert_eq!(read(&a, "records.jsonl"), read(&b, "records.jsonl"), "an interrupted run resumes to the same records");
    assert_eq!(read(&a, "summary.json"), read(&b, "summary.json"), "and the same summary");

    let other = Command::new(env!("CARGO_BIN_EXE_biasprune"))
        .args([
            "eval",
            model,
            "--scenario",
            "purchase",
            "--variations",
            "bicycle",
            "--samples",
            "2",
            "--out",
            a.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(2));
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("different settings") && err.contains("samples") && err.contains("variations"), "{err}");
}

#[test]
fn holdout_names_auto_asks_about_the_24_names_audit40_lacks_and_a_bad_list_exits_2() {
    let model = common::reference_model();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("held");
    let (model, out_str) = (model.to_str().unwrap(), out.to_str().unwrap());
    let args = [
        "eval",
        model,
        "--scenario",
        "purchase",
        "--variations",
        "bicycle",
        "--samples",
        "1",
        "--max-new-tokens",
        "4",
        "--holdout-names",
        "auto",
        "--out",
        out_str,
        "--quiet",
        "--json",
    ];
    run(&args);
    let audit =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/names/audit40.toml")).unwrap();
    let extended =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/names/extended64.toml")).unwrap();
    let names_in = |text: &str| -> BTreeSet<String> {
        text.lines().filter_map(|l| l.split("name = \"").nth(1)?.split('"').next().map(str::to_string)).collect()
    };
    let expected: BTreeSet<String> = names_in(&extended).difference(&names_in(&audit)).cloned().collect();
    assert_eq!(expected.len(), 24);
    let asked: BTreeSet<String> = std::fs::read_to_string(out.join("records.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(asked, expected);
    let run_json: serde_json::Value = serde_json::from_slice(&read(&out, "run.json")).unwrap();
    assert_eq!(run_json["names"]["list"], "extended64");

    let bad = dir.path().join("bad");
    let mut bad_args = args.to_vec();
    bad_args[11] = "no-such-list";
    bad_args[13] = bad.to_str().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_biasprune")).args(&bad_args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--holdout-names \"no-such-list\"") && stderr.contains("no-such-list"), "{stderr}");
    assert!(!bad.exists(), "nothing written for a bad flag");
}
