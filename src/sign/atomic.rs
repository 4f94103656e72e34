//! Atomic file creation: a temporary file in the same directory, synced, then moved in.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::SignError;

/// Writes `bytes` to `path`, replacing any existing file in one rename.
pub(crate) fn write_replacing(path: &Path, bytes: &[u8]) -> Result<(), SignError> {
    let temp = write_temp(path, bytes, 0o644)?;
    fs::rename(&temp, path).map_err(|source| {
        let _ = fs::remove_file(&temp);
        SignError::io(path, source)
    })
}

/// Creates `path` with `bytes` and permission `mode`; fails if `path` exists. The file
/// appears complete or not at all (hard link of a synced temporary file).
pub(crate) fn create_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SignError> {
    let temp = write_temp(path, bytes, mode)?;
    let linked = fs::hard_link(&temp, path);
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(SignError::KeyFileExists { path: path.to_path_buf() })
        }
        Err(source) => Err(SignError::io(path, source)),
    }
}

fn write_temp(path: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf, SignError> {
    let temp = temp_path(path);
    let result = (|| {
        let mut file: File = OpenOptions::new().write(true).create_new(true).mode(mode).open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    match result {
        Ok(()) => Ok(temp),
        Err(source) => {
            let _ = fs::remove_file(&temp);
            Err(SignError::io(&temp, source))
        }
    }
}

fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn create_new_sets_mode_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.priv");
        create_new(&path, b"first", 0o600).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let err = create_new(&path, b"second", 0o600).unwrap_err();
        assert!(matches!(err, SignError::KeyFileExists { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }

    #[test]
    fn write_replacing_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.sig");
        write_replacing(&path, b"old").unwrap();
        write_replacing(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
