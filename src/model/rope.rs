//! Rotary position embeddings: frequencies (with llama3 or linear scaling), cos/sin tables
//! for arbitrary per-row positions, and the rotation itself (fused or from primitives).

use std::f32::consts::PI;

use candle_core::{DType, Device, Tensor, D};

use super::{ModelConfig, ModelError};

/// Rotary frequencies of one model, ready to produce cos/sin for any positions.
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f32>,
}

impl Rope {
    /// Computes the inverse frequencies from `rope_theta`, `head_dim` and `rope_scaling`.
    pub fn new(cfg: &ModelConfig) -> Self {
        let dim = cfg.head_dim;
        let theta = cfg.rope_theta as f32;
        let base: Vec<f32> = (0..dim).step_by(2).map(|i| 1f32 / theta.powf(i as f32 / dim as f32)).collect();
        let inv_freq = match &cfg.rope_scaling {
            Some(s) if s.rope_type == "llama3" => {
                let factor = s.factor.unwrap_or(1.0) as f32;
                let low = s.low_freq_factor.unwrap_or(1.0) as f32;
                let high = s.high_freq_factor.unwrap_or(4.0) as f32;
                let original = s.original_max_position_embeddings.unwrap_or(8192) as f32;
                base.into_iter().map(|f| llama3_scaled(f, factor, low, high, original)).collect()
            }
            Some(s) if s.rope_type == "linear" => {
                base.into_iter().map(|f| f / s.factor.unwrap_or(1.0) as f32).collect()
            }
            _ => base,
        };
        Self { inv_freq }
    }

    /// cos and sin of shape (rows, len, head_dim / 2) for `positions` (rows x len, row-major).
    pub fn cos_sin(
        &self,
        positions: &[u32],
        rows: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<(Tensor, Tensor), ModelError> {
        if rows == 0 || positions.len() % rows != 0 {
            return Err(ModelError::InvalidArgument(format!(
                "{} positions do not split into {rows} rows",
                positions.len()
            )));
        }
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(positions.len() * half);
        let mut sin = Vec::with_capacity(positions.len() * half);
        for &p in positions {
            for &f in &self.inv_freq {
                let angle = p as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        let shape = (rows, positions.len() / rows, half);
        let cos = Tensor::from_vec(cos, shape, device)?.to_dtype(dtype)?;
        let sin = Tensor::from_vec(sin, shape, device)?.to_dtype(dtype)?;
        Ok((cos, sin))
    }
}

fn llama3_scaled(freq: f32, factor: f32, low: f32, high: f32, original: f32) -> f32 {
    let low_freq_wavelen = original / low;
    let high_freq_wavelen = original / high;
    let wavelen = 2.0 * PI / freq;
    if wavelen < high_freq_wavelen {
        freq
    } else if wavelen > low_freq_wavelen {
        freq / factor
    } else {
        let smooth = (original / wavelen - low) / (high - low);
        (1.0 - smooth) * freq / factor + smooth * freq
    }
}

/// Rotates `x` (batch, heads, len, head_dim) by cos/sin (batch, len, head_dim / 2), in the
/// Hugging Face half-split layout. `differentiable` picks primitive ops with backward steps
/// over candle's fused kernel (which records none).
pub fn apply_rope(x: &Tensor, cos: &Tensor, sin: &Tensor, differentiable: bool) -> Result<Tensor, ModelError> {
    if !differentiable {
        return Ok(candle_nn::rotary_emb::rope(&x.contiguous()?, cos, sin)?);
    }
    let cos = Tensor::cat(&[cos, cos], D::Minus1)?.unsqueeze(1)?;
    let sin = Tensor::cat(&[sin, sin], D::Minus1)?.unsqueeze(1)?;
    let half = x.dim(D::Minus1)? / 2;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    Ok((x.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?)?)
}
