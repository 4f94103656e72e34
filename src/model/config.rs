//! The configuration the forward pass reads: `arch`'s resolved `Architecture` (the one
//! mirror of config.json), checked for what the forward supports. The forward needs
//! nothing beyond it.

use std::path::Path;

use super::ModelError;
use crate::arch::{Architecture, LlamaConfig};

/// The validated configuration every part of the forward pass reads.
pub type ModelConfig = Architecture;

/// Resolves an already parsed config.json (e.g. `Checkpoint::config`) and checks that the
/// forward supports it; `dir` names it in errors.
pub fn config_from_json(value: &serde_json::Value, dir: &Path) -> Result<ModelConfig, ModelError> {
    let raw: LlamaConfig = serde_json::from_value(value.clone())
        .map_err(|source| ModelError::ConfigJson { path: dir.join("config.json"), source })?;
    let config = raw.resolve()?;
    config.check_forward_support()?;
    Ok(config)
}

/// Reads config.json from a checkpoint directory and resolves it as `config_from_json`.
pub fn config_from_dir(dir: &Path) -> Result<ModelConfig, ModelError> {
    let path = dir.join("config.json");
    let text = crate::fsutil::read_capped_text(&path, crate::fsutil::MAX_JSON_BYTES, crate::fsutil::Links::Follow)
        .map_err(|source| ModelError::Io { path: path.clone(), source })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| ModelError::ConfigJson { path, source })?;
    config_from_json(&value, dir)
}
