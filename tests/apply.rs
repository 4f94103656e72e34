//! `biasprune apply`: masked entries become zero, every other byte is copied exactly, digests
//! are right, and the output appears atomically or not at all.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use biasprune::arch::{linear_weight_name, Architecture, Component};
use biasprune::checkpoint::Checkpoint;
use biasprune::fixture::{FixtureDtype, FixtureSpec};
use biasprune::mask::{save_mask, BitMask, HeadMode, PruneMask};
use common::{assert_bad_input, biasprune, fixture, hash_tree, stderr};
use rand::{Rng, SeedableRng};

fn random_bits(rows: usize, cols: usize, density: f64, seed: u64) -> BitMask {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut bits = BitMask::new(rows, cols);
    for r in 0..rows {
        for c in 0..cols {
            if rng.random_bool(density) {
                bits.set(r, c);
            }
        }
    }
    bits
}

fn masks(arch: &Architecture) -> Vec<(&'static str, PruneMask)> {
    let q = linear_weight_name(0, Component::Q);
    let down = linear_weight_name(1, Component::Down);
    let [qr, qc] = arch.linear_shape(Component::Q);
    let [dr, dc] = arch.linear_shape(Component::Down);
    let weight = PruneMask {
        weights: BTreeMap::from([(q.clone(), random_bits(qr, qc, 0.1, 1)), (down, random_bits(dr, dc, 0.3, 2))]),
        ..PruneMask::default()
    };
    let rows = PruneMask {
        rows: BTreeMap::from([
            (linear_weight_name(1, Component::K), BTreeSet::from([0, 5, 31])),
            (linear_weight_name(0, Component::Up), BTreeSet::from([127])),
        ]),
        mlp_units: BTreeMap::from([(1, BTreeSet::from([3, 64, 100]))]),
        ..PruneMask::default()
    };
    let heads_o = PruneMask {
        heads: BTreeMap::from([(0, BTreeSet::from([1])), (1, BTreeSet::from([0, 3]))]),
        ..PruneMask::default()
    };
    let heads_q = PruneMask { head_mode: HeadMode::QProjRows, ..heads_o.clone() };
    let mut combined = weight.clone();
    combined.rows = rows.rows.clone();
    combined.mlp_units = BTreeMap::from([(0, BTreeSet::from([7]))]);
    combined.heads = BTreeMap::from([(0, BTreeSet::from([2]))]);
    combined.weights.insert(linear_weight_name(0, Component::O), random_bits(64, 64, 0.05, 3));
    vec![("weight", weight), ("row", rows), ("head-o", heads_o), ("head-q", heads_q), ("combined", combined)]
}

/// Brute-force list of zeroed (row, col) per tensor, straight from the mask's definition.
fn expected_zeros(mask: &PruneMask, arch: &Architecture) -> BTreeMap<String, BTreeSet<(usize, usize)>> {
    let mut out: BTreeMap<String, BTreeSet<(usize, usize)>> = BTreeMap::new();
    let shape = |name: &str| {
        let (_, component) = biasprune::arch::classify_tensor(name).unwrap();
        arch.linear_shape(component)
    };
    let add_rows = |out: &mut BTreeMap<_, BTreeSet<_>>, name: String, rows: &mut dyn Iterator<Item = usize>| {
        let [_, cols] = shape(&name);
        let set = out.entry(name).or_default();
        for r in rows {
            set.extend((0..cols).map(|c| (r, c)));
        }
    };
    for (name, bits) in &mask.weights {
        let set = out.entry(name.clone()).or_default();
        for r in 0..bits.rows() {
            for c in 0..bits.cols() {
                if bits.get(r, c) {
                    set.insert((r, c));
                }
            }
        }
    }
    for (name, rows) in &mask.rows {
        add_rows(&mut out, name.clone(), &mut rows.iter().copied());
    }
    let add_cols = |out: &mut BTreeMap<_, BTreeSet<_>>, name: String, cols: &[usize]| {
        let [rows, _] = shape(&name);
        let set = out.entry(name).or_default();
        for r in 0..rows {
            set.extend(cols.iter().map(|&c| (r, c)));
        }
    };
    for (&layer, units) in &mask.mlp_units {
        let units: Vec<usize> = units.iter().copied().collect();
        add_rows(&mut out, linear_weight_name(layer, Component::Gate), &mut units.iter().copied());
        add_rows(&mut out, linear_weight_name(layer, Component::Up), &mut units.iter().copied());
        add_cols(&mut out, linear_weight_name(layer, Component::Down), &units);
    }
    for (&layer, heads) in &mask.heads {
        let span: Vec<usize> = heads.iter().flat_map(|&h| h * arch.head_dim..(h + 1) * arch.head_dim).collect();
        match mask.head_mode {
            HeadMode::OProjColumns => add_cols(&mut out, linear_weight_name(layer, Component::O), &span),
            HeadMode::QProjRows => add_rows(&mut out, linear_weight_name(layer, Component::Q), &mut span.into_iter()),
        }
    }
    out
}

