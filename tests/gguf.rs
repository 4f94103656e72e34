//! import-gguf: a tiny GGUF Llama built in code (values, q/k permutation, quantized types,
//! config, tokenizer, determinism, errors) and the real SmolLM2-135M-Instruct reference model.

mod common;

use std::path::Path;
use std::process::Command;

use biasprune::gguf::{import_gguf, GgufError, OutputDtype};
use biasprune::progress::NoProgress;
use biasprune::tokenizer::Tokenizer;
use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::GgmlDType;
use common::{TinyGguf, HEADS, HEAD_DIM, HIDDEN, INTERMEDIATE, KV_HEADS, LAYERS};
use safetensors::SafeTensors;

fn import(gguf: &TinyGguf, dir: &Path, dtype: OutputDtype) -> Result<std::path::PathBuf, GgufError> {
    let file = dir.join("tiny.gguf");
    gguf.write(&file);
    let out = dir.join("ckpt");
    import_gguf(&file, &out, dtype, &NoProgress).map(|summary| summary.out)
}

fn hf_name(gguf_name: &str) -> String {
    biasprune::gguf::tensors::hf_name(gguf_name).expect("known name").0
}

fn f32_values(st: &SafeTensors, name: &str) -> (Vec<usize>, Vec<f32>) {
    let view = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
    let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    (view.shape().to_vec(), values)
}

/// Largest absolute difference a value may show after quantizing values in [-1, 1).
fn tolerance(dtype: GgmlDType) -> f32 {
    match dtype {
        GgmlDType::F32 => 0.0,
        GgmlDType::F16 => 5e-4,
        GgmlDType::Q8_0 => 0.01,
        GgmlDType::Q6K => 0.05,
        // Q4_0 scales by the signed extreme / -8, so the opposite extreme may clip by one step (1/8).
        GgmlDType::Q4_0 => 0.13,
        GgmlDType::Q4_1 => 0.1,
        GgmlDType::Q4K => 0.15,
        other => panic!("no tolerance for {other:?}"),
    }
}

#[test]
fn imported_values_match_originals_within_quantization_error_and_qk_rows_are_unpermuted() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = TinyGguf::new(false);
    let out = import(&gguf, dir.path(), OutputDtype::F32).unwrap();
    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    let mut expected: Vec<String> = gguf.originals.keys().map(|n| hf_name(n)).collect();
    expected.sort();
    assert_eq!(names, expected);
    for (gguf_name, (shape, original)) in &gguf.originals {
        let dtype = gguf.types[gguf_name];
        let (got_shape, got) = f32_values(&st, &hf_name(gguf_name));
        assert_eq!(&got_shape, shape, "{gguf_name}");
        let worst = got.iter().zip(original).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= tolerance(dtype), "{gguf_name} ({dtype:?}): max abs error {worst} > {}", tolerance(dtype));
    }
}

#[test]
fn f32_q_and_k_round_trip_bit_exactly_through_llama_cpp_permutation() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = TinyGguf::new(true);
    let out = import(&gguf, dir.path(), OutputDtype::F32).unwrap();
    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    for name in ["blk.0.attn_q.weight", "blk.0.attn_k.weight"] {
        let (_, got) = f32_values(&st, &hf_name(name));
        assert_eq!(got, gguf.originals[name].1, "{name}");
    }
}

#[test]
fn bf16_output_is_the_rounded_f32_output() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = TinyGguf::new(true);
    let f32_dir = dir.path().join("f32");
    let bf16_dir = dir.path().join("bf16");
    std::fs::create_dir_all(&f32_dir).unwrap();
    std::fs::create_dir_all(&bf16_dir).unwrap();
    let f32_out = import(&gguf, &f32_dir, OutputDtype::F32).unwrap();
    let bf16_out = import(&gguf, &bf16_dir, OutputDtype::Bf16).unwrap();
    let f32_bytes = std::fs::read(f32_out.join("model.safetensors")).unwrap();
    let bf16_bytes = std::fs::read(bf16_out.join("model.safetensors")).unwrap();
    let (f32_st, bf16_st) =
        (SafeTensors::deserialize(&f32_bytes).unwrap(), SafeTensors::deserialize(&bf16_bytes).unwrap());
    for name in f32_st.names() {
        let (_, values) = f32_values(&f32_st, name);
        let view = bf16_st.tensor(name).unwrap();
        assert_eq!(view.dtype(), safetensors::Dtype::BF16);
        let expected: Vec<u8> = values.iter().flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()).collect();
        assert_eq!(view.data(), expected.as_slice(), "{name}");
    }
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bf16_out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["torch_dtype"], "bfloat16");
}

