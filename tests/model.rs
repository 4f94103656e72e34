//! The forward pass against candle-transformers' Llama, and its padding, cache,
//! layer-by-layer, hook and gradient paths against the plain forward pass.

mod common;

use std::path::{Path, PathBuf};

use biasprune::arch::Component;
use biasprune::checkpoint::Checkpoint;
use biasprune::fixture::{write_checkpoint, write_checkpoint_with_config, FixtureDtype, FixtureSpec};
use biasprune::model::{
    Batch, InputSite, LayerwiseRunner, LinearInput, LinearInputHook, Llama, LoadOptions, Logits, ModelError,
    SquaredNormStats,
};
use candle_core::{DType, Device, IndexOp, Tensor};
use serde_json::json;

/// Largest |a - b| divided by the largest |b|: the "relative" error the parity tests bound.
fn relative_error(a: &Tensor, b: &Tensor) -> f32 {
    let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    let scale = b.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    diff / scale
}

/// A generated checkpoint in its own temporary directory.
struct TinyModel {
    _root: tempfile::TempDir,
    dir: PathBuf,
}

impl TinyModel {
    fn path(&self) -> &Path {
        &self.dir
    }
}

/// The tiny test model: 2 layers, hidden 64, 4 query heads over 2 key/value heads, MLP 96.
fn tiny_spec(seed: u64) -> FixtureSpec {
    FixtureSpec { seed, intermediate_size: 96, num_shards: 1, ..FixtureSpec::default() }
}

/// Writes `spec` with the config.json keys of `overrides` (a JSON object) replaced.
fn write_model(spec: &FixtureSpec, overrides: serde_json::Value) -> TinyModel {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("model");
    write_checkpoint_with_config(&dir, spec, overrides.as_object().unwrap()).unwrap();
    TinyModel { _root: root, dir }
}

fn variants() -> Vec<(&'static str, FixtureSpec, serde_json::Value)> {
    let llama3 = json!({
        "rope_theta": 500_000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 64}
    });
    vec![
        ("gqa", tiny_spec(7), json!({})),
        ("tied+llama3", FixtureSpec { tie_word_embeddings: true, ..tiny_spec(7) }, llama3),
        ("mha", FixtureSpec { num_heads: 8, num_kv_heads: 8, ..tiny_spec(7) }, json!({})),
    ]
}

/// Last-position logits of candle-transformers' Llama, loaded once from `dir`, for each
/// unpadded sequence.
fn reference_logits(dir: &Path, sequences: &[Vec<u32>]) -> Vec<Tensor> {
    use candle_transformers::models::llama as reference;
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let cfg: reference::LlamaConfig = serde_json::from_str(&text).unwrap();
    let cfg = cfg.into_config(false);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    let vb = unsafe { candle_nn::VarBuilder::from_mmaped_safetensors(&files, DType::F32, &Device::Cpu).unwrap() };
    let model = reference::Llama::load(vb, &cfg).unwrap();
    sequences
        .iter()
        .map(|ids| {
            let mut cache = reference::Cache::new(false, DType::F32, &cfg, &Device::Cpu).unwrap();
            let input = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
            model.forward(&input, 0, &mut cache).unwrap().squeeze(0).unwrap()
        })
        .collect()
}

/// Asserts our last-position logits equal the reference's within 1e-4 relative, for the
/// fused (inference) and the differentiable path.
pub fn assert_parity_with_candle_transformers(dir: &Path, sequences: &[Vec<u32>]) {
    let expected = reference_logits(dir, sequences);
    for trainable in [false, true] {
        let opts = LoadOptions { trainable, ..LoadOptions::cpu_f32() };
        let model = Llama::load_dir(dir, opts).unwrap();
        for (ids, reference) in sequences.iter().zip(&expected) {
            let batch = Batch::left_padded(std::slice::from_ref(ids), 0, &Device::Cpu).unwrap();
            let ours = model.forward(&batch, None, Logits::Last).unwrap().squeeze(0).unwrap();
            let err = relative_error(&ours, reference);
            assert!(err < 1e-4, "trainable={trainable}: relative error {err} for {ids:?}");
        }
    }
}

