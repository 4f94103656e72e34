//! Fault injection: a full disk (ENOSPC). `apply`, the release `prune` publishes (the same
//! `release::release` that `apply --sign-key --evidence-dir` runs) and `import-gguf` write
//! onto a tmpfs this test mounts, once per size from one page up until the command fits.
//! So the disk fills at every point of the write (shards, copied files, mask, model card,
//! manifest, signature), and each time the command must exit 2 naming the file and "No
//! space left on device", leave nothing on the tmpfs (no OUT, no partial file) and leave its
//! input unchanged.
//!
//! Mounting needs root (CAP_SYS_ADMIN); where the mount is refused the tests say so and
//! skip, except under CI=true, where they fail.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use biasprune::fixture::{FixtureDtype, FixtureSpec};
use biasprune::mask::{save_mask, BitMask, PruneMask};
use common::{biasprune, fixture, hash_tree, stderr};

/// tmpfs sizes are counted in pages.
const PAGE: u64 = 4096;
/// The most sizes tried before a command must have fitted.
const MAX_STEPS: u64 = 64;

/// A tmpfs mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` on `dir`; None (after saying why) where mounting is not
    /// permitted, which fails the test under CI=true.
    fn mount(dir: &Path, bytes: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount runs");
        if output.status.success() {
            return Some(Tmpfs { dir: dir.to_path_buf() });
        }
        let why = String::from_utf8_lossy(&output.stderr);
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true: mounting a tmpfs must work here: {why}");
        eprintln!("SKIPPED: mounting a tmpfs is not permitted here (needs root): {why}");
        None
    }

    /// Changes the size limit (the tmpfs must hold less than `bytes`).
    fn resize(&self, bytes: u64) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(&self.dir)
            .status()
            .expect("mount runs");
        assert!(status.success(), "remount {} to {bytes} bytes", self.dir.display());
    }

    fn entries(&self) -> Vec<String> {
        std::fs::read_dir(&self.dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

/// A tiny two-shard BF16 checkpoint (about 25 KB of weights).
fn tiny_spec() -> FixtureSpec {
    FixtureSpec {
        dtype: FixtureDtype::BF16,
        num_layers: 1,
        hidden_size: 16,
        intermediate_size: 32,
        num_heads: 2,
        num_kv_heads: 1,
        vocab_size: 271,
        ..FixtureSpec::default()
    }
}

/// A mask with one weight-level entry (so a release ships the bitmask file) and one head.
fn write_mask(dir: &Path) {
    let mut bits = BitMask::new(16, 16);
    bits.set(3, 5);
    let mask = PruneMask {
        weights: BTreeMap::from([("model.layers.0.self_attn.q_proj.weight".to_string(), bits)]),
        heads: BTreeMap::from([(0, BTreeSet::from([1]))]),
        ..PruneMask::default()
    };
    save_mask(dir, &mask).unwrap();
}

/// Runs the binary pinned to one CPU, so `available_parallelism()` is 1 and apply writes its
/// shards one after another: which file the disk fills on is then fixed by the size alone.
fn biasprune_on_one_core(args: &[&str]) -> Output {
    Command::new("taskset")
        .args(["--cpu-list", "0"])
        .arg(env!("CARGO_BIN_EXE_biasprune"))
        .args(args)
        .output()
        .expect("taskset runs (util-linux)")
}

/// Runs `args` (with OUT on the tmpfs) at growing tmpfs sizes until it succeeds; checks every
/// failure and returns the files the failures named.
fn fill_at_every_size(tmpfs: &Tmpfs, args: &[&str], input: &Path) -> BTreeSet<String> {
    fill_at_every_size_with(biasprune, tmpfs, args, input)
}

/// [`fill_at_every_size`], running the binary through `run`.
fn fill_at_every_size_with(run: fn(&[&str]) -> Output, tmpfs: &Tmpfs, args: &[&str], input: &Path) -> BTreeSet<String> {
    let before = hash_tree(input);
    let mut failed_on = BTreeSet::new();
    for step in 1..=MAX_STEPS {
        tmpfs.resize(step * PAGE);
        let output = run(args);
        assert_eq!(hash_tree(input), before, "{args:?} at {} pages changed its input", step);
        if output.status.success() {
            assert!(step > 1, "{args:?} fitted into a single page: the test no longer fills the disk");
            return failed_on;
        }
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?} at {step} pages: expected exit 2, stderr: {err}");
        assert!(err.contains("No space left on device"), "{args:?} at {step} pages: {err}");
        assert!(err.contains(&tmpfs.dir.display().to_string()), "the error names the file: {err}");
        assert!(tmpfs.entries().is_empty(), "{args:?} at {step} pages left {:?}: {err}", tmpfs.entries());
        let mount = tmpfs.dir.display().to_string();
        let path = err.split(mount.as_str()).nth(1).unwrap().split(':').next().unwrap();
        failed_on.insert(path.rsplit('/').next().unwrap().to_string());
    }
    panic!("{args:?} did not fit into {MAX_STEPS} pages");
}

#[test]
fn apply_on_a_full_disk_fails_cleanly_at_every_point_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(tmpfs) = Tmpfs::mount(&tmp.path().join("disk"), PAGE) else { return };
    let input = fixture(tmp.path(), "in", &tiny_spec());
    let mask = tmp.path().join("mask");
    write_mask(&mask);
    let out = tmpfs.dir.join("out");
    let args = ["apply", input.to_str().unwrap(), "--mask", mask.to_str().unwrap(), "--out", out.to_str().unwrap()];
    // With every core, the shards are written at once and whichever worker asks for the last
    // free page fails: each size must still fail cleanly, but the file named is a race.
    fill_at_every_size(&tmpfs, &args, &input);
    std::fs::remove_dir_all(&out).unwrap();
    // On one core the shards are written in turn, so some size fills the disk in each.
    let failed_on = fill_at_every_size_with(biasprune_on_one_core, &tmpfs, &args, &input);
    for file in ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "config.json"] {
        assert!(failed_on.contains(file), "the disk never filled while writing {file}: {failed_on:?}");
    }
    assert!(out.join("model.safetensors.index.json").is_file(), "the run that fitted wrote OUT");
}