#[test]
fn config_json_comes_from_the_metadata_and_tied_embeddings_from_a_missing_output() {
    let dir = tempfile::tempdir().unwrap();
    let tied = import(&TinyGguf::new(true), dir.path(), OutputDtype::F32).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(tied.join("config.json")).unwrap()).unwrap();
    let vocab = common::tiny_tokens().len();
    assert_eq!(config["architectures"][0], "LlamaForCausalLM");
    assert_eq!(config["hidden_size"], HIDDEN);
    assert_eq!(config["intermediate_size"], INTERMEDIATE);
    assert_eq!(config["num_hidden_layers"], LAYERS);
    assert_eq!(config["num_attention_heads"], HEADS);
    assert_eq!(config["num_key_value_heads"], KV_HEADS);
    assert_eq!(config["head_dim"], HEAD_DIM);
    assert_eq!(config["rms_norm_eps"], 1e-5);
    assert_eq!(config["rope_theta"], 500000.0);
    assert_eq!(config["max_position_embeddings"], 2048);
    assert_eq!(config["vocab_size"], vocab);
    assert_eq!(config["tie_word_embeddings"], true);
    assert_eq!(config["bos_token_id"], TinyGguf::token_id("<|begin_of_text|>"));
    assert_eq!(config["eos_token_id"], TinyGguf::token_id("<|end_of_text|>"));
    assert!(config.get("rope_scaling").is_none());
    let generation: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tied.join("generation_config.json")).unwrap()).unwrap();
    assert_eq!(generation["eos_token_id"], TinyGguf::token_id("<|end_of_text|>"));

    let untied_dir = dir.path().join("untied");
    std::fs::create_dir_all(&untied_dir).unwrap();
    let mut gguf = TinyGguf::new(false);
    gguf.set_key("llama.rope.scaling.type", Value::String("linear".to_string()));
    gguf.set_key("llama.rope.scaling.factor", Value::F32(4.0));
    let untied = import(&gguf, &untied_dir, OutputDtype::F32).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(untied.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["tie_word_embeddings"], false);
    assert_eq!(config["rope_scaling"], serde_json::json!({"factor": 4.0, "rope_type": "linear"}));
}

#[test]
fn tokenizer_from_gguf_applies_merges_special_tokens_and_bos() {
    let dir = tempfile::tempdir().unwrap();
    let out = import(&TinyGguf::new(true), dir.path(), OutputDtype::F32).unwrap();
    let tokenizer = Tokenizer::from_checkpoint_dir(&out).unwrap();
    let hello = TinyGguf::token_id("hello");
    let world = TinyGguf::token_id("Ġworld");
    let eot = TinyGguf::token_id("<|eot_id|>");
    let bos = TinyGguf::token_id("<|begin_of_text|>");
    assert_eq!(tokenizer.encode("hello world", false).unwrap(), vec![hello, world]);
    assert_eq!(tokenizer.encode("hello world", true).unwrap(), vec![bos, hello, world]);
    assert_eq!(tokenizer.encode("hello<|eot_id|>", false).unwrap(), vec![hello, eot]);
    let text = "hello world, Zoë € 5\n";
    let ids = tokenizer.encode(text, false).unwrap();
    assert_eq!(tokenizer.decode(&ids, false).unwrap(), text);
    assert_eq!(tokenizer.decode(&[hello, eot], true).unwrap(), "hello");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("tokenizer_config.json")).unwrap()).unwrap();
    assert_eq!(config["bos_token"], "<|begin_of_text|>");
    assert_eq!(config["eos_token"], "<|end_of_text|>");
    assert_eq!(config["chat_template"], common::LLAMA3_TEMPLATE);
}

