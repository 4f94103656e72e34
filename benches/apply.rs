//! Benchmark of `apply` on a generated checkpoint (1 GiB by default) against a plain copy of
//! the files and sha256 alone; also the peak resident set of the `biasprune apply` process.
//!
//! `cargo bench --bench apply` (env: BIASPRUNE_BENCH_MIB, default 1024; BIASPRUNE_BENCH_RUNS,
//! default 5). Prints medians; the target is apply <= 1.5x the plain copy, peak RSS < 200 MB.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use biasprune::arch::{linear_weight_name, Architecture, Component};
use biasprune::checkpoint::Checkpoint;
use biasprune::fixture::{write_checkpoint, FixtureDtype, FixtureSpec};
use biasprune::mask::{resolve, save_mask, BitMask, PruneMask};
use biasprune::progress::NoProgress;
use biasprune::surgery::{write_pruned, ApplyOptions};
use sha2::{Digest, Sha256};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn files_of(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    files
}

fn plain_copy(src: &Path, dst: &Path, fsync: bool) {
    std::fs::create_dir(dst).unwrap();
    for file in files_of(src) {
        let target = dst.join(file.file_name().unwrap());
        std::fs::copy(&file, &target).unwrap();
        if fsync {
            std::fs::File::open(&target).unwrap().sync_all().unwrap();
        }
    }
}

fn sha256_files(dir: &Path) {
    let mut buffer = vec![0u8; 8 << 20];
    for file in files_of(dir) {
        let mut f = std::fs::File::open(&file).unwrap();
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
    }
    mask
}

fn time(runs: u64, mut setup: impl FnMut(), mut f: impl FnMut()) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                setup();
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

fn peak_rss_of_cli_apply(input: &Path, mask: &Path, out: &Path) -> u64 {
    let _ = std::fs::remove_dir_all(out);
    let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/biasprune");
    let binary =
        std::env::var("CARGO_TARGET_DIR").map(|t| PathBuf::from(t).join("release/biasprune")).unwrap_or(binary);
    let status = std::process::Command::new(&binary)
        .args([
            "apply",
            input.to_str().unwrap(),
            "--mask",
            mask.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .status()
        .unwrap_or_else(|e| panic!("{}: {e} (build it with cargo build --release)", binary.display()));
    assert!(status.success());
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the zeroed struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as u64 * 1024
}

fn main() {
    let mib = env_or("BIASPRUNE_BENCH_MIB", 1024);
    let runs = env_or("BIASPRUNE_BENCH_RUNS", 5);
    let root = tempfile::tempdir_in(std::env::var("BIASPRUNE_BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    let input = root.path().join("in");
    write_checkpoint(&input, &FixtureSpec::with_total_bytes(mib << 20, FixtureDtype::BF16, 4)).unwrap();
    let bytes: u64 = files_of(&input).iter().map(|f| f.metadata().unwrap().len()).sum();
    let ckpt = Checkpoint::open(&input).unwrap();
    let arch = Architecture::of_checkpoint(&ckpt).unwrap();
    let mask = bench_mask(&arch);
    let plan = resolve(&mask, &arch, &ckpt).unwrap();
    let out = root.path().join("out");
    let clear = || {
        let _ = std::fs::remove_dir_all(&out);
    };
    sha256_files(&input);

    let copy = time(runs, clear, || plain_copy(&input, &out, false));
    let copy_fsync = time(runs, clear, || plain_copy(&input, &out, true));
    let sha = time(runs, || {}, || sha256_files(&input));
    let apply = time(runs, clear, || {
        write_pruned(&ckpt, &plan, &out, ApplyOptions::default(), &NoProgress).unwrap();
    });
    let mask_dir = root.path().join("mask");
    save_mask(&mask_dir, &mask).unwrap();
    let rss = peak_rss_of_cli_apply(&input, &mask_dir, &out);

    let rate = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
    println!(
        "apply benchmark: {:.0} MiB checkpoint ({} shards, BF16), {} zeroed entries, median of {runs}",
        bytes as f64 / 1048576.0,
        ckpt.shards().len(),
        plan.zeroed_count()
    );
    for (name, d) in [
        ("copy (std::fs::copy)", copy),
        ("copy + fsync", copy_fsync),
        ("sha256 alone (1 core)", sha),
        ("apply (zero+write+hash+fsync)", apply),
    ] {
        println!("  {name:<32} {:>8.3} s {:>8.0} MB/s", d.as_secs_f64(), rate(d));
    }
    println!("  apply / copy           {:.2}x (target <= 1.5x)", apply.as_secs_f64() / copy.as_secs_f64());
    println!("  apply / (copy + fsync) {:.2}x", apply.as_secs_f64() / copy_fsync.as_secs_f64());
    println!("  peak RSS of `biasprune apply`: {:.1} MB (target < 200 MB)", rss as f64 / 1e6);
}
