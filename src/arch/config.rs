//! config.json of a Llama-family checkpoint: the one serde mirror of its keys (optional
//! keys take the Hugging Face `LlamaConfig` defaults), read from every checkpoint and
//! written by the GGUF import, its resolution into an `Architecture`, and every check of
//! its values.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use super::{ArchError, Architecture, SUPPORTED_ARCHITECTURES};

/// Rope scaling as config.json states it (`llama3`, `linear`, `dynamic`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RopeScaling {
    /// The scaling type (`rope_type`, or the older `type`).
    #[serde(alias = "type")]
    pub rope_type: String,
    /// Scaling factor (required by `linear` and `llama3`).
    pub factor: Option<f64>,
    /// llama3: low-frequency factor.
    pub low_freq_factor: Option<f64>,
    /// llama3: high-frequency factor.
    pub high_freq_factor: Option<f64>,
    /// llama3: the pre-training context length.
    pub original_max_position_embeddings: Option<usize>,
}

/// config.json of a Llama-family model, as Hugging Face writes it. Serialized, it is the
/// config.json the GGUF import writes: keys in field order (so the bytes are
/// deterministic), `bos_token_id` and `eos_token_id` always present (`null` when unknown),
/// other absent options left out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Model classes, e.g. `["LlamaForCausalLM"]`.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// The Hugging Face model type, e.g. `"llama"`. Written, never read (biasprune does not
    /// use it, so any value stays readable).
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,
    /// Residual stream width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention); defaults to the query heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_key_value_heads: Option<usize>,
    /// Per-head width; defaults to hidden_size / num_attention_heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// Activation of the MLP (default `silu`); the forward supports only `silu`.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// RMS norm epsilon (Hugging Face default 1e-6).
    #[serde(default = "default_rms_eps")]
    pub rms_norm_eps: f64,
    /// Rope base frequency (default 10000).
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// Longest supported context (Hugging Face default 2048).
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Whether lm_head shares the embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Beginning-of-sequence token id.
    #[serde(default)]
    pub bos_token_id: Option<TokenIds>,
    /// End-of-sequence token id(s).
    #[serde(default)]
    pub eos_token_id: Option<TokenIds>,
    /// Padding token id. Written, never read (biasprune does not use it, so any value stays
    /// readable).
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub pad_token_id: Option<TokenIds>,
    /// Whether q/k/v/o carry biases; the forward supports only `false`.
    #[serde(default)]
    pub attention_bias: bool,
    /// Whether the MLP projections carry biases; the forward supports only `false`.
    #[serde(default)]
    pub mlp_bias: bool,
    /// Storage dtype of the weights, e.g. `"float32"`. Written, never read (biasprune reads
    /// each tensor's dtype from its file).
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub torch_dtype: Option<String>,
    /// Rope scaling, if any; written with the keys that have a value, in sorted order.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "write_rope_scaling")]
    pub rope_scaling: Option<RopeScaling>,
}

/// config.json's `rope_scaling` as biasprune writes it: the keys that have a value, sorted.
/// (`Architecture`'s JSON keeps `RopeScaling`'s own field order and nulls.)
fn write_rope_scaling<S: Serializer>(value: &Option<RopeScaling>, serializer: S) -> Result<S::Ok, S::Error> {
    let Some(scaling) = value else {
        return serializer.serialize_none();
    };
    let mut map = serializer.serialize_map(None)?;
    if let Some(factor) = scaling.factor {
        map.serialize_entry("factor", &factor)?;
    }
    if let Some(factor) = scaling.high_freq_factor {
        map.serialize_entry("high_freq_factor", &factor)?;
    }
    if let Some(factor) = scaling.low_freq_factor {
        map.serialize_entry("low_freq_factor", &factor)?;
    }
    if let Some(positions) = scaling.original_max_position_embeddings {
        map.serialize_entry("original_max_position_embeddings", &positions)?;
    }
    map.serialize_entry("rope_type", &scaling.rope_type)?;
    map.end()
}

/// A token id field that config.json writes as a number or a list of numbers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
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

fn default_act() -> String {
    "silu".to_string()
}

impl LlamaConfig {
    /// Resolves and validates the layout every command relies on (the supported class,
    /// the head layout, positive widths).
    pub fn resolve(self) -> Result<Architecture, ArchError> {
        let name = supported_name(&self.architectures)?;
        let num_heads = self.num_attention_heads;
        let num_kv_heads = self.num_key_value_heads.unwrap_or(num_heads);
        if num_heads == 0 || num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(ArchError::BadConfig(format!(
                "num_attention_heads ({num_heads}) must be a positive multiple of num_key_value_heads ({num_kv_heads})"
            )));
        }
        let head_dim = match self.head_dim {
            Some(d) => d,
            None if self.hidden_size % num_heads == 0 => self.hidden_size / num_heads,
            None => {
                return Err(ArchError::BadConfig(format!(
                    "hidden_size ({}) is not divisible by num_attention_heads ({num_heads}) and head_dim is not given",
                    self.hidden_size
                )))
            }
        };
        if self.num_hidden_layers == 0 || self.hidden_size == 0 || self.intermediate_size == 0 || head_dim == 0 {
            return Err(ArchError::BadConfig("layer counts and widths must be positive".into()));
        }
        Ok(Architecture {
            name,
            num_layers: self.num_hidden_layers,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_heads,
            num_kv_heads,
            head_dim,
            vocab_size: self.vocab_size,
            tie_word_embeddings: self.tie_word_embeddings,
            rms_norm_eps: self.rms_norm_eps,
            rope_theta: self.rope_theta,
            rope_scaling: self.rope_scaling,
            max_position_embeddings: self.max_position_embeddings,
            bos_token_id: self.bos_token_id.and_then(|ids| ids.to_vec().first().copied()),
            eos_token_ids: self.eos_token_id.map(|ids| ids.to_vec()).unwrap_or_default(),
            hidden_act: self.hidden_act,
            attention_bias: self.attention_bias,
            mlp_bias: self.mlp_bias,
        })
    }
}

