//! A release written in manifest format version 1 (fixtures/v1-release, made before
//! format version 2 existed) still verifies: signature, files, manifest, and every byte
//! against its base, which `biasprune fixture` regenerates deterministically.

use std::path::Path;
use std::process::Command;

fn biasprune(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_biasprune")).args(args).output().unwrap()
}

#[test]
fn a_version_1_release_still_verifies_with_and_without_its_base() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let release = fixtures.join("v1-release");
    let key = fixtures.join("v1-release.pub");
    let manifest = std::fs::read_to_string(release.join("biasprune-manifest.json")).unwrap();
    assert!(manifest.contains("\"format_version\": 1,"), "the fixture must stay a version-1 release");

    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let made = biasprune(&["fixture", base.to_str().unwrap(), "--shards", "1", "--quiet"]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));

    for with_base in [false, true] {
        let mut args = vec!["verify", release.to_str().unwrap(), "--public-key", key.to_str().unwrap()];
        if with_base {
            args.extend(["--base", base.to_str().unwrap()]);
        }
        let out = biasprune(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("PASS manifest.parse: format version 1"), "{stdout}");
        assert!(stdout.contains("evidence outcome: none recorded"), "{stdout}");
        if with_base {
            assert!(stdout.contains("PASS base.unchanged"), "{stdout}");
        }
    }
}
