//! What a scoring forward pass accumulates: Wanda's per-feature sums of squared inputs over
//! the counted tokens, and each head's attention to the name tokens from answer positions.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor};

use super::calibration::CalibrationSequence;
use crate::model::{AttentionProbs, InputSite, LinearInput, LinearInputHook, ModelError};

/// Per-batch masks, in the coordinates of the batch as run (padding included).
#[derive(Debug, Clone)]
pub struct BatchMasks {
    /// (rows, len) F32: how many times each token counts for Wanda (0 on padding; a shared
    /// prompt prefix counts once per answer that follows it).
    pub counted: Tensor,
    /// For head scores, when the batch has answer queries: (rows, 1, 1, slots) F32 with 1 on
    /// the name tokens' key slots, and (rows, 1, len) F32 with 1 / |answer tokens| on answer
    /// query positions.
    pub heads: Option<(Tensor, Tensor)>,
}

impl BatchMasks {
    /// Masks of whole `sequences` left-padded to their longest length.
    pub fn new(sequences: &[&CalibrationSequence], device: &Device) -> Result<Self, ModelError> {
        let len = sequences.iter().map(|s| s.ids.len()).max().unwrap_or(0);
        let rows = sequences.len();
        let mut counted = vec![0f32; rows * len];
        let mut names = vec![0f32; rows * len];
        let mut queries = vec![0f32; rows * len];
        for (r, seq) in sequences.iter().enumerate() {
            let row = r * len + len - seq.ids.len();
            for (i, &c) in seq.counted.iter().enumerate() {
                counted[row + i] = f32::from(u8::from(c));
            }
            mark_names_and_answers(seq, &mut names[row..], &mut queries[row..row + seq.ids.len()], 0);
        }
        Self::from_vecs(counted, (rows, len), Some((names, queries, len)), device)
    }

    /// Masks from row-major vectors: `counted` (rows, len); optional (name keys (rows, slots),
    /// answer queries (rows, len), slots).
    pub fn from_vecs(
        counted: Vec<f32>,
        (rows, len): (usize, usize),
        heads: Option<(Vec<f32>, Vec<f32>, usize)>,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let heads = match heads {
            Some((names, queries, slots)) => Some((
                Tensor::from_vec(names, (rows, 1, 1, slots), device)?,
                Tensor::from_vec(queries, (rows, 1, len), device)?,
            )),
            None => None,
        };
        Ok(Self { counted: Tensor::from_vec(counted, (rows, len), device)?, heads })
    }
}

/// Marks `seq`'s name slots (at `names[p]`) and its answer queries: `queries[i - skip]` for
/// answer positions i, each 1 / |answer tokens|.
pub(crate) fn mark_names_and_answers(seq: &CalibrationSequence, names: &mut [f32], queries: &mut [f32], skip: usize) {
    for &p in &seq.name_positions {
        names[p] = 1.0;
    }
    let answers = seq.ids.len() - seq.response_start;
    for i in seq.response_start..seq.ids.len() {
        queries[i - skip] = 1.0 / answers as f32;
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
        let Some((name_keys, answer_queries)) = &self.masks()?.heads else {
            return Ok(());
        };
        let probs = input.probs.detach();
        let mass = probs.broadcast_mul(name_keys)?.sum(3)?;
        let per_row = mass.broadcast_mul(answer_queries)?.sum(2)?;
        accumulate(&mut self.heads, input.layer, per_row.sum(0)?)
    }
}