impl Architecture {
    /// Checks the values the forward pass (`model`) supports beyond the layout: a `silu`
    /// MLP, no biases, an even head width and a known rope scaling.
    pub fn check_forward_support(&self) -> Result<(), ArchError> {
        let unsupported = |key: &str, found: String, expected: &str| ArchError::UnsupportedValue {
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
        if self.head_dim % 2 != 0 {
            return Err(unsupported("head_dim", self.head_dim.to_string(), "an even number"));
        }
        match &self.rope_scaling {
            Some(scaling) => check_rope_scaling(scaling),
            None => Ok(()),
        }
    }
}

fn check_rope_scaling(scaling: &RopeScaling) -> Result<(), ArchError> {
    let complete = scaling.low_freq_factor.is_some()
        && scaling.high_freq_factor.is_some()
        && scaling.original_max_position_embeddings.is_some();
    match scaling.rope_type.as_str() {
        "default" => Ok(()),
        "linear" if scaling.factor.is_some() => Ok(()),
        "llama3" if complete && scaling.factor.is_some() => Ok(()),
        other => Err(ArchError::UnsupportedValue {
            key: "rope_scaling.rope_type".into(),
            found: other.to_string(),
            expected: "default, linear with factor, or llama3 with factor, low_freq_factor, high_freq_factor \
                       and original_max_position_embeddings"
                .into(),
        }),
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
    fn rejects_unsupported_and_inconsistent_configs() {
        let mut config = smollm2_config();
        config["architectures"] = serde_json::json!(["GPT2LMHeadModel"]);
        assert!(matches!(Architecture::from_config(&config), Err(ArchError::Unsupported { .. })));
        let mut config = smollm2_config();
        config["num_key_value_heads"] = serde_json::json!(4);
        let err = Architecture::from_config(&config).unwrap_err().to_string();
        assert!(err.contains("num_key_value_heads (4)"), "{err}");
    }

    #[test]
    fn missing_keys_take_the_hugging_face_defaults() {
        let mut config = smollm2_config();
        let object = config.as_object_mut().unwrap();
        object.remove("rms_norm_eps");
        object.remove("rope_theta");
        let arch = Architecture::from_config(&config).unwrap();
        assert_eq!((arch.rms_norm_eps, arch.rope_theta, arch.max_position_embeddings), (1e-6, 10_000.0, 2048));
        assert_eq!(arch.hidden_act, "silu");
        arch.check_forward_support().unwrap();
    }

    /// The GGUF import writes config.json through this type: the bytes of the reference
    /// model's config.json (and so every golden digest) depend on this order and these nulls.
    #[test]
    fn written_config_keeps_the_import_key_order_nulls_and_sorted_rope_scaling() {
        let config = LlamaConfig {
            architectures: vec!["LlamaForCausalLM".into()],
            model_type: Some("llama".into()),
            hidden_size: 32,
            intermediate_size: 64,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            num_key_value_heads: Some(1),
            head_dim: Some(16),
            hidden_act: "silu".into(),
            rms_norm_eps: 1e-5,
            rope_theta: 500000.0,
            max_position_embeddings: 2048,
            vocab_size: 270,
            tie_word_embeddings: true,
            bos_token_id: None,
            eos_token_id: Some(TokenIds::One(266)),
            pad_token_id: Some(TokenIds::One(3)),
            attention_bias: false,
            mlp_bias: false,
            torch_dtype: Some("float32".into()),
            rope_scaling: Some(RopeScaling {
                rope_type: "yarn".into(),
                factor: Some(2.5),
                low_freq_factor: None,
                high_freq_factor: None,
                original_max_position_embeddings: Some(4096),
            }),
        };
        let text = serde_json::to_string(&config).unwrap();
        let expected = concat!(
            r#"{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":32,"#,
            r#""intermediate_size":64,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"#,
            r#""head_dim":16,"hidden_act":"silu","rms_norm_eps":0.00001,"rope_theta":500000.0,"#,
            r#""max_position_embeddings":2048,"vocab_size":270,"tie_word_embeddings":true,"bos_token_id":null,"#,
            r#""eos_token_id":266,"pad_token_id":3,"attention_bias":false,"mlp_bias":false,"torch_dtype":"float32","#,
            r#""rope_scaling":{"factor":2.5,"original_max_position_embeddings":4096,"rope_type":"yarn"}}"#
        );
        assert_eq!(text, expected);
        let read: LlamaConfig = serde_json::from_str(&text).unwrap();
        assert_eq!((read.model_type, read.pad_token_id, read.torch_dtype), (None, None, None), "written, never read");
        assert_eq!(read.rope_scaling, config.rope_scaling);
    }

    #[test]
    fn the_forward_refuses_what_it_cannot_run() {
        let mut config = smollm2_config();
        config["hidden_act"] = serde_json::json!("gelu");
        let err = Architecture::from_config(&config).unwrap().check_forward_support().unwrap_err().to_string();
        assert!(err.contains("hidden_act = gelu"), "{err}");
        let mut config = smollm2_config();
        config["rope_scaling"] = serde_json::json!({"rope_type": "yarn", "factor": 4.0});
        let err = Architecture::from_config(&config).unwrap().check_forward_support().unwrap_err().to_string();
        assert!(err.contains("yarn"), "{err}");
    }
}