fn prompts() -> Vec<Vec<u32>> {
    vec![vec![1, 17, 44, 9, 100, 3, 77, 12, 5], vec![1, 60], vec![1, 8, 8, 8, 120, 33]]
}

#[test]
fn logits_match_candle_transformers_on_tiny_models() {
    for (name, spec, overrides) in variants() {
        eprintln!("variant {name}");
        let dir = write_model(&spec, overrides);
        assert_parity_with_candle_transformers(dir.path(), &prompts());
    }
}

#[test]
fn logits_match_candle_transformers_on_the_fixture() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("fixture");
    write_checkpoint(&dir, &FixtureSpec::default()).unwrap();
    assert_parity_with_candle_transformers(&dir, &prompts());
}

/// The reference checkpoint (fetched by scripts/fetch-model.sh; a missing model fails the
/// test). BIASPRUNE_PARITY_MODEL points the test at another directory.
#[test]
fn logits_match_candle_transformers_on_reference_model() {
    let dir = std::env::var_os("BIASPRUNE_PARITY_MODEL").map(PathBuf::from).unwrap_or_else(common::reference_model);
    let ids: Vec<u32> = (0..40).map(|i| 100 + i * 37).collect();
    assert_parity_with_candle_transformers(&dir, &[ids, vec![1, 9690, 198, 2683, 359]]);
}

fn tiny_model(trainable: bool) -> (TinyModel, Llama) {
    let dir = write_model(&tiny_spec(3), json!({}));
    let model = Llama::load_dir(dir.path(), LoadOptions { trainable, ..LoadOptions::cpu_f32() }).unwrap();
    (dir, model)
}

#[test]
fn left_padded_rows_equal_their_unpadded_runs() {
    for trainable in [false, true] {
        let (_dir, model) = tiny_model(trainable);
        let seqs = prompts();
        let batch = Batch::left_padded(&seqs, 0, &Device::Cpu).unwrap();
        let all = model.forward(&batch, None, Logits::All).unwrap();
        let width = batch.ids().dim(1).unwrap();
        for (row, seq) in seqs.iter().enumerate() {
            let alone = Batch::left_padded(std::slice::from_ref(seq), 0, &Device::Cpu).unwrap();
            let expected = model.forward(&alone, None, Logits::All).unwrap().i(0).unwrap();
            let got = all.i((row, width - seq.len()..width)).unwrap();
            let err = relative_error(&got, &expected);
            assert!(err < 1e-5, "row {row} trainable={trainable}: {err}");
        }
    }
}

#[test]
fn cached_decoding_matches_the_full_forward_pass() {
    let (_dir, model) = tiny_model(false);
    let seqs = prompts();
    let prompt_len = 4;
    let prefix: Vec<Vec<u32>> = seqs.iter().map(|s| s[..prompt_len.min(s.len() - 1)].to_vec()).collect();
    let batch = Batch::left_padded(&prefix, 0, &Device::Cpu).unwrap();
    let mut cache = model.new_cache(batch.left_pad().to_vec(), 16).unwrap();
    let mut last = model.step(batch.ids(), &mut cache, Logits::Last).unwrap();
    let mut fed = prefix.clone();
    for step in 0..3 {
        let full = Batch::left_padded(&fed, 0, &Device::Cpu).unwrap();
        let expected = model.forward(&full, None, Logits::Last).unwrap();
        let err = relative_error(&last, &expected);
        assert!(err < 1e-5, "step {step}: {err}");
        let next: Vec<u32> = (0..fed.len() as u32).map(|r| 10 + r + step).collect();
        for (row, &t) in fed.iter_mut().zip(&next) {
            row.push(t);
        }
        let ids = Tensor::from_vec(next, (fed.len(), 1), &Device::Cpu).unwrap();
        last = model.step(&ids, &mut cache, Logits::Last).unwrap();
    }
    assert_eq!(cache.len(), batch.ids().dim(1).unwrap() + 3);
}

