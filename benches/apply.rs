//! Benchmark of `apply` on a generated checkpoint (1 GiB by default) against a plain copy of
//! the files and sha256 alone; also the peak resident set of the `biasprune apply` process.
//!
//! Two floors put the figures in context: sha256 of every file on all cores (apply must hash
//! every byte it writes), and a durable write (the same bytes written to disk with direct I/O
//! and fsynced, nothing else), which apply must also do before it renames OUT into place,
//! whereas the plain copy may leave its bytes in the page cache.
//!
//! `cargo bench --bench apply` (env: BIASPRUNE_BENCH_MIB, default 1024; BIASPRUNE_BENCH_RUNS,
//! default 5; BIASPRUNE_BENCH_DIR, where the checkpoints go). Prints medians of each round's
//! ratio; the target is apply <= 1.5x the plain copy, peak RSS < 200 MB.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use biasprune::arch::{linear_weight_name, Architecture, Component};
use biasprune::checkpoint::Checkpoint;
use biasprune::mask::{resolve, save_mask, BitMask, PruneMask};
use biasprune::progress::NoProgress;
use biasprune::surgery::{write_pruned, ApplyOptions, OutputFile, CHUNK_BYTES};
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

fn sha256_file(file: &Path, buffer: &mut [u8]) {
    let mut f = std::fs::File::open(file).unwrap();
    let mut hasher = Sha256::new();
    loop {
        let n = f.read(buffer).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    std::hint::black_box(hasher.finalize());
}

fn sha256_files(dir: &Path) {
    let mut buffer = vec![0u8; 8 << 20];
    for file in files_of(dir) {
        sha256_file(&file, &mut buffer);
    }
}

/// Calls `work` on every file of `dir`, the files shared out over one thread per core.
fn on_all_cores(dir: &Path, work: impl Fn(&Path) + Sync) {
    let files = files_of(dir);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..cores {
            scope.spawn(|| {
                while let Some(file) = files.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                    work(file);
                }
            });
        }
    });
}

/// sha256 of every file, on all cores.
fn sha256_files_all_cores(dir: &Path) {
    on_all_cores(dir, |file| sha256_file(file, &mut vec![0u8; 8 << 20]));
}

/// Writes every file's bytes to `dst` the way apply does (direct I/O in windows, on all
/// cores) and fsyncs them: no hashing, no zeroing. Apply cannot beat this on the same disk.
fn durable_write(src: &Path, dst: &Path) {
    std::fs::create_dir(dst).unwrap();
    on_all_cores(src, |file| {
        let input = std::fs::File::open(file).unwrap();
        // SAFETY: the benchmark's own input, which nothing modifies while mapped.
        let map = unsafe { memmap2::Mmap::map(&input) }.unwrap();
        let mut output = OutputFile::create(&dst.join(file.file_name().unwrap())).unwrap();
        for (i, window) in map.chunks(CHUNK_BYTES).enumerate() {
            output.write_all_at(window, (i * CHUNK_BYTES) as u64).unwrap();
        }
        output.sync().unwrap();
    });
}

/// Sparse bitmask entries in q_proj and down_proj and head 0, in every layer.
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

/// Runs every timed step once per round, in the same order, so that each round's ratios
/// compare steps measured under the same conditions; steps marked `true` start from an empty
/// output (`clear`, untimed). Returns the times per step.
fn rounds<const N: usize>(runs: u64, clear: &dyn Fn(), mut steps: [(bool, &mut dyn FnMut()); N]) -> [Vec<Duration>; N] {
    let mut times: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::new());
    for _ in 0..runs {
        for (i, (writes_output, step)) in steps.iter_mut().enumerate() {
            if *writes_output {
                clear();
            }
            let start = Instant::now();
            step();
            times[i].push(start.elapsed());
        }
    }
    times
}

fn median_ratio(a: &[Duration], b: &[Duration]) -> f64 {
    let mut ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| a.as_secs_f64() / b.as_secs_f64()).collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

fn cli_binary() -> PathBuf {
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/biasprune");
    std::env::var("CARGO_TARGET_DIR").map(|t| PathBuf::from(t).join("release/biasprune")).unwrap_or(default)
}

/// Runs the CLI to completion.
fn run_cli(args: &[&str]) {
    let binary = cli_binary();
    let status = std::process::Command::new(&binary)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{}: {e} (build it with cargo build --release)", binary.display()));
    assert!(status.success(), "biasprune {args:?} failed");
}