#[test]
fn importing_twice_gives_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = TinyGguf::new(false);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let (a, b) = (import(&gguf, &a, OutputDtype::F32).unwrap(), import(&gguf, &b, OutputDtype::F32).unwrap());
    for file in
        ["model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]
    {
        assert_eq!(std::fs::read(a.join(file)).unwrap(), std::fs::read(b.join(file)).unwrap(), "{file}");
    }
}

fn import_error(gguf: &TinyGguf) -> (String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let err = import(gguf, dir.path(), OutputDtype::F32).unwrap_err().to_string();
    let left: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    (err, left)
}

#[test]
fn missing_metadata_key_is_named_and_nothing_is_written() {
    let mut gguf = TinyGguf::new(true);
    gguf.remove_key("llama.block_count");
    let (err, left) = import_error(&gguf);
    assert!(err.contains("`llama.block_count` is missing"), "{err}");
    assert_eq!(left, vec!["tiny.gguf".to_string()]);
}

#[test]
fn missing_tensor_is_named() {
    let mut gguf = TinyGguf::new(true);
    gguf.remove_tensor("blk.1.ffn_up.weight");
    let (err, left) = import_error(&gguf);
    assert!(err.contains("`blk.1.ffn_up.weight` is missing"), "{err}");
    assert_eq!(left, vec!["tiny.gguf".to_string()]);
}

#[test]
fn unknown_tensor_is_named_with_the_reason() {
    let mut gguf = TinyGguf::new(true);
    gguf.add("rope_freqs.weight", &[32], GgmlDType::F32);
    let (err, _) = import_error(&gguf);
    assert!(err.contains("`rope_freqs.weight` is not supported") && err.contains("llama3 rope scaling"), "{err}");
}

#[test]
fn shape_disagreeing_with_metadata_is_reported() {
    let mut gguf = TinyGguf::new(true);
    gguf.add("blk.0.ffn_up.weight", &[INTERMEDIATE / 2, HIDDEN], GgmlDType::F32);
    let (err, _) = import_error(&gguf);
    assert!(err.contains("blk.0.ffn_up.weight") && err.contains("[512, 256]") && err.contains("[256, 256]"), "{err}");
}

#[test]
fn non_llama_architecture_and_non_bpe_tokenizer_are_refused() {
    let mut gguf = TinyGguf::new(true);
    gguf.set_key("general.architecture", Value::String("gemma".to_string()));
    let (err, _) = import_error(&gguf);
    assert!(err.contains("general.architecture") && err.contains("gemma"), "{err}");
    let mut gguf = TinyGguf::new(true);
    gguf.set_key("tokenizer.ggml.model", Value::String("llama".to_string()));
    let (err, _) = import_error(&gguf);
    assert!(err.contains("tokenizer.ggml.model") && err.contains("\"llama\""), "{err}");
}

#[test]
fn existing_output_is_refused_with_exit_code_2_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiny.gguf");
    TinyGguf::new(true).write(&file);
    let out = dir.path().join("ckpt");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), b"mine").unwrap();
    let result = Command::new(env!("CARGO_BIN_EXE_biasprune"))
        .arg("import-gguf")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(std::fs::read(out.join("keep.txt")).unwrap(), b"mine");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
}