#[test]
fn layer_by_layer_equals_the_full_model_and_sees_the_same_inputs() {
    let (dir, model) = tiny_model(false);
    let batch = Batch::left_padded(&prompts(), 0, &Device::Cpu).unwrap();
    let mut full_stats = SquaredNormStats::new();
    let expected = model.forward(&batch, Some(&mut full_stats), Logits::All).unwrap();

    let src = Checkpoint::open(dir.path()).unwrap();
    let cfg = biasprune::model::config_from_dir(dir.path()).unwrap();
    let runner = LayerwiseRunner::new(&src, cfg.clone(), LoadOptions::cpu_f32(), &batch).unwrap();
    let mut stats = SquaredNormStats::new();
    let mut hidden = runner.embed(&batch).unwrap();
    for layer in 0..cfg.num_layers {
        hidden = runner.layer(layer, &hidden, Some(&mut stats)).unwrap();
    }
    let got = runner.finish(&hidden, Logits::All).unwrap();
    assert!(relative_error(&got, &expected) < 1e-6);
    for layer in 0..cfg.num_layers {
        for p in Component::ALL {
            assert_eq!(stats.squared_norms(layer, p).unwrap(), full_stats.squared_norms(layer, p).unwrap());
        }
    }
    assert!(runner.layer(cfg.num_layers, &hidden, None).is_err());
}

#[test]
fn hooks_see_four_inputs_per_layer_in_order_with_their_widths() {
    let (_dir, model) = tiny_model(false);
    let cfg = model.config().clone();
    let batch = Batch::left_padded(&prompts(), 0, &Device::Cpu).unwrap();
    let mut seen = Vec::new();
    let mut hook = |input: &LinearInput<'_>| -> Result<(), ModelError> {
        seen.push((input.layer, input.site, input.x.dims().to_vec(), input.token_mask.is_some()));
        Ok(())
    };
    model.forward(&batch, Some(&mut hook as &mut dyn LinearInputHook), Logits::Last).unwrap();
    let (rows, len) = batch.ids().dims2().unwrap();
    let mut expected = Vec::new();
    for layer in 0..cfg.num_layers {
        for (site, width) in [
            (InputSite::QkvInput, cfg.hidden_size),
            (InputSite::OProjInput, cfg.num_heads * cfg.head_dim),
            (InputSite::GateUpInput, cfg.hidden_size),
            (InputSite::DownProjInput, cfg.intermediate_size),
        ] {
            expected.push((layer, site, vec![rows, len, width], true));
        }
    }
    assert_eq!(seen, expected);
}

#[test]
fn squared_norm_stats_ignore_padding() {
    let (_dir, model) = tiny_model(false);
    let seqs = prompts();
    let mut batched = SquaredNormStats::new();
    let batch = Batch::left_padded(&seqs, 0, &Device::Cpu).unwrap();
    model.forward(&batch, Some(&mut batched), Logits::Last).unwrap();
    let mut separate = SquaredNormStats::new();
    for seq in &seqs {
        let alone = Batch::left_padded(std::slice::from_ref(seq), 0, &Device::Cpu).unwrap();
        model.forward(&alone, Some(&mut separate), Logits::Last).unwrap();
    }
    let tokens: usize = seqs.iter().map(Vec::len).sum();
    for layer in 0..2 {
        for p in Component::ALL {
            let a = batched.squared_norms(layer, p).unwrap().unwrap();
            let b = separate.squared_norms(layer, p).unwrap().unwrap();
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-4 * y.abs().max(1.0), "{layer} {p:?}: {x} vs {y}");
            }
        }
        assert_eq!(batched.token_count(layer, InputSite::DownProjInput), tokens as u64);
    }
}

