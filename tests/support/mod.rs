//! Shared helpers of the integration tests: fixtures in temp dirs, running the binary,
//! hashing directories.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use biasprune::fixture::{write_checkpoint, FixtureSpec};
use sha2::{Digest, Sha256};

/// Writes a fixture checkpoint named `name` under `root` and returns its path.
pub fn fixture(root: &Path, name: &str, spec: &FixtureSpec) -> PathBuf {
    let dir = root.join(name);
    write_checkpoint(&dir, spec).expect("fixture writes");
    dir
}

/// Runs the biasprune binary with `args`.
pub fn biasprune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_biasprune")).args(args).output().expect("binary runs")
}

/// Stderr of a finished command, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Hex sha256 of every file under `dir` (following symbolic links), by relative path.
pub fn hash_tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    hash_into(dir, "", &mut out);
    out
}

fn hash_into(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).expect("readable directory").flatten() {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let path = entry.path();
        if path.is_dir() {
            hash_into(&path, &format!("{name}/"), out);
        } else {
            let bytes = std::fs::read(&path).expect("readable file");
            out.insert(name, hex::encode(Sha256::digest(&bytes)));
        }
    }
}

/// Asserts a command failed with exit code 2 and a message containing every `needle`.
pub fn assert_bad_input(output: &Output, needles: &[&str]) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "expected exit 2, stderr: {err}");
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
}

/// Runs the biasprune binary with `args`, killing it and failing the test when it has not
/// finished within `seconds` (for inputs that used to make it hang).
pub fn biasprune_within(seconds: u64, args: &[&str]) -> Output {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_biasprune"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while child.try_wait().expect("child status").is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().expect("kill the hung binary");
            let _ = child.wait();
            panic!("biasprune {args:?} did not finish within {seconds} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("output of the finished binary")
}

/// Replaces `path` (a file, or nothing) with a FIFO.
pub fn make_fifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let c_path = std::ffi::CString::new(path.to_str().expect("UTF-8 path")).expect("no NUL");
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0, "mkfifo {}", path.display());
}
