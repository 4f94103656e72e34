//! Wanda scores of both groups plus the p = q = 0.15 weight mask on SmolLM2-135M (F32, CPU)
//! for purchase/bicycle with every audit name x 10 answers, stage by stage.
//!
//! `cargo bench --bench score` uses $BIASPRUNE_BENCH_MODEL, else
//! target/models/SmolLM2-135M-Instruct. Answers are synthetic ("$500", ...): scoring cost
//! depends on token counts, not on what the answers say. Prints the median over
//! $BENCH_REPEATS runs (default 3) of each stage; $BENCH_ANSWERS (default 10) answers per
//! name and $BENCH_BATCH (default 64) answers per batch change the workload.
//! Baseline: a PyTorch script with forward hooks took about 81 s for both groups' scores and
//! about 7 s for the masks on the development machine.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use biasprune::arch::Architecture;
use biasprune::checkpoint::Checkpoint;
use biasprune::mask::{build_mask, DifferenceParams, Granularity, HeadMode};
use biasprune::metrics::AnswerRecord;
use biasprune::model::LoadOptions;
use biasprune::progress::NoProgress;
use biasprune::scenario::parse::ParseStatus;
use biasprune::scenario::{Catalog, ContextLevel};
use biasprune::score::{
    calibration_for_checkpoint, score_calibration, CalibrationSet, CalibrationSpec, Group, Method, ScoreInfo,
    ScoreOptions, ScoreSet, TokenCount,
};

const ANSWERS: [&str; 5] = ["$500", "$350", "I would offer $400.", "1200", "$250 to $300"];

fn model_dir() -> PathBuf {
    match std::env::var_os("BIASPRUNE_BENCH_MODEL") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/models/SmolLM2-135M-Instruct"),
    }
}

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn records(answers: usize) -> Vec<AnswerRecord> {
    let catalog = Catalog::installed().expect("scenarios");
    let purchase = catalog.get("purchase").expect("purchase");
    let prompts = purchase.prompts(ContextLevel::Low, Some(&["bicycle".to_string()])).expect("prompts");
    let mut out = Vec::new();
    for prompt in prompts {
        for sample in 0..answers {
            out.push(AnswerRecord {
                scenario: "purchase".into(),
                variation: prompt.variation.clone(),
                context: prompt.context,
                name: prompt.name.clone(),
                group: prompt.group,
                gender: prompt.gender.clone(),
                sample: sample as u32,
                seed: 0,
                raw: ANSWERS[(out.len() + sample) % ANSWERS.len()].to_string(),
                value: None,
                status: ParseStatus::Ok,
                inlier: true,
            });
        }
    }
    out
}

fn set(calib: &CalibrationSet, raw: biasprune::score::RawScores) -> ScoreSet {
    ScoreSet {
        info: ScoreInfo::new("wanda", calib.group, &calib.scenario, calib.variations.clone()),
        weights: raw.weights,
        heads: raw.heads,
    }
}

fn main() {
    let repeats = env_usize("BENCH_REPEATS", 3);
    let dir = model_dir();
    let recs = records(env_usize("BENCH_ANSWERS", 10));
    let purchase = Catalog::installed().expect("scenarios").get("purchase").expect("purchase").clone();
    let ckpt = Checkpoint::open(&dir).expect("checkpoint");
    let arch = Architecture::of_checkpoint(&ckpt).expect("architecture");
    let options = ScoreOptions { batch: env_usize("BENCH_BATCH", 64), load: LoadOptions::cpu_f32() };
    let spec = |group| CalibrationSpec { group, variations: None, tokens: TokenCount::All };
    let t = Instant::now();
    let minority = calibration_for_checkpoint(&dir, &recs, &purchase, &spec(Group::Minority)).expect("calibration");
    let majority = calibration_for_checkpoint(&dir, &recs, &purchase, &spec(Group::Majority)).expect("calibration");
    let calibration_time = t.elapsed();
    let lengths: Vec<usize> = minority.sequences.iter().chain(&majority.sequences).map(|s| s.ids.len()).collect();
    println!(
        "model {}; threads {}; {} + {} sequences of {}..{} tokens ({} tokens); batch {}",
        dir.display(),
        candle_core::utils::get_num_threads(),
        minority.sequences.len(),
        majority.sequences.len(),
        lengths.iter().min().unwrap(),
        lengths.iter().max().unwrap(),
        lengths.iter().sum::<usize>(),
        options.batch
    );
    println!("calibration sets (render + tokenize, both groups): {calibration_time:.3?}");
    let mut score_times = Vec::new();
    let mut mask_times = Vec::new();
    let params = DifferenceParams {
        q: 0.15,
        p: 0.15,
        granularity: Granularity::Weight,
        direction: Default::default(),
        selection: Default::default(),
        head_mode: HeadMode::OProjColumns,
        head_score: Default::default(),
        head_ranking: Default::default(),
    };
    for run in 0..repeats {
        let t = Instant::now();
        let a = score_calibration(&ckpt, &minority, Method::Wanda, &options, &NoProgress).expect("minority scores");
        let b = score_calibration(&ckpt, &majority, Method::Wanda, &options, &NoProgress).expect("majority scores");
        let scores = t.elapsed();
        let (a, b) = (set(&minority, a), set(&majority, b));
        let t = Instant::now();
        let mask = build_mask(&a, &b, &arch, &params).expect("mask");
        let masks = t.elapsed();
        let selected: u64 = mask.weights.values().map(|m| m.count()).sum();
        println!("run {run}: wanda both groups {scores:.3?}, mask {masks:.3?} ({selected} weights selected)");
        score_times.push(scores);
        mask_times.push(masks);
    }
    let (s, m) = (median(score_times), median(mask_times));
    println!(
        "median over {repeats}: wanda both groups {s:.2?} (baseline 81 s: {:.2}x), mask p=q=0.15 {m:.2?} (baseline 7 s: {:.2}x)",
        81.0 / s.as_secs_f64(),
        7.0 / m.as_secs_f64()
    );
}