#[test]
fn every_projection_weight_of_every_layer_gets_a_gradient() {
    let (_dir, model) = tiny_model(true);
    let seqs = prompts();
    let batch = Batch::left_padded(&seqs, 0, &Device::Cpu).unwrap();
    let logits = model.forward(&batch, None, Logits::All).unwrap();
    let (rows, len, vocab) = logits.dims3().unwrap();
    let inputs = logits.narrow(1, 0, len - 1).unwrap().reshape((rows * (len - 1), vocab)).unwrap();
    let targets = batch.ids().narrow(1, 1, len - 1).unwrap().flatten_all().unwrap();
    let loss = candle_nn::loss::cross_entropy(&inputs, &targets).unwrap();
    let grads = loss.backward().unwrap();
    for layer in 0..model.config().num_layers {
        for p in Component::ALL {
            let weight = model.projection_weight(layer, p).unwrap();
            let grad = grads.get(weight).unwrap_or_else(|| panic!("no gradient for {}", p.weight_name(layer)));
            let size = grad.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(size.is_finite() && size > 0.0, "{}: |grad| = {size}", p.weight_name(layer));
            assert_eq!(grad.dims(), weight.dims());
        }
    }
}

#[test]
fn inference_loading_records_no_gradients() {
    let (_dir, model) = tiny_model(false);
    let batch = Batch::left_padded(&prompts(), 0, &Device::Cpu).unwrap();
    let logits = model.forward(&batch, None, Logits::Last).unwrap();
    assert!(!logits.track_op());
}

#[test]
fn bf16_checkpoints_load_into_f32() {
    let dir = write_model(&FixtureSpec { dtype: FixtureDtype::BF16, ..tiny_spec(3) }, json!({}));
    let model = Llama::load_dir(dir.path(), LoadOptions::cpu_f32()).unwrap();
    let batch = Batch::left_padded(&prompts(), 0, &Device::Cpu).unwrap();
    let logits = model.forward(&batch, None, Logits::Last).unwrap();
    assert_eq!(logits.dims(), &[3, 288]);
    let (_f32_dir, f32_model) = tiny_model(false);
    let f32_logits = f32_model.forward(&batch, None, Logits::Last).unwrap();
    let err = relative_error(&logits, &f32_logits);
    assert!(err > 0.0 && err < 0.05, "bf16 rounding should change logits slightly: {err}");
}

#[test]
fn bf16_compute_on_cpu_is_rejected_with_a_reason() {
    let dir = write_model(&tiny_spec(1), json!({}));
    let opts = LoadOptions { dtype: DType::BF16, ..LoadOptions::cpu_f32() };
    let err = Llama::load_dir(dir.path(), opts).unwrap_err().to_string();
    assert!(err.contains("BF16") && err.contains("F32"), "{err}");
}

#[test]
fn a_missing_tensor_is_named() {
    let dir = write_model(&tiny_spec(1), json!({}));
    set_config_key(dir.path(), "num_hidden_layers", json!(3));
    let err = Llama::load_dir(dir.path(), LoadOptions::cpu_f32()).unwrap_err().to_string();
    assert!(err.contains("model.layers.2.self_attn.q_proj.weight"), "{err}");
}

#[test]
fn a_shape_mismatch_names_tensor_and_shapes() {
    let dir = write_model(&tiny_spec(1), json!({}));
    set_config_key(dir.path(), "intermediate_size", json!(100));
    let err = Llama::load_dir(dir.path(), LoadOptions::cpu_f32()).unwrap_err().to_string();
    assert!(
        err.contains("model.layers.0.mlp.gate_proj.weight") && err.contains("[96, 64]") && err.contains("[100, 64]"),
        "{err}"
    );
}

/// Replaces one key of the config.json in `dir`.
fn set_config_key(dir: &Path, key: &str, value: serde_json::Value) {
    let path = dir.join("config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config[key] = value;
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
}

#[test]
fn unsupported_config_values_are_rejected() {
    let resolve = |key: &str, value: serde_json::Value| {
        let mut config = tiny_spec(1).config_json();
        config[key] = value;
        biasprune::model::config_from_json(&config, Path::new("tiny"))
    };
    let yarn = resolve("rope_scaling", json!({"rope_type": "yarn", "factor": 4.0}));
    assert!(yarn.unwrap_err().to_string().contains("yarn"));
    let odd = resolve("num_key_value_heads", json!(3));
    assert!(odd.unwrap_err().to_string().contains("num_key_value_heads"));
    assert_eq!(resolve("head_dim", json!(32)).unwrap().head_dim, 32);
}
