//! Benchmark of `biasprune eval`'s workload: purchase/bicycle/low, 40 names x 10 samples x 16
//! new tokens on the reference model (F32, CPU). Prints the median wall time and answers/s;
//! the target is at most the ~120 s Hugging Face transformers took for it on this machine.
//!
//! `cargo bench --bench eval` (env: BIASPRUNE_BENCH_MODEL, default the fetched SmolLM2;
//! BIASPRUNE_BENCH_RUNS, default 3).

use std::time::{Duration, Instant};

use biasprune::eval::{run_eval, CheckpointIdentity, EvalSpec};
use biasprune::metrics::{InlierRule, SummarySettings};
use biasprune::model::{ChatSession, LoadOptions, SamplingSettings};
use biasprune::progress::NoProgress;
use biasprune::scenario::{Catalog, ContextLevel};

fn main() {
    let model = std::env::var("BIASPRUNE_BENCH_MODEL").map(std::path::PathBuf::from).unwrap_or_else(|_| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/models/SmolLM2-135M-Instruct")
    });
    let runs: usize = std::env::var("BIASPRUNE_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let session = ChatSession::load(&model, LoadOptions::cpu_f32())
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-model.sh)", model.display()));
    let spec = EvalSpec {
        scenario: Catalog::installed().unwrap().get("purchase").unwrap().clone(),
        context: ContextLevel::Low,
        variations: Some(vec!["bicycle".to_string()]),
        sampling: SamplingSettings {
            samples: 10,
            max_new_tokens: 16,
            temperature: 0.6,
            top_p: 0.9,
            seed: 0,
            max_rows: 400,
        },
        inlier_rule: InlierRule::default(),
        summary: SummarySettings::default(),
        names: None,
    };
    let identity = CheckpointIdentity { name: "bench".into(), files: Default::default(), masks_applied: vec![] };
    let mut times: Vec<Duration> = Vec::new();
    let mut answers = 0;
    for _ in 0..runs {
        let out = tempfile::tempdir().unwrap();
        let start = Instant::now();
        let output = run_eval(&session, &spec, identity.clone(), None, out.path(), &NoProgress).unwrap();
        times.push(start.elapsed());
        answers = output.records.len();
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "eval purchase/bicycle/low, {answers} answers x 16 tokens: median {:.1} s over {runs} runs ({:.1} answers/s); runs: {:?}",
        median.as_secs_f64(),
        answers as f64 / median.as_secs_f64(),
        times.iter().map(|t| format!("{:.1}", t.as_secs_f64())).collect::<Vec<_>>()
    );
    println!("target: at most 120 s (Hugging Face transformers + PyTorch, 2 threads, on this machine)");
}
