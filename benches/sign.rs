//! Signing and verification throughput on a generated checkpoint-sized directory.
//!
//! Over a directory of `BENCH_MIB` MiB (default 1024) in `BENCH_FILES` shards (default 4)
//! plus two small JSON files, with a warm page cache, each round times: writing the files
//! (the baseline for "apply's time"), sha256 of every file on one core, `digest_directory`
//! (parallel), `sign_directory` with precomputed digests and without, `verify_signature`.
//! Prints medians over `BENCH_REPS` rounds (default 5): wall time, MB/s (10^6 B/s), cores
//! kept busy (process CPU time / wall time), and the target ratios as medians of per-round
//! ratios (a round's phases run back to back, so load from other processes hits them
//! alike). Run: `cargo bench --bench sign`.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use biasprune::progress::NoProgress;
use biasprune::sign::{digest_directory, keygen, sign_directory, Curve};
use biasprune::verify::verify_signature;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

const CHUNK: usize = 16 << 20;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Writes `files` shards totalling `total` bytes (distinct contents) plus two JSON files.
fn write_checkpoint(dir: &Path, total: usize, files: usize, chunk: &mut [u8]) {
    let per_file = total / files;
    for i in 0..files {
        let mut file = File::create(dir.join(format!("model-{:05}-of-{files:05}.safetensors", i + 1))).unwrap();
        let mut left = per_file;
        let mut counter = (i as u64) << 32;
        while left > 0 {
            let n = left.min(chunk.len());
            chunk[..8].copy_from_slice(&counter.to_le_bytes());
            counter += 1;
            file.write_all(&chunk[..n]).unwrap();
            left -= n;
        }
    }
    fs::write(dir.join("config.json"), br#"{"architectures":["LlamaForCausalLM"]}"#).unwrap();
    fs::write(dir.join("biasprune-manifest.json"), vec![b' '; 40_000]).unwrap();
}

/// Baseline: sha256 of every file in sequence on the calling thread.
fn sha256_one_core(dir: &Path) -> u64 {
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    let mut names: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for path in names.iter().filter(|p| p.file_name().is_some_and(|n| n != "model.sig")) {
        let mut file = File::open(path).unwrap();
        let mut hasher = Sha256::new();
        loop {
            let n = file.read(&mut buffer).unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            bytes += n as u64;
        }
        std::hint::black_box(hasher.finalize());
    }
    bytes
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Wall seconds taken by `f`, and the CPU seconds this process spent meanwhile.
fn seconds(f: impl FnOnce()) -> (f64, f64) {
    let cpu = cpu_seconds();
    let start = Instant::now();
    f();
    (start.elapsed().as_secs_f64(), cpu_seconds() - cpu)
}

/// User + system CPU time of this process (all threads) from /proc/self/stat, in the
/// kernel's fixed user-space clock of 100 ticks per second (USER_HZ).
fn cpu_seconds() -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(") ").map_or(vec![], |(_, rest)| rest.split(' ').collect());
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Per-phase times of each round.
#[derive(Default)]
struct Rounds {
    write: Vec<(f64, f64)>,
    one_core: Vec<(f64, f64)>,
    digest: Vec<(f64, f64)>,
    sign_reused: Vec<(f64, f64)>,
    sign_hashing: Vec<(f64, f64)>,
    verify: Vec<(f64, f64)>,
}

/// Prints the median wall time, throughput and cores used (CPU time / wall time).
fn report(label: &str, times: &[(f64, f64)], bytes: u64) {
    let wall = median(times.iter().map(|t| t.0).collect());
    let cores = median(times.iter().map(|t| t.1 / t.0).collect());
    let rate = bytes as f64 / wall / 1e6;
    println!("{label:<40} median {:>9.1} ms  {rate:>8.0} MB/s  {cores:>5.2} cores", wall * 1e3);
}

/// Median over rounds of `numerator / denominator` wall times taken within the same round.
fn paired_ratio(numerator: &[(f64, f64)], denominator: &[(f64, f64)]) -> f64 {
    median(numerator.iter().zip(denominator).map(|(n, d)| n.0 / d.0).collect())
}

fn main() {
    let total = env_usize("BENCH_MIB", 1024) << 20;
    let files = env_usize("BENCH_FILES", 4);
    let reps = env_usize("BENCH_REPS", 5);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("bench-model");
    fs::create_dir(&dir).unwrap();
    let mut chunk = vec![0u8; CHUNK];
    ChaCha8Rng::seed_from_u64(7).fill_bytes(&mut chunk);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{} MiB in {files} shards + 2 small files, {reps} reps, {threads} threads, loadavg {}",
        total >> 20,
        load.trim()
    );

    let pair = keygen(Curve::P256).unwrap();
    let mut rounds = Rounds::default();
    let mut bytes = 0;
    for _ in 0..reps {
        rounds.write.push(seconds(|| write_checkpoint(&dir, total, files, &mut chunk)));
        rounds.one_core.push(seconds(|| bytes = sha256_one_core(&dir)));
        let mut digests = Default::default();
        rounds.digest.push(seconds(|| digests = digest_directory(&dir, &NoProgress).unwrap()));
        rounds.sign_reused.push(seconds(|| {
            sign_directory(&dir, &pair.private_pem, Some(&digests), &NoProgress).unwrap();
        }));
        rounds.sign_hashing.push(seconds(|| {
            sign_directory(&dir, &pair.private_pem, None, &NoProgress).unwrap();
        }));
        rounds.verify.push(seconds(|| {
            let checks = verify_signature(&dir, &pair.public_pem, &NoProgress).unwrap();
            assert!(checks.iter().all(|c| c.passed));
        }));
    }

    report("write checkpoint (baseline, no fsync)", &rounds.write, bytes);
    report("sha256 one core (baseline)", &rounds.one_core, bytes);
    report("digest_directory (parallel)", &rounds.digest, bytes);
    report("sign, precomputed digests", &rounds.sign_reused, bytes);
    report("sign, hashing the files", &rounds.sign_hashing, bytes);
    report("verify_signature", &rounds.verify, bytes);
    println!("median of per-round ratios over {reps} rounds:");
    let pct = 100.0 * paired_ratio(&rounds.sign_reused, &rounds.write);
    println!("  sign with reused digests / write time:  {pct:.2}% (target < 10%)");
    let pct = 100.0 * paired_ratio(&rounds.sign_hashing, &rounds.write);
    println!("  sign hashing again / write time:        {pct:.1}%");
    let speedup = paired_ratio(&rounds.one_core, &rounds.digest);
    println!("  digest_directory speed-up vs one core:  {speedup:.2}x");
    let speedup = paired_ratio(&rounds.one_core, &rounds.verify);
    println!("  verify speed vs one-core sha256:        {speedup:.2}x (target >= 1)");
}
