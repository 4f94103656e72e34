//! Hub ids, cache lookups and the snapshot link rule, on caches laid out in temp dirs.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::*;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn offline(cache: &Path) -> HubSettings {
    HubSettings { cache: cache.to_path_buf(), offline: true, token: None, endpoint: None, progress: false }
}

/// `models--org--name` with refs/main, one snapshot whose config.json links into blobs/.
fn cache_with_model(cache: &Path, id: &str) -> PathBuf {
    let model = model_cache_dir(cache, id);
    std::fs::create_dir_all(model.join("refs")).unwrap();
    std::fs::create_dir_all(model.join("blobs")).unwrap();
    let snapshot = model.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::write(model.join("refs/main"), COMMIT).unwrap();
    std::fs::write(model.join("blobs/abc"), b"{}").unwrap();
    symlink("../../blobs/abc", snapshot.join("config.json")).unwrap();
    snapshot
}

#[test]
fn ids_and_revisions_parse_and_malformed_ones_are_paths() {
    let parsed = HubRef::parse("HuggingFaceTB/SmolLM2-135M-Instruct@v1.0").unwrap();
    assert_eq!(parsed.id, "HuggingFaceTB/SmolLM2-135M-Instruct");
    assert_eq!(parsed.revision(), "v1.0");
    assert_eq!(HubRef::parse("org/name").unwrap().revision(), DEFAULT_REVISION);
    assert_eq!(HubRef::parse("org/name@refs/pr/1").unwrap().revision(), "refs/pr/1");
    for bad in ["name", "/abs/path", "a/b/c", "./a", "org/../x", "org/na--me", "org/name@", "org/name@../x", "-o/n"] {
        assert_eq!(HubRef::parse(bad), None, "{bad}");
    }
}

#[test]
fn existing_paths_and_local_first_components_are_not_hub_ids() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(hub_reference(dir.path()), None, "an existing directory");
    assert_eq!(hub_reference(Path::new("src/missing")), None, "src is a local directory");
    assert_eq!(hub_reference(Path::new("no-such-org-here/model")).unwrap().id, "no-such-org-here/model");
}

#[test]
fn a_cached_branch_resolves_through_refs_to_its_snapshot_and_commit() {
    let cache = tempfile::tempdir().unwrap();
    let snapshot = cache_with_model(cache.path(), "no-such-org-here/model");
    let resolved = resolve_checkpoint(Path::new("no-such-org-here/model"), &offline(cache.path())).unwrap();
    assert_eq!(resolved.dir, snapshot);
    assert_eq!(resolved.hub, Some(HubModel { id: "no-such-org-here/model".into(), revision: COMMIT.into() }));
    let pinned = format!("no-such-org-here/model@{COMMIT}");
    assert_eq!(resolve_checkpoint(Path::new(&pinned), &offline(cache.path())).unwrap().dir, snapshot);
}

#[test]
fn offline_a_missing_model_or_revision_is_an_error_naming_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    cache_with_model(cache.path(), "no-such-org-here/model");
    for arg in ["no-such-org-here/other", "no-such-org-here/model@v2"] {
        let err = resolve_checkpoint(Path::new(arg), &offline(cache.path())).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, HubError::NotCached { .. }), "{text}");
        assert!(text.contains("HF_HUB_OFFLINE is set") && text.contains(&cache.path().display().to_string()), "{text}");
    }
}

#[test]
fn a_refs_file_without_a_commit_hash_is_refused() {
    let cache = tempfile::tempdir().unwrap();
    cache_with_model(cache.path(), "no-such-org-here/model");
    let refs = model_cache_dir(cache.path(), "no-such-org-here/model").join("refs/main");
    std::fs::write(&refs, "not a commit").unwrap();
    let err = resolve_checkpoint(Path::new("no-such-org-here/model"), &offline(cache.path())).unwrap_err();
    assert!(err.to_string().contains("expected a 40-hex-digit commit hash, found \"not a commit\""), "{err}");
}

#[test]
fn snapshot_links_may_lead_into_their_own_blobs_only() {
    let cache = tempfile::tempdir().unwrap();
    let snapshot = cache_with_model(cache.path(), "no-such-org-here/model");
    let other = cache_with_model(cache.path(), "no-such-org-here/other");
    symlink(other.join("config.json"), snapshot.join("stolen.json")).unwrap();
    let root = snapshot.canonicalize().unwrap();
    assert!(crate::checkpoint::resolve_inside(&root, "config.json").is_ok());
    let err = crate::checkpoint::resolve_inside(&root, "stolen.json").unwrap_err();
    assert!(err.to_string().contains("leads outside the checkpoint directory"), "{err}");
    let copy = tempfile::tempdir().unwrap();
    symlink(snapshot.join("config.json"), copy.path().join("config.json")).unwrap();
    let err = crate::checkpoint::resolve_inside(copy.path(), "config.json").unwrap_err();
    assert!(
        err.to_string().contains("leads outside the checkpoint directory"),
        "a plain directory gains nothing: {err}"
    );
}
