//! SIGKILL at several points of `apply`, `eval` and `score`: a killed run leaves no
//! finished-looking output and an unchanged input, and rerunning the same command completes
//! with the very bytes of an uninterrupted run (and no leftovers of the killed one).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use biasprune::fixture::{FixtureDtype, FixtureSpec};
use biasprune::mask::{save_mask, PruneMask};
use common::{biasprune, fixture, hash_tree, stderr};

const EPOCH: &str = "1767225600";

fn partial_dirs(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".out.biasprune-partial-"))
        .map(|e| e.path())
        .collect()
}

fn written_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
}

fn lines(path: &Path) -> usize {
    std::fs::read(path).map(|b| b.iter().filter(|&&c| c == b'\n').count()).unwrap_or(0)
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn run(args: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_biasprune"))
        .args(args)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .expect("binary runs");
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
}

/// Starts `args`, polls `reached` every half millisecond and SIGKILLs the run the moment it
/// holds; fails when the run ends first (`point` names the kill point in messages).
fn kill_when(args: &[&str], point: &str, reached: impl Fn() -> bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_biasprune"))
        .args(args)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !reached() {
        assert!(child.try_wait().unwrap().is_none(), "{args:?} finished before {point}; enlarge the input");
        assert!(started.elapsed() < Duration::from_secs(300), "{args:?} never reached {point}");
        std::thread::sleep(Duration::from_micros(500));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn apply_killed_at_several_points_leaves_no_output_and_reruns_to_identical_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = FixtureSpec::with_total_bytes(512 << 20, FixtureDtype::BF16, 4);
    let input = fixture(tmp.path(), "in", &spec);
    let before = hash_tree(&input);
    let mask = tmp.path().join("mask");
    save_mask(&mask, &PruneMask { heads: BTreeMap::from([(0, BTreeSet::from([0]))]), ..PruneMask::default() }).unwrap();
    let reference = tmp.path().join("reference/out");
    std::fs::create_dir(tmp.path().join("reference")).unwrap();
    let apply = |out: &Path| -> Vec<String> {
        ["apply", input.to_str().unwrap(), "--mask", mask.to_str().unwrap(), "--out", out.to_str().unwrap()]
            .map(String::from)
            .to_vec()
    };
    run(&strs(&apply(&reference)));
    let expected = hash_tree(&reference);
    std::fs::remove_dir_all(tmp.path().join("reference")).unwrap();

    let out = tmp.path().join("out");
    let args = apply(&out);
    let args = strs(&args);
    let total: u64 = written_bytes(&input);
    for (point, bytes) in
        [("the partial directory appears", 0), ("a quarter written", total / 4), ("most written", total * 5 / 8)]
    {
        kill_when(&args, point, || partial_dirs(tmp.path()).first().is_some_and(|dir| written_bytes(dir) >= bytes));
        assert!(!out.exists(), "a run killed when {point} leaves no OUT");
        assert_eq!(partial_dirs(tmp.path()).len(), 1, "only the clearly named partial directory remains");
        assert_eq!(hash_tree(&input), before, "input unchanged");

        let rerun = biasprune(&args);
        assert!(rerun.status.success(), "{}", stderr(&rerun));
        assert!(partial_dirs(tmp.path()).is_empty(), "the rerun removed the stale partial directory");
        assert_eq!(hash_tree(&input), before);
        assert_eq!(hash_tree(&out), expected, "killed when {point}, the rerun wrote the bytes of an uninterrupted run");
        std::fs::remove_dir_all(&out).unwrap();
    }
}

/// A checkpoint slow enough to kill mid-eval and mid-score (about 10 MB, four layers), and
/// an uninterrupted evaluation of it: shared by the eval and score tests.
struct Evaluated {
    _tmp: tempfile::TempDir,
    model: PathBuf,
    reference: PathBuf,
}

/// 40 prompts (20 names per group, one variation), 2 samples each: 5 chunks of 16.
const EVAL_ANSWERS: usize = 40 * 2;

fn eval_args<'a>(model: &'a Path, out: &'a Path) -> Vec<&'a str> {
    let (model, out) = (model.to_str().unwrap(), out.to_str().unwrap());
    vec![
        "eval",
        model,
        "--scenario",
        "purchase",
        "--variations",
        "bicycle",
        "--samples",
        "2",
        "--max-new-tokens",
        "16",
        "--seed",
        "3",
        "--max-rows",
        "16",
        "--quiet",
        "--out",
        out,
    ]
}

fn evaluated() -> &'static Evaluated {
    static EVALUATED: OnceLock<Evaluated> = OnceLock::new();
    EVALUATED.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let spec = FixtureSpec {
            num_layers: 4,
            hidden_size: 256,
            intermediate_size: 512,
            num_heads: 4,
            num_kv_heads: 2,
            vocab_size: 271,
            ..FixtureSpec::default()
        };
        let model = fixture(tmp.path(), "model", &spec);
        let reference = tmp.path().join("eval");
        run(&eval_args(&model, &reference));
        assert_eq!(lines(&reference.join("records.jsonl")), EVAL_ANSWERS);
        Evaluated { _tmp: tmp, model, reference }
    })
}

