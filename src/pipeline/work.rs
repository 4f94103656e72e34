//! The work directory: one subdirectory per stage result, named by the digest of the
//! stage's inputs, so a rerun finds what is already done and redoes only what changed.
//!
//! A stage that produces a directory in one go builds it under `NAME.partial` and renames
//! it into place when complete; a stage that resumes by itself (evaluation) works in place
//! and is marked complete by `stage.json`, written last.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::PipelineError;

/// Marker written last into a stage directory that resumes in place.
pub const STAGE_MARKER: &str = "stage.json";
/// Lock file that keeps two runs from sharing a work directory.
const LOCK_FILE: &str = "lock";

/// An open, locked work directory.
pub struct WorkDir {
    root: PathBuf,
    _lock: File,
}

/// The 16-hex-digit key of a stage: sha256 of the canonical JSON of its inputs.
pub fn stage_key(inputs: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(inputs).expect("stage inputs serialise");
    hex::encode(&Sha256::digest(&bytes)[..8])
}

impl WorkDir {
    /// Creates (or opens) `root` and takes its lock; a second run on the same directory is
    /// refused rather than left to corrupt the first.
    pub fn open(root: &Path) -> Result<Self, PipelineError> {
        std::fs::create_dir_all(root).map_err(|e| PipelineError::io(root, e))?;
        let lock_path = root.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| PipelineError::io(&lock_path, e))?;
        if !try_lock_exclusive(&lock) {
            return Err(PipelineError::Spec(format!(
                "{}: another biasprune prune is using this work directory",
                root.display()
            )));
        }
        Ok(WorkDir { root: root.to_path_buf(), _lock: lock })
    }

    /// The work directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of stage `name` with inputs key `key`.
    pub fn stage_dir(&self, name: &str, key: &str) -> PathBuf {
        self.root.join(format!("{name}-{key}"))
    }

    /// Whether a stage directory that resumes in place was marked complete.
    pub fn is_complete(dir: &Path) -> bool {
        dir.join(STAGE_MARKER).is_file()
    }

    /// Marks a stage directory complete, recording what made it.
    pub fn mark_complete(dir: &Path, inputs: &impl Serialize) -> Result<(), PipelineError> {
        let mut bytes = serde_json::to_vec_pretty(inputs).expect("stage inputs serialise");
        bytes.push(b'\n');
        let path = dir.join(STAGE_MARKER);
        crate::fsutil::write_atomically(&path, &bytes).map_err(|e| PipelineError::io(&path, e))
    }

    /// Builds `dir` with `build` in a fresh `dir.partial` and renames it into place; does
    /// nothing when `dir` exists (it was completed by an earlier run). Returns whether it built.
    pub fn build_once(
        dir: &Path,
        build: impl FnOnce(&Path) -> Result<(), PipelineError>,
    ) -> Result<bool, PipelineError> {
        if dir.is_dir() {
            return Ok(false);
        }
        let partial = partial_path(dir);
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(|e| PipelineError::io(&partial, e))?;
        }
        std::fs::create_dir_all(&partial).map_err(|e| PipelineError::io(&partial, e))?;
        build(&partial)?;
        crate::fsutil::sync_tree(&partial).map_err(|e| PipelineError::io(&partial, e))?;
        std::fs::rename(&partial, dir).map_err(|e| PipelineError::io(dir, e))?;
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        crate::fsutil::sync_dir(parent).map_err(|e| PipelineError::io(parent, e))?;
        Ok(true)
    }
}

/// Takes an exclusive advisory lock on `file` without waiting (released when it closes).
fn try_lock_exclusive(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor this function borrows; no memory is shared.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

fn partial_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    dir.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_change_with_any_input() {
        let a = stage_key(&serde_json::json!({"p": 0.15, "q": 0.15}));
        assert_eq!(a, stage_key(&serde_json::json!({"p": 0.15, "q": 0.15})));
        assert_ne!(a, stage_key(&serde_json::json!({"p": 0.15, "q": 0.4})));
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn build_once_replaces_a_stale_partial_and_skips_done_dirs() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("mask-abc");
        std::fs::create_dir_all(root.path().join("mask-abc.partial/junk")).unwrap();
        let built = WorkDir::build_once(&dir, |tmp| {
            assert!(!tmp.join("junk").exists());
            std::fs::write(tmp.join("f"), b"x").map_err(|e| PipelineError::io(tmp, e))
        })
        .unwrap();
        assert!(built && dir.join("f").is_file() && !root.path().join("mask-abc.partial").exists());
        assert!(!WorkDir::build_once(&dir, |_| panic!("must not rebuild")).unwrap());
    }

    #[test]
    fn a_second_run_on_the_same_work_dir_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let _first = WorkDir::open(root.path()).unwrap();
        let err = WorkDir::open(root.path()).err().expect("locked").to_string();
        assert!(err.contains("another biasprune prune"), "{err}");
    }
}
