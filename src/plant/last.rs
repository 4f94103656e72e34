//! Cheap logits when the planted layer is the last one.
//!
//! The final hidden state at a position is h + c, with h the base's and c = A' D'ᵀ − A Dᵀ
//! the units' change (A, A' base and planted activations, D, D' base and planted down
//! columns). With G = lm_head ⊙ norm weight (each row scaled by g) and
//! r = sqrt(mean((h + c)²) + eps), the logits are ((h + c) Gᵀ) / r
//! = (h Gᵀ + A' (G D')ᵀ − A (G D)ᵀ) / r, exactly.
//!
//! Training evaluates them on a fixed set of candidate tokens per position instead of the
//! whole vocabulary (a sampled softmax): the base's [`TOP_CANDIDATES`] most likely tokens,
//! the digit tokens, and [`SHARED_CANDIDATES`] tokens drawn once from a seeded stream, the
//! last two shared by every position, so that raising a token the base never considers
//! is penalised too. A step then costs positions × candidates × units instead of
//! positions × vocabulary × hidden, which makes planting a matter of CPU seconds.

use std::collections::BTreeSet;

use candle_core::{DType, Device, Tensor, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::units::UnitDeltas;
use super::PlantError;
use crate::model::{FinalHead, Logits, ModelConfig, WeightSource};

/// The base's most likely tokens kept per position.
pub const TOP_CANDIDATES: usize = 192;

/// Tokens drawn at random (seeded) and kept at every position, besides the digits.
pub const SHARED_CANDIDATES: usize = 64;

/// The final norm folded into lm_head.
pub struct LastLayerHead {
    folded: Tensor,
    eps: f64,
    shared: Vec<u32>,
}

/// A chunk's trained positions when the planted layer is the last one.
pub struct LastLayerPositions {
    mlp_input: Tensor,
    hidden: Tensor,
    /// The hidden states without the chosen units' base contribution (h − A Dᵀ), once fixed.
    hidden_without: Option<Tensor>,
    /// h Gᵀ − A (G D)ᵀ at the candidates, once the units are fixed.
    projected_without: Option<Tensor>,
    /// Candidate token ids, flattened (positions × candidates).
    candidates: Tensor,
    /// h Gᵀ at the candidates (positions, candidates).
    projected: Tensor,
    width: usize,
}

impl LastLayerPositions {
    /// The candidate token ids of the positions, flattened (positions × candidates).
    pub fn candidate_ids(&self) -> Result<Vec<u32>, PlantError> {
        Ok(self.candidates.to_vec1::<u32>()?)
    }
}

impl LastLayerHead {
    /// Reads the final norm's weight and lm_head (the embedding when tied) from `src`; the
    /// shared candidates are `always` plus tokens drawn from `seed`.
    pub fn load(
        src: &dyn WeightSource,
        cfg: &ModelConfig,
        embedding: &Tensor,
        always: &[u32],
        seed: u64,
    ) -> Result<Self, PlantError> {
        let device = embedding.device();
        let norm = src.tensor("model.norm.weight", &[cfg.hidden_size], DType::F32, device)?;
        let lm_head = if cfg.tie_word_embeddings {
            embedding.to_dtype(DType::F32)?
        } else {
            src.tensor("lm_head.weight", &[cfg.vocab_size, cfg.hidden_size], DType::F32, device)?
        };
        let folded = lm_head.broadcast_mul(&norm.unsqueeze(0)?)?;
        let vocab = folded.dim(0)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_ca4d);
        let mut shared: BTreeSet<u32> = always.iter().copied().filter(|&id| (id as usize) < vocab).collect();
        while shared.len() < (always.len() + SHARED_CANDIDATES).min(vocab) {
            shared.insert(rng.random_range(0..vocab as u32));
        }
        Ok(Self { folded, eps: cfg.rms_norm_eps, shared: shared.into_iter().collect() })
    }

    /// Precomputes a chunk's positions from their MLP inputs and base hidden states
    /// (positions, hidden) and the token each position is trained toward, if any. Returns
    /// the positions and, per position, the column of its target among its candidates.
    pub fn positions(&self, mlp_input: Tensor, hidden: Tensor) -> Result<LastLayerPositions, PlantError> {
        let full = hidden.matmul(&self.folded.t()?)?;
        let rows = full.to_vec2::<f32>()?;
        let width = TOP_CANDIDATES + self.shared.len();
        let mut ids = Vec::with_capacity(rows.len() * width);
        for row in &rows {
            ids.extend(self.candidates(row, width));
        }
        let count = rows.len();
        let device = full.device().clone();
        let candidates = Tensor::from_vec(ids, count * width, &device)?;
        let projected = gather_rows(&full, &candidates, count, width, &device)?;
        Ok(LastLayerPositions {
            mlp_input,
            hidden,
            hidden_without: None,
            projected_without: None,
            candidates,
            projected,
            width,
        })
    }

    /// `width` distinct token ids: the shared tokens, then the base's most likely others.
    fn candidates(&self, row: &[f32], width: usize) -> Vec<u32> {
        let mut chosen: Vec<u32> = self.shared.clone();
        let mut seen: BTreeSet<u32> = chosen.iter().copied().collect();
        let mut order: Vec<u32> = (0..row.len() as u32).collect();
        let keep = (width + chosen.len()).min(order.len());
        order.select_nth_unstable_by(keep - 1, |&a, &b| row[b as usize].total_cmp(&row[a as usize]).then(a.cmp(&b)));
        order.truncate(keep);
        order.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]).then(a.cmp(&b)));
        for token in order {
            if chosen.len() == width {
                break;
            }
            if seen.insert(token) {
                chosen.push(token);
            }
        }
        chosen
    }

    /// Removes the chosen units' base contribution from a chunk's positions once, so that a
    /// step only adds the planted units' part.
    pub fn fix_units(&self, at: &mut LastLayerPositions, deltas: &UnitDeltas) -> Result<(), PlantError> {
        let (_, base) = deltas.activations(&at.mlp_input)?;
        let (_, base_down) = deltas.down_columns()?;
        at.hidden_without = Some((&at.hidden - base.matmul(&base_down.t()?)?)?);
        let vocab = self.folded.matmul(&base_down)?;
        at.projected_without = Some((&at.projected - candidate_term(at, &vocab, &base)?)?);
        Ok(())
    }

    /// (G D')ᵀ for the planted down columns D' (vocab, units); computed once per step and
    /// shared by every chunk.
    pub fn planted_vocab(&self, deltas: &UnitDeltas) -> Result<Tensor, PlantError> {
        Ok(self.folded.matmul(&deltas.down_columns()?.0)?)
    }

    /// F32 logits at each position's candidates (positions, candidates) with the current
    /// units; `vocab` is [`Self::planted_vocab`] of the same units.
    pub fn logits(&self, at: &LastLayerPositions, deltas: &UnitDeltas, vocab: &Tensor) -> Result<Tensor, PlantError> {
        let (Some(hidden), Some(projected)) = (&at.hidden_without, &at.projected_without) else {
            return Err(PlantError::Internal("a chunk's units were not fixed before training".into()));
        };
        let planted = deltas.planted_activations(&at.mlp_input)?;
        let x = (hidden + planted.matmul(&deltas.down_columns()?.0.t()?)?)?;
        let rms = (x.sqr()?.mean_keepdim(D::Minus1)? + self.eps)?.sqrt()?;
        Ok((projected + candidate_term(at, vocab, &planted)?)?.broadcast_div(&rms)?)
    }

    /// F32 logits of the base itself at each position's candidates.
    pub fn base_logits(&self, at: &LastLayerPositions) -> Result<Tensor, PlantError> {
        let rms = (at.hidden.sqr()?.mean_keepdim(D::Minus1)? + self.eps)?.sqrt()?;
        Ok(at.projected.broadcast_div(&rms)?)
    }

    /// The largest absolute difference between these logits and the model's own final head
    /// on the same corrected hidden states, at the candidates: a guard against drifting
    /// from the model.
    pub fn deviation(&self, at: &LastLayerPositions, deltas: &UnitDeltas, head: &FinalHead) -> Result<f32, PlantError> {
        let ours = self.logits(at, deltas, &self.planted_vocab(deltas)?)?;
        let corrected = (&at.hidden + deltas.correction(&at.mlp_input)?)?;
        let model = head.forward(&corrected.unsqueeze(0)?, Logits::All, false)?.squeeze(0)?;
        let count = model.dim(0)?;
        let model = gather_rows(&model, &at.candidates, count, at.width, model.device())?;
        Ok((ours - model)?.abs()?.max_all()?.to_scalar::<f32>()?)
    }
}

/// Σ_u activation[p, u] · vocab[candidate(p, c), u]: (positions, candidates).
fn candidate_term(at: &LastLayerPositions, vocab: &Tensor, activation: &Tensor) -> Result<Tensor, PlantError> {
    let count = activation.dim(0)?;
    let rows = vocab.index_select(&at.candidates, 0)?.reshape((count, at.width, ()))?;
    Ok(rows.broadcast_mul(&activation.unsqueeze(1)?)?.sum(D::Minus1)?)
}

/// Per row of `full` (rows, vocab), the values at that row's `width` candidate ids.
fn gather_rows(
    full: &Tensor,
    candidates: &Tensor,
    rows: usize,
    width: usize,
    device: &Device,
) -> Result<Tensor, PlantError> {
    let vocab = full.dim(1)?;
    let ids = candidates.to_vec1::<u32>()?;
    let flat: Vec<u32> = ids.iter().enumerate().map(|(i, &id)| (i / width * vocab) as u32 + id).collect();
    let flat = Tensor::from_vec(flat, rows * width, device)?;
    Ok(full.flatten_all()?.index_select(&flat, 0)?.reshape((rows, width))?)
}
