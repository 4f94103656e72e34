//! Llama-family architecture, the one owner of its vocabulary: `config` mirrors
//! config.json (the only mirror, with the Hugging Face defaults and every check),
//! `geometry` gives each weight's shape and the head layout, `component` names the linear
//! layers and their weights. `Architecture` is the resolved, validated description the
//! rest of biasprune (the forward pass included) works with.

mod component;
mod config;
mod geometry;

use serde::Serialize;

use crate::checkpoint::Checkpoint;

pub use component::{classify_tensor, linear_weight_name, Component, UnknownComponent};
pub use config::{LlamaConfig, RopeScaling, TokenIds};

/// The config.json `architectures` entries biasprune understands.
pub const SUPPORTED_ARCHITECTURES: [&str; 2] = ["LlamaForCausalLM", "MistralForCausalLM"];

/// A problem with config.json or with tensors that do not fit it.
#[derive(Debug, thiserror::Error)]
pub enum ArchError {
    /// config.json does not have the fields a Llama-family config needs.
    #[error("config.json: {0}")]
    BadConfig(String),
    /// The architecture is not one biasprune supports.
    #[error("config.json: architecture {found:?} is not supported (expected one of {expected:?})")]
    Unsupported {
        /// What config.json names.
        found: String,
        /// What is supported.
        expected: Vec<String>,
    },
    /// A tensor the architecture needs is missing.
    #[error("tensor {tensor} is required by the {architecture} layout but missing from the checkpoint")]
    MissingTensor {
        /// The tensor name.
        tensor: String,
        /// The architecture.
        architecture: String,
    },
    /// A tensor's shape does not fit config.json.
    #[error("tensor {tensor}: expected shape {expected:?} from config.json, found {found:?}")]
    WrongShape {
        /// The tensor name.
        tensor: String,
        /// Shape implied by config.json.
        expected: Vec<usize>,
        /// Shape stored.
        found: Vec<usize>,
    },
    /// A config value is outside what the forward pass supports.
    #[error("unsupported config value {key} = {found}: expected {expected}")]
    UnsupportedValue {
        /// The config key at fault.
        key: String,
        /// The value found.
        found: String,
        /// What is supported.
        expected: String,
    },
}

/// Resolved geometry of a Llama-family checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Architecture {
    /// The config.json class name (`LlamaForCausalLM`, `MistralForCausalLM`).
    pub name: String,
    /// Number of decoder layers.
    pub num_layers: usize,
    /// Residual stream width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Per-head width.
    pub head_dim: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Whether lm_head is the embedding matrix.
    pub tie_word_embeddings: bool,
    /// RMS norm epsilon.
    pub rms_norm_eps: f64,
    /// Rope base frequency.
    pub rope_theta: f64,
    /// Rope scaling.
    pub rope_scaling: Option<RopeScaling>,
    /// Longest supported context.
    pub max_position_embeddings: usize,
    /// Beginning-of-sequence token id.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token ids.
    pub eos_token_ids: Vec<u32>,
    /// Activation of the MLP (`check_forward_support` accepts only `silu`).
    #[serde(skip)]
    pub hidden_act: String,
    /// Whether q/k/v/o carry biases.
    #[serde(skip)]
    pub attention_bias: bool,
    /// Whether the MLP projections carry biases.
    #[serde(skip)]
    pub mlp_bias: bool,
}

impl Architecture {
    /// Resolves and validates a config.json value.
    pub fn from_config(value: &serde_json::Value) -> Result<Architecture, ArchError> {
        let config: LlamaConfig =
            serde_json::from_value(value.clone()).map_err(|e| ArchError::BadConfig(e.to_string()))?;
        config.resolve()
    }

    /// Reads config.json of an opened checkpoint and checks every layer tensor's shape.
    pub fn of_checkpoint(ckpt: &Checkpoint) -> Result<Architecture, ArchError> {
        let arch = Architecture::from_config(ckpt.config())?;
        arch.check_tensors(ckpt)?;
        Ok(arch)
    }

    /// Checks that the checkpoint holds every required tensor with the expected shape.
    pub fn check_tensors(&self, ckpt: &Checkpoint) -> Result<(), ArchError> {
        for (name, expected) in self.expected_tensors() {
            let tensor = ckpt
                .tensor(&name)
                .map_err(|_| ArchError::MissingTensor { tensor: name.clone(), architecture: self.name.clone() })?;
            if tensor.shape != expected.as_slice() {
                return Err(ArchError::WrongShape { tensor: name, expected, found: tensor.shape.to_vec() });
            }
        }
        Ok(())
    }
}
