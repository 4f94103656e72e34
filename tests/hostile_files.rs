//! Untrusted files that are not regular files, or that point at endless devices, are refused
//! promptly and by name: `verify` and `inspect` never hang on a FIFO and never read
//! /dev/zero without bound.

mod common;

use std::path::{Path, PathBuf};

use biasprune::fixture::FixtureSpec;
use biasprune::mask::{save_mask, PruneMask};
use common::{biasprune, biasprune_within, fixture, make_fifo, stderr};
use tempfile::TempDir;

/// Seconds a refused input may take; the commands used to hang forever.
const LIMIT: u64 = 60;
const MANIFEST: &str = "biasprune-manifest.json";

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A release signed by `apply --sign-key` with an empty mask: (root, release dir, public key).
fn signed() -> (TempDir, PathBuf, String) {
    let root = tempfile::tempdir().unwrap();
    let base = fixture(root.path(), "base", &FixtureSpec::default());
    let mask = root.path().join("mask");
    save_mask(&mask, &PruneMask::default()).unwrap();
    let prefix = root.path().join("key");
    let out = biasprune(&["keygen", "--out", s(&prefix)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dir = root.path().join("release");
    let private = format!("{}.priv", prefix.display());
    let out = biasprune(&["apply", s(&base), "--mask", s(&mask), "--out", s(&dir), "--sign-key", &private, "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (root, dir, format!("{}.pub", prefix.display()))
}

fn verify(dir: &Path, public: &str) -> (Option<i32>, String) {
    let out = biasprune_within(LIMIT, &["verify", s(dir), "--public-key", public]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    (out.status.code(), text)
}

#[test]
fn verify_reports_a_fifo_in_place_of_a_release_file_instead_of_hanging() {
    for file in [MANIFEST, "model.sig", "model-00001-of-00002.safetensors", "config.json"] {
        let (_root, dir, public) = signed();
        make_fifo(&dir.join(file));
        let (code, text) = verify(&dir, &public);
        assert_eq!(code, Some(1), "{file}: a failed check, not a pass or a crash:\n{text}");
        assert!(text.contains(file) && text.contains("FIFO"), "{file}: the FIFO is named:\n{text}");
    }
}

#[test]
fn inspect_refuses_a_fifo_config_or_shard_instead_of_hanging() {
    for file in ["config.json", "model-00002-of-00002.safetensors", "model.safetensors.index.json"] {
        let root = tempfile::tempdir().unwrap();
        let dir = fixture(root.path(), "model", &FixtureSpec::default());
        make_fifo(&dir.join(file));
        let out = biasprune_within(LIMIT, &["inspect", s(&dir)]);
        common::assert_bad_input(&out, &[file, "FIFO"]);
    }
}

#[test]
fn config_or_manifest_linked_to_dev_zero_is_refused_not_read_forever() {
    let root = tempfile::tempdir().unwrap();
    let dir = fixture(root.path(), "model", &FixtureSpec::default());
    std::fs::remove_file(dir.join("config.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("config.json")).unwrap();
    let out = biasprune_within(LIMIT, &["inspect", s(&dir)]);
    common::assert_bad_input(&out, &["config.json", "character device"]);

    let (_root, dir, public) = signed();
    std::fs::remove_file(dir.join(MANIFEST)).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join(MANIFEST)).unwrap();
    let (code, text) = verify(&dir, &public);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains(&format!("FAIL manifest.parse [{MANIFEST}]")), "{text}");
    assert!(text.contains("symbolic link"), "{text}");
}

#[test]
fn mask_json_that_is_a_fifo_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = fixture(root.path(), "model", &FixtureSpec::default());
    let mask = root.path().join("mask");
    std::fs::create_dir_all(&mask).unwrap();
    make_fifo(&mask.join("mask.json"));
    let out = biasprune_within(
        LIMIT,
        &["apply", s(&dir), "--mask", s(&mask), "--out", s(&root.path().join("out")), "--quiet"],
    );
    common::assert_bad_input(&out, &["mask.json", "FIFO"]);
}
