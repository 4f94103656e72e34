//! config.json of a Llama-family checkpoint: the raw serde mirror and the resolved,
//! validated configuration the forward pass uses.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ModelError;

/// Mirror of the keys of a Hugging Face Llama/Mistral config.json that the runtime reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: usize,
    /// Number of token embeddings.
    pub vocab_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention); defaults to the query heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_key_value_heads: Option<usize>,
    /// Width of one head; defaults to hidden_size / num_attention_heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// Epsilon of the RMS norms.
    pub rms_norm_eps: f64,
    /// Base of the rotary embedding frequencies.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// Optional rope scaling (`llama3` or `linear`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeScaling>,
    /// Longest sequence the model was trained for.
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    /// Whether lm_head shares the token embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Activation of the MLP; only `silu` is supported.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Whether q/k/v/o carry biases; only `false` is supported.
    #[serde(default)]
    pub attention_bias: bool,
    /// Whether the MLP projections carry biases; only `false` is supported.
    #[serde(default)]
    pub mlp_bias: bool,
    /// Beginning-of-sequence token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token id(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<EosTokens>,
}

/// `eos_token_id` is a single id in Llama 2 and a list in Llama 3.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum EosTokens {
    /// One id.
    One(u32),
    /// Several ids.
    Many(Vec<u32>),
}

/// `rope_scaling` of config.json (Llama 3.1/3.2 use `rope_type: "llama3"`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RopeScaling {
    /// `llama3`, `linear` or `default` (older configs spell the key `type`).
    #[serde(alias = "type")]
    pub rope_type: String,
    /// Scaling factor.
    pub factor: f64,
    /// llama3: low-frequency factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_freq_factor: Option<f64>,
    /// llama3: high-frequency factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_freq_factor: Option<f64>,
    /// llama3: context length before scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_max_position_embeddings: Option<usize>,
}

fn default_rope_theta() -> f64 {
    10_000.0
}

fn default_max_positions() -> usize {
    4096
}

fn default_act() -> String {
    "silu".to_string()
}

impl LlamaConfig {
    /// Reads and parses `path` (a config.json).
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let text = crate::fsutil::read_capped_text(path, crate::fsutil::MAX_JSON_BYTES, crate::fsutil::Links::Follow)
            .map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?;
        serde_json::from_str(&text).map_err(|source| ModelError::ConfigJson { path: path.to_path_buf(), source })
    }

    /// Checks the values against what the runtime supports and derives the head layout.
    pub fn resolve(&self) -> Result<ModelConfig, ModelError> {
        let unsupported = |key: &str, found: String, expected: &str| ModelError::Unsupported {
            key: key.to_string(),
            found,
            expected: expected.to_string(),
        };
        if self.hidden_act != "silu" {
            return Err(unsupported("hidden_act", self.hidden_act.clone(), "silu"));
        }
        if self.attention_bias || self.mlp_bias {
            return Err(unsupported("attention_bias/mlp_bias", "true".into(), "false"));
        }
        let heads = self.num_attention_heads;
        let kv_heads = self.num_key_value_heads.unwrap_or(heads);
        if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 {
            return Err(unsupported(
                "num_key_value_heads",
                kv_heads.to_string(),
                &format!("a positive divisor of num_attention_heads = {heads}"),
            ));
        }
        let head_dim = match self.head_dim {
            Some(d) => d,
            None if self.hidden_size % heads == 0 => self.hidden_size / heads,
            None => {
                return Err(unsupported(
                    "hidden_size",
                    self.hidden_size.to_string(),
                    &format!("a multiple of num_attention_heads = {heads} (or a head_dim key)"),
                ))
            }
        };
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(unsupported("head_dim", head_dim.to_string(), "an even number"));
        }
        if let Some(scaling) = &self.rope_scaling {
            check_rope_scaling(scaling)?;
        }
        Ok(ModelConfig {
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            vocab_size: self.vocab_size,
            num_layers: self.num_hidden_layers,
            num_heads: heads,
            num_kv_heads: kv_heads,
            head_dim,
            rms_norm_eps: self.rms_norm_eps,
            rope_theta: self.rope_theta,
            rope_scaling: self.rope_scaling.clone(),
            max_position_embeddings: self.max_position_embeddings,
            tie_word_embeddings: self.tie_word_embeddings,
            eos_token_ids: match &self.eos_token_id {
                None => Vec::new(),
                Some(EosTokens::One(id)) => vec![*id],
                Some(EosTokens::Many(ids)) => ids.clone(),
            },
        })
    }
}

fn check_rope_scaling(scaling: &RopeScaling) -> Result<(), ModelError> {
    let complete = scaling.low_freq_factor.is_some()
        && scaling.high_freq_factor.is_some()
        && scaling.original_max_position_embeddings.is_some();
    match scaling.rope_type.as_str() {
        "default" | "linear" => Ok(()),
        "llama3" if complete => Ok(()),
        other => Err(ModelError::Unsupported {
            key: "rope_scaling.rope_type".into(),
            found: other.to_string(),
            expected: "default, linear, or llama3 with low_freq_factor, high_freq_factor and \
                       original_max_position_embeddings"
                .into(),
        }),
    }
}

/// The validated configuration every part of the forward pass reads.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: usize,
    /// Number of token embeddings.
    pub vocab_size: usize,
    /// Number of decoder layers.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Epsilon of the RMS norms.
    pub rms_norm_eps: f64,
    /// Rotary base.
    pub rope_theta: f64,
    /// Rotary scaling, if any.
    pub rope_scaling: Option<RopeScaling>,
    /// Trained context length.
    pub max_position_embeddings: usize,
    /// Whether lm_head is the embedding matrix.
    pub tie_word_embeddings: bool,
    /// End-of-sequence ids from config.json (possibly empty).
    pub eos_token_ids: Vec<u32>,
}

impl ModelConfig {
    /// Reads config.json from a checkpoint directory and resolves it.
    pub fn from_dir(dir: &Path) -> Result<Self, ModelError> {
        LlamaConfig::from_file(&dir.join("config.json"))?.resolve()
    }

    /// Resolves an already parsed config.json (e.g. `Checkpoint::config`); `dir` names it
    /// in errors.
    pub fn from_json(value: &serde_json::Value, dir: &Path) -> Result<Self, ModelError> {
        let raw: LlamaConfig = serde_json::from_value(value.clone())
            .map_err(|source| ModelError::ConfigJson { path: dir.join("config.json"), source })?;
        raw.resolve()
    }

    /// Query heads per key/value head.
    pub fn group_size(&self) -> usize {
        self.num_heads / self.num_kv_heads
    }
}