/// Where to kill a run: a name for messages and the condition that says the run got there.
type KillPoint<'a> = (&'static str, Box<dyn Fn() -> bool + 'a>);

#[test]
fn eval_killed_at_several_points_resumes_to_identical_bytes() {
    let shared = evaluated();
    let expected = hash_tree(&shared.reference);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("eval");
    let args = eval_args(&shared.model, &out);
    let records = out.join("records.jsonl");
    let points: [KillPoint<'_>; 3] = [
        ("run.json is written", Box::new(|| out.join("run.json").is_file())),
        ("the first chunk is written", Box::new(|| lines(&records) >= 16)),
        ("most chunks are written", Box::new(|| lines(&records) >= EVAL_ANSWERS * 5 / 8)),
    ];
    for (point, reached) in points {
        kill_when(&args, point, reached);
        assert!(lines(&records) < EVAL_ANSWERS, "killed when {point}, before the last chunk");
        assert!(!out.join("summary.json").exists(), "a killed run writes no summary");
        run(&args);
        assert_eq!(hash_tree(&out), expected, "killed when {point}, the rerun gave the bytes of an uninterrupted run");
        std::fs::remove_dir_all(&out).unwrap();
    }
}

fn score_args<'a>(model: &'a Path, records: &'a Path, out: &'a Path) -> Vec<&'a str> {
    let (model, records, out) = (model.to_str().unwrap(), records.to_str().unwrap(), out.to_str().unwrap());
    vec!["score", model, "--records", records, "--group", "minority", "--quiet", "--out", out]
}

/// The partial scores file a running `score` streams into, and its size.
fn partial_scores(dir: &Path) -> Option<u64> {
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        name.starts_with(".scores.safetensors.biasprune-partial-").then(|| e.metadata().map(|m| m.len()).unwrap_or(0))
    })
}

#[test]
fn score_killed_at_several_points_reruns_to_identical_bytes_and_no_leftovers() {
    let shared = evaluated();
    let records = shared.reference.join("records.jsonl");
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    run(&score_args(&shared.model, &records, &reference));
    let expected = hash_tree(&reference);
    let total = std::fs::metadata(reference.join("scores.safetensors")).unwrap().len();

    let out = tmp.path().join("scores");
    let args = score_args(&shared.model, &records, &out);
    for (point, bytes) in
        [("the partial file appears", 0), ("a layer is written", total / 4), ("most layers are written", total * 5 / 8)]
    {
        kill_when(&args, point, || partial_scores(&out).is_some_and(|len| len >= bytes));
        assert!(!out.join("scores.safetensors").exists(), "killed when {point}: no scores file yet");
        assert!(!out.join("scores.json").exists(), "killed when {point}: no sidecar yet");
        run(&args);
        assert_eq!(hash_tree(&out), expected, "killed when {point}, the rerun gave the bytes of an uninterrupted run");
        std::fs::remove_dir_all(&out).unwrap();
    }
}
