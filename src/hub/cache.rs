//! The Hugging Face cache layout: `models--ORG--NAME/refs/REVISION` holds a commit hash,
//! `snapshots/COMMIT/` holds the files (links into `blobs/`), as huggingface_hub writes it.

use std::path::{Path, PathBuf};

use super::{is_commit_hash, HubError, HubRef};

/// Largest `refs/` file read: a commit hash and a newline are 41 bytes.
const MAX_REF_BYTES: u64 = 1024;

/// The folder of repository `id` (`org/name`) in the hub cache `cache`.
pub fn model_cache_dir(cache: &Path, id: &str) -> PathBuf {
    cache.join(format!("models--{}", id.replace('/', "--")))
}

/// The cached snapshot of `reference` and its commit hash, or None when the cache lacks the
/// revision (no refs file for a branch or tag, or no snapshot folder for the commit).
pub fn find_snapshot(cache: &Path, reference: &HubRef) -> Result<Option<(PathBuf, String)>, HubError> {
    let model_dir = model_cache_dir(cache, &reference.id);
    let revision = reference.revision();
    let commit = if is_commit_hash(revision) {
        revision.to_string()
    } else {
        match read_ref(&model_dir.join("refs").join(revision))? {
            Some(commit) => commit,
            None => return Ok(None),
        }
    };
    let snapshot = model_dir.join("snapshots").join(&commit);
    Ok(snapshot.is_dir().then_some((snapshot, commit)))
}

/// The commit hash a refs file holds, None when there is no such file.
fn read_ref(path: &Path) -> Result<Option<String>, HubError> {
    if path.symlink_metadata().is_err() {
        return Ok(None);
    }
    let text = crate::fsutil::read_capped_text(path, MAX_REF_BYTES, crate::fsutil::Links::Follow)
        .map_err(|source| HubError::Io { path: path.to_path_buf(), source })?;
    let commit = text.trim();
    if !is_commit_hash(commit) {
        return Err(HubError::BadRef { path: path.to_path_buf(), found: commit.chars().take(80).collect() });
    }
    Ok(Some(commit.to_string()))
}
