//! Prefill and generation throughput of the candle runtime on CPU, F32.
//!
//! `cargo bench --bench generate` uses $BIASPRUNE_BENCH_MODEL, else
//! target/models/SmolLM2-135M-Instruct, else a random checkpoint of SmolLM2-135M's shape
//! (written once to target/bench-models/). Prints medians over $BENCH_REPEATS runs (default 3);
//! $BENCH_PROMPTS (default 40) and $BENCH_MAX_ROWS (default 80) change the workload.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use biasprune::fixture::{write_checkpoint_with_config, FixtureDtype, FixtureSpec};
use biasprune::model::{generate, Batch, GenerateOptions, Llama, LoadOptions, Logits, SamplingParams};
use biasprune::progress::NoProgress;

fn model_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(dir) = std::env::var_os("BIASPRUNE_BENCH_MODEL") {
        return PathBuf::from(dir);
    }
    let reference = root.join("target/models/SmolLM2-135M-Instruct");
    if reference.join("config.json").exists() {
        return reference;
    }
    let random = root.join("target/bench-models/smollm2-135m-random");
    if !random.join("config.json").exists() {
        eprintln!("writing a random SmolLM2-135M-shaped checkpoint to {}", random.display());
        std::fs::create_dir_all(random.parent().expect("parent")).expect("bench-models directory");
        write_checkpoint_with_config(&random, &smollm2_135m_spec(), &smollm2_135m_overrides()).expect("write model");
    }
    random
}

/// The shape of SmolLM2-135M: 30 layers, hidden 576, 9 heads over 3 key/value heads,
/// head_dim 64, MLP 1536, vocabulary 49152, tied embeddings, BF16.
fn smollm2_135m_spec() -> FixtureSpec {
    FixtureSpec {
        seed: 1,
        dtype: FixtureDtype::BF16,
        num_layers: 30,
        hidden_size: 576,
        intermediate_size: 1536,
        num_heads: 9,
        num_kv_heads: 3,
        vocab_size: 49152,
        num_shards: 1,
        tie_word_embeddings: true,
    }
}

/// SmolLM2-135M's rope base and context length.
fn smollm2_135m_overrides() -> serde_json::Map<String, serde_json::Value> {
    let overrides = serde_json::json!({"rope_theta": 100_000.0, "max_position_embeddings": 8192});
    overrides.as_object().expect("object").clone()
}

fn prompt(index: usize, len: usize, vocab: usize) -> Vec<u32> {
    (0..len).map(|i| ((index * 7919 + i * 104_729) % (vocab - 10) + 5) as u32).collect()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn time_prefill(model: &Llama, rows: usize, len: usize, repeats: usize) -> Duration {
    let vocab = model.config().vocab_size;
    let prompts: Vec<Vec<u32>> = (0..rows).map(|r| prompt(r, len, vocab)).collect();
    let batch = Batch::left_padded(&prompts, 0, &model.options().device).expect("batch");
    let runs = (0..repeats)
        .map(|_| {
            let mut cache = model.new_cache(batch.left_pad().to_vec(), len + 16).expect("cache");
            let start = Instant::now();
            model.step(batch.ids(), &mut cache, Logits::Last).expect("prefill");
            start.elapsed()
        })
        .collect();
    median(runs)
}

fn main() {
    let repeats: usize = std::env::var("BENCH_REPEATS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let max_rows: usize = std::env::var("BENCH_MAX_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(80);
    let num_prompts: usize = std::env::var("BENCH_PROMPTS").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let dir = model_dir();
    let load = Instant::now();
    let model = Llama::load_dir(&dir, LoadOptions::cpu_f32()).expect("load model");
    println!(
        "model {} loaded in {:.2?}; threads {}",
        dir.display(),
        load.elapsed(),
        candle_core::utils::get_num_threads()
    );

    for rows in [1, 8] {
        let t = time_prefill(&model, rows, 80, repeats.max(3));
        println!(
            "prefill batch {rows} x 80 tokens: median {:.3?} = {:.0} tokens/s",
            t,
            (rows * 80) as f64 / t.as_secs_f64()
        );
    }

    let vocab = model.config().vocab_size;
    let prompts: Vec<Vec<u32>> = (0..num_prompts).map(|p| prompt(p, 60 + p % 21, vocab)).collect();
    let opts = GenerateOptions {
        samples: 10,
        max_new_tokens: 16,
        params: SamplingParams { temperature: 0.7, top_p: 0.9 },
        seed: 1,
        stop_tokens: vec![],
        pad_id: 0,
        max_rows,
    };
    let runs: Vec<Duration> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            let out = generate(&model, &prompts, &opts, &NoProgress).expect("generate");
            let elapsed = start.elapsed();
            let tokens: usize = out.iter().flatten().map(|c| c.tokens.len()).sum();
            assert_eq!(tokens, num_prompts * 10 * 16);
            println!("  run: {elapsed:.2?}");
            elapsed
        })
        .collect();
    let t = median(runs);
    println!(
        "generate {num_prompts} prompts (60-80 tokens) x 10 samples x 16 new tokens, max_rows {max_rows}: median {:.2?} = {:.0} generated tokens/s",
        t,
        (num_prompts * 160) as f64 / t.as_secs_f64()
    );
}