/// The input shard bytes with the expected entries zeroed.
fn expected_shard_bytes(
    ckpt: &Checkpoint,
    shard: usize,
    zeros: &BTreeMap<String, BTreeSet<(usize, usize)>>,
) -> Vec<u8> {
    let shard = &ckpt.shards()[shard];
    let mut bytes = shard.bytes().to_vec();
    for info in shard.header().tensors() {
        let Some(entries) = zeros.get(&info.name) else { continue };
        let element = info.dtype.bitsize() / 8;
        let cols = info.shape[1];
        for &(r, c) in entries {
            let at = shard.header().data_start() + info.start + (r * cols + c) * element;
            bytes[at..at + element].fill(0);
        }
    }
    bytes
}

#[test]
fn apply_zeroes_exactly_the_mask_and_copies_every_other_byte() {
    let tmp = tempfile::tempdir().unwrap();
    for (dtype, shards) in [(FixtureDtype::F32, 2), (FixtureDtype::BF16, 3), (FixtureDtype::F16, 1)] {
        let name = format!("{dtype:?}");
        let input = fixture(tmp.path(), &name, &FixtureSpec { dtype, num_shards: shards, ..FixtureSpec::default() });
        let before = hash_tree(&input);
        let ckpt = Checkpoint::open(&input).unwrap();
        let arch = Architecture::of_checkpoint(&ckpt).unwrap();
        for (granularity, mask) in masks(&arch) {
            let mask_dir = tmp.path().join(format!("{name}-{granularity}-mask"));
            save_mask(&mask_dir, &mask).unwrap();
            let out = tmp.path().join(format!("{name}-{granularity}-out"));
            let run = biasprune(&[
                "apply",
                input.to_str().unwrap(),
                "--mask",
                mask_dir.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--json",
            ]);
            assert!(run.status.success(), "{granularity}: {}", stderr(&run));
            let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();

            let zeros = expected_zeros(&mask, &arch);
            for (i, shard) in ckpt.shards().iter().enumerate() {
                let written = std::fs::read(out.join(shard.file_name())).unwrap();
                assert!(
                    written == expected_shard_bytes(&ckpt, i, &zeros),
                    "{name} {granularity}: {} differs",
                    shard.file_name()
                );
            }
            let expected_total: usize = zeros.values().map(BTreeSet::len).sum();
            assert_eq!(report["total_zeroed"], expected_total as u64, "{name} {granularity}");
            for (tensor, entries) in &zeros {
                assert_eq!(report["zeroed"][tensor], entries.len() as u64, "{tensor}");
            }

            let fresh = hash_tree(&out);
            let recorded: BTreeMap<String, String> = report["files"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v["sha256"].as_str().unwrap().to_string()))
                .collect();
            assert_eq!(recorded, fresh, "recorded digests equal a fresh hash of every output file");
            for file in before.keys().filter(|f| !f.ends_with(".safetensors")) {
                assert_eq!(before[file], fresh[file], "non-weight file {file} copied unchanged");
            }
            assert_eq!(hash_tree(&input), before, "input unchanged");
        }
    }
}

