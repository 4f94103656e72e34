//! Many short answers at once: prompts, grouped by length, are prefilled in left-padded
//! batches; each prompt's KV cache is copied once per sample, and all samples of the group
//! decode as one batch, dropping rows from the batch as they finish.

use candle_core::Tensor;

use super::{Batch, KvCache, Llama, Logits, ModelError, Sampler, SamplingParams};
use crate::progress::{Progress, Unit};

/// What to generate and how.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Answers per prompt.
    pub samples: usize,
    /// Longest answer in tokens.
    pub max_new_tokens: usize,
    /// Temperature and top-p.
    pub params: SamplingParams,
    /// Seed of every sample's random stream (with the prompt and sample index).
    pub seed: u64,
    /// Tokens that end an answer (not included in it).
    pub stop_tokens: Vec<u32>,
    /// Id used for left padding (never attended to).
    pub pad_id: u32,
    /// Upper bound on decoding rows (prompts x samples) per batch; at least one prompt
    /// is always batched.
    pub max_rows: usize,
}

/// Why an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A stop token was produced.
    Stop,
    /// `max_new_tokens` were produced.
    Length,
}

/// One generated answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Completion {
    /// Generated ids, without the stop token.
    pub tokens: Vec<u32>,
    /// Why generation ended.
    pub finish: FinishReason,
}

/// Generates `opts.samples` answers for every prompt (token ids, already templated);
/// result[p][s] is sample s of prompt p. Same seed and `max_rows` give the same tokens;
/// sample s of prompt p draws from its own stream keyed by (seed, p, s).
pub fn generate(
    model: &Llama,
    prompts: &[Vec<u32>],
    opts: &GenerateOptions,
    progress: &dyn Progress,
) -> Result<Vec<Vec<Completion>>, ModelError> {
    let keys: Vec<usize> = (0..prompts.len()).collect();
    generate_keyed(model, prompts, &keys, opts, progress)
}

/// Like `generate`, but sample s of `prompts[i]` draws from the stream keyed by
/// (seed, `keys[i]`, s): a caller that generates a long prompt list in several calls (to
/// resume, or to write results as they come) passes each prompt's global index.
pub fn generate_keyed(
    model: &Llama,
    prompts: &[Vec<u32>],
    keys: &[usize],
    opts: &GenerateOptions,
    progress: &dyn Progress,
) -> Result<Vec<Vec<Completion>>, ModelError> {
    if keys.len() != prompts.len() {
        return Err(ModelError::InvalidArgument(format!("{} keys for {} prompts", keys.len(), prompts.len())));
    }
    opts.params.check()?;
    if opts.samples == 0 || opts.max_new_tokens == 0 {
        return Err(ModelError::InvalidArgument("samples and max_new_tokens must be at least 1".into()));
    }
    let group = (opts.max_rows / opts.samples).max(1);
    progress.start("generating", prompts.len() as u64, Unit::Items);
    let mut results: Vec<Vec<Completion>> = vec![Vec::new(); prompts.len()];
    for indices in by_length(prompts).chunks(group) {
        let answers = generate_group(model, prompts, keys, indices, opts)?;
        for (&index, prompt_answers) in indices.iter().zip(answers) {
            results[index] = prompt_answers;
        }
        progress.advance(indices.len() as u64);
    }
    progress.finish();
    Ok(results)
}

/// Prompt indices ordered by length (then index), so that batched prompts need little
/// padding; answers do not depend on the grouping since every sample has its own stream.
fn by_length(prompts: &[Vec<u32>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..prompts.len()).collect();
    order.sort_by_key(|&i| (prompts[i].len(), i));
    order
}

/// The decoding state of one answer.
struct Row {
    prompt: usize,
    sampler: Sampler,
    tokens: Vec<u32>,
    finish: Option<FinishReason>,
}

/// Generates the answers of `prompts[indices]`, returned in the order of `indices`.
fn generate_group(
    model: &Llama,
    all_prompts: &[Vec<u32>],
    keys: &[usize],
    indices: &[usize],
    opts: &GenerateOptions,
) -> Result<Vec<Vec<Completion>>, ModelError> {
    let device = &model.options().device;
    let prompts: Vec<&[u32]> = indices.iter().map(|&i| all_prompts[i].as_slice()).collect();
    let batch = Batch::left_padded(&prompts, opts.pad_id, device)?;
    let prompt_len = batch.ids().dim(1)?;
    let mut prefill = model.new_cache(batch.left_pad().to_vec(), prompt_len + opts.max_new_tokens)?;
    let prompt_logits = rows_of(&model.step(batch.ids(), &mut prefill, Logits::Last)?)?;
    let copies: Vec<u32> = (0..prompts.len() as u32).flat_map(|p| std::iter::repeat_n(p, opts.samples)).collect();
    let mut cache = prefill.select_rows(&copies)?;
    drop(prefill);
    let mut rows: Vec<Row> = (0..prompts.len())
        .flat_map(|p| {
            (0..opts.samples).map(move |s| Row {
                prompt: p,
                sampler: Sampler::new(opts.seed, keys[indices[p]], s),
                tokens: Vec::with_capacity(opts.max_new_tokens),
                finish: None,
            })
        })
        .collect();
    for row in rows.iter_mut() {
        let token = row.sampler.sample(&prompt_logits[row.prompt], opts.params);
        push_token(row, token, opts);
    }
    let mut active: Vec<usize> = (0..rows.len()).collect();
    while !active.is_empty() {
        let still: Vec<usize> = active.iter().copied().filter(|&r| rows[r].finish.is_none()).collect();
        if still.is_empty() {
            break;
        }
        if still.len() < active.len() && should_compact(active.len(), still.len()) {
            cache = compact(&cache, &active, &still)?;
            active = still;
        }
        let last: Vec<u32> = active.iter().map(|&r| *rows[r].tokens.last().unwrap_or(&opts.pad_id)).collect();
        let ids = Tensor::from_vec(last, (active.len(), 1), device)?;
        let logits = rows_of(&model.step(&ids, &mut cache, Logits::Last)?)?;
        for (&r, row_logits) in active.iter().zip(&logits) {
            let row = &mut rows[r];
            if row.finish.is_none() {
                let token = row.sampler.sample(row_logits, opts.params);
                push_token(row, token, opts);
            }
        }
    }
    let mut out: Vec<Vec<Completion>> = (0..prompts.len()).map(|_| Vec::with_capacity(opts.samples)).collect();
    for row in rows {
        out[row.prompt].push(Completion { tokens: row.tokens, finish: row.finish.unwrap_or(FinishReason::Length) });
    }
    Ok(out)
}

fn push_token(row: &mut Row, token: u32, opts: &GenerateOptions) {
    if opts.stop_tokens.contains(&token) {
        row.finish = Some(FinishReason::Stop);
        return;
    }
    row.tokens.push(token);
    if row.tokens.len() >= opts.max_new_tokens {
        row.finish = Some(FinishReason::Length);
    }
}

/// Copying the cache costs about as much as one decoding step of a few rows, so rows are
/// dropped once an eighth of the batch (at least one row) has finished.
fn should_compact(active: usize, still: usize) -> bool {
    active - still >= (active / 8).max(1)
}

fn compact(cache: &KvCache, active: &[usize], still: &[usize]) -> Result<KvCache, ModelError> {
    let keep: Vec<u32> = active.iter().enumerate().filter(|(_, r)| still.contains(r)).map(|(i, _)| i as u32).collect();
    cache.select_rows(&keep)
}

fn rows_of(logits: &Tensor) -> Result<Vec<Vec<f32>>, ModelError> {
    Ok(logits.to_vec2::<f32>()?)
}
