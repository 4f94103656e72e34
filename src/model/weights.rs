//! Reading named weight tensors from a checkpoint onto a device, in the compute dtype.
//! `Checkpoint` (mmap, validated headers) is the source used everywhere.

use candle_core::{DType, Device, Tensor};

use super::ModelError;
use crate::checkpoint::Checkpoint;

/// How weights are loaded: compute dtype, device, and whether the seven projection
/// weights of every layer become trainable `Var`s (which also selects differentiable ops).
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Compute dtype (F32 on CPU; BF16/F16 where the device supports matmul in it).
    pub dtype: DType,
    /// Where tensors live.
    pub device: Device,
    /// Make projection weights `Var`s so gradients reach them.
    pub trainable: bool,
}

impl LoadOptions {
    /// F32 on the CPU, no gradients.
    pub fn cpu_f32() -> Self {
        Self { dtype: DType::F32, device: Device::Cpu, trainable: false }
    }

    /// Rejects dtype/device pairs candle cannot run a matmul in.
    pub fn check(&self) -> Result<(), ModelError> {
        let supported = match self.device {
            Device::Cpu => matches!(self.dtype, DType::F32 | DType::F16 | DType::F64),
            _ => matches!(self.dtype, DType::F32 | DType::F16 | DType::BF16),
        };
        if supported {
            Ok(())
        } else {
            Err(ModelError::Unsupported {
                key: "compute dtype".into(),
                found: format!("{:?} on {:?}", self.dtype, self.device),
                expected: "F32 or F16 on the CPU (candle's CPU matmul has no BF16 kernel), \
                           F32, F16 or BF16 on a GPU"
                    .into(),
            })
        }
    }
}

/// Anything that can hand out a checkpoint tensor by its name; the model loads through it
/// so that a layer's weights are read only when that layer is built.
pub trait WeightSource {
    /// Reads tensor `name`, checks it has `shape`, and returns it on `device` as `dtype`.
    fn tensor(&self, name: &str, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor, ModelError>;
}

impl WeightSource for Checkpoint {
    fn tensor(&self, name: &str, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor, ModelError> {
        let view = Checkpoint::tensor(self, name)?;
        let stored = match view.dtype {
            safetensors::Dtype::F32 => DType::F32,
            safetensors::Dtype::F16 => DType::F16,
            safetensors::Dtype::BF16 => DType::BF16,
            other => return Err(ModelError::TensorDtype { name: name.to_string(), found: format!("{other:?}") }),
        };
        tensor_from_bytes(name, view.data, stored, view.shape, shape, dtype, device)
    }
}

/// Builds a tensor from little-endian `bytes` stored as `stored` with `found` shape,
/// checking it against `expected` and converting it to `dtype` on `device`.
pub(crate) fn tensor_from_bytes(
    name: &str,
    bytes: &[u8],
    stored: DType,
    found: &[usize],
    expected: &[usize],
    dtype: DType,
    device: &Device,
) -> Result<Tensor, ModelError> {
    if found != expected {
        return Err(ModelError::TensorShape {
            name: name.to_string(),
            expected: expected.to_vec(),
            found: found.to_vec(),
        });
    }
    let tensor = Tensor::from_raw_buffer(bytes, stored, found, &Device::Cpu)?;
    Ok(tensor.to_dtype(dtype)?.to_device(device)?)
}
