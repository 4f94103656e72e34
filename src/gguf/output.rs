//! Writing the checkpoint directory atomically: a temporary sibling directory, every file
//! fsynced, then one rename; on any failure the temporary directory is removed.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::GgufError;

/// A directory being written beside its final path; dropped without `commit`, it is deleted.
pub struct StagingDir {
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl StagingDir {
    /// Creates `.NAME.tmp-PID-NANOS` beside `target`; refuses a target that already exists.
    pub fn create(target: &Path) -> Result<Self, GgufError> {
        refuse_existing(target)?;
        let parent = parent_of(target);
        fs::create_dir_all(&parent).map_err(|source| GgufError::Io { path: parent.clone(), source })?;
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".to_string());
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let temp = parent.join(format!(".{name}.tmp-{}-{nanos}", std::process::id()));
        fs::create_dir(&temp).map_err(|source| GgufError::Io { path: temp.clone(), source })?;
        Ok(Self { temp, target: target.to_path_buf(), committed: false })
    }

    /// Path of `file_name` inside the temporary directory.
    pub fn path(&self, file_name: &str) -> PathBuf {
        self.temp.join(file_name)
    }

    /// Writes `bytes` to `file_name` and fsyncs it.
    pub fn write_file(&self, file_name: &str, bytes: &[u8]) -> Result<(), GgufError> {
        let path = self.path(file_name);
        let io = |source| GgufError::Io { path: path.clone(), source };
        let mut file = fs::File::create(&path).map_err(io)?;
        file.write_all(bytes).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Writes `value` as pretty JSON with a trailing newline.
    pub fn write_json<T: serde::Serialize>(&self, file_name: &str, value: &T) -> Result<(), GgufError> {
        let mut bytes = serde_json::to_vec_pretty(value)
            .map_err(|source| GgufError::Json { path: self.path(file_name), source })?;
        bytes.push(b'\n');
        self.write_file(file_name, &bytes)
    }

    /// Fsyncs a file written by someone else (the safetensors writer, whose temporary file
    /// is created owner-only) and gives it the usual rw-r--r-- mode.
    pub fn adopt_file(&self, file_name: &str) -> Result<(), GgufError> {
        let path = self.path(file_name);
        let io = |source| GgufError::Io { path: path.clone(), source };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).map_err(io)?;
        }
        fs::File::open(&path).and_then(|f| f.sync_all()).map_err(io)
    }

    /// Fsyncs the directory, renames it to the target and fsyncs the parent.
    pub fn commit(mut self) -> Result<PathBuf, GgufError> {
        sync_dir(&self.temp)?;
        refuse_existing(&self.target)?;
        fs::rename(&self.temp, &self.target).map_err(|source| GgufError::Io { path: self.target.clone(), source })?;
        self.committed = true;
        sync_dir(&parent_of(&self.target))?;
        Ok(self.target.clone())
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.temp);
        }
    }
}

fn refuse_existing(target: &Path) -> Result<(), GgufError> {
    if target.symlink_metadata().is_ok() {
        Err(GgufError::OutputExists { path: target.to_path_buf() })
    } else {
        Ok(())
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn sync_dir(dir: &Path) -> Result<(), GgufError> {
    fs::File::open(dir).and_then(|f| f.sync_all()).map_err(|source| GgufError::Io { path: dir.to_path_buf(), source })
}
