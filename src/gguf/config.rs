//! The Hugging Face `config.json` and `generation_config.json` of an imported GGUF Llama.

use std::collections::BTreeMap;

use serde::Serialize;

use super::metadata::Metadata;
use super::GgufError;

/// Architectures (`general.architecture`) whose tensors follow the Llama layout.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama"];

/// Storage type written to model.safetensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputDtype {
    /// 32-bit floats: every dequantized GGUF value is stored exactly.
    F32,
    /// bfloat16 (round to nearest even): half the size, 8 mantissa bits.
    Bf16,
}

impl OutputDtype {
    /// The name Hugging Face uses in `torch_dtype`.
    pub fn torch_name(self) -> &'static str {
        match self {
            OutputDtype::F32 => "float32",
            OutputDtype::Bf16 => "bfloat16",
        }
    }
}

/// The config.json written for a `LlamaForCausalLM` (fields in a fixed order, so the bytes are
/// deterministic); `crate::arch` reads it back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigJson {
    /// Always `["LlamaForCausalLM"]`.
    pub architectures: Vec<String>,
    /// Always `"llama"`.
    pub model_type: String,
    /// Width of the residual stream (`{arch}.embedding_length`).
    pub hidden_size: usize,
    /// Width of the MLP (`{arch}.feed_forward_length`).
    pub intermediate_size: usize,
    /// Number of decoder layers (`{arch}.block_count`).
    pub num_hidden_layers: usize,
    /// Query heads (`{arch}.attention.head_count`).
    pub num_attention_heads: usize,
    /// Key/value heads (`{arch}.attention.head_count_kv`, default: query heads).
    pub num_key_value_heads: usize,
    /// Per-head width (`{arch}.attention.key_length`, default hidden / heads).
    pub head_dim: usize,
    /// Always `"silu"` for Llama.
    pub hidden_act: String,
    /// RMS norm epsilon (`{arch}.attention.layer_norm_rms_epsilon`).
    pub rms_norm_eps: f64,
    /// Rotary base (`{arch}.rope.freq_base`, default 10000).
    pub rope_theta: f64,
    /// Context length (`{arch}.context_length`).
    pub max_position_embeddings: usize,
    /// Rows of the embedding matrix.
    pub vocab_size: usize,
    /// True when the GGUF has no `output.weight` (lm_head shares the embedding).
    pub tie_word_embeddings: bool,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos_token_id: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos_token_id: Option<u32>,
    /// `tokenizer.ggml.padding_token_id`, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pad_token_id: Option<u32>,
    /// False: Llama projections have no bias.
    pub attention_bias: bool,
    /// False: Llama MLPs have no bias.
    pub mlp_bias: bool,
    /// Storage dtype of model.safetensors.
    pub torch_dtype: String,
    /// Rope scaling from `{arch}.rope.scaling.*`, when the file has any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<BTreeMap<String, serde_json::Value>>,
}

/// Facts about the tensors that config.json needs and metadata may lack.
pub struct TensorFacts {
    /// Rows of token_embd.weight.
    pub embedding_rows: usize,
    /// Whether output.weight exists.
    pub has_output: bool,
}

/// The GGUF architecture name, checked against the supported list.
pub fn architecture(meta: &Metadata) -> Result<String, GgufError> {
    let arch = meta.string("general.architecture")?;
    if SUPPORTED_ARCHITECTURES.contains(&arch) {
        Ok(arch.to_string())
    } else {
        Err(GgufError::UnsupportedArchitecture { found: arch.to_string() })
    }
}

