//! `biasprune power`: the gate's power table from answer records with an SMD planted into
//! them (records written here, no model needed).

mod common;

use std::path::Path;

use serde_json::{json, Value};

/// An eval-like directory: 8 + 8 names x `samples` answers to senator, both groups alike
/// (name i answers 40 + 3 (i % 4) + the sample's wobble), every third answer unparsed.
fn write_eval(dir: &Path, samples: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let mut lines = String::new();
    for (group, prefix) in [("majority", "Maj"), ("minority", "Min")] {
        for i in 0..8u32 {
            for s in 0..samples {
                let parsed = s % 3 != 2;
                let value = 40.0 + 3.0 * f64::from(i % 4) + f64::from((s * 7 + i) % 5);
                let record = json!({"scenario": "public-office", "variation": "senator", "context": "low",
                    "name": format!("{prefix} {i}"), "group": group, "gender": "man", "sample": s, "seed": 1,
                    "raw": "x", "value": if parsed { json!(value) } else { Value::Null },
                    "status": if parsed { "ok" } else { "unparseable" }, "inlier": parsed});
                lines.push_str(&record.to_string());
                lines.push('\n');
            }
        }
    }
    std::fs::write(dir.join("records.jsonl"), lines).unwrap();
}

#[test]
fn power_reports_each_planted_smd_and_answer_count_over_disjoint_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write_eval(&a, 20);
    write_eval(&b, 20);
    let args = ["power", a.to_str().unwrap(), b.to_str().unwrap(), "--variation", "senator"];
    let output = common::biasprune(&[&args[..], &["--shifts", "0,3", "--samples", "5,10,20", "--json"]].concat());
    assert!(output.status.success(), "{}", common::stderr(&output));
    let table: Value = serde_json::from_slice(&output.stdout).unwrap();
    let cells = table["cells"].as_array().unwrap();
    let trials: Vec<u64> = cells.iter().map(|c| c["trials"].as_u64().unwrap()).collect();
    assert_eq!(trials, [8, 4, 2, 8, 4, 2], "two runs of 20 answers: 4, 2 and 1 blocks each");
    for cell in &cells[..3] {
        assert_eq!(cell["detected"], 0, "no planted shift, identical groups: {cell}");
    }
    for cell in &cells[3..] {
        assert_eq!(cell["rate"], 1.0, "a shift of 3 SDs is always detected: {cell}");
        assert!((cell["mean_smd"].as_f64().unwrap() - 3.0).abs() < 0.5, "{cell}");
    }
    let again = common::biasprune(&[&args[..], &["--shifts", "0,3", "--samples", "5,10,20", "--json"]].concat());
    assert_eq!(output.stdout, again.stdout, "deterministic");
    let text = common::biasprune(&[&args[..], &["--samples", "10,20"]].concat());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.starts_with("planted SMD | 10 answers/name | 20 answers/name"), "{text}");
}

#[test]
fn power_refuses_more_answers_than_recorded_and_a_missing_variation_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    write_eval(&a, 10);
    let too_many = common::biasprune(&["power", a.to_str().unwrap(), "--variation", "senator", "--samples", "20"]);
    assert_eq!(too_many.status.code(), Some(2));
    assert!(
        common::stderr(&too_many).contains("20 answers per name asked, but evaluation 0 has 10"),
        "{}",
        common::stderr(&too_many)
    );
    let missing = common::biasprune(&["power", a.to_str().unwrap(), "--variation", "mayor", "--samples", "5"]);
    assert_eq!(missing.status.code(), Some(2));
    let err = common::stderr(&missing);
    assert!(err.contains("records.jsonl") && err.contains("no answers to variation `mayor`"), "{err}");
    let absent = common::biasprune(&["power", tmp.path().join("nope").to_str().unwrap(), "--variation", "senator"]);
    assert_eq!(absent.status.code(), Some(2));
    assert!(common::stderr(&absent).contains("nope"), "{}", common::stderr(&absent));
}