#[test]
fn cli_imports_and_prints_a_json_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiny.gguf");
    TinyGguf::new(true).write(&file);
    let out = dir.path().join("ckpt");
    let result = Command::new(env!("CARGO_BIN_EXE_biasprune"))
        .args(["--quiet", "import-gguf"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args(["--dtype", "bf16", "--json"])
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(0), "{}", String::from_utf8_lossy(&result.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(summary["tensors"], 2 + 9 * LAYERS);
    assert_eq!(summary["dtype"], "bfloat16");
    assert_eq!(summary["tied_embeddings"], true);
    assert!(out.join("model.safetensors").is_file());
}

// ---- the reference model (imported by scripts/fetch-model.sh) ----

#[test]
fn reference_model_has_smollm2_135m_shapes_and_config() {
    let dir = common::reference_model();
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["num_hidden_layers"], 30);
    assert_eq!(config["hidden_size"], 576);
    assert_eq!(config["num_attention_heads"], 9);
    assert_eq!(config["num_key_value_heads"], 3);
    assert_eq!(config["head_dim"], 64);
    assert_eq!(config["intermediate_size"], 1536);
    assert_eq!(config["vocab_size"], 49152);
    assert_eq!(config["tie_word_embeddings"], true);
    assert_eq!(config["rope_theta"], 100000.0);
    assert_eq!(config["rms_norm_eps"], 1e-5);
    assert_eq!(config["max_position_embeddings"], 8192);
    assert_eq!(config["bos_token_id"], 1);
    assert_eq!(config["eos_token_id"], 2);
    assert_eq!(config["torch_dtype"], "float32");
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.len(), 2 + 9 * 30);
    assert!(st.tensor("lm_head.weight").is_err(), "tied embeddings: no lm_head");
    let shape = |name: &str| st.tensor(name).unwrap().shape().to_vec();
    assert_eq!(shape("model.embed_tokens.weight"), vec![49152, 576]);
    assert_eq!(shape("model.norm.weight"), vec![576]);
    for layer in [0, 29] {
        let p = format!("model.layers.{layer}");
        assert_eq!(shape(&format!("{p}.self_attn.q_proj.weight")), vec![576, 576]);
        assert_eq!(shape(&format!("{p}.self_attn.k_proj.weight")), vec![192, 576]);
        assert_eq!(shape(&format!("{p}.self_attn.v_proj.weight")), vec![192, 576]);
        assert_eq!(shape(&format!("{p}.self_attn.o_proj.weight")), vec![576, 576]);
        assert_eq!(shape(&format!("{p}.mlp.gate_proj.weight")), vec![1536, 576]);
        assert_eq!(shape(&format!("{p}.mlp.up_proj.weight")), vec![1536, 576]);
        assert_eq!(shape(&format!("{p}.mlp.down_proj.weight")), vec![576, 1536]);
        assert_eq!(shape(&format!("{p}.input_layernorm.weight")), vec![576]);
        assert_eq!(shape(&format!("{p}.post_attention_layernorm.weight")), vec![576]);
    }
}

#[test]
fn reference_tokenizer_gives_hugging_face_ids_and_round_trips() {
    let tokenizer = Tokenizer::from_checkpoint_dir(&common::reference_model()).unwrap();
    let cases: [(&str, &[u32]); 4] = [
        (
            "I want to buy a bicycle from DaShawn Washington.",
            &[57, 1277, 288, 4571, 253, 19018, 429, 20845, 67, 3250, 839, 4438, 30],
        ),
        ("D'Andre Washington", &[52, 23, 3528, 257, 4438]),
        ("Zoë Müller paid 5 € — ok?", &[74, 95, 26547, 30919, 33211, 5940, 216, 37, 24927, 1841, 10907, 47]),
        ("  $1,200.50\n", &[216, 1885, 33, 28, 34, 32, 32, 30, 37, 32, 198]),
    ];
    for (text, expected) in cases {
        let ids = tokenizer.encode(text, false).unwrap();
        assert_eq!(ids, expected, "{text:?}");
        assert_eq!(tokenizer.decode(&ids, false).unwrap(), text);
    }
    assert_eq!(tokenizer.vocab_size(), 49152);
}

