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
        let dir = tmp.path().join(format!("{name}"));
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
