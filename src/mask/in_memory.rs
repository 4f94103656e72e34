//! A mask applied in memory: weights are read from the checkpoint and the plan's entries
//! zeroed as they load, so a pruned model can be evaluated without writing a checkpoint;
//! [`load_masked`] is the one way `eval`, `sweep` and `prune` load such a model.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::{load_mask, mask_json_path, resolve, MaskFileError, PlanError, ZeroPlan};
use crate::arch::{ArchError, Architecture};
use crate::checkpoint::Checkpoint;
use crate::model::{ChatSession, LoadOptions, ModelError, SessionError, WeightSource};

/// A model with a mask applied in memory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum MaskedLoadError {
    /// The mask files are unusable.
    #[error(transparent)]
    Mask(#[from] MaskFileError),
    /// The checkpoint's architecture is unsupported.
    #[error(transparent)]
    Arch(#[from] ArchError),
    /// The mask does not fit the checkpoint.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// mask.json could not be hashed.
    #[error("{}: {source}", path.display())]
    Io {
        /// mask.json.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The model could not be loaded.
    #[error(transparent)]
    Session(Box<SessionError>),
}

/// A model loaded with a mask applied in memory, and the record of that mask.
pub struct MaskedModel {
    /// The chat session on the masked weights.
    pub session: ChatSession,
    /// What an evaluation's `masks_applied` records for the mask: the sha256 (hex) of its
    /// mask.json (which records the bitmask file's sha256 in turn).
    pub mask_sha256: String,
    /// Entries the mask zeroes in this checkpoint.
    pub zeroed_entries: u64,
}

/// Loads `ckpt` with the mask at `mask_path` (a mask directory or its mask.json) applied in
/// memory: the mask is read and resolved against the checkpoint, and the entries it zeroes
/// read as zero as the weights load; no file is written.
pub fn load_masked(ckpt: &Checkpoint, mask_path: &Path, opts: LoadOptions) -> Result<MaskedModel, MaskedLoadError> {
    let mask = load_mask(mask_path)?;
    let arch = Architecture::of_checkpoint(ckpt)?;
    let plan = resolve(&mask, &arch, ckpt)?;
    let json = mask_json_path(mask_path);
    let mask_sha256 =
        crate::fsutil::file_sha256(&json).map_err(|source| MaskedLoadError::Io { path: json.clone(), source })?;
    let session = ChatSession::load_from(ckpt, &MaskedWeights::new(ckpt, &plan), opts)
        .map_err(|e| MaskedLoadError::Session(Box::new(e)))?;
    Ok(MaskedModel { session, mask_sha256, zeroed_entries: plan.zeroed_count() })
}

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