#[test]
fn a_signed_release_on_a_full_disk_fails_cleanly_at_every_point_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(tmpfs) = Tmpfs::mount(&tmp.path().join("disk"), PAGE) else { return };
    let input = fixture(tmp.path(), "in", &tiny_spec());
    let mask = tmp.path().join("mask");
    write_mask(&mask);
    let evidence = tmp.path().join("evidence");
    std::fs::create_dir(&evidence).unwrap();
    std::fs::write(evidence.join("notes.json"), "{\"note\": \"fault injection\"}\n").unwrap();
    let key = tmp.path().join("key");
    assert!(biasprune(&["keygen", "--out", key.to_str().unwrap()]).status.success());
    let key = key.with_extension("priv");
    let out = tmpfs.dir.join("release");
    let args = [
        "apply",
        input.to_str().unwrap(),
        "--mask",
        mask.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--sign-key",
        key.to_str().unwrap(),
        "--evidence-dir",
        evidence.to_str().unwrap(),
    ];
    let failed_on = fill_at_every_size(&tmpfs, &args, &input);
    for file in ["pruning-mask.safetensors", "README.md", "biasprune-manifest.json"] {
        assert!(failed_on.contains(file), "the disk never filled while writing {file}: {failed_on:?}");
    }
    assert!(failed_on.iter().any(|f| f.contains("model.sig")), "never filled while signing: {failed_on:?}");
    let pubkey = key.with_extension("pub");
    let verify = biasprune(&["verify", out.to_str().unwrap(), "--public-key", pubkey.to_str().unwrap()]);
    assert!(verify.status.success(), "the release that fitted verifies: {}", String::from_utf8_lossy(&verify.stdout));
}

#[test]
fn import_gguf_on_a_full_disk_fails_cleanly_at_every_point_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(tmpfs) = Tmpfs::mount(&tmp.path().join("disk"), PAGE) else { return };
    // The tiny GGUF Llama of the fuzz seeds (fuzz/tiny_gguf.py), copied so its hash is ours.
    let input = tmp.path().join("gguf");
    std::fs::create_dir(&input).unwrap();
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/gguf/tiny");
    std::fs::copy(&seed, input.join("tiny.gguf")).unwrap();
    let gguf = input.join("tiny.gguf");
    let out = tmpfs.dir.join("ckpt");
    let args = ["import-gguf", gguf.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let failed_on = fill_at_every_size(&tmpfs, &args, &input);
    for file in ["model.safetensors", "tokenizer.json"] {
        assert!(failed_on.contains(file), "the disk never filled while writing {file}: {failed_on:?}");
    }
    assert!(out.join("model.safetensors").is_file(), "the run that fitted wrote OUT");
}

// A base shard truncated while mapped: inputs are read through read-only maps whose size is
// checked against every header when mapped; a file truncated later raises SIGBUS on the next
// read past its new end, which the binary turns into exit 2 and a message (src/cli/mod.rs).

/// The shards of checkpoint `dir`, by path.
fn shards_of(dir: &Path) -> Vec<PathBuf> {
    let mut shards: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    shards.sort();
    shards
}

