//! `biasprune generate`: sample answers to one prompt from a checkpoint, for trying a
//! checkpoint by hand.
//!
//! Until the chat-template module lands, prompts are tokenized as given (`--raw`), so the
//! caller writes the template's markup (e.g. `<|im_start|>user\n...<|im_end|>\n`) itself.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;
use tokenizers::Tokenizer;

use super::{bars::Bars, device::DeviceArg, print_json, Outcome};
use crate::model::{generate, Completion, FinishReason, GenerateOptions, Llama, SamplingParams};

/// Tokens that end a turn in common chat templates, used as stop tokens when present.
const END_OF_TURN: [&str; 4] = ["<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "</s>"];

/// Arguments of `biasprune generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Checkpoint directory (config.json, safetensors, tokenizer.json).
    checkpoint: PathBuf,
    /// The prompt text.
    #[arg(long)]
    prompt: String,
    /// Tokenize the prompt as given, without a chat template (required for now).
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

/// Loads the checkpoint and tokenizer, samples the answers and prints them.
pub fn run(args: GenerateArgs, bars: &Bars) -> anyhow::Result<Outcome> {
    if !args.raw {
        bail!("chat templates are not available yet in this build; pass --raw to tokenize the prompt as given");
    }
    let tokenizer = load_tokenizer(&args.checkpoint)?;
    let ids = tokenizer
        .encode(args.prompt.as_str(), false)
        .map_err(|e| anyhow::anyhow!("cannot tokenize the prompt: {e}"))?
        .get_ids()
        .to_vec();
    if ids.is_empty() {
        bail!("the prompt is empty after tokenization");
    }
    let model = Llama::load_dir(&args.checkpoint, args.device.load_options(false)?)
        .with_context(|| format!("cannot load model from {}", args.checkpoint.display()))?;
    let opts = GenerateOptions {
        samples: args.samples,
        max_new_tokens: args.max_new_tokens,
        params: SamplingParams { temperature: args.temperature, top_p: args.top_p },
        seed: args.seed,
        stop_tokens: stop_tokens(&tokenizer, &model.config().eos_token_ids),
        pad_id: 0,
        max_rows: 64,
    };
    let mut answers = generate(&model, std::slice::from_ref(&ids), &opts, bars)?;
    let answers = answers.pop().unwrap_or_default();
    let answers = decode_all(&tokenizer, answers)?;
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

fn load_tokenizer(dir: &Path) -> anyhow::Result<Tokenizer> {
    let path = dir.join("tokenizer.json");
    Tokenizer::from_file(&path).map_err(|e| anyhow::anyhow!("cannot load tokenizer {}: {e}", path.display()))
}

/// config.json's eos ids plus the end-of-turn tokens the vocabulary has.
fn stop_tokens(tokenizer: &Tokenizer, eos: &[u32]) -> Vec<u32> {
    let mut ids: Vec<u32> = eos.to_vec();
    ids.extend(END_OF_TURN.iter().filter_map(|t| tokenizer.token_to_id(t)));
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn decode_all(tokenizer: &Tokenizer, answers: Vec<Completion>) -> anyhow::Result<Vec<Answer>> {
    answers
        .into_iter()
        .map(|c| {
            let text =
                tokenizer.decode(&c.tokens, true).map_err(|e| anyhow::anyhow!("cannot decode an answer: {e}"))?;
            Ok(Answer { text, tokens: c.tokens, finish: c.finish })
        })
        .collect()
}
