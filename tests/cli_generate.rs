//! `biasprune generate` end to end on the fixture checkpoint (which carries a tokenizer).

use std::process::{Command, Output};

use biasprune::fixture::{write_checkpoint, FixtureSpec};

fn fixture() -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("model");
    write_checkpoint(&dir, &FixtureSpec::default()).unwrap();
    (root, dir)
}

fn biasprune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_biasprune")).args(args).output().unwrap()
}

fn generate(dir: &std::path::Path, extra: &[&str]) -> Output {
    let mut args = vec!["generate", dir.to_str().unwrap(), "--raw", "--prompt", "Hello there", "--max-new-tokens", "6"];
    args.extend_from_slice(extra);
    biasprune(&args)
}

#[test]
fn prints_one_answer_per_line_reproducibly() {
    let (_root, dir) = fixture();
    let first = generate(&dir, &["--samples", "3", "--seed", "5"]);
    assert_eq!(first.status.code(), Some(0), "{}", String::from_utf8_lossy(&first.stderr));
    let text = String::from_utf8(first.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 3, "{text:?}");
    let again = generate(&dir, &["--samples", "3", "--seed", "5"]);
    assert_eq!(first.stdout, again.stdout);
}

#[test]
fn json_lists_every_answer_with_its_tokens() {
    let (_root, dir) = fixture();
    let out = generate(&dir, &["--samples", "4", "--json", "--temperature", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let answers = report["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 4);
    assert!(answers.iter().all(|a| a["tokens"].as_array().unwrap().len() <= 6));
    assert!(answers.iter().all(|a| a == &answers[0]), "greedy answers are identical");
}

#[test]
fn without_raw_the_prompt_goes_through_the_chat_template() {
    let (_root, dir) = fixture();
    let out = biasprune(&["generate", dir.to_str().unwrap(), "--prompt", "Hi", "--max-new-tokens", "2", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tokenizer = biasprune::tokenizer::Tokenizer::from_checkpoint_dir(&dir).unwrap();
    let templated = tokenizer.encode("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", false).unwrap();
    assert_eq!(report["prompt_tokens"], templated.len());
    assert!(templated.len() > tokenizer.encode("Hi", false).unwrap().len());
}

#[test]
fn a_missing_checkpoint_exits_2_naming_it() {
    let out = biasprune(&["generate", "/nonexistent/model", "--raw", "--prompt", "Hi"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/model"));
}
