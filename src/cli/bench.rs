//! `biasprune bench`: throughput of prefill, sampled generation and Wanda statistics on
//! `--device`, printed as one JSON document (used by scripts/gpu-check.sh).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use super::inputs;
use super::{device::DeviceArg, print_json, Outcome};
use crate::devcheck::{bench, BenchFigures, BenchOptions};
use crate::device::device_name;
use crate::model::{Llama, ModelConfig};

/// Time prefill (tokens/s), sampled generation (answers/s) and Wanda statistics
/// (sequences/s) of a checkpoint on `--device`; prints JSON (medians of --repeats runs).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint directory, or a
    /// Hugging Face Hub id `org/name[@revision]` (found in the Hugging Face cache, downloaded
    /// when missing unless HF_HUB_OFFLINE=1).
    checkpoint: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
    /// Prefill batch rows.
    #[arg(long, default_value_t = 32)]
    prefill_rows: usize,
    /// Prefill tokens per row.
    #[arg(long, default_value_t = 128)]
    prefill_len: usize,
    /// Prompts for sampled generation.
    #[arg(long, default_value_t = 40)]
    prompts: usize,
    /// Tokens per generation prompt.
    #[arg(long, default_value_t = 80)]
    prompt_len: usize,
    /// Answers per prompt.
    #[arg(long, default_value_t = 10)]
    samples: usize,
    /// Tokens per answer.
    #[arg(long, default_value_t = 16)]
    new_tokens: usize,
    /// Most decoding rows per batch.
    #[arg(long, default_value_t = 400)]
    max_rows: usize,
    /// Sampling temperature.
    #[arg(long, default_value_t = 0.7)]
    temperature: f32,
    /// Nucleus mass (1 samples from the whole distribution without sorting).
    #[arg(long, default_value_t = 0.9)]
    top_p: f32,
    /// Sequences for Wanda statistics.
    #[arg(long, default_value_t = 400)]
    wanda_sequences: usize,
    /// Tokens per Wanda sequence.
    #[arg(long, default_value_t = 110)]
    wanda_len: usize,
    /// Sequences per Wanda forward pass.
    #[arg(long, default_value_t = 32)]
    wanda_batch: usize,
    /// Timed runs per workload after one warm-up.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
}

#[derive(Serialize)]
struct Report {
    checkpoint: String,
    device: String,
    dtype: String,
    model: Shape,
    load_s: f64,
    options: BenchOptions,
    figures: BenchFigures,
}

/// The model dimensions the figures belong to.
#[derive(Serialize)]
struct Shape {
    layers: usize,
    hidden: usize,
    intermediate: usize,
    heads: usize,
    kv_heads: usize,
    vocab: usize,
}

impl Shape {
    fn of(cfg: &ModelConfig) -> Self {
        Self {
            layers: cfg.num_layers,
            hidden: cfg.hidden_size,
            intermediate: cfg.intermediate_size,
            heads: cfg.num_heads,
            kv_heads: cfg.num_kv_heads,
            vocab: cfg.vocab_size,
        }
    }
}

/// Runs `bench`.
pub fn run(mut args: Args) -> anyhow::Result<Outcome> {
    args.checkpoint = inputs::checkpoint(&args.checkpoint, false)?.dir;
    let opts = args.device.load_options(false)?;
    let (device, dtype) = (device_name(&opts.device), format!("{:?}", opts.dtype).to_lowercase());
    let start = Instant::now();
    let model = Llama::load_dir(&args.checkpoint, opts)
        .with_context(|| format!("cannot load model from {}", args.checkpoint.display()))?;
    let load_s = start.elapsed().as_secs_f64();
    let options = BenchOptions {
        prefill_rows: args.prefill_rows,
        prefill_len: args.prefill_len,
        prompts: args.prompts,
        prompt_len: args.prompt_len,
        samples: args.samples,
        new_tokens: args.new_tokens,
        max_rows: args.max_rows,
        temperature: args.temperature,
        top_p: args.top_p,
        wanda_sequences: args.wanda_sequences,
        wanda_len: args.wanda_len,
        wanda_batch: args.wanda_batch,
        repeats: args.repeats,
    };
    let figures = bench(&model, &options)?;
    print_json(&Report {
        checkpoint: args.checkpoint.display().to_string(),
        device,
        dtype,
        model: Shape::of(model.config()),
        load_s,
        options,
        figures,
    })?;
    Ok(Outcome::Ok)
}
