//! A mask applied in memory: weights are read from the checkpoint and the plan's entries
//! zeroed as they load, so a pruned model can be evaluated without writing a checkpoint.

use candle_core::{DType, Device, Tensor};

use super::ZeroPlan;
use crate::checkpoint::Checkpoint;
use crate::model::{ModelError, WeightSource};

/// A checkpoint seen through a resolved mask.
pub struct MaskedWeights<'a> {
    ckpt: &'a Checkpoint,
    plan: &'a ZeroPlan,
}

impl<'a> MaskedWeights<'a> {
    /// Wraps `ckpt` so that the entries `plan` selects read as zero.
    pub fn new(ckpt: &'a Checkpoint, plan: &'a ZeroPlan) -> Self {
        MaskedWeights { ckpt, plan }
    }
}

impl WeightSource for MaskedWeights<'_> {
    fn tensor(&self, name: &str, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor, ModelError> {
        let tensor = WeightSource::tensor(self.ckpt, name, shape, dtype, device)?;
        let Some(zeroing) = self.plan.tensors.get(name) else { return Ok(tensor) };
        let mut values = tensor.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let mut flags = vec![false; zeroing.cols];
        for (row, chunk) in values.chunks_exact_mut(zeroing.cols).enumerate() {
            if zeroing.row_flags(row, &mut flags) > 0 {
                for (value, _) in chunk.iter_mut().zip(&flags).filter(|(_, &f)| f) {
                    *value = 0.0;
                }
            }
        }
        Ok(Tensor::from_vec(values, tensor.shape(), device)?.to_dtype(dtype)?)
    }
}
