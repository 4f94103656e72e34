//! The model module's error type: one variant per failure, naming the file, tensor or key.

use std::path::PathBuf;

/// Everything that can go wrong while loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A tensor operation failed inside candle.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// config.json does not describe a supported Llama-family model.
    #[error(transparent)]
    Arch(#[from] crate::arch::ArchError),
    /// The checkpoint directory could not be opened or read.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// config.json is not valid JSON or misses a required key.
    #[error("invalid model config {path}: {source}")]
    ConfigJson {
        /// The config file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A config value is outside what this runtime supports.
    #[error("unsupported config value {key} = {found}: expected {expected}")]
    Unsupported {
        /// The config key (or setting) at fault.
        key: String,
        /// The value found.
        found: String,
        /// What is supported.
        expected: String,
    },
    /// A safetensors file could not be written.
    #[error("cannot write safetensors file {path}: {message}")]
    Safetensors {
        /// The file at fault.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The checkpoint lacks a tensor the model needs.
    #[error("tensor {name} not found in {location}")]
    MissingTensor {
        /// The checkpoint tensor name.
        name: String,
        /// The directory or file searched.
        location: String,
    },
    /// A tensor has a shape other than the config implies.
    #[error("tensor {name} has shape {found:?}, expected {expected:?} from config.json")]
    TensorShape {
        /// The checkpoint tensor name.
        name: String,
        /// The shape the config implies.
        expected: Vec<usize>,
        /// The shape stored in the checkpoint.
        found: Vec<usize>,
    },
    /// A tensor is stored in a dtype the loader cannot convert.
    #[error("tensor {name} has dtype {found}, expected one of F32, F16, BF16")]
    TensorDtype {
        /// The checkpoint tensor name.
        name: String,
        /// The stored dtype.
        found: String,
    },
    /// A call was made with inconsistent arguments (shapes, lengths, options).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}