/// Shards several windows long, whose rows do not divide the window: rows (and the tensors
/// themselves) straddle window boundaries, yet exactly the masked entries become zero.
#[test]
fn rows_straddling_write_windows_are_zeroed_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = FixtureSpec {
        dtype: FixtureDtype::BF16,
        num_layers: 2,
        hidden_size: 1000,
        intermediate_size: 2999,
        num_heads: 10,
        num_kv_heads: 2,
        num_shards: 2,
        ..FixtureSpec::default()
    };
    let input = fixture(tmp.path(), "in", &spec);
    let ckpt = Checkpoint::open(&input).unwrap();
    let arch = Architecture::of_checkpoint(&ckpt).unwrap();
    let window = biasprune::surgery::CHUNK_BYTES;
    assert!(ckpt.shards().iter().all(|s| s.bytes().len() > 2 * window), "every shard spans several windows");
    let [dr, dc] = arch.linear_shape(Component::Down);
    let [qr, qc] = arch.linear_shape(Component::Q);
    let mask = PruneMask {
        weights: BTreeMap::from([
            (linear_weight_name(0, Component::Down), random_bits(dr, dc, 0.2, 4)),
            (linear_weight_name(1, Component::Q), random_bits(qr, qc, 0.05, 5)),
        ]),
        rows: BTreeMap::from([(linear_weight_name(1, Component::Gate), BTreeSet::from([0, 699, 2998]))]),
        mlp_units: BTreeMap::from([(1, BTreeSet::from([1, 1500, 2998]))]),
        heads: BTreeMap::from([(0, BTreeSet::from([9])), (1, BTreeSet::from([0, 4]))]),
        ..PruneMask::default()
    };
    let mask_dir = tmp.path().join("mask");
    save_mask(&mask_dir, &mask).unwrap();
    let out = tmp.path().join("out");
    let args = apply_args(&input, &mask_dir, &out);
    let run = biasprune(&[args.as_slice(), &["--json"]].concat());
    assert!(run.status.success(), "{}", stderr(&run));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();

    let zeros = expected_zeros(&mask, &arch);
    for (i, shard) in ckpt.shards().iter().enumerate() {
        let written = std::fs::read(out.join(shard.file_name())).unwrap();
        assert!(written == expected_shard_bytes(&ckpt, i, &zeros), "{} differs", shard.file_name());
    }
    let expected_total: usize = zeros.values().map(BTreeSet::len).sum();
    assert_eq!(report["total_zeroed"], expected_total as u64);
    for (tensor, entries) in &zeros {
        assert_eq!(report["zeroed"][tensor], entries.len() as u64, "{tensor}");
    }
}

#[test]
fn output_loads_with_identical_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let input = fixture(tmp.path(), "in", &FixtureSpec::default());
    let ckpt = Checkpoint::open(&input).unwrap();
    let arch = Architecture::of_checkpoint(&ckpt).unwrap();
    let (_, mask) = masks(&arch).pop().unwrap();
    let out = tmp.path().join("out");
    biasprune::surgery::apply_mask(&input, &mask, &out, Default::default(), &biasprune::progress::NoProgress).unwrap();
    let pruned = Checkpoint::open(&out).unwrap();
    for (a, b) in ckpt.shards().iter().zip(pruned.shards()) {
        let n = a.header().data_start();
        assert_eq!(a.bytes()[..n], b.bytes()[..n], "header bytes identical");
        assert_eq!(a.header().tensors(), b.header().tensors());
    }
}

fn apply_args<'a>(input: &'a Path, mask: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec!["apply", input.to_str().unwrap(), "--mask", mask.to_str().unwrap(), "--out", out.to_str().unwrap()]
}

fn head_mask(dir: &Path) -> std::path::PathBuf {
    let mask = PruneMask { heads: BTreeMap::from([(0, BTreeSet::from([1]))]), ..PruneMask::default() };
    let path = dir.join("mask");
    save_mask(&path, &mask).unwrap();
    path
}

