//! The primitives every block is built from: the bias-free linear layer and the RMS norm.

use candle_core::{DType, Tensor, Var, D};

use super::{LoadOptions, ModelConfig, ModelError, WeightSource};

/// A bias-free linear layer y = x W^T with W stored as in the checkpoint (out, in).
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
}

impl Linear {
    pub(crate) fn load(
        src: &dyn WeightSource,
        name: &str,
        shape: [usize; 2],
        opts: &LoadOptions,
    ) -> Result<Self, ModelError> {
        let weight = src.tensor(name, &shape, opts.dtype, &opts.device)?;
        let weight = if opts.trainable { Var::from_tensor(&weight)?.as_tensor().clone() } else { weight };
        Ok(Self { weight })
    }

    /// The layer of a weight (out, in) already on its device.
    pub(crate) fn from_weight(weight: Tensor) -> Self {
        Self { weight }
    }

    /// The weight (out, in).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// Applies the layer to x (..., in).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let dims = x.dims().to_vec();
        let (inner, lead) =
            dims.split_last().ok_or_else(|| ModelError::InvalidArgument("linear layer applied to a scalar".into()))?;
        let rows: usize = lead.iter().product();
        let y = x.reshape((rows, *inner))?.matmul(&self.weight.t()?)?;
        let mut out = lead.to_vec();
        out.push(self.weight.dim(0)?);
        Ok(y.reshape(out)?)
    }
}

/// Root-mean-square norm with a learned scale, computed in F32.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    pub(crate) fn load(
        src: &dyn WeightSource,
        name: &str,
        cfg: &ModelConfig,
        opts: &LoadOptions,
    ) -> Result<Self, ModelError> {
        Ok(Self { weight: src.tensor(name, &[cfg.hidden_size], opts.dtype, &opts.device)?, eps: cfg.rms_norm_eps })
    }

    /// Normalises the last dimension of `x`; `differentiable` uses primitive ops.
    pub fn forward(&self, x: &Tensor, differentiable: bool) -> Result<Tensor, ModelError> {
        if !differentiable {
            return Ok(candle_nn::ops::rms_norm(&x.contiguous()?, &self.weight, self.eps as f32)?);
        }
        let dtype = x.dtype();
        let x = x.to_dtype(DType::F32)?;
        let mean_square = x.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = x.broadcast_div(&(mean_square + self.eps)?.sqrt()?)?;
        Ok(normed.to_dtype(dtype)?.broadcast_mul(&self.weight)?)
    }
}
