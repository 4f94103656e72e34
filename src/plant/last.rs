//! Exact full-vocabulary logits, cheaply, when the planted layer is the last one.
//!
//! The final hidden state at a position is h + c, with h the base's and c = A' D'ᵀ − A Dᵀ
//! the units' change (A, A' base and planted activations, D, D' base and planted down
//! columns). With G = lm_head ⊙ norm weight (each row scaled by g) and
//! r = sqrt(mean((h + c)²) + eps), the logits are ((h + c) Gᵀ) / r
//! = (h Gᵀ + A' (G D')ᵀ − A (G D)ᵀ) / r. h Gᵀ is computed once; each step costs
//! (vocab × hidden × units) instead of (positions × hidden × vocab).

use candle_core::{DType, Tensor, D};

use super::units::UnitDeltas;
use super::PlantError;
use crate::model::{FinalHead, Logits, ModelConfig, WeightSource};

/// The final norm folded into lm_head, and each trained position's base projection.
pub struct LastLayerHead {
    folded: Tensor,
    eps: f64,
}

/// A chunk's trained positions when the planted layer is the last one.
pub struct LastLayerPositions {
    mlp_input: Tensor,
    hidden: Tensor,
    projected: Tensor,
}

impl LastLayerHead {
    /// Reads the final norm's weight and lm_head (the embedding when tied) from `src`.
    pub fn load(src: &dyn WeightSource, cfg: &ModelConfig, embedding: &Tensor) -> Result<Self, PlantError> {
        let device = embedding.device();
        let norm = src.tensor("model.norm.weight", &[cfg.hidden_size], DType::F32, device)?;
        let lm_head = if cfg.tie_word_embeddings {
            embedding.to_dtype(DType::F32)?
        } else {
            src.tensor("lm_head.weight", &[cfg.vocab_size, cfg.hidden_size], DType::F32, device)?
        };
        Ok(Self { folded: lm_head.broadcast_mul(&norm.unsqueeze(0)?)?, eps: cfg.rms_norm_eps })
    }

    /// Precomputes a chunk's positions: MLP inputs and base hidden states (positions, hidden).
    pub fn positions(&self, mlp_input: Tensor, hidden: Tensor) -> Result<LastLayerPositions, PlantError> {
        let projected = hidden.matmul(&self.folded.t()?)?;
        Ok(LastLayerPositions { mlp_input, hidden, projected })
    }

    /// F32 logits (positions, vocab) with the current deltas.
    pub fn logits(&self, at: &LastLayerPositions, deltas: &UnitDeltas) -> Result<Tensor, PlantError> {
        let (planted, base) = deltas.activations(&at.mlp_input)?;
        let (planted_down, base_down) = deltas.down_columns()?;
        let change = (planted.matmul(&planted_down.t()?)? - base.matmul(&base_down.t()?)?)?;
        let x = (&at.hidden + change)?;
        let rms = (x.sqr()?.mean_keepdim(D::Minus1)? + self.eps)?.sqrt()?;
        let planted_vocab = self.folded.matmul(&planted_down)?;
        let base_vocab = self.folded.matmul(&base_down)?;
        let numerator = ((&at.projected + planted.matmul(&planted_vocab.t()?)?)? - base.matmul(&base_vocab.t()?)?)?;
        Ok(numerator.broadcast_div(&rms)?)
    }

    /// The largest absolute difference between these logits at zero deltas and the model's
    /// own final head on the same hidden states: a guard against drifting from the model.
    pub fn deviation(&self, at: &LastLayerPositions, deltas: &UnitDeltas, head: &FinalHead) -> Result<f32, PlantError> {
        let ours = self.logits(at, deltas)?;
        let model = head.forward(&at.hidden.unsqueeze(0)?, Logits::All, false)?.squeeze(0)?;
        Ok((ours - model)?.abs()?.max_all()?.to_scalar::<f32>()?)
    }
}
