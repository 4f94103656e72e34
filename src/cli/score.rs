//! `biasprune score`: per-weight importance scores (Wanda or SNIP) of one group's answers.

use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use super::inputs::{self, EVAL_OUTPUT};
use super::{bars::Bars, device::DeviceArg, print_json, Outcome};
use crate::progress::{NoProgress, Progress};
use crate::score::{score_to_dir, CalibrationSpec, Group, Method, ScoreOptions, ScoreRequest, TokenCount};

/// Score every linear weight of a checkpoint for one group's calibration set: the
/// chat-templated prompts of records.jsonl with the model's own answers as assistant turns.
/// Wanda: |W_ij| * sqrt(sum over counted tokens of x_j^2), computed one layer at a time.
/// SNIP: |W_ij| * sum over sequences of |dL/dW_ij| (L: mean cross-entropy of the answer
/// tokens only, so SNIP always counts the response).
/// Per-head scores: each head's attention to the name tokens from answer positions.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint directory (config.json, safetensors, tokenizer files), or a
    /// Hugging Face Hub id `org/name[@revision]` (found in the Hugging Face cache, downloaded
    /// when missing unless HF_HUB_OFFLINE=1).
    pub checkpoint: PathBuf,
    /// The answers: an `eval` output, the directory it wrote or its records.jsonl (or
    /// another of its files).
    #[arg(long)]
    pub records: PathBuf,
    /// Scenario id (default: the only scenario in the records).
    #[arg(long)]
    pub scenario: Option<String>,
    /// Directory of extra scenario manifests.
    #[arg(long)]
    pub scenarios_dir: Option<PathBuf>,
    /// Whose answers: minority or majority names.
    #[arg(long, value_enum)]
    pub group: Group,
    /// Scoring method.
    #[arg(long, value_enum, default_value_t = Method::Wanda)]
    pub method: Method,
    /// Variations used, comma-separated (default: all in the records).
    #[arg(long, value_delimiter = ',')]
    pub variations: Vec<String>,
    /// Tokens counted: all (Wanda's default; the authors' bias code) or response, the answer
    /// only (Wei et al.). SNIP's loss counts the answer tokens only, so SNIP records response
    /// and refuses `--tokens all` (exit 2).
    #[arg(long, value_enum)]
    pub tokens: Option<TokenCount>,
    /// Answers per forward batch (Wanda; answers to one prompt share its computation).
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Store scores as F16 instead of F32, each tensor scaled by a power of two (recorded in
    /// scores.json) so that its largest score lands just below F16's maximum.
    #[arg(long)]
    pub half: bool,
    /// Output score directory (scores.safetensors, scores.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Where the model runs.
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Serialize)]
struct Summary<'a> {
    out: &'a PathBuf,
    method: &'a str,
    group: Group,
    scenario: &'a str,
    variations: &'a [String],
    tokens_counted: &'a str,
    sequences: u64,
    tokens: u64,
    dtype: &'static str,
    seconds: f64,
}

/// Runs `score`.
pub fn run(mut args: Args, bars: &Bars) -> anyhow::Result<Outcome> {
    let started = std::time::Instant::now();
    args.checkpoint = inputs::checkpoint(&args.checkpoint, true)?.dir;
    args.records = EVAL_OUTPUT.file(&args.records)?;
    let method = args.method;
    let tokens = match args.tokens {
        None => method.tokens_counted(TokenCount::All),
        Some(TokenCount::All) if method == Method::Snip => anyhow::bail!(
            "--tokens all with --method snip: SNIP's loss is the cross-entropy of the answer tokens only, so \
             its scores cannot count all tokens; omit --tokens or pass --tokens response"
        ),
        Some(requested) => requested,
    };
    let request = ScoreRequest {
        checkpoint: args.checkpoint.clone(),
        records: args.records.clone(),
        scenario: args.scenario.clone(),
        scenario_dir: args.scenarios_dir.clone(),
        calibration: CalibrationSpec {
            group: args.group,
            variations: (!args.variations.is_empty()).then(|| args.variations.clone()),
            tokens,
        },
        method,
        options: ScoreOptions { batch: args.batch, load: args.device.load_options(false)? },
    };
    let progress: &dyn Progress = if args.json { &NoProgress } else { bars };
    let info = score_to_dir(&request, &args.out, args.half, progress)
        .with_context(|| format!("cannot score {} into {}", args.checkpoint.display(), args.out.display()))?;
    let info = &info;
    let summary = Summary {
        out: &args.out,
        method: &info.method,
        group: info.group,
        scenario: &info.scenario,
        variations: &info.variations,
        tokens_counted: &info.tokens_counted,
        sequences: info.sequences,
        tokens: info.tokens,
        dtype: if args.half { "F16" } else { "F32" },
        seconds: started.elapsed().as_secs_f64(),
    };
    if args.json {
        print_json(&summary)?;
    } else {
        println!(
            "wrote {}: {} {} scores from {} sequences ({} tokens counted, {}) in {:.1} s",
            args.out.display(),
            summary.method,
            summary.group,
            summary.sequences,
            summary.tokens,
            summary.tokens_counted,
            summary.seconds
        );
    }
    Ok(Outcome::Ok)
}
