//! `biasprune parity`: load one checkpoint on the CPU in f32 (the reference) and on
//! `--device` in `--compute-dtype`, and compare last-position logits and Wanda statistics.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use candle_core::DType;
use serde::Serialize;

use super::inputs;
use super::{device::DeviceArg, print_json, Outcome};
use crate::devcheck::{compare_logits, compare_wanda_stats, synthetic_prompts, LogitsParity, StatsParity};
use crate::device::device_name;
use crate::model::{Llama, LoadOptions};

/// Compare a checkpoint's logits and Wanda statistics on `--device` against the CPU in f32;
/// prints JSON and exits 1 when a difference exceeds its tolerance.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint directory, or a
    /// Hugging Face Hub id `org/name[@revision]` (found in the Hugging Face cache, downloaded
    /// when missing unless HF_HUB_OFFLINE=1).
    checkpoint: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
    /// Prompts in the batch (deterministic synthetic ids).
    #[arg(long, default_value_t = 4)]
    rows: usize,
    /// Tokens per prompt.
    #[arg(long, default_value_t = 64)]
    len: usize,
    /// Largest allowed logits difference relative to the largest reference logit
    /// [default: 1e-3 for f32, 2e-2 for f16, 5e-2 for bf16].
    #[arg(long)]
    max_rel_logits: Option<f64>,
    /// Largest allowed Wanda-statistic difference relative to each vector's largest
    /// reference value [default: as --max-rel-logits].
    #[arg(long)]
    max_rel_stats: Option<f64>,
}

#[derive(Serialize)]
struct Report {
    checkpoint: String,
    reference: &'static str,
    device: String,
    dtype: String,
    rows: usize,
    len: usize,
    max_rel_logits: f64,
    max_rel_stats: f64,
    logits: LogitsParity,
    wanda: StatsParity,
    passed: bool,
    seconds: f64,
}

/// Default tolerance of a candidate dtype against f32 (see README "GPU (CUDA)").
fn default_tolerance(dtype: DType) -> f64 {
    match dtype {
        DType::BF16 => 5e-2,
        DType::F16 => 2e-2,
        _ => 1e-3,
    }
}

/// Runs `parity`.
pub fn run(mut args: Args) -> anyhow::Result<Outcome> {
    args.checkpoint = inputs::checkpoint(&args.checkpoint, false)?.dir;
    let start = Instant::now();
    let load = |opts: LoadOptions| {
        Llama::load_dir(&args.checkpoint, opts)
            .with_context(|| format!("cannot load model from {}", args.checkpoint.display()))
    };
    let candidate_opts = args.device.load_options(false)?;
    let device = device_name(&candidate_opts.device);
    let dtype = candidate_opts.dtype;
    let reference = load(LoadOptions::cpu_f32())?;
    let candidate = load(candidate_opts)?;
    let prompts = synthetic_prompts(args.rows, args.len, reference.config().vocab_size);
    let logits = compare_logits(&reference, &candidate, &prompts)?;
    let wanda = compare_wanda_stats(&reference, &candidate, &prompts)?;
    let max_rel_logits = args.max_rel_logits.unwrap_or_else(|| default_tolerance(dtype));
    let max_rel_stats = args.max_rel_stats.unwrap_or(max_rel_logits);
    let passed =
        logits.logits.max_rel <= max_rel_logits && wanda.worst.max_rel <= max_rel_stats && wanda.token_counts_agree;
    print_json(&Report {
        checkpoint: args.checkpoint.display().to_string(),
        reference: "cpu f32",
        device,
        dtype: format!("{dtype:?}").to_lowercase(),
        rows: args.rows,
        len: args.len,
        max_rel_logits,
        max_rel_stats,
        logits,
        wanda,
        passed,
        seconds: start.elapsed().as_secs_f64(),
    })?;
    Ok(if passed { Outcome::Ok } else { Outcome::CheckFailed })
}
