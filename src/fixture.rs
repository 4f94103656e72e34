//! Deterministic generator of random Llama checkpoints for tests, benchmarks and GPU checks.
//!
//! Each tensor's values come from its own ChaCha stream keyed by (seed, tensor name), so the
//! bytes do not depend on sharding or generation order, and tensors are produced one at a
//! time while writing: an 8B-shaped checkpoint is generated without holding it in memory.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use half::{bf16, f16};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::{Dtype, View};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::arch::Architecture;

/// Element types the generator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum FixtureDtype {
    /// 32-bit floats.
    #[cfg_attr(feature = "cli", value(help = "32-bit float"))]
    F32,
    /// bfloat16.
    #[cfg_attr(feature = "cli", value(name = "bf16", help = "bfloat16"))]
    BF16,
    /// IEEE half precision.
    #[cfg_attr(feature = "cli", value(help = "float16"))]
    F16,
}

impl FixtureDtype {
    fn safetensors(self) -> Dtype {
        match self {
            FixtureDtype::F32 => Dtype::F32,
            FixtureDtype::BF16 => Dtype::BF16,
            FixtureDtype::F16 => Dtype::F16,
        }
    }

    fn torch_name(self) -> &'static str {
        match self {
            FixtureDtype::F32 => "float32",
            FixtureDtype::BF16 => "bfloat16",
            FixtureDtype::F16 => "float16",
        }
    }
}

/// The shape and storage of a generated checkpoint.
#[derive(Debug, Clone)]
pub struct FixtureSpec {
    /// Seed of every tensor's random stream.
    pub seed: u64,
    /// Storage dtype of every tensor.
    pub dtype: FixtureDtype,
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
    /// Vocabulary size of the model (at least the tokenizer's).
    pub vocab_size: usize,
    /// Number of safetensors shards (1 writes model.safetensors without an index).
    pub num_shards: usize,
    /// Whether lm_head is tied to the embedding.
    pub tie_word_embeddings: bool,
}

impl Default for FixtureSpec {
    /// A tiny two-shard F32 model with grouped-query attention and its own lm_head.
    fn default() -> Self {
        FixtureSpec {
            seed: 0,
            dtype: FixtureDtype::F32,
            num_layers: 2,
            hidden_size: 64,
            intermediate_size: 128,
            num_heads: 4,
            num_kv_heads: 2,
            vocab_size: 288,
            num_shards: 2,
            tie_word_embeddings: false,
        }
    }
}

impl FixtureSpec {
    /// A model of roughly `bytes` bytes of weights, with wide layers so that tensors are large.
    pub fn with_total_bytes(bytes: u64, dtype: FixtureDtype, num_shards: usize) -> Self {
        let base = FixtureSpec {
            dtype,
            hidden_size: 1024,
            intermediate_size: 4096,
            num_heads: 16,
            num_kv_heads: 4,
            num_shards,
            ..FixtureSpec::default()
        };
        let per_layer = base.layer_bytes().max(1);
        let num_layers = (bytes / per_layer).max(1) as usize;
        FixtureSpec { num_layers, ..base }
    }

    /// The config.json the generator writes.
    pub fn config_json(&self) -> serde_json::Value {
        json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.hidden_size / self.num_heads,
            "vocab_size": self.vocab_size,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "max_position_embeddings": 2048,
            "tie_word_embeddings": self.tie_word_embeddings,
            "bos_token_id": tokenizer::BOS_ID,
            "eos_token_id": tokenizer::EOS_ID,
            "torch_dtype": self.dtype.torch_name(),
            "hidden_act": "silu",
        })
    }

    fn architecture(&self) -> Architecture {
        Architecture::from_config(&self.config_json()).expect("fixture specs are valid Llama configs")
    }

    fn layer_bytes(&self) -> u64 {
        let arch = self.architecture();
        let params: u64 = crate::arch::Component::ALL.iter().map(|&c| arch.linear_params(c)).sum();
        params * self.dtype.safetensors().bitsize() as u64 / 8
    }
}

/// Writes a complete checkpoint directory (weights, config, tokenizer files) into `dir`,
/// which must not exist yet.
pub fn write_checkpoint(dir: &Path, spec: &FixtureSpec) -> std::io::Result<()> {
    write_checkpoint_with_config(dir, spec, &serde_json::Map::new())
}

