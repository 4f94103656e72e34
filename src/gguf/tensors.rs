//! GGUF tensor names to Hugging Face Llama names, dequantization, and undoing llama.cpp's
//! rotary row permutation of the q and k projections.

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::GgmlDType;
use candle_core::Device;

use super::config::OutputDtype;
use super::GgufError;
use crate::arch::{classify_tensor, Architecture};

/// How one GGUF tensor becomes one Hugging Face tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorPlan {
    /// Name in the GGUF file (`blk.3.attn_q.weight`).
    pub gguf_name: String,
    /// Name in model.safetensors (`model.layers.3.self_attn.q_proj.weight`).
    pub hf_name: String,
    /// Heads whose rows llama.cpp interleaved (q: query heads, k: key/value heads).
    pub unpermute_heads: Option<usize>,
}

/// Which head count a tensor's rows were permuted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowPermutation {
    /// Not permuted.
    None,
    /// attn_q: permuted per query head.
    QueryHeads,
    /// attn_k: permuted per key/value head.
    KeyValueHeads,
}

/// GGUF tensor types this importer dequantizes (everything candle-core reads).
pub const SUPPORTED_TYPES: &[GgmlDType] = &[
    GgmlDType::F32,
    GgmlDType::F16,
    GgmlDType::BF16,
    GgmlDType::Q4_0,
    GgmlDType::Q4_1,
    GgmlDType::Q5_0,
    GgmlDType::Q5_1,
    GgmlDType::Q8_0,
    GgmlDType::Q2K,
    GgmlDType::Q3K,
    GgmlDType::Q4K,
    GgmlDType::Q5K,
    GgmlDType::Q6K,
];

/// Maps a GGUF tensor name to its Hugging Face name and permutation, or None if unknown.
pub fn hf_name(gguf_name: &str) -> Option<(String, RowPermutation)> {
    let base = gguf_name.strip_suffix(".weight")?;
    let top = match base {
        "token_embd" => Some("model.embed_tokens"),
        "output_norm" => Some("model.norm"),
        "output" => Some("lm_head"),
        _ => None,
    };
    if let Some(name) = top {
        return Some((format!("{name}.weight"), RowPermutation::None));
    }
    let rest = base.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (hf_part, permutation) = match part {
        "attn_q" => ("self_attn.q_proj", RowPermutation::QueryHeads),
        "attn_k" => ("self_attn.k_proj", RowPermutation::KeyValueHeads),
        "attn_v" => ("self_attn.v_proj", RowPermutation::None),
        "attn_output" => ("self_attn.o_proj", RowPermutation::None),
        "ffn_gate" => ("mlp.gate_proj", RowPermutation::None),
        "ffn_up" => ("mlp.up_proj", RowPermutation::None),
        "ffn_down" => ("mlp.down_proj", RowPermutation::None),
        "attn_norm" => ("input_layernorm", RowPermutation::None),
        "ffn_norm" => ("post_attention_layernorm", RowPermutation::None),
        _ => return None,
    };
    Some((format!("model.layers.{layer}.{hf_part}.weight"), permutation))
}

/// The tensors every layer must have, as `blk.{layer}.{part}.weight`.
const LAYER_PARTS: [&str; 9] =
    ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down", "attn_norm", "ffn_norm"];

/// The GGUF tensors a Llama with `layers` layers must have (output.weight is optional).
pub fn required_gguf_names(layers: usize) -> Vec<String> {
    let mut names = vec!["token_embd.weight".to_string(), "output_norm.weight".to_string()];
    for layer in 0..layers {
        for part in LAYER_PARTS {
            names.push(format!("blk.{layer}.{part}.weight"));
        }
    }
    names
}

