//! Writes small (or SmolLM2-shaped) Llama checkpoints with seeded random weights, for
//! tests and benchmarks that must run without downloading a model.

use std::collections::BTreeMap;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::{tensor::TensorView, Dtype};

use super::hooks::Projection;
use super::{EosTokens, LlamaConfig, ModelError};

/// A 2-layer model with grouped-query attention, small enough for unit tests.
pub fn tiny_config() -> LlamaConfig {
    LlamaConfig {
        hidden_size: 64,
        intermediate_size: 96,
        vocab_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: Some(2),
        head_dim: None,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: 512,
        tie_word_embeddings: false,
        hidden_act: "silu".into(),
        attention_bias: false,
        mlp_bias: false,
        bos_token_id: Some(1),
        eos_token_id: Some(EosTokens::One(2)),
    }
}

/// The shape of SmolLM2-135M: 30 layers, hidden 576, 9 heads over 3 key/value heads,
/// head_dim 64, MLP 1536, vocabulary 49152, tied embeddings.
pub fn smollm2_135m_config() -> LlamaConfig {
    LlamaConfig {
        hidden_size: 576,
        intermediate_size: 1536,
        vocab_size: 49152,
        num_hidden_layers: 30,
        num_attention_heads: 9,
        num_key_value_heads: Some(3),
        head_dim: Some(64),
        rms_norm_eps: 1e-5,
        rope_theta: 100_000.0,
        max_position_embeddings: 8192,
        tie_word_embeddings: true,
        bos_token_id: Some(1),
        eos_token_id: Some(EosTokens::One(2)),
        ..tiny_config()
    }
}

/// Every tensor name and shape a checkpoint of `cfg` holds, sorted by name.
pub fn tensor_shapes(cfg: &LlamaConfig) -> Result<BTreeMap<String, Vec<usize>>, ModelError> {
    let m = cfg.resolve()?;
    let (h, i) = (m.hidden_size, m.intermediate_size);
    let (q, kv) = (m.num_heads * m.head_dim, m.num_kv_heads * m.head_dim);
    let mut shapes = BTreeMap::new();
    shapes.insert("model.embed_tokens.weight".to_string(), vec![m.vocab_size, h]);
    shapes.insert("model.norm.weight".to_string(), vec![h]);
    if !m.tie_word_embeddings {
        shapes.insert("lm_head.weight".to_string(), vec![m.vocab_size, h]);
    }
    for layer in 0..m.num_layers {
        for p in Projection::ALL {
            let shape = match p {
                Projection::QProj => vec![q, h],
                Projection::KProj | Projection::VProj => vec![kv, h],
                Projection::OProj => vec![h, q],
                Projection::GateProj | Projection::UpProj => vec![i, h],
                Projection::DownProj => vec![h, i],
            };
            shapes.insert(p.weight_name(layer), shape);
        }
        for norm in ["input_layernorm", "post_attention_layernorm"] {
            shapes.insert(format!("model.layers.{layer}.{norm}.weight"), vec![h]);
        }
    }
    Ok(shapes)
}

/// Writes config.json and model.safetensors (F32 or BF16) with weights drawn from a
/// ChaCha stream seeded by `seed`: norms near 1, embeddings of unit scale, projections
/// scaled by 1/sqrt(fan_in).
pub fn write_random_checkpoint(dir: &Path, cfg: &LlamaConfig, seed: u64, dtype: Dtype) -> Result<(), ModelError> {
    if !matches!(dtype, Dtype::F32 | Dtype::BF16) {
        return Err(ModelError::InvalidArgument(format!("random checkpoints are F32 or BF16, not {dtype:?}")));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ModelError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut data = BTreeMap::new();
    for (name, shape) in tensor_shapes(cfg)? {
        let values = random_values(&mut rng, &name, &shape);
        data.insert(name, (shape, encode(&values, dtype)));
    }
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(name, (shape, bytes))| {
            let view = TensorView::new(dtype, shape.clone(), bytes)
                .map_err(|e| ModelError::InvalidArgument(format!("tensor {name}: {e}")))?;
            Ok((name.clone(), view))
        })
        .collect::<Result<_, ModelError>>()?;
    let weights = dir.join("model.safetensors");
    let bytes = safetensors::serialize(views, None)
        .map_err(|e| ModelError::Safetensors { path: weights.clone(), message: e.to_string() })?;
    write_atomically(&weights, &bytes).map_err(io(&weights))?;
    let config = dir.join("config.json");
    let json =
        serde_json::to_vec_pretty(cfg).map_err(|source| ModelError::ConfigJson { path: config.clone(), source })?;
    write_atomically(&config, &json).map_err(io(&config))
}

fn random_values(rng: &mut ChaCha8Rng, name: &str, shape: &[usize]) -> Vec<f32> {
    let count: usize = shape.iter().product();
    if name.ends_with("norm.weight") {
        return (0..count).map(|_| 1.0 + rng.random_range(-0.2f32..0.2)).collect();
    }
    let scale = if name == "model.embed_tokens.weight" { 1.0 } else { (3.0 / shape[1] as f32).sqrt() };
    (0..count).map(|_| rng.random_range(-scale..scale)).collect()
}

fn encode(values: &[f32], dtype: Dtype) -> Vec<u8> {
    match dtype {
        Dtype::BF16 => values.iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect(),
        _ => values.iter().flat_map(|&v| v.to_le_bytes()).collect(),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
