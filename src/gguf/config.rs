//! The Hugging Face `config.json` (as `arch`'s `LlamaConfig`, its one mirror) and
//! `generation_config.json` of an imported GGUF Llama, built from the GGUF metadata.

use std::collections::BTreeMap;

use super::metadata::Metadata;
use super::GgufError;
use crate::arch::{LlamaConfig, RopeScaling, TokenIds};

/// Architectures (`general.architecture`) whose tensors follow the Llama layout.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama"];

/// Storage type written to model.safetensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum OutputDtype {
    /// 32-bit floats: every dequantized GGUF value is stored exactly.
    #[cfg_attr(feature = "cli", value(help = None))]
    F32,
    /// bfloat16 (round to nearest even): half the size, 8 mantissa bits.
    #[cfg_attr(feature = "cli", value(help = None))]
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

/// Builds config.json's content from the metadata of architecture `arch`: every key is
/// given (`num_key_value_heads` and `head_dim` resolved), `model_type` and `torch_dtype`
/// included.
pub fn llama_config(
    meta: &Metadata,
    arch: &str,
    facts: &TensorFacts,
    dtype: OutputDtype,
) -> Result<LlamaConfig, GgufError> {
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
    Ok(LlamaConfig {
        architectures: vec!["LlamaForCausalLM".to_string()],
        model_type: Some("llama".to_string()),
        hidden_size,
        intermediate_size: meta.dim(&key("feed_forward_length"))?,
        num_hidden_layers: meta.dim(&key("block_count"))?,
        num_attention_heads,
        num_key_value_heads: Some(num_key_value_heads),
        head_dim: Some(head_dim),
        hidden_act: "silu".to_string(),
        rms_norm_eps: meta.float(&key("attention.layer_norm_rms_epsilon"))?,
        rope_theta: meta.opt_float(&key("rope.freq_base"))?.unwrap_or(10_000.0),
        max_position_embeddings: meta.dim(&key("context_length"))?,
        vocab_size: facts.embedding_rows,
        tie_word_embeddings: !facts.has_output,
        bos_token_id: meta.opt_token_id("tokenizer.ggml.bos_token_id")?.map(TokenIds::One),
        eos_token_id: meta.opt_token_id("tokenizer.ggml.eos_token_id")?.map(TokenIds::One),
        pad_token_id: meta.opt_token_id("tokenizer.ggml.padding_token_id")?.map(TokenIds::One),
        attention_bias: false,
        mlp_bias: false,
        torch_dtype: Some(dtype.torch_name().to_string()),
        rope_scaling: rope_scaling(meta, arch)?,
    })
}

/// generation_config.json: the token ids generation starts and stops with.
pub fn generation_config(config: &LlamaConfig) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    out.insert("_from_model_config".to_string(), serde_json::Value::Bool(true));
    for (name, ids) in [
        ("bos_token_id", &config.bos_token_id),
        ("eos_token_id", &config.eos_token_id),
        ("pad_token_id", &config.pad_token_id),
    ] {
        if let Some(ids) = ids {
            out.insert(name.to_string(), serde_json::json!(ids));
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

fn rope_scaling(meta: &Metadata, arch: &str) -> Result<Option<RopeScaling>, GgufError> {
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
    let original_max_position_embeddings = if kind == "yarn" {
        let key = format!("{arch}.rope.scaling.original_context_length");
        let original = meta.uint(&key)?;
        Some(usize::try_from(original).map_err(|_| GgufError::InvalidMetadata {
            key,
            reason: format!("{original} positions do not fit in this platform's usize"),
        })?)
    } else {
        None
    };
    Ok(Some(RopeScaling {
        rope_type: kind.to_string(),
        factor: Some(factor),
        low_freq_factor: None,
        high_freq_factor: None,
        original_max_position_embeddings,
    }))
}