/// Plans every tensor of the file, sorted by Hugging Face name; unknown or missing tensors are
/// errors. `layers` (the metadata's block_count) must not exceed the number of tensors
/// before any per-layer name is built, so the names built stay proportional to the file
/// (a missing tensor is then named) and a huge count cannot exhaust memory.
pub fn plan(content: &Content, layers: usize, heads: usize, kv_heads: usize) -> Result<Vec<TensorPlan>, GgufError> {
    let available = content.tensor_infos.len();
    if layers > available {
        return Err(GgufError::InvalidMetadata {
            key: "llama.block_count".to_string(),
            reason: format!(
                "expected at most {available} layers (each layer needs {} tensors and the file has {available}), \
                 found {layers}",
                LAYER_PARTS.len()
            ),
        });
    }
    for name in required_gguf_names(layers) {
        if !content.tensor_infos.contains_key(&name) {
            return Err(GgufError::MissingTensor { name });
        }
    }
    let mut plans = Vec::with_capacity(content.tensor_infos.len());
    for (gguf_name, info) in &content.tensor_infos {
        let (hf, permutation) = hf_name(gguf_name).ok_or_else(|| GgufError::UnsupportedTensor {
            name: gguf_name.clone(),
            reason: unsupported_reason(gguf_name),
        })?;
        check_layer_index(gguf_name, layers)?;
        if !SUPPORTED_TYPES.contains(&info.ggml_dtype) {
            return Err(GgufError::UnsupportedTensor {
                name: gguf_name.clone(),
                reason: format!("tensor type {:?} cannot be dequantized", info.ggml_dtype),
            });
        }
        let unpermute_heads = match permutation {
            RowPermutation::None => None,
            RowPermutation::QueryHeads => Some(heads),
            RowPermutation::KeyValueHeads => Some(kv_heads),
        };
        plans.push(TensorPlan { gguf_name: gguf_name.clone(), hf_name: hf, unpermute_heads });
    }
    plans.sort_by(|a, b| a.hf_name.cmp(&b.hf_name));
    Ok(plans)
}

fn unsupported_reason(gguf_name: &str) -> String {
    if gguf_name == "rope_freqs.weight" {
        "llama3 rope scaling stored as per-frequency factors has no config.json equivalent here".to_string()
    } else {
        "it has no Hugging Face Llama counterpart".to_string()
    }
}

fn check_layer_index(gguf_name: &str, layers: usize) -> Result<(), GgufError> {
    let layer =
        gguf_name.strip_prefix("blk.").and_then(|rest| rest.split('.').next()).and_then(|n| n.parse::<usize>().ok());
    match layer {
        Some(l) if l >= layers => Err(GgufError::UnsupportedTensor {
            name: gguf_name.to_string(),
            reason: format!("layer {l} is beyond block_count {layers}"),
        }),
        _ => Ok(()),
    }
}

/// The shape a Hugging Face Llama tensor must have under `arch` (outermost first): the
/// linear weights' from `Architecture::linear_shape`, the embedding's and lm_head's from
/// `embedding_shape`, the norms' the hidden width.
pub fn expected_shape(hf_name: &str, arch: &Architecture) -> Vec<usize> {
    match classify_tensor(hf_name) {
        Some((_, component)) => arch.linear_shape(component).to_vec(),
        None if hf_name == "model.embed_tokens.weight" || hf_name == "lm_head.weight" => {
            arch.embedding_shape().to_vec()
        }
        None => vec![arch.hidden_size],
    }
}

/// A dequantized tensor: row-major f32 values and the Hugging Face shape.
pub struct DenseTensor {
    /// Shape, outermost first (rows = output features for projections).
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

/// Reads, dequantizes and (for q/k) un-permutes one planned tensor.
pub fn load_dense<R: std::io::Read + std::io::Seek>(
    content: &Content,
    reader: &mut R,
    plan: &TensorPlan,
) -> Result<DenseTensor, GgufError> {
    let dequantize_error = |source: candle_core::Error| GgufError::Dequantize { name: plan.gguf_name.clone(), source };
    let qtensor = content.tensor(reader, &plan.gguf_name, &Device::Cpu).map_err(dequantize_error)?;
    let tensor = qtensor.dequantize(&Device::Cpu).map_err(dequantize_error)?;
    let shape = tensor.dims().to_vec();
    let values = tensor.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(dequantize_error)?;
    let values = match plan.unpermute_heads {
        None => values,
        Some(heads) => unpermute_rows(&values, &shape, heads)
            .map_err(|source| GgufError::Unpermute { name: plan.gguf_name.clone(), source })?,
    };
    Ok(DenseTensor { shape, values })
}

/// Why a q/k projection cannot be un-permuted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnpermuteError {
    /// The tensor is not a matrix.
    #[error("expected a 2-d projection to un-permute, found shape {shape:?}")]
    NotMatrix {
        /// The shape found.
        shape: Vec<usize>,
    },
    /// The rows do not split into `heads` heads of even width.
    #[error("{rows} rows cannot be split into {heads} heads of even width")]
    HeadSplit {
        /// Rows of the projection.
        rows: usize,
        /// Heads the metadata states.
        heads: usize,
    },
}

