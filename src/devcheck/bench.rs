//! Throughput of the three GPU-bound workloads on one loaded model: prefill of a full
//! batch, sampled generation (many short answers) and Wanda statistics over many sequences.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::parity::wanda_stats;
use super::synthetic_prompts;
use crate::model::{generate, Batch, GenerateOptions, Llama, Logits, ModelError, SamplingParams};
use crate::progress::NoProgress;

/// Sizes of the benchmark workloads.
#[derive(Debug, Clone, Serialize)]
pub struct BenchOptions {
    /// Prefill batch rows.
    pub prefill_rows: usize,
    /// Prefill tokens per row.
    pub prefill_len: usize,
    /// Prompts to sample answers for.
    pub prompts: usize,
    /// Prompt length in tokens.
    pub prompt_len: usize,
    /// Answers per prompt.
    pub samples: usize,
    /// Tokens per answer (no stop tokens, so every answer has exactly this many).
    pub new_tokens: usize,
    /// Upper bound on decoding rows per batch.
    pub max_rows: usize,
    /// Sampling temperature.
    pub temperature: f32,
    /// Nucleus mass. On random checkpoints the logits are nearly flat, so top_p < 1 sorts
    /// most of the vocabulary per row on the CPU, which real models' peaked logits avoid.
    pub top_p: f32,
    /// Sequences for the Wanda statistics.
    pub wanda_sequences: usize,
    /// Tokens per Wanda sequence.
    pub wanda_len: usize,
    /// Sequences per Wanda forward pass.
    pub wanda_batch: usize,
    /// Timed runs per workload (after one untimed warm-up); the median is reported.
    pub repeats: usize,
}

/// One workload's timing.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// Median wall time of the timed runs, seconds.
    pub median_s: f64,
    /// All timed runs, seconds.
    pub runs_s: Vec<f64>,
    /// Work units per run (tokens, answers or sequences, see `unit`).
    pub units: usize,
    /// What `units` counts.
    pub unit: &'static str,
    /// units / median_s.
    pub per_s: f64,
    /// Tokens processed per second (prompt plus generated tokens).
    pub tokens_per_s: f64,
}

/// All figures of one benchmark run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchFigures {
    /// Prefill: tokens per second at `prefill_rows` x `prefill_len`.
    pub prefill: Timing,
    /// Sampled generation: answers per second.
    pub generation: Timing,
    /// Wanda statistics: sequences per second.
    pub wanda: Timing,
}

/// Times prefill, generation and Wanda statistics on `model`.
pub fn bench(model: &Llama, opts: &BenchOptions) -> Result<BenchFigures, ModelError> {
    if opts.repeats == 0 || opts.wanda_batch == 0 {
        return Err(ModelError::InvalidArgument("repeats and wanda_batch must be at least 1".into()));
    }
    Ok(BenchFigures {
        prefill: time_prefill(model, opts)?,
        generation: time_generation(model, opts)?,
        wanda: time_wanda(model, opts)?,
    })
}

fn time_prefill(model: &Llama, opts: &BenchOptions) -> Result<Timing, ModelError> {
    let vocab = model.config().vocab_size;
    let prompts = synthetic_prompts(opts.prefill_rows, opts.prefill_len, vocab);
    let batch = Batch::left_padded(&prompts, 0, &model.options().device)?;
    let tokens = opts.prefill_rows * opts.prefill_len;
    timed(model, opts.repeats, tokens, "tokens", tokens, || {
        let mut cache = model.new_cache(batch.left_pad().to_vec(), opts.prefill_len)?;
        model.step(batch.ids(), &mut cache, Logits::Last).map(drop)
    })
}

fn time_generation(model: &Llama, opts: &BenchOptions) -> Result<Timing, ModelError> {
    let prompts = synthetic_prompts(opts.prompts, opts.prompt_len, model.config().vocab_size);
    let gen = GenerateOptions {
        samples: opts.samples,
        max_new_tokens: opts.new_tokens,
        params: SamplingParams { temperature: opts.temperature, top_p: opts.top_p },
        seed: 0,
        stop_tokens: Vec::new(),
        pad_id: 0,
        max_rows: opts.max_rows,
    };
    let answers = opts.prompts * opts.samples;
    let tokens = opts.prompts * opts.prompt_len + answers * opts.new_tokens;
    timed(model, opts.repeats, answers, "answers", tokens, || generate(model, &prompts, &gen, &NoProgress).map(drop))
}

fn time_wanda(model: &Llama, opts: &BenchOptions) -> Result<Timing, ModelError> {
    let prompts = synthetic_prompts(opts.wanda_sequences, opts.wanda_len, model.config().vocab_size);
    let tokens = opts.wanda_sequences * opts.wanda_len;
    timed(model, opts.repeats, opts.wanda_sequences, "sequences", tokens, || {
        for chunk in prompts.chunks(opts.wanda_batch) {
            wanda_stats(model, chunk)?;
        }
        Ok(())
    })
}

/// One warm-up run, then `repeats` timed runs, each ending with a device synchronisation.
fn timed(
    model: &Llama,
    repeats: usize,
    units: usize,
    unit: &'static str,
    tokens: usize,
    mut work: impl FnMut() -> Result<(), ModelError>,
) -> Result<Timing, ModelError> {
    let device = &model.options().device;
    work()?;
    device.synchronize()?;
    let mut runs = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let start = Instant::now();
        work()?;
        device.synchronize()?;
        runs.push(start.elapsed());
    }
    let median = median(&runs).as_secs_f64();
    Ok(Timing {
        median_s: median,
        runs_s: runs.iter().map(Duration::as_secs_f64).collect(),
        units,
        unit,
        per_s: units as f64 / median,
        tokens_per_s: tokens as f64 / median,
    })
}

fn median(runs: &[Duration]) -> Duration {
    let mut sorted = runs.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}