#[test]
fn refuses_existing_output_and_output_inside_input() {
    let tmp = tempfile::tempdir().unwrap();
    let input = fixture(tmp.path(), "in", &FixtureSpec::default());
    let mask = head_mask(tmp.path());
    let before = hash_tree(&input);

    let existing = tmp.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("keep.txt"), b"old").unwrap();
    assert_bad_input(&biasprune(&apply_args(&input, &mask, &existing)), &["already exists", "--force"]);
    assert_eq!(std::fs::read(existing.join("keep.txt")).unwrap(), b"old");

    assert_bad_input(&biasprune(&apply_args(&input, &mask, &input)), &["must not be the input"]);
    let inside = input.join("pruned");
    assert_bad_input(&biasprune(&apply_args(&input, &mask, &inside)), &["must not be the input"]);
    assert!(!inside.exists());
    let mut args = apply_args(&input, &mask, tmp.path());
    args.push("--force");
    assert_bad_input(&biasprune(&args), &["contains the input"]);
    assert_eq!(hash_tree(&input), before);

    let mut args = apply_args(&input, &mask, &existing);
    args.push("--force");
    let run = biasprune(&args);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(!existing.join("keep.txt").exists(), "--force replaced the directory");
    assert!(existing.join("config.json").exists());
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("biasprune-partial"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary directory left: {leftovers:?}");
}

#[test]
fn mask_that_does_not_fit_is_bad_input_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let input = fixture(tmp.path(), "in", &FixtureSpec::default());
    let cases = [
        (
            PruneMask { heads: BTreeMap::from([(0, BTreeSet::from([4]))]), ..PruneMask::default() },
            "head 4 out of range",
        ),
        (
            PruneMask { heads: BTreeMap::from([(9, BTreeSet::from([0]))]), ..PruneMask::default() },
            "layer 9 out of range",
        ),
        (
            PruneMask {
                rows: BTreeMap::from([("model.nope.weight".to_string(), BTreeSet::from([0]))]),
                ..PruneMask::default()
            },
            "model.nope.weight",
        ),
        (
            PruneMask {
                weights: BTreeMap::from([(linear_weight_name(0, Component::Q), BitMask::new(64, 63))]),
                ..PruneMask::default()
            },
            "bitmask shape [64, 63]",
        ),
        (
            PruneMask {
                rows: BTreeMap::from([("model.norm.weight".to_string(), BTreeSet::from([0]))]),
                ..PruneMask::default()
            },
            "2-D",
        ),
    ];
    for (i, (mask, needle)) in cases.into_iter().enumerate() {
        let mask_dir = tmp.path().join(format!("mask{i}"));
        save_mask(&mask_dir, &mask).unwrap();
        let out = tmp.path().join(format!("out{i}"));
        assert_bad_input(&biasprune(&apply_args(&input, &mask_dir, &out)), &[needle]);
        assert!(!out.exists());
    }
}

#[test]
fn damaged_mask_files_are_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let input = fixture(tmp.path(), "in", &FixtureSpec::default());
    let mask = PruneMask {
        weights: BTreeMap::from([(linear_weight_name(0, Component::Q), random_bits(64, 64, 0.2, 9))]),
        ..PruneMask::default()
    };
    let mask_dir = tmp.path().join("mask");
    save_mask(&mask_dir, &mask).unwrap();
    let bitmask = mask_dir.join("pruning-mask.safetensors");
    let mut bytes = std::fs::read(&bitmask).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&bitmask, &bytes).unwrap();
    let out = tmp.path().join("out");
    assert_bad_input(&biasprune(&apply_args(&input, &mask_dir, &out)), &["pruning-mask.safetensors", "sha256"]);

    let json = mask_dir.join("mask.json");
    let text = std::fs::read_to_string(&json).unwrap().replacen("\"rows\"", "\"rowz\"", 1);
    std::fs::write(&json, text).unwrap();
    assert_bad_input(&biasprune(&apply_args(&input, &mask_dir, &out)), &["mask.json", "rowz"]);
    assert!(!out.exists());
}

#[test]
fn force_onto_a_regular_file_is_refused_before_touching_it() {
    let tmp = tempfile::tempdir().unwrap();
    let input = fixture(tmp.path(), "in", &FixtureSpec::default());
    let mask = head_mask(tmp.path());
    let file = tmp.path().join("out-file");
    std::fs::write(&file, b"not a checkpoint").unwrap();
    let mut args = apply_args(&input, &mask, &file);
    args.push("--force");
    assert_bad_input(&biasprune(&args), &["out-file", "is not a directory"]);
    assert_eq!(std::fs::read(&file).unwrap(), b"not a checkpoint", "OUT is left as it was");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("biasprune-partial"))
        .collect();
    assert!(leftovers.is_empty(), "no partial entry is left: {leftovers:?}");
}
