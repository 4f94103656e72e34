//! Llama-family architecture: config.json as data, tensor names as (layer, component), heads.
//!
//! `LlamaConfig` mirrors config.json (optional fields with Hugging Face defaults);
//! `Architecture` is the resolved, validated geometry the rest of biasprune works with.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;

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
}

/// Rope scaling as config.json states it (`llama3`, `linear`, `dynamic`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RopeScaling {
    /// The scaling type (`rope_type`, or the older `type`).
    #[serde(alias = "type")]
    pub rope_type: String,
    /// Scaling factor.
    pub factor: Option<f64>,
    /// llama3: low-frequency factor.
    pub low_freq_factor: Option<f64>,
    /// llama3: high-frequency factor.
    pub high_freq_factor: Option<f64>,
    /// llama3: the pre-training context length.
    pub original_max_position_embeddings: Option<usize>,
}

/// config.json of a Llama-family model, as written by Hugging Face.
#[derive(Debug, Clone, Deserialize)]
pub struct LlamaConfig {
    /// Model classes, e.g. `["LlamaForCausalLM"]`.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Residual stream width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention); defaults to the query heads.
    pub num_key_value_heads: Option<usize>,
    /// Per-head width; defaults to hidden_size / num_attention_heads.
    pub head_dim: Option<usize>,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// RMS norm epsilon.
    #[serde(default = "default_rms_eps")]
    pub rms_norm_eps: f64,
    /// Rope base frequency.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// Rope scaling, if any.
    pub rope_scaling: Option<RopeScaling>,
    /// Longest supported context.
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    /// Whether lm_head shares the embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Beginning-of-sequence token id.
    pub bos_token_id: Option<TokenIds>,
    /// End-of-sequence token id(s).
    pub eos_token_id: Option<TokenIds>,
}

/// A token id field that config.json writes as a number or a list of numbers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TokenIds {
    /// One id.
    One(u32),
    /// Several ids.
    Many(Vec<u32>),
}

impl TokenIds {
    /// All ids as a list.
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(ids) => ids.clone(),
        }
    }
}

fn default_rms_eps() -> f64 {
    1e-6
}

fn default_rope_theta() -> f64 {
    10_000.0
}

fn default_max_positions() -> usize {
    2048
}

/// The linear layers of a decoder layer that scoring and pruning work on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    /// Attention query projection.
    Q,
    /// Attention key projection.
    K,
    /// Attention value projection.
    V,
    /// Attention output projection.
    O,
    /// MLP gate projection.
    Gate,
    /// MLP up projection.
    Up,
    /// MLP down projection.
    Down,
}

impl Component {
    /// All components in checkpoint order (attention, then MLP).
    pub const ALL: [Component; 7] =
        [Component::Q, Component::K, Component::V, Component::O, Component::Gate, Component::Up, Component::Down];

    /// Short name used on the command line and in reports (`q`, `gate`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Q => "q",
            Component::K => "k",
            Component::V => "v",
            Component::O => "o",
            Component::Gate => "gate",
            Component::Up => "up",
            Component::Down => "down",
        }
    }

    /// The module path inside a decoder layer (`self_attn.q_proj`, `mlp.down_proj`, ...).
    pub fn module_path(self) -> &'static str {
        match self {
            Component::Q => "self_attn.q_proj",
            Component::K => "self_attn.k_proj",
            Component::V => "self_attn.v_proj",
            Component::O => "self_attn.o_proj",
            Component::Gate => "mlp.gate_proj",
            Component::Up => "mlp.up_proj",
            Component::Down => "mlp.down_proj",
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Component {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Component::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown component {s:?}: expected one of q, k, v, o, gate, up, down"))
    }
}

/// The checkpoint name of the weight of `component` in decoder layer `layer`.
pub fn linear_weight_name(layer: usize, component: Component) -> String {
    format!("model.layers.{layer}.{}.weight", component.module_path())
}

/// Maps a tensor name to (layer, component) when it is the weight of a decoder linear layer.
pub fn classify_tensor(name: &str) -> Option<(usize, Component)> {
    let rest = name.strip_prefix("model.layers.")?.strip_suffix(".weight")?;
    let (layer, module) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    Component::ALL.into_iter().find(|c| c.module_path() == module).map(|c| (layer, c))
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
}

impl Architecture {
    /// Resolves and validates a config.json value.
    pub fn from_config(value: &serde_json::Value) -> Result<Architecture, ArchError> {
        let config: LlamaConfig =
            serde_json::from_value(value.clone()).map_err(|e| ArchError::BadConfig(e.to_string()))?;
        Architecture::from_llama_config(config)
    }