/// Inverts llama.cpp's q/k permutation: rows viewed as (heads, head_dim/2, 2) have their
/// last two axes swapped back to Hugging Face's (heads, 2, head_dim/2).
pub fn unpermute_rows(values: &[f32], shape: &[usize], heads: usize) -> Result<Vec<f32>, UnpermuteError> {
    let [rows, cols] = *shape else {
        return Err(UnpermuteError::NotMatrix { shape: shape.to_vec() });
    };
    if heads == 0 || rows % heads != 0 || (rows / heads) % 2 != 0 {
        return Err(UnpermuteError::HeadSplit { rows, heads });
    }
    let half = rows / heads / 2;
    let mut out = vec![0.0f32; values.len()];
    for head in 0..heads {
        for pair in 0..half {
            for side in 0..2 {
                let gguf_row = head * 2 * half + pair * 2 + side;
                let hf_row = head * 2 * half + side * half + pair;
                out[hf_row * cols..(hf_row + 1) * cols]
                    .copy_from_slice(&values[gguf_row * cols..(gguf_row + 1) * cols]);
            }
        }
    }
    Ok(out)
}

/// Little-endian bytes of `values` in the output dtype (bf16 rounds to nearest even).
pub fn encode(values: &[f32], dtype: OutputDtype) -> Vec<u8> {
    match dtype {
        OutputDtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        OutputDtype::Bf16 => values.iter().flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_hugging_face_llama_names() {
        assert_eq!(hf_name("token_embd.weight").unwrap().0, "model.embed_tokens.weight");
        assert_eq!(hf_name("output.weight").unwrap().0, "lm_head.weight");
        assert_eq!(hf_name("output_norm.weight").unwrap().0, "model.norm.weight");
        assert_eq!(
            hf_name("blk.12.attn_q.weight").unwrap(),
            ("model.layers.12.self_attn.q_proj.weight".to_string(), RowPermutation::QueryHeads)
        );
        assert_eq!(hf_name("blk.0.attn_k.weight").unwrap().1, RowPermutation::KeyValueHeads);
        assert_eq!(hf_name("blk.3.ffn_norm.weight").unwrap().0, "model.layers.3.post_attention_layernorm.weight");
        assert_eq!(hf_name("blk.3.attn_norm.weight").unwrap().0, "model.layers.3.input_layernorm.weight");
        assert!(hf_name("rope_freqs.weight").is_none());
        assert!(hf_name("blk.x.attn_q.weight").is_none());
    }

    #[test]
    fn unpermute_restores_half_split_rotary_order() {
        // One head of width 4: HF rows [r0, r1, r2, r3] are stored by llama.cpp as [r0, r2, r1, r3].
        let gguf = [0.0, 2.0, 1.0, 3.0];
        assert_eq!(unpermute_rows(&gguf, &[4, 1], 1).unwrap(), vec![0.0, 1.0, 2.0, 3.0]);
        // Two heads of width 4, two columns: permutation stays inside each head and moves whole rows.
        let gguf: Vec<f32> = [0, 2, 1, 3, 4, 6, 5, 7].iter().flat_map(|r| [*r as f32, *r as f32 + 0.5]).collect();
        let hf: Vec<f32> = (0..8).flat_map(|r| [r as f32, r as f32 + 0.5]).collect();
        assert_eq!(unpermute_rows(&gguf, &[8, 2], 2).unwrap(), hf);
    }

    #[test]
    fn unpermute_rejects_odd_head_width() {
        let err = unpermute_rows(&[0.0; 6], &[6, 1], 2).unwrap_err();
        assert_eq!(err, UnpermuteError::HeadSplit { rows: 6, heads: 2 });
        assert_eq!(err.to_string(), "6 rows cannot be split into 2 heads of even width");
        let err = unpermute_rows(&[0.0; 6], &[6], 2).unwrap_err();
        assert_eq!(err, UnpermuteError::NotMatrix { shape: vec![6] });
    }

    #[test]
    fn bf16_encoding_rounds_to_nearest_even() {
        let bytes = encode(&[1.0, 1.0 + 1.0 / 256.0], OutputDtype::Bf16);
        assert_eq!(bytes, vec![0x80, 0x3f, 0x80, 0x3f]);
    }
}