/// Builds config.json's content from the metadata of architecture `arch`.
pub fn llama_config(
    meta: &Metadata,
    arch: &str,
    facts: &TensorFacts,
    dtype: OutputDtype,
) -> Result<ConfigJson, GgufError> {
    let key = |suffix: &str| format!("{arch}.{suffix}");
    let hidden_size = meta.dim(&key("embedding_length"))?;
    let num_attention_heads = meta.dim(&key("attention.head_count"))?;
    let num_key_value_heads = meta.opt_dim(&key("attention.head_count_kv"))?.unwrap_or(num_attention_heads);
    let head_dim = match meta.opt_dim(&key("attention.key_length"))? {
        Some(d) => d,
        None => divide_evenly(hidden_size, num_attention_heads, &key("attention.head_count"))?,
    };
    if num_attention_heads % num_key_value_heads != 0 {
        return Err(GgufError::InvalidMetadata {
            key: key("attention.head_count_kv"),
            reason: format!(
                "{num_attention_heads} query heads are not a multiple of {num_key_value_heads} key/value heads"
            ),
        });
    }
    check_vocab_size(meta, &key("vocab_size"), facts.embedding_rows)?;
    Ok(ConfigJson {
        architectures: vec!["LlamaForCausalLM".to_string()],
        model_type: "llama".to_string(),
        hidden_size,
        intermediate_size: meta.dim(&key("feed_forward_length"))?,
        num_hidden_layers: meta.dim(&key("block_count"))?,
        num_attention_heads,
        num_key_value_heads,
        head_dim,
        hidden_act: "silu".to_string(),
        rms_norm_eps: meta.float(&key("attention.layer_norm_rms_epsilon"))?,
        rope_theta: meta.opt_float(&key("rope.freq_base"))?.unwrap_or(10_000.0),
        max_position_embeddings: meta.dim(&key("context_length"))?,
        vocab_size: facts.embedding_rows,
        tie_word_embeddings: !facts.has_output,
        bos_token_id: meta.opt_token_id("tokenizer.ggml.bos_token_id")?,
        eos_token_id: meta.opt_token_id("tokenizer.ggml.eos_token_id")?,
        pad_token_id: meta.opt_token_id("tokenizer.ggml.padding_token_id")?,
        attention_bias: false,
        mlp_bias: false,
        torch_dtype: dtype.torch_name().to_string(),
        rope_scaling: rope_scaling(meta, arch)?,
    })
}

/// generation_config.json: the token ids generation starts and stops with.
pub fn generation_config(config: &ConfigJson) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    out.insert("_from_model_config".to_string(), serde_json::Value::Bool(true));
    for (name, id) in [
        ("bos_token_id", config.bos_token_id),
        ("eos_token_id", config.eos_token_id),
        ("pad_token_id", config.pad_token_id),
    ] {
        if let Some(id) = id {
            out.insert(name.to_string(), serde_json::Value::from(id));
        }
    }
    out
}

fn divide_evenly(total: usize, parts: usize, key: &str) -> Result<usize, GgufError> {
    if total % parts == 0 {
        Ok(total / parts)
    } else {
        Err(GgufError::InvalidMetadata {
            key: key.to_string(),
            reason: format!("{total} is not divisible by {parts} heads"),
        })
    }
}

fn check_vocab_size(meta: &Metadata, key: &str, embedding_rows: usize) -> Result<(), GgufError> {
    match meta.opt_uint(key)? {
        Some(v) if v != embedding_rows as u64 => Err(GgufError::InvalidMetadata {
            key: key.to_string(),
            reason: format!("says {v} tokens but token_embd.weight has {embedding_rows} rows"),
        }),
        _ => Ok(()),
    }
}

fn rope_scaling(meta: &Metadata, arch: &str) -> Result<Option<BTreeMap<String, serde_json::Value>>, GgufError> {
    let type_key = format!("{arch}.rope.scaling.type");
    let kind = match meta.opt_string(&type_key)? {
        None | Some("none") => return Ok(None),
        Some(kind @ ("linear" | "yarn")) => kind,
        Some(other) => {
            return Err(GgufError::InvalidMetadata {
                key: type_key,
                reason: format!("rope scaling type {other:?} is not supported (linear, yarn)"),
            })
        }
    };
    let factor = meta.float(&format!("{arch}.rope.scaling.factor"))?;
    let mut out = BTreeMap::new();
    out.insert("rope_type".to_string(), serde_json::Value::from(kind));
    out.insert("factor".to_string(), serde_json::Value::from(factor));
    if kind == "yarn" {
        let original = meta.uint(&format!("{arch}.rope.scaling.original_context_length"))?;
        out.insert("original_max_position_embeddings".to_string(), serde_json::Value::from(original));
    }
    Ok(Some(out))
}
