//! `biasprune generate`: sample answers to one prompt from a checkpoint, for trying a
//! checkpoint by hand. The prompt goes through the checkpoint's chat template as a single
//! user turn, unless `--raw` asks for it to be tokenized as given.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use super::inputs;
use super::{bars::Bars, device::DeviceArg, print_json, Outcome};
use crate::model::{ChatSession, FinishReason, SamplingSettings};

/// Arguments of `biasprune generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Checkpoint directory (config.json, safetensors, tokenizer.json), or a
    /// Hugging Face Hub id `org/name[@revision]` (found in the Hugging Face cache, downloaded
    /// when missing unless HF_HUB_OFFLINE=1).
    checkpoint: PathBuf,
    /// The prompt text.
    #[arg(long)]
    prompt: String,
    /// Tokenize the prompt as given, without the chat template.
    #[arg(long)]
    raw: bool,
    /// Answers to sample.
    #[arg(long, default_value_t = 1)]
    samples: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.7)]
    temperature: f32,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 0.9)]
    top_p: f32,
    /// Seed of the samples' random streams.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Longest answer in tokens.
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// Print one JSON document instead of one answer per line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Serialize)]
struct Report<'a> {
    prompt: &'a str,
    prompt_tokens: usize,
    seed: u64,
    temperature: f32,
    top_p: f32,
    answers: Vec<Answer>,
}

#[derive(Serialize)]
struct Answer {
    text: String,
    tokens: Vec<u32>,
    finish: FinishReason,
}

/// Loads the checkpoint, templates and tokenizes the prompt, samples and prints answers.
pub fn run(mut args: GenerateArgs, bars: &Bars) -> anyhow::Result<Outcome> {
    args.checkpoint = inputs::checkpoint(&args.checkpoint, true)?.dir;
    let session = ChatSession::load(&args.checkpoint, args.device.load_options(false)?)
        .with_context(|| format!("cannot load {}", args.checkpoint.display()))?;
    let ids = if args.raw {
        session.tokenizer().encode(&args.prompt, false)?
    } else {
        session.encode_user_prompt(&args.prompt)?
    };
    if ids.is_empty() {
        bail!("the prompt is empty after tokenization");
    }
    let settings = SamplingSettings {
        samples: args.samples,
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        seed: args.seed,
        max_rows: 64,
    };
    let answers = session.sample(std::slice::from_ref(&ids), &[0], &settings, bars)?.pop().unwrap_or_default();
    let answers: Vec<Answer> = answers
        .into_iter()
        .map(|c| Ok(Answer { text: session.decode(&c.tokens)?, tokens: c.tokens, finish: c.finish }))
        .collect::<anyhow::Result<_>>()?;
    if args.json {
        let report = Report {
            prompt: &args.prompt,
            prompt_tokens: ids.len(),
            seed: args.seed,
            temperature: args.temperature,
            top_p: args.top_p,
            answers,
        };
        print_json(&report)?;
    } else {
        let mut out = std::io::stdout().lock();
        for answer in answers {
            writeln!(out, "{}", answer.text.replace('\n', "\\n"))?;
        }
    }
    Ok(Outcome::Ok)
}