    /// Resolves and validates a parsed config.
    pub fn from_llama_config(config: LlamaConfig) -> Result<Architecture, ArchError> {
        let name = supported_name(&config.architectures)?;
        let num_heads = config.num_attention_heads;
        let num_kv_heads = config.num_key_value_heads.unwrap_or(num_heads);
        if num_heads == 0 || num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(ArchError::BadConfig(format!(
                "num_attention_heads ({num_heads}) must be a positive multiple of num_key_value_heads ({num_kv_heads})"
            )));
        }
        let head_dim = match config.head_dim {
            Some(d) => d,
            None if config.hidden_size % num_heads == 0 => config.hidden_size / num_heads,
            None => {
                return Err(ArchError::BadConfig(format!(
                    "hidden_size ({}) is not divisible by num_attention_heads ({num_heads}) and head_dim is not given",
                    config.hidden_size
                )))
            }
        };
        if config.num_hidden_layers == 0 || config.hidden_size == 0 || config.intermediate_size == 0 || head_dim == 0 {
            return Err(ArchError::BadConfig("layer counts and widths must be positive".into()));
        }
        Ok(Architecture {
            name,
            num_layers: config.num_hidden_layers,
            hidden_size: config.hidden_size,
            intermediate_size: config.intermediate_size,
            num_heads,
            num_kv_heads,
            head_dim,
            vocab_size: config.vocab_size,
            tie_word_embeddings: config.tie_word_embeddings,
            rms_norm_eps: config.rms_norm_eps,
            rope_theta: config.rope_theta,
            rope_scaling: config.rope_scaling,
            max_position_embeddings: config.max_position_embeddings,
            bos_token_id: config.bos_token_id.and_then(|ids| ids.to_vec().first().copied()),
            eos_token_ids: config.eos_token_id.map(|ids| ids.to_vec()).unwrap_or_default(),
        })
    }

    /// Reads config.json of an opened checkpoint and checks every layer tensor's shape.
    pub fn of_checkpoint(ckpt: &Checkpoint) -> Result<Architecture, ArchError> {
        let arch = Architecture::from_config(ckpt.config())?;
        arch.check_tensors(ckpt)?;
        Ok(arch)
    }

    /// The (rows, columns) of a component's weight: rows are outputs, columns inputs.
    pub fn linear_shape(&self, component: Component) -> [usize; 2] {
        let q_width = self.num_heads * self.head_dim;
        let kv_width = self.num_kv_heads * self.head_dim;
        match component {
            Component::Q => [q_width, self.hidden_size],
            Component::K | Component::V => [kv_width, self.hidden_size],
            Component::O => [self.hidden_size, q_width],
            Component::Gate | Component::Up => [self.intermediate_size, self.hidden_size],
            Component::Down => [self.hidden_size, self.intermediate_size],
        }
    }

    /// Every tensor the layout requires, with its expected shape, in checkpoint order.
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = vec![("model.embed_tokens.weight".to_string(), vec![self.vocab_size, self.hidden_size])];
        for layer in 0..self.num_layers {
            let prefix = format!("model.layers.{layer}");
            out.push((format!("{prefix}.input_layernorm.weight"), vec![self.hidden_size]));
            out.push((format!("{prefix}.post_attention_layernorm.weight"), vec![self.hidden_size]));
            for component in Component::ALL {
                out.push((linear_weight_name(layer, component), self.linear_shape(component).to_vec()));
            }
        }
        out.push(("model.norm.weight".to_string(), vec![self.hidden_size]));
        if !self.tie_word_embeddings {
            out.push(("lm_head.weight".to_string(), vec![self.vocab_size, self.hidden_size]));
        }
        out
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

    /// Parameters of one component's weight.
    pub fn linear_params(&self, component: Component) -> u64 {
        let [rows, cols] = self.linear_shape(component);
        (rows * cols) as u64
    }
}

fn supported_name(architectures: &[String]) -> Result<String, ArchError> {
    let expected: Vec<String> = SUPPORTED_ARCHITECTURES.iter().map(|s| s.to_string()).collect();
    match architectures.first() {
        Some(name) if expected.contains(name) => Ok(name.clone()),
        Some(name) => Err(ArchError::Unsupported { found: name.clone(), expected }),
        None => Err(ArchError::BadConfig("missing \"architectures\" (e.g. [\"LlamaForCausalLM\"])".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smollm2_config() -> serde_json::Value {
        serde_json::json!({
            "architectures": ["LlamaForCausalLM"], "hidden_size": 576, "intermediate_size": 1536,
            "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
            "vocab_size": 49152, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
            "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2
        })
    }

    #[test]
    fn resolves_grouped_query_geometry() {
        let arch = Architecture::from_config(&smollm2_config()).unwrap();
        assert_eq!(arch.head_dim, 64);
        assert_eq!(arch.linear_shape(Component::Q), [576, 576]);
        assert_eq!(arch.linear_shape(Component::K), [192, 576]);
        assert_eq!(arch.linear_shape(Component::Down), [576, 1536]);
        assert_eq!(arch.eos_token_ids, vec![2]);
        assert!(!arch.expected_tensors().iter().any(|(n, _)| n == "lm_head.weight"));
    }

    #[test]
    fn classifies_linear_names_both_ways() {
        for layer in [0, 7, 31] {
            for component in Component::ALL {
                let name = linear_weight_name(layer, component);
                assert_eq!(classify_tensor(&name), Some((layer, component)));
            }
        }
        assert_eq!(classify_tensor("model.layers.3.input_layernorm.weight"), None);
        assert_eq!(classify_tensor("model.embed_tokens.weight"), None);
    }

    #[test]
    fn rejects_unsupported_and_inconsistent_configs() {
        let mut config = smollm2_config();
        config["architectures"] = serde_json::json!(["GPT2LMHeadModel"]);
        assert!(matches!(Architecture::from_config(&config), Err(ArchError::Unsupported { .. })));
        let mut config = smollm2_config();
        config["num_key_value_heads"] = serde_json::json!(4);
        let err = Architecture::from_config(&config).unwrap_err().to_string();
        assert!(err.contains("num_key_value_heads (4)"), "{err}");
    }
}
