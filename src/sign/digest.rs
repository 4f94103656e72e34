//! The digests the signing format needs: a release directory's files (links refused) and a
//! base checkpoint's files (links followed where the checkpoint rules allow), both without
//! [`IGNORE_PATHS`](crate::fsutil::digest::IGNORE_PATHS), hashed on the crate's one queue ([`crate::fsutil::digest`]).

use std::collections::BTreeMap;
use std::path::Path;

use super::error::SignError;
use crate::fsutil::digest::{hash_files, ignore_paths, list_files, FileDigest, ListedFile};
use crate::fsutil::Links;
use crate::progress::Progress;

/// Hashes every regular file of `dir` except the default ignored paths (the signature and
/// git metadata); keys are relative POSIX paths. Symbolic links are refused.
pub fn digest_directory(dir: &Path, progress: &dyn Progress) -> Result<BTreeMap<String, FileDigest>, SignError> {
    let listed = list_files(dir, &ignore_paths())?;
    Ok(hash_files(dir, &listed, Links::Refuse, progress)?)
}

/// Hashes a base checkpoint as [`digest_directory`] hashes a release, except that symbolic
/// links are followed where the checkpoint rules allow them (inside `dir`, or into a Hugging
/// Face snapshot's blobs: see [`crate::checkpoint::resolve_inside`]). The digests are those
/// of the files' contents, so a Hub cache snapshot has the same identity as a plain copy.
pub fn digest_checkpoint(dir: &Path, progress: &dyn Progress) -> Result<BTreeMap<String, FileDigest>, SignError> {
    let listed = list_checkpoint_files(dir, &ignore_paths())?;
    Ok(hash_files(dir, &listed, Links::Follow, progress)?)
}

/// Lists a base checkpoint's files (sorted, `ignore_paths` skipped) with the sizes of the
/// files links lead to; links outside what [`crate::checkpoint::resolve_inside`] allows are
/// refused.
pub fn list_checkpoint_files(dir: &Path, ignore_paths: &[String]) -> Result<Vec<ListedFile>, SignError> {
    if !dir.is_dir() {
        return Err(SignError::NotADirectory { path: dir.to_path_buf() });
    }
    crate::checkpoint::list_sized_files(dir, ignore_paths).map_err(|e| SignError::Checkpoint(Box::new(e)))
}