/// `write_checkpoint` with config.json keys set or replaced by `overrides` (e.g. `head_dim`,
/// `rope_theta`, `rope_scaling`); the tensors follow the resulting config.
pub fn write_checkpoint_with_config(
    dir: &Path,
    spec: &FixtureSpec,
    overrides: &serde_json::Map<String, serde_json::Value>,
) -> std::io::Result<()> {
    if spec.vocab_size < tokenizer::VOCAB_SIZE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("vocab_size {} is below the fixture tokenizer's {}", spec.vocab_size, tokenizer::VOCAB_SIZE),
        ));
    }
    let mut config = spec.config_json();
    for (key, value) in overrides {
        config[key] = value.clone();
    }
    let arch = Architecture::from_config(&config)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("fixture config: {e}")))?;
    std::fs::create_dir(dir)?;
    let tensors = arch.expected_tensors();
    let shards = split_into_shards(&tensors, spec);
    let mut weight_map = BTreeMap::new();
    let mut total_size = 0u64;
    for (shard_name, members) in &shards {
        let views: Vec<(String, RandomTensor)> =
            members.iter().map(|(name, shape)| (name.clone(), RandomTensor::new(spec, name, shape))).collect();
        for (name, view) in &views {
            weight_map.insert(name.clone(), shard_name.clone());
            total_size += view.data_len() as u64;
        }
        let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
        safetensors::serialize_to_file(views, Some(metadata), &dir.join(shard_name)).map_err(std::io::Error::other)?;
    }
    if shards.len() > 1 {
        let index = json!({"metadata": {"total_size": total_size}, "weight_map": weight_map});
        write_json(&dir.join(crate::checkpoint::INDEX_FILE), &index)?;
    }
    write_json(&dir.join("config.json"), &config)?;
    write_json(
        &dir.join("generation_config.json"),
        &json!({"bos_token_id": tokenizer::BOS_ID, "eos_token_id": tokenizer::EOS_ID, "do_sample": true,
                "temperature": 0.6, "top_p": 0.9}),
    )?;
    write_json(&dir.join("tokenizer.json"), &tokenizer::tokenizer_json())?;
    write_json(&dir.join("tokenizer_config.json"), &tokenizer::tokenizer_config_json())?;
    write_json(&dir.join("special_tokens_map.json"), &tokenizer::special_tokens_map_json())?;
    Ok(())
}

fn write_json(path: &Path, value: &serde_json::Value) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    text.push('\n');
    std::fs::write(path, text)
}

type NamedShapes = Vec<(String, Vec<usize>)>;

fn split_into_shards(tensors: &[(String, Vec<usize>)], spec: &FixtureSpec) -> Vec<(String, NamedShapes)> {
    let bytes_of = |shape: &Vec<usize>| shape.iter().product::<usize>() * spec.dtype.safetensors().bitsize() / 8;
    let total: usize = tensors.iter().map(|(_, s)| bytes_of(s)).sum();
    let count = spec.num_shards.clamp(1, tensors.len());
    let mut groups: Vec<NamedShapes> = vec![Vec::new(); count];
    let mut written = 0usize;
    for (name, shape) in tensors {
        let slot = (written * count / total.max(1)).min(count - 1);
        groups[slot].push((name.clone(), shape.clone()));
        written += bytes_of(shape);
    }
    groups.retain(|g| !g.is_empty());
    let n = groups.len();
    groups
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let name = if n == 1 {
                crate::checkpoint::SINGLE_FILE.to_string()
            } else {
                format!("model-{:05}-of-{:05}.safetensors", i + 1, n)
            };
            (name, g)
        })
        .collect()
}

/// A tensor whose bytes are generated when the writer asks for them.
struct RandomTensor {
    dtype: FixtureDtype,
    shape: Vec<usize>,
    seed: [u8; 32],
    low: f32,
    high: f32,
}

impl RandomTensor {
    fn new(spec: &FixtureSpec, name: &str, shape: &[usize]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(spec.seed.to_le_bytes());
        hasher.update(name.as_bytes());
        let seed: [u8; 32] = hasher.finalize().into();
        let (low, high) = if name.ends_with("norm.weight") {
            (0.9, 1.1)
        } else {
            let fan_in = *shape.last().unwrap_or(&1) as f32;
            let bound = 1.0 / fan_in.sqrt();
            (-bound, bound)
        };
        RandomTensor { dtype: spec.dtype, shape: shape.to_vec(), seed, low, high }
    }

