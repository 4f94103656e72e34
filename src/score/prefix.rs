//! Prompt-prefix sharing for layer-by-layer scoring. The answers sampled for one prompt
//! share every token before the answer, and a causal model computes the same activations
//! for them, so each distinct prompt is run once (its tokens counted once per answer) and
//! the answers run after it as continuations that read the prompt's keys and values.
//! Results equal running every whole sequence, up to float rounding; compute drops by
//! about the number of answers per prompt.

use std::collections::BTreeMap;

use candle_core::Tensor;

use super::calibration::{CalibrationSequence, CalibrationSet};
use super::stats::{mark_names_and_answers, BatchMasks};
use crate::model::{AttentionContext, LoadOptions, ModelError, Rope};

/// One batch: distinct prompts (left-padded) and the answers that follow them
/// (right-padded; padding after the answer is never attended to by real tokens).
pub(crate) struct SharedBatch {
    /// Prompt ids (prompts, prompt_len).
    pub prefix_ids: Tensor,
    /// Left padding of each prompt row.
    pub prefix_pad: Vec<usize>,
    /// Attention context of the prompts.
    pub prefix_ctx: AttentionContext,
    /// Prompt tokens count once per answer sharing them; no head queries.
    pub prefix_masks: BatchMasks,
    /// For each answer row, its prompt row.
    pub rows: Vec<u32>,
    /// Answer ids (answers, answer_len).
    pub answer_ids: Tensor,
    /// Attention context of the answers after their prompt's slots.
    pub answer_ctx: AttentionContext,
    /// Answer tokens count once; head queries are the answer positions.
    pub answer_masks: BatchMasks,
    /// prompt_len + answer_len: KV slots one layer needs.
    pub capacity: usize,
}

/// Groups the calibration set by prompt and packs whole groups into batches of at most
/// `size` answers (a group larger than `size` gets a batch of its own).
pub(crate) fn shared_batches(
    calib: &CalibrationSet,
    size: usize,
    rope: &Rope,
    load: &LoadOptions,
) -> Result<Vec<SharedBatch>, ModelError> {
    let mut by_prompt: BTreeMap<&[u32], Vec<&CalibrationSequence>> = BTreeMap::new();
    for seq in &calib.sequences {
        by_prompt.entry(&seq.ids[..seq.response_start]).or_default().push(seq);
    }
    let mut groups: Vec<Vec<&CalibrationSequence>> = by_prompt.into_values().collect();
    groups.sort_by_key(|g| g[0].response_start);
    let mut batches = Vec::new();
    let mut current: Vec<Vec<&CalibrationSequence>> = Vec::new();
    for group in groups {
        let rows: usize = current.iter().map(Vec::len).sum();
        if !current.is_empty() && rows + group.len() > size {
            batches.push(shared_batch(&std::mem::take(&mut current), rope, load)?);
        }
        current.push(group);
    }
    if !current.is_empty() {
        batches.push(shared_batch(&current, rope, load)?);
    }
    Ok(batches)
}

fn shared_batch(
    groups: &[Vec<&CalibrationSequence>],
    rope: &Rope,
    load: &LoadOptions,
) -> Result<SharedBatch, ModelError> {
    let device = &load.device;
    let prompt_len = groups.iter().map(|g| g[0].response_start).max().unwrap_or(0);
    let answer_len = groups.iter().flatten().map(|s| s.ids.len() - s.response_start).max().unwrap_or(0);
    let slots = prompt_len + answer_len;
    let prompts = groups.len();
    let mut prefix_ids = vec![0u32; prompts * prompt_len];
    let mut prefix_counted = vec![0f32; prompts * prompt_len];
    let mut prefix_pad = Vec::with_capacity(prompts);
    let answers: usize = groups.iter().map(Vec::len).sum();
    let mut rows = Vec::with_capacity(answers);
    let mut answer_ids = vec![0u32; answers * answer_len];
    let mut answer_counted = vec![0f32; answers * answer_len];
    let mut names = vec![0f32; answers * slots];
    let mut queries = vec![0f32; answers * answer_len];
    let mut answer_pad = Vec::with_capacity(answers);
    for (p, group) in groups.iter().enumerate() {
        let first = group[0];
        let pad = prompt_len - first.response_start;
        prefix_pad.push(pad);
        let at = p * prompt_len + pad;
        prefix_ids[at..at + first.response_start].copy_from_slice(&first.ids[..first.response_start]);
        for (i, &counted) in first.counted[..first.response_start].iter().enumerate() {
            prefix_counted[at + i] = if counted { group.len() as f32 } else { 0.0 };
        }
        for seq in group {
            let r = rows.len();
            rows.push(p as u32);
            answer_pad.push(pad);
            let answer = &seq.ids[seq.response_start..];
            let at = r * answer_len;
            answer_ids[at..at + answer.len()].copy_from_slice(answer);
            for (i, &counted) in seq.counted[seq.response_start..].iter().enumerate() {
                answer_counted[at + i] = f32::from(u8::from(counted));
            }
            let name_row = &mut names[r * slots + pad..(r + 1) * slots];
            mark_names_and_answers(seq, name_row, &mut queries[at..at + answer.len()], seq.response_start);
        }
    }
    let (dtype, trainable) = (load.dtype, load.trainable);
    Ok(SharedBatch {
        prefix_ids: Tensor::from_vec(prefix_ids, (prompts, prompt_len), device)?,
        prefix_ctx: AttentionContext::new(rope, &prefix_pad, 0, prompt_len, dtype, device, trainable)?,
        prefix_masks: BatchMasks::from_vecs(prefix_counted, (prompts, prompt_len), None, device)?,
        prefix_pad,
        rows,
        answer_ids: Tensor::from_vec(answer_ids, (answers, answer_len), device)?,
        answer_ctx: AttentionContext::new(rope, &answer_pad, prompt_len, answer_len, dtype, device, trainable)?,
        answer_masks: BatchMasks::from_vecs(
            answer_counted,
            (answers, answer_len),
            Some((names, queries, slots)),
            device,
        )?,
        capacity: slots,
    })
}
