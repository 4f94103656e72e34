//! The one shared helper module of the integration tests: the reference model's location,
//! fixtures in temp dirs, running the binary, hashing directories, and a tiny GGUF Llama
//! built in code.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use biasprune::fixture::{write_checkpoint, FixtureSpec};
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};

/// The model cache of scripts/fetch-model.sh: $BIASPRUNE_CACHE or <repo>/target/models.
fn model_cache() -> PathBuf {
    match std::env::var_os("BIASPRUNE_CACHE") {
        Some(cache) => PathBuf::from(cache),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("models"),
    }
}

/// The verified SmolLM2-135M-Instruct GGUF kept by scripts/fetch-model.sh.
pub fn reference_gguf() -> PathBuf {
    let file = model_cache().join("downloads").join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(file.is_file(), "reference GGUF missing at {}: run scripts/fetch-model.sh first", file.display());
    file
}

/// Directory of the imported SmolLM2-135M-Instruct; panics with the fix when it is missing.
pub fn reference_model() -> PathBuf {
    let dir = model_cache().join("SmolLM2-135M-Instruct");
    let complete = ["model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"]
        .iter()
        .all(|f| dir.join(f).is_file());
    assert!(complete, "reference model missing at {}: run scripts/fetch-model.sh first", dir.display());
    dir
}

pub const HIDDEN: usize = 256;
pub const HEADS: usize = 4;
pub const KV_HEADS: usize = 2;
pub const HEAD_DIM: usize = 64;
pub const INTERMEDIATE: usize = 512;
pub const LAYERS: usize = 2;

/// The Llama 3 Instruct chat template (header tokens, bos prepended, `| trim`).
pub const LLAMA3_TEMPLATE: &str = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}\n";

/// Control tokens of the tiny vocabulary, appended after the bytes and merges.
pub const SPECIAL_TOKENS: &[&str] =
    &["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"];

/// Merges of the tiny vocabulary ("hello" and "Ġworld" become single tokens).
pub const MERGES: &[&str] = &["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d"];

/// A tiny Llama as GGUF parts, plus the Hugging Face-layout values each tensor was made from.
pub struct TinyGguf {
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<(String, QTensor)>,
    /// Original values by GGUF name, in Hugging Face layout (q/k before llama.cpp's permutation).
    pub originals: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    /// Storage type chosen for each GGUF tensor.
    pub types: BTreeMap<String, GgmlDType>,
}

/// GPT-2's byte-to-character table: the 256 strings a byte-level BPE vocabulary starts with
/// (the fixture tokenizer's table).
pub fn byte_level_alphabet() -> Vec<String> {
    biasprune::fixture::tokenizer::byte_to_char().into_iter().map(String::from).collect()
}

/// Tokens of the tiny vocabulary: 256 bytes, one token per merge result, then control tokens.
pub fn tiny_tokens() -> Vec<String> {
    let mut tokens = byte_level_alphabet();
    tokens.extend(MERGES.iter().map(|m| m.replace(' ', "")));
    tokens.extend(SPECIAL_TOKENS.iter().map(|s| s.to_string()));
    tokens
}

