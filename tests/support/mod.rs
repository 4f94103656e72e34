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
