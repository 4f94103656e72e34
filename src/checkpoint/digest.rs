//! sha256 of a checkpoint's files, hashed in parallel: the identity recorded with every
//! evaluation so a run can be tied to the exact weights it used.

use std::collections::BTreeMap;
use std::path::Path;

use super::{list_regular_files, CheckpointError};
use crate::fsutil::digest::{hash_files, is_ignored, ListedFile};
use crate::fsutil::Links;
use crate::progress::NoProgress;

/// Hex sha256 of every regular file under `dir` (relative `/`-separated paths, none left
/// out), hashing files on as many threads as there are cores, largest first; links are
/// followed where [`super::resolve_inside`] allows them.
pub fn file_digests(dir: &Path) -> Result<BTreeMap<String, String>, CheckpointError> {
    let listed = list_sized_files(dir, &[])?;
    let digests = hash_files(dir, &listed, Links::Follow, &NoProgress)?;
    Ok(digests.into_iter().map(|(path, d)| (path, hex::encode(d.sha256))).collect())
}

/// [`list_regular_files`] without the paths `ignore_paths` names (see
/// [`crate::fsutil::digest::is_ignored`]), each with the size of the file it names (a link's
/// target's size).
pub fn list_sized_files(dir: &Path, ignore_paths: &[String]) -> Result<Vec<ListedFile>, CheckpointError> {
    list_regular_files(dir)?
        .into_iter()
        .filter(|name| !is_ignored(name, ignore_paths))
        .map(|name| {
            let path = dir.join(&name);
            let size = std::fs::metadata(&path).map_err(|source| CheckpointError::io(&path, source))?.len();
            Ok(ListedFile { path: name, size })
        })
        .collect()
}