/// Runs the CLI under `/usr/bin/time -f %M` and returns its peak resident set in bytes, as
/// the issue measures it. `time` is a small process: a spawned child's peak includes its
/// parent's peak at the moment it execs, so spawning the CLI straight from this (large)
/// process would report this process's size instead.
fn peak_rss_of_cli(args: &[&str]) -> Option<u64> {
    let output = std::process::Command::new("/usr/bin/time")
        .args(["-f", "peak-rss-kb %M"])
        .arg(cli_binary())
        .args(args)
        .output()
        .ok()?;
    assert!(output.status.success(), "biasprune {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let kb: u64 = stderr.lines().rev().find_map(|l| l.strip_prefix("peak-rss-kb "))?.trim().parse().ok()?;
    Some(kb * 1024)
}

/// The same checkpoint `FixtureSpec::with_total_bytes` describes, generated by the CLI in a
/// child process, so that this process stays small (see `main`).
fn generate_fixture(dir: &Path, mib: u64) {
    let size = mib.to_string();
    run_cli(&["fixture", "--quiet", "--dtype", "bf16", "--shards", "4", "--size-mib", &size, dir.to_str().unwrap()]);
}

fn main() {
    let mib = env_or("BIASPRUNE_BENCH_MIB", 1024);
    let runs = env_or("BIASPRUNE_BENCH_RUNS", 5);
    let root = tempfile::tempdir_in(std::env::var("BIASPRUNE_BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    let input = root.path().join("in");
    generate_fixture(&input, mib);
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
    let mask_dir = root.path().join("mask");
    save_mask(&mask_dir, &mask).unwrap();
    let paths = [&input, &mask_dir, &out].map(|p| p.to_str().unwrap());
    let rss = peak_rss_of_cli(&["apply", paths[0], "--mask", paths[1], "--out", paths[2], "--quiet"]);

    let [copy, copy_fsync, durable, sha, sha_all, apply] = rounds(
        runs,
        &clear,
        [
            (true, &mut || plain_copy(&input, &out, false)),
            (true, &mut || plain_copy(&input, &out, true)),
            (true, &mut || durable_write(&input, &out)),
            (false, &mut || sha256_files(&input)),
            (false, &mut || sha256_files_all_cores(&input)),
            (true, &mut || {
                write_pruned(&ckpt, &plan, &out, ApplyOptions::default(), &NoProgress).unwrap();
            }),
        ],
    );

    let rate = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
    println!(
        "apply benchmark: {:.0} MiB checkpoint ({} shards, BF16), {} zeroed entries, median of {runs}",
        bytes as f64 / 1048576.0,
        ckpt.shards().len(),
        plan.zeroed_count()
    );
    for (name, times) in [
        ("copy (std::fs::copy)", &copy),
        ("copy + fsync", &copy_fsync),
        ("durable write (direct I/O + fsync)", &durable),
        ("sha256 alone (1 core)", &sha),
        ("sha256 alone (all cores)", &sha_all),
        ("apply (zero+write+hash+fsync)", &apply),
    ] {
        let d = median(times.clone());
        println!("  {name:<36} {:>8.3} s {:>8.0} MB/s", d.as_secs_f64(), rate(d));
    }
    println!("  medians of the per-round ratios:");
    println!("  apply / copy                 {:.2}x (target <= 1.5x)", median_ratio(&apply, &copy));
    println!("  apply / (copy + fsync)       {:.2}x", median_ratio(&apply, &copy_fsync));
    println!("  apply / durable write        {:.2}x (apply's floor on this disk)", median_ratio(&apply, &durable));
    let durable_over_copy = median_ratio(&durable, &copy);
    println!("  durable write / copy         {durable_over_copy:.2}x");
    if durable_over_copy > 1.0 {
        println!("  (the plain copy beat a durable write: its bytes stayed in the page cache, which apply may not");
        println!("   leave them in; checkpoints beyond the kernel's dirty-page limit, e.g. BIASPRUNE_BENCH_MIB=8192");
        println!("   here, are copied at the disk's pace too)");
    }
    println!("  sha256 all cores / copy      {:.2}x", median_ratio(&sha_all, &copy));
    match rss {
        Some(rss) => println!("  peak RSS of `biasprune apply`: {:.1} MB (target < 200 MB)", rss as f64 / 1e6),
        None => println!("  peak RSS of `biasprune apply`: not measured (needs GNU time at /usr/bin/time)"),
    }
}