    fn elements(&self) -> usize {
        self.shape.iter().product()
    }
}

impl View for RandomTensor {
    fn dtype(&self) -> Dtype {
        self.dtype.safetensors()
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        let n = self.elements();
        let mut out = Vec::with_capacity(self.data_len());
        for _ in 0..n {
            let value: f32 = rng.random_range(self.low..self.high);
            match self.dtype {
                FixtureDtype::F32 => out.extend_from_slice(&value.to_le_bytes()),
                FixtureDtype::BF16 => out.extend_from_slice(&bf16::from_f32(value).to_le_bytes()),
                FixtureDtype::F16 => out.extend_from_slice(&f16::from_f32(value).to_le_bytes()),
            }
        }
        Cow::Owned(out)
    }

    fn data_len(&self) -> usize {
        self.elements() * self.dtype.safetensors().bitsize() / 8
    }
}

/// A small working byte-level BPE tokenizer with ChatML special tokens.
pub mod tokenizer {
    use serde_json::{json, Map, Value};

    /// Merges applied on top of the 256 byte tokens (GPT-2 byte alphabet).
    const MERGES: [(&str, &str); 12] = [
        ("Ġ", "t"),
        ("h", "e"),
        ("Ġt", "he"),
        ("i", "n"),
        ("a", "n"),
        ("e", "r"),
        ("o", "n"),
        ("Ġ", "a"),
        ("r", "e"),
        ("a", "t"),
        ("Ġ", "b"),
        ("Ġ", "f"),
    ];
    /// Id of `<|endoftext|>`.
    pub const ENDOFTEXT_ID: u32 = 256 + MERGES.len() as u32;
    /// Id of `<|im_start|>` (also the beginning-of-sequence token, as in SmolLM2).
    pub const BOS_ID: u32 = ENDOFTEXT_ID + 1;
    /// Id of `<|im_end|>` (also the end-of-sequence token, as in SmolLM2).
    pub const EOS_ID: u32 = ENDOFTEXT_ID + 2;
    /// Number of token ids the tokenizer uses.
    pub const VOCAB_SIZE: usize = EOS_ID as usize + 1;
    /// The ChatML chat template (SmolLM2's, without the default system prompt).
    pub const CHAT_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /// GPT-2's reversible map from bytes to printable characters.
    pub fn byte_to_char() -> Vec<char> {
        let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        let mut next = 256u32;
        (0u32..256)
            .map(|b| {
                if printable(b) {
                    char::from_u32(b).expect("latin-1 is valid")
                } else {
                    let c = char::from_u32(next).expect("below the surrogates");
                    next += 1;
                    c
                }
            })
            .collect()
    }

    /// tokenizer.json in the Hugging Face `tokenizers` format.
    pub fn tokenizer_json() -> Value {
        let mut vocab = Map::new();
        for (id, c) in byte_to_char().into_iter().enumerate() {
            vocab.insert(c.to_string(), json!(id));
        }
        for (i, (a, b)) in MERGES.iter().enumerate() {
            vocab.insert(format!("{a}{b}"), json!(256 + i));
        }
        let merges: Vec<String> = MERGES.iter().map(|(a, b)| format!("{a} {b}")).collect();
        let special = |id: u32, content: &str| {
            json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": true})
        };
        json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": [special(ENDOFTEXT_ID, "<|endoftext|>"), special(BOS_ID, "<|im_start|>"),
                             special(EOS_ID, "<|im_end|>")],
            "normalizer": null,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
            "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                      "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                      "ignore_merges": false, "vocab": vocab, "merges": merges}
        })
    }

    /// tokenizer_config.json with the chat template and special tokens.
    pub fn tokenizer_config_json() -> Value {
        json!({
            "add_prefix_space": false,
            "bos_token": "<|im_start|>",
            "eos_token": "<|im_end|>",
            "pad_token": "<|im_end|>",
            "unk_token": "<|endoftext|>",
            "chat_template": CHAT_TEMPLATE,
            "model_max_length": 2048,
            "tokenizer_class": "GPT2Tokenizer",
        })
    }

    /// special_tokens_map.json, as Hugging Face checkpoints carry it.
    pub fn special_tokens_map_json() -> Value {
        json!({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>",
               "unk_token": "<|endoftext|>"})
    }
}