#[test]
fn imported_checkpoints_pass_the_checkpoint_reader_and_architecture_checks() {
    use biasprune::arch::Architecture;
    use biasprune::checkpoint::Checkpoint;
    let dir = tempfile::tempdir().unwrap();
    for tied in [true, false] {
        let sub = dir.path().join(format!("tied-{tied}"));
        std::fs::create_dir_all(&sub).unwrap();
        let out = import(&TinyGguf::new(tied), &sub, OutputDtype::Bf16).unwrap();
        let ckpt = Checkpoint::open(&out).unwrap();
        let arch = Architecture::of_checkpoint(&ckpt).unwrap();
        assert_eq!(arch.expected_tensors().len(), ckpt.tensor_names().count(), "tied={tied}");
        assert_eq!(arch.tie_word_embeddings, tied);
    }
    let ckpt = Checkpoint::open(&common::reference_model()).unwrap();
    let arch = Architecture::of_checkpoint(&ckpt).unwrap();
    assert_eq!(arch.expected_tensors().len(), ckpt.tensor_names().count());
    assert_eq!((arch.num_layers, arch.num_heads, arch.num_kv_heads, arch.head_dim), (30, 9, 3, 64));
}

#[test]
fn reference_gguf_imports_to_pinned_bytes() {
    // Pinned after checking the weights bit-exactly against gguf-py 0.19's dequantize followed by
    // the inverse of convert_hf_to_gguf.py's permute (transformers' reverse_permute_weights).
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let out =
        import_gguf(&common::reference_gguf(), &dir.path().join("smollm2"), OutputDtype::F32, &NoProgress).unwrap().out;
    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&bytes)), REFERENCE_SAFETENSORS_SHA256);
    let cached = std::fs::read(common::reference_model().join("model.safetensors")).unwrap();
    assert!(
        cached == bytes,
        "the cached reference model differs from a fresh import; rerun scripts/fetch-model.sh after removing it"
    );
}

const REFERENCE_SAFETENSORS_SHA256: &str = "a672150fb4f99d7c8f4168cecdd464069c0ef3a37d8113f22ddb9d48031d03cd";

#[test]
fn alignment_that_is_zero_or_not_a_power_of_two_of_at_least_8_is_refused() {
    for bad in [0u32, 3, 12] {
        let mut gguf = TinyGguf::new(true);
        gguf.set_key("general.alignment", Value::U32(bad));
        let (err, left) = import_error(&gguf);
        assert!(err.contains("`general.alignment`: expected a power of two of at least 8"), "{bad}: {err}");
        assert!(err.contains(&format!("found {bad}")), "{bad}: {err}");
        assert_eq!(left, vec!["tiny.gguf".to_string()], "{bad}: nothing is written");
    }
    let mut gguf = TinyGguf::new(true);
    gguf.set_key("general.alignment", Value::U32(32));
    let dir = tempfile::tempdir().unwrap();
    import(&gguf, dir.path(), OutputDtype::F32).expect("the default alignment, stated, imports");
}

#[test]
fn huge_block_count_is_refused_before_allocating_per_layer_names() {
    let mut gguf = TinyGguf::new(true);
    gguf.set_key("llama.block_count", Value::U32(u32::MAX));
    let (err, left) = import_error(&gguf);
    assert!(err.contains("`llama.block_count`: expected at most 20 layers"), "{err}");
    assert!(err.contains(&format!("found {}", u32::MAX)), "{err}");
    assert_eq!(left, vec!["tiny.gguf".to_string()]);
}

#[test]
fn duplicate_metadata_key_or_tensor_name_is_refused_by_name() {
    let mut gguf = TinyGguf::new(true);
    gguf.metadata.push(("llama.context_length".to_string(), Value::U32(4096)));
    let (err, _) = import_error(&gguf);
    assert!(err.contains("metadata key `llama.context_length` appears twice"), "{err}");
    let mut gguf = TinyGguf::new(true);
    let zeros = candle_core::Tensor::zeros(HIDDEN, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    let duplicate = candle_core::quantized::QTensor::quantize(&zeros, GgmlDType::F32).unwrap();
    gguf.tensors.push(("output_norm.weight".to_string(), duplicate));
    let (err, _) = import_error(&gguf);
    assert!(err.contains("tensor `output_norm.weight` appears twice"), "{err}");
}
