//! What a scoring forward pass accumulates: Wanda's per-feature sums of squared inputs over
//! the counted tokens, and each head's attention to the name tokens from answer positions.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor};

use super::calibration::CalibrationSequence;
use crate::model::{AttentionProbs, InputSite, LinearInput, LinearInputHook, ModelError};

/// Per-batch masks, in the batch's left-padded coordinates.
pub struct BatchMasks {
    /// (rows, len) F32: 1 where a token counts for Wanda (0 on padding).
    pub counted: Tensor,
    /// (rows, 1, 1, len) F32: 1 on the name tokens' key slots.
    pub name_keys: Tensor,
    /// (rows, 1, len) F32: 1 / |answer tokens| on answer query positions, else 0.
    pub answer_queries: Tensor,
}

impl BatchMasks {
    /// Masks of `sequences` left-padded to their longest length.
    pub fn new(sequences: &[&CalibrationSequence], device: &Device) -> Result<Self, ModelError> {
        let len = sequences.iter().map(|s| s.ids.len()).max().unwrap_or(0);
        let rows = sequences.len();
        let mut counted = vec![0f32; rows * len];
        let mut names = vec![0f32; rows * len];
        let mut queries = vec![0f32; rows * len];
        for (r, seq) in sequences.iter().enumerate() {
            let pad = len - seq.ids.len();
            let row = r * len + pad;
            for (i, &c) in seq.counted.iter().enumerate() {
                counted[row + i] = f32::from(u8::from(c));
            }
            for &p in &seq.name_positions {
                names[row + p] = 1.0;
            }
            let answers = seq.ids.len() - seq.response_start;
            for i in seq.response_start..seq.ids.len() {
                queries[row + i] = 1.0 / answers as f32;
            }
        }
        Ok(Self {
            counted: Tensor::from_vec(counted, (rows, len), device)?,
            name_keys: Tensor::from_vec(names, (rows, 1, 1, len), device)?,
            answer_queries: Tensor::from_vec(queries, (rows, 1, len), device)?,
        })
    }
}

/// A hook that accumulates, per layer, Wanda's sum of x_j^2 over counted tokens at each
/// input site and, per head, the sum over sequences of the mean attention mass that answer
/// positions put on the name tokens.
#[derive(Default)]
pub struct ScoringStats {
    masks: Option<BatchMasks>,
    sums: BTreeMap<(usize, InputSite), Tensor>,
    heads: BTreeMap<usize, Tensor>,
}

impl ScoringStats {
    /// An empty accumulator; `set_batch` must be called before each batch is run.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the masks of the batch about to be run.
    pub fn set_batch(&mut self, masks: BatchMasks) {
        self.masks = Some(masks);
    }

    /// Sum over counted tokens of x_j^2 at `site` of `layer` (in_features,), F32.
    pub fn squared_norms(&self, layer: usize, site: InputSite) -> Option<&Tensor> {
        self.sums.get(&(layer, site))
    }

    /// Sum over sequences of each head's mean attention to the name (heads,), F32.
    pub fn name_attention(&self, layer: usize) -> Option<&Tensor> {
        self.heads.get(&layer)
    }

    /// Drops what was accumulated for `layer` (after its scores are written).
    pub fn release_layer(&mut self, layer: usize) {
        self.sums.retain(|(l, _), _| *l != layer);
        self.heads.remove(&layer);
    }

    fn masks(&self) -> Result<&BatchMasks, ModelError> {
        self.masks.as_ref().ok_or_else(|| ModelError::InvalidArgument("scoring hook run without batch masks".into()))
    }
}

fn accumulate<K: Ord>(map: &mut BTreeMap<K, Tensor>, key: K, value: Tensor) -> Result<(), ModelError> {
    let total = match map.remove(&key) {
        Some(sum) => (sum + value)?,
        None => value,
    };
    map.insert(key, total);
    Ok(())
}

impl LinearInputHook for ScoringStats {
    fn observe(&mut self, input: &LinearInput<'_>) -> Result<(), ModelError> {
        let counted = self.masks()?.counted.unsqueeze(2)?;
        let x = input.x.detach().to_dtype(DType::F32)?;
        let sum = x.sqr()?.broadcast_mul(&counted)?.sum((0, 1))?;
        accumulate(&mut self.sums, (input.layer, input.site), sum)
    }

    fn observe_attention(&mut self, input: &AttentionProbs<'_>) -> Result<(), ModelError> {
        let masks = self.masks()?;
        let probs = input.probs.detach();
        let mass = probs.broadcast_mul(&masks.name_keys)?.sum(3)?;
        let per_row = mass.broadcast_mul(&masks.answer_queries)?.sum(2)?;
        accumulate(&mut self.heads, input.layer, per_row.sum(0)?)
    }
}
