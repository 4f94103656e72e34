//! Opening generated checkpoints: tensors, shapes and architecture come out as generated.

use biasprune::arch::{Architecture, Component};
use biasprune::checkpoint::Checkpoint;
use biasprune::fixture::{write_checkpoint, FixtureDtype, FixtureSpec};

#[test]
fn generated_fixture_opens_with_expected_layout() {
    for (dtype, shards) in [(FixtureDtype::F32, 2), (FixtureDtype::BF16, 3), (FixtureDtype::F16, 1)] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ckpt");
        let spec = FixtureSpec { dtype, num_shards: shards, ..FixtureSpec::default() };
        write_checkpoint(&dir, &spec).unwrap();
        let ckpt = Checkpoint::open(&dir).unwrap();
        assert_eq!(ckpt.shards().len(), shards);
        let arch = Architecture::of_checkpoint(&ckpt).unwrap();
        assert_eq!((arch.num_layers, arch.num_heads, arch.num_kv_heads, arch.head_dim), (2, 4, 2, 16));
        assert_eq!(ckpt.tensor_names().count(), 2 + 2 * 9 + 1);
        let q = ckpt.tensor("model.layers.1.self_attn.q_proj.weight").unwrap();
        assert_eq!(q.shape, arch.linear_shape(Component::Q));
        assert_eq!(q.data.len(), 64 * 64 * dtype_size(dtype));
        if shards > 1 {
            assert_eq!(ckpt.index_total_size(), Some(ckpt.total_tensor_bytes()));
        }
    }
}

#[test]
fn generator_is_deterministic_and_seed_sensitive() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes_of = |name: &str, seed: u64, shards: usize| {
        let dir = tmp.path().join(name);
        write_checkpoint(&dir, &FixtureSpec { seed, num_shards: shards, ..FixtureSpec::default() }).unwrap();
        let ckpt = Checkpoint::open(&dir).unwrap();
        ckpt.tensor("model.layers.0.mlp.down_proj.weight").unwrap().data.to_vec()
    };
    let a = bytes_of("a", 7, 2);
    assert_eq!(a, bytes_of("b", 7, 3), "tensor bytes must not depend on sharding");
    assert_ne!(a, bytes_of("c", 8, 2));
}

fn dtype_size(dtype: FixtureDtype) -> usize {
    match dtype {
        FixtureDtype::F32 => 4,
        FixtureDtype::BF16 | FixtureDtype::F16 => 2,
    }
}

#[test]
fn inspect_prints_correct_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    let spec = FixtureSpec { num_layers: 3, tie_word_embeddings: true, ..FixtureSpec::default() };
    write_checkpoint(&dir, &spec).unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_biasprune"))
        .args(["inspect", dir.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let (h, i, kv) = (64u64, 128u64, 2 * 16u64);
    let per_layer = [h * h, kv * h, kv * h, h * h, i * h, i * h, h * i];
    for layer in 0..3 {
        let components = &report["layers"][layer]["components"];
        let got: Vec<u64> =
            ["q", "k", "v", "o", "gate", "up", "down"].iter().map(|c| components[c].as_u64().unwrap()).collect();
        assert_eq!(got, per_layer);
        assert_eq!(report["layers"][layer]["total"], per_layer.iter().sum::<u64>());
    }
    let vocab = spec.vocab_size as u64;
    assert_eq!(report["other_parameters"], vocab * h + 3 * 2 * h + h, "tied: embedding, norms, final norm");
    assert_eq!(report["total_parameters"], 3 * per_layer.iter().sum::<u64>() + vocab * h + 7 * h);
    assert_eq!(report["architecture"]["num_kv_heads"], 2);
    assert_eq!(report["tensors"].as_array().unwrap().len(), 1 + 3 * 9 + 1);
    let text = std::process::Command::new(env!("CARGO_BIN_EXE_biasprune"))
        .args(["inspect", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("LlamaForCausalLM: 3 layers"), "{text}");
    let total_line = text.lines().find(|l| l.starts_with("total parameters")).expect("a total line");
    assert_eq!(
        total_line.split_whitespace().last().unwrap(),
        (3 * per_layer.iter().sum::<u64>() + vocab * h + 7 * h).to_string()
    );
}