/// Deterministic values in [-1, 1) (splitmix64).
pub fn pseudo_random(seed: u64, n: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// llama.cpp's permutation (convert_hf_to_gguf.py): rows (heads, 2, d/2) -> (heads, d/2, 2).
pub fn llama_cpp_permute(values: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
    let d = rows / heads;
    let mut out = vec![0.0; values.len()];
    for h in 0..heads {
        for i in 0..2 {
            for j in 0..d / 2 {
                let src = h * d + i * (d / 2) + j;
                let dst = h * d + j * 2 + i;
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&values[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

impl TinyGguf {
    /// A 2-layer Llama with a Llama-3-style vocabulary and template; `tied` omits output.weight.
    pub fn new(tied: bool) -> Self {
        let tokens = tiny_tokens();
        let vocab = tokens.len();
        let mut token_types = vec![Value::I32(1); vocab];
        for slot in token_types.iter_mut().skip(vocab - SPECIAL_TOKENS.len()) {
            *slot = Value::I32(3);
        }
        let special_id = |t: &str| {
            (vocab - SPECIAL_TOKENS.len() + SPECIAL_TOKENS.iter().position(|s| *s == t).expect("special")) as u32
        };
        let metadata = vec![
            ("general.architecture".to_string(), Value::String("llama".to_string())),
            ("llama.block_count".to_string(), Value::U32(LAYERS as u32)),
            ("llama.context_length".to_string(), Value::U32(2048)),
            ("llama.embedding_length".to_string(), Value::U32(HIDDEN as u32)),
            ("llama.feed_forward_length".to_string(), Value::U32(INTERMEDIATE as u32)),
            ("llama.attention.head_count".to_string(), Value::U32(HEADS as u32)),
            ("llama.attention.head_count_kv".to_string(), Value::U32(KV_HEADS as u32)),
            ("llama.rope.freq_base".to_string(), Value::F32(500000.0)),
            ("llama.attention.layer_norm_rms_epsilon".to_string(), Value::F32(1e-5)),
            ("llama.vocab_size".to_string(), Value::U32(vocab as u32)),
            ("tokenizer.ggml.model".to_string(), Value::String("gpt2".to_string())),
            (
                "tokenizer.ggml.tokens".to_string(),
                Value::Array(tokens.iter().map(|t| Value::String(t.clone())).collect()),
            ),
            ("tokenizer.ggml.token_type".to_string(), Value::Array(token_types)),
            (
                "tokenizer.ggml.merges".to_string(),
                Value::Array(MERGES.iter().map(|m| Value::String(m.to_string())).collect()),
            ),
            ("tokenizer.ggml.bos_token_id".to_string(), Value::U32(special_id("<|begin_of_text|>"))),
            ("tokenizer.ggml.eos_token_id".to_string(), Value::U32(special_id("<|end_of_text|>"))),
            ("tokenizer.ggml.add_bos_token".to_string(), Value::Bool(true)),
            ("tokenizer.chat_template".to_string(), Value::String(LLAMA3_TEMPLATE.to_string())),
        ];
        let mut gguf = TinyGguf { metadata, tensors: Vec::new(), originals: BTreeMap::new(), types: BTreeMap::new() };
        gguf.add("token_embd.weight", &[vocab, HIDDEN], GgmlDType::Q8_0);
        gguf.add("output_norm.weight", &[HIDDEN], GgmlDType::F32);
        if !tied {
            gguf.add("output.weight", &[vocab, HIDDEN], GgmlDType::Q6K);
        }
        for layer in 0..LAYERS {
            let exact = layer == 0;
            gguf.add(
                &format!("blk.{layer}.attn_q.weight"),
                &[HEADS * HEAD_DIM, HIDDEN],
                if exact { GgmlDType::F32 } else { GgmlDType::Q4K },
            );
            gguf.add(
                &format!("blk.{layer}.attn_k.weight"),
                &[KV_HEADS * HEAD_DIM, HIDDEN],
                if exact { GgmlDType::F32 } else { GgmlDType::Q6K },
            );
            gguf.add(&format!("blk.{layer}.attn_v.weight"), &[KV_HEADS * HEAD_DIM, HIDDEN], GgmlDType::Q4_0);
            gguf.add(&format!("blk.{layer}.attn_output.weight"), &[HIDDEN, HEADS * HEAD_DIM], GgmlDType::Q4_1);
            gguf.add(&format!("blk.{layer}.ffn_gate.weight"), &[INTERMEDIATE, HIDDEN], GgmlDType::F16);
            gguf.add(&format!("blk.{layer}.ffn_up.weight"), &[INTERMEDIATE, HIDDEN], GgmlDType::Q8_0);
            gguf.add(&format!("blk.{layer}.ffn_down.weight"), &[HIDDEN, INTERMEDIATE], GgmlDType::Q4K);
            gguf.add(&format!("blk.{layer}.attn_norm.weight"), &[HIDDEN], GgmlDType::F32);
            gguf.add(&format!("blk.{layer}.ffn_norm.weight"), &[HIDDEN], GgmlDType::F32);
        }
        gguf
    }

    /// Adds a tensor of pseudo-random values stored as `dtype` (q/k permuted like llama.cpp).
    pub fn add(&mut self, name: &str, shape: &[usize], dtype: GgmlDType) {
        let n: usize = shape.iter().product();
        let seed = name.bytes().fold(7u64, |acc, b| acc.wrapping_mul(31).wrapping_add(u64::from(b)));
        let hf = pseudo_random(seed, n);
        let stored = if name.contains("attn_q") {
            llama_cpp_permute(&hf, shape[0], shape[1], HEADS)
        } else if name.contains("attn_k") {
            llama_cpp_permute(&hf, shape[0], shape[1], KV_HEADS)
        } else {
            hf.clone()
        };
        let tensor = Tensor::from_vec(stored, shape, &Device::Cpu).expect("tensor");
        let qtensor = QTensor::quantize(&tensor, dtype).expect("quantize");
        self.tensors.retain(|(n, _)| n != name);
        self.tensors.push((name.to_string(), qtensor));
        self.originals.insert(name.to_string(), (shape.to_vec(), hf));
        self.types.insert(name.to_string(), dtype);
    }

    /// Drops a tensor.
    pub fn remove_tensor(&mut self, name: &str) {
        self.tensors.retain(|(n, _)| n != name);
        self.originals.remove(name);
    }

    /// Sets (or replaces) a metadata key.
    pub fn set_key(&mut self, key: &str, value: Value) {
        self.remove_key(key);
        self.metadata.push((key.to_string(), value));
    }

    /// Drops a metadata key.
    pub fn remove_key(&mut self, key: &str) {
        self.metadata.retain(|(k, _)| k != key);
    }

    /// Writes the GGUF file.
    pub fn write(&self, path: &Path) {
        let mut file = std::fs::File::create(path).expect("create gguf");
        let metadata: Vec<(&str, &Value)> = self.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let tensors: Vec<(&str, &QTensor)> = self.tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        gguf_file::write(&mut file, &metadata, &tensors).expect("write gguf");
    }

    /// Id of a token of the tiny vocabulary.
    pub fn token_id(token: &str) -> u32 {
        tiny_tokens().iter().position(|t| t == token).expect("token in vocabulary") as u32
    }
}

/// Writes a fixture checkpoint named `name` under `root` and returns its path.
pub fn fixture(root: &Path, name: &str, spec: &FixtureSpec) -> PathBuf {
    let dir = root.join(name);
    write_checkpoint(&dir, spec).expect("fixture writes");
    dir
}

/// Runs the biasprune binary with `args`.
pub fn biasprune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_biasprune")).args(args).output().expect("binary runs")
}

/// Stderr of a finished command, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Hex sha256 of every file under `dir` (following symbolic links), by relative path.
pub fn hash_tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    hash_into(dir, "", &mut out);
    out
}

fn hash_into(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).expect("readable directory").flatten() {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let path = entry.path();
        if path.is_dir() {
            hash_into(&path, &format!("{name}/"), out);
        } else {
            let bytes = std::fs::read(&path).expect("readable file");
            out.insert(name, hex::encode(Sha256::digest(&bytes)));
        }
    }
}

/// Asserts a command failed with exit code 2 and a message containing every `needle`.
pub fn assert_bad_input(output: &Output, needles: &[&str]) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "expected exit 2, stderr: {err}");
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
}

/// Runs the biasprune binary with `args`, killing it and failing the test when it has not
/// finished within `seconds` (for inputs that used to make it hang).
pub fn biasprune_within(seconds: u64, args: &[&str]) -> Output {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_biasprune"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while child.try_wait().expect("child status").is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().expect("kill the hung binary");
            let _ = child.wait();
            panic!("biasprune {args:?} did not finish within {seconds} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("output of the finished binary")
}

/// Replaces `path` (a file, or nothing) with a FIFO.
pub fn make_fifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let c_path = std::ffi::CString::new(path.to_str().expect("UTF-8 path")).expect("no NUL");
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0, "mkfifo {}", path.display());
}
