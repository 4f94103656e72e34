//! Benchmark of the release path on a generated checkpoint (1 GiB by default): apply alone
//! (as the command runs it: mask read from disk, resolved, written),
//! apply with the manifest, apply with manifest and signature, the last two again with the
//! base's identity given (as `prune` passes it from eval's digests, so the base is not
//! hashed again), and verify without and with --base against sha256 of the output on one
//! core.
//!
//! `cargo bench --bench release` (env: BIASPRUNE_BENCH_MIB, default 1024;
//! BIASPRUNE_BENCH_RUNS, default 5; BIASPRUNE_BENCH_DIR, default "."). Each round runs every
//! phase back to back on a warm page cache; prints per-phase medians and the medians of the
//! per-round ratios (targets: signing adds < 10% to the same release unsigned, and to apply
//! when the base's digests are reused; verify >= one-core sha256).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use biasprune::arch::{linear_weight_name, Architecture, Component};
use biasprune::checkpoint::Checkpoint;
use biasprune::fixture::{write_checkpoint, FixtureDtype, FixtureSpec};
use biasprune::fsutil::digest::list_files;
use biasprune::mask::{load_mask, resolve, save_mask, BitMask, PruneMask};
use biasprune::progress::NoProgress;
use biasprune::release::{base_identity, release, ReleaseOptions};
use biasprune::sign::{keygen, Curve};
use biasprune::surgery::{apply_mask, ApplyOptions};
use biasprune::verify::verify_directory;
use sha2::{Digest, Sha256};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Sparse bitmask entries in q_proj and down_proj, head 0 and MLP unit 1 in every layer.
fn bench_mask(arch: &Architecture) -> PruneMask {
    let mut mask = PruneMask::default();
    for layer in 0..arch.num_layers {
        for component in [Component::Q, Component::Down] {
            let [rows, cols] = arch.linear_shape(component);
            let mut bits = BitMask::new(rows, cols);
            for r in (0..rows).step_by(3) {
                for c in (r % 7..cols).step_by(11) {
                    bits.set(r, c);
                }
            }
            mask.weights.insert(linear_weight_name(layer, component), bits);
        }
        mask.heads.insert(layer, BTreeSet::from([0]));
        mask.mlp_units.insert(layer, BTreeSet::from([1]));
    }
    mask
}

/// Baseline: sha256 of every file of `dir` in sequence on the calling thread.
fn sha256_one_core(dir: &Path) {
    let mut buffer = vec![0u8; 1 << 20];
    for file in list_files(dir, &[]).unwrap() {
        let mut f = std::fs::File::open(dir.join(&file.path)).unwrap();
        let mut hasher = Sha256::new();
        loop {
            let n = f.read(&mut buffer).unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        std::hint::black_box(hasher.finalize());
    }
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn main() {
    let mib = env_or("BIASPRUNE_BENCH_MIB", 1024);
    let runs = env_or("BIASPRUNE_BENCH_RUNS", 5);
    let root = tempfile::tempdir_in(std::env::var("BIASPRUNE_BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    let input = root.path().join("base");
    write_checkpoint(&input, &FixtureSpec::with_total_bytes(mib << 20, FixtureDtype::BF16, 4)).unwrap();
    let ckpt = Checkpoint::open(&input).unwrap();
    let arch = Architecture::of_checkpoint(&ckpt).unwrap();
    let mask = bench_mask(&arch);
    let plan = resolve(&mask, &arch, &ckpt).unwrap();
    let mask_dir = root.path().join("mask");
    save_mask(&mask_dir, &mask).unwrap();
    let keys = keygen(Curve::P256).unwrap();
    let out = root.path().join("out");
    let clear = || {
        let _ = std::fs::remove_dir_all(&out);
    };
    let manifest_only = ReleaseOptions::default();
    let signed = ReleaseOptions { sign_key_pem: Some(keys.private_pem.to_string()), ..ReleaseOptions::default() };
    let base = Some(base_identity(&ckpt, &NoProgress).unwrap());
    let manifest_given = ReleaseOptions { base: base.clone(), ..manifest_only.clone() };
    let signed_given = ReleaseOptions { base, ..signed.clone() };
    sha256_one_core(&input);
    let names = [
        "apply",
        "apply --manifest",
        "apply --sign-key",
        "--manifest, base given",
        "--sign-key, base given",
        "sha256 of OUT, 1 core",
        "verify",
        "verify --base",
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut bytes = 0u64;
    for _ in 0..runs {
        clear();
        // What `biasprune apply` does: read the mask, open and resolve, write.
        let apply = timed(|| {
            let mask = load_mask(&mask_dir).unwrap();
            apply_mask(&input, &mask, &out, ApplyOptions::default(), &NoProgress).unwrap();
        });
        clear();
        let manifest = timed(|| {
            release(&input, &mask_dir, &out, &manifest_only, &NoProgress).unwrap();
        });
        clear();
        let sign = timed(|| {
            release(&input, &mask_dir, &out, &signed, &NoProgress).unwrap();
        });
        clear();
        let manifest_given = timed(|| {
            release(&input, &mask_dir, &out, &manifest_given, &NoProgress).unwrap();
        });
        clear();
        let sign_given = timed(|| {
            release(&input, &mask_dir, &out, &signed_given, &NoProgress).unwrap();
        });
        bytes = list_files(&out, &[]).unwrap().iter().map(|f| f.size).sum();
        let sha = timed(|| sha256_one_core(&out));
        let verify = timed(|| {
            assert!(verify_directory(&out, &keys.public_pem, None, &NoProgress).unwrap().passed());
        });
        let verify_base = timed(|| {
            assert!(verify_directory(&out, &keys.public_pem, Some(&input), &NoProgress).unwrap().passed());
        });
        for (list, d) in
            times.iter_mut().zip([apply, manifest, sign, manifest_given, sign_given, sha, verify, verify_base])
        {
            list.push(d.as_secs_f64());
        }
    }
    println!(
        "release benchmark: {:.0} MiB output ({} shards, BF16), {} zeroed entries, {} cores, median of {runs}",
        bytes as f64 / 1048576.0,
        ckpt.shards().len(),
        plan.zeroed_count(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for (name, list) in names.iter().zip(&times) {
        let t = median(list.clone());
        println!("  {name:<24} {t:>8.3} s {:>8.0} MB/s", bytes as f64 / t / 1e6);
    }
    let ratio = |a: usize, b: usize| median(times[a].iter().zip(&times[b]).map(|(x, y)| x / y).collect());
    println!("  apply --manifest / apply              {:.3}x (base hashing + manifest)", ratio(1, 0));
    println!("  apply --sign-key / apply --manifest   {:.3}x (signing the same release; target < 1.10x)", ratio(2, 1));
    println!("  apply --sign-key / apply              {:.3}x (base hashed here)", ratio(2, 0));
    println!("  --sign-key, base given / --manifest, base given {:.3}x (signing; target < 1.10x)", ratio(4, 3));
    println!("  --sign-key, base given / apply        {:.3}x (digests reused; target < 1.10x)", ratio(4, 0));
    println!("  verify speed / 1-core sha256          {:.2}x (target >= 1)", ratio(5, 6));
    println!("  verify --base speed / 1-core sha256   {:.2}x", ratio(5, 7));
}