/// Starts `args`, waits until the process has mapped every shard of `victim` (so each
/// header has been checked against its mapped size), truncates every shard of it to half
/// its size, and returns the run's output.
fn truncate_once_mapped(args: &[&str], victim: &Path) -> std::process::Output {
    let victim = victim.canonicalize().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_biasprune"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let maps = format!("/proc/{}/maps", child.id());
    let shards = shards_of(&victim);
    let started = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(&maps).unwrap_or_default();
        if shards.iter().all(|shard| text.contains(&shard.display().to_string())) {
            break;
        }
        assert!(started.elapsed().as_secs() < 300, "{args:?} never mapped {}", victim.display());
        assert!(std::path::Path::new(&maps).exists(), "{args:?} ended before mapping {}", victim.display());
        std::thread::sleep(std::time::Duration::from_micros(300));
    }
    for shard in shards {
        let file = std::fs::OpenOptions::new().write(true).open(&shard).unwrap();
        let len = file.metadata().unwrap().len();
        file.set_len(len / 2).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Exit 2 and a message saying an input was truncated: from the SIGBUS handler, or, when
/// the kernel reported the unreadable page as EFAULT to a write from the map, from apply.
fn assert_clean_truncation_error(output: &std::process::Output, what: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "{what}: expected exit 2, not a crash ({:?}): {err}", output.status);
    assert!(err.contains("truncated or replaced while"), "{what}: {err}");
}

/// A checkpoint large enough that reading it takes a while (about 256 MB in four shards).
fn large_spec() -> FixtureSpec {
    FixtureSpec::with_total_bytes(256 << 20, FixtureDtype::BF16, 4)
}

/// A mask zeroing head 1 of layer 0 (fits any fixture with two heads or more).
fn write_head_mask(dir: &Path) {
    save_mask(dir, &PruneMask { heads: BTreeMap::from([(0, BTreeSet::from([1]))]), ..PruneMask::default() }).unwrap();
}

#[test]
fn a_base_shard_truncated_while_verify_compares_it_is_a_clean_error_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture(tmp.path(), "base", &large_spec());
    let mask = tmp.path().join("mask");
    write_head_mask(&mask);
    let key = tmp.path().join("key");
    assert!(biasprune(&["keygen", "--out", key.to_str().unwrap()]).status.success());
    let release = tmp.path().join("release");
    let (base_s, release_s) = (base.to_str().unwrap(), release.to_str().unwrap());
    let key_priv = key.with_extension("priv");
    let apply = biasprune(&[
        "apply",
        base_s,
        "--mask",
        mask.to_str().unwrap(),
        "--out",
        release_s,
        "--sign-key",
        key_priv.to_str().unwrap(),
    ]);
    assert!(apply.status.success(), "{}", stderr(&apply));
    let key_pub = key.with_extension("pub");
    let args = ["verify", release_s, "--public-key", key_pub.to_str().unwrap(), "--base", base_s];
    let output = truncate_once_mapped(&args, &base);
    assert_clean_truncation_error(&output, "verify --base");
    assert!(stderr(&output).contains("SIGBUS"), "verify reads the maps itself: {}", stderr(&output));
}

#[test]
fn an_input_shard_truncated_while_apply_reads_it_is_a_clean_error_and_publishes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let input = fixture(tmp.path(), "in", &large_spec());
    let mask = tmp.path().join("mask");
    write_head_mask(&mask);
    let out = tmp.path().join("out");
    let args = ["apply", input.to_str().unwrap(), "--mask", mask.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let output = truncate_once_mapped(&args, &input);
    assert_clean_truncation_error(&output, "apply");
    assert!(!out.exists(), "nothing was published");
}

#[test]
fn a_shard_truncated_before_it_is_mapped_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let input = fixture(tmp.path(), "in", &tiny_spec());
    let mask = tmp.path().join("mask");
    write_mask(&mask);
    let key = tmp.path().join("key");
    assert!(biasprune(&["keygen", "--out", key.to_str().unwrap()]).status.success());
    let release = tmp.path().join("release");
    let key_priv = key.with_extension("priv");
    let (input_s, release_s) = (input.to_str().unwrap(), release.to_str().unwrap());
    let mask_s = mask.to_str().unwrap();
    let apply =
        biasprune(&["apply", input_s, "--mask", mask_s, "--out", release_s, "--sign-key", key_priv.to_str().unwrap()]);
    assert!(apply.status.success(), "{}", stderr(&apply));
    let shard = shards_of(&input).pop().unwrap();
    let name = shard.file_name().unwrap().to_str().unwrap().to_string();
    let len = std::fs::metadata(&shard).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&shard).unwrap().set_len(len - 1).unwrap();

    let out = tmp.path().join("out");
    let applied = biasprune(&["apply", input_s, "--mask", mask_s, "--out", out.to_str().unwrap()]);
    common::assert_bad_input(&applied, &[&name]);
    assert!(!out.exists());

    let key_pub = key.with_extension("pub");
    let verified = biasprune(&["verify", release_s, "--public-key", key_pub.to_str().unwrap(), "--base", input_s]);
    let report = String::from_utf8_lossy(&verified.stdout);
    assert_eq!(verified.status.code(), Some(1), "a check fails: {report}{}", stderr(&verified));
    assert!(report.contains(&name), "the failed check names the shard: {report}");
}
