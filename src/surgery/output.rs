//! The output directory: refusing dangerous targets, a temporary sibling, atomic publication.
//!
//! Work happens in `.NAME.biasprune-partial-PID` beside OUT; only a complete, fsynced tree is
//! renamed into place. A crash leaves that clearly named directory, which the next run for
//! the same OUT removes once its process is gone.

use std::path::{Path, PathBuf};

use super::SurgeryError;

use crate::fsutil::{remove_stale_partials, PARTIAL_MARK};

/// Where the output goes, after every safety check passed.
#[derive(Debug)]
pub struct OutputTarget {
    /// The final directory.
    pub out: PathBuf,
    /// The temporary directory being filled.
    pub temp: PathBuf,
    /// Whether `out` exists and will be replaced (`--force`).
    pub replace: bool,
}

/// Checks that `out` is a safe destination for a copy of `input`, removes stale partial
/// directories of earlier runs, and creates a fresh temporary directory.
pub fn prepare_output(input: &Path, out: &Path, force: bool) -> Result<OutputTarget, SurgeryError> {
    let input = input.canonicalize().map_err(|source| SurgeryError::io(input, source))?;
    // A Hugging Face cache snapshot's files live in its model's blobs/: the whole model
    // folder (snapshots, blobs, refs) counts as the input, so OUT can neither land in it
    // nor replace it.
    let input = crate::checkpoint::hub_blobs_of(&input)
        .and_then(|blobs| blobs.parent().map(Path::to_path_buf))
        .unwrap_or(input);
    let out = absolute_target(out)?;
    if out == input || out.starts_with(&input) {
        return Err(SurgeryError::OutputInsideInput { out, input });
    }
    let existing = out.symlink_metadata().ok();
    let replace = existing.is_some();
    if replace && !force {
        return Err(SurgeryError::OutputExists { out });
    }
    if existing.is_some_and(|meta| !meta.is_dir()) {
        return Err(SurgeryError::OutputNotADirectory { out });
    }
    if replace && input.starts_with(&out) {
        return Err(SurgeryError::OutputContainsInput { out, input });
    }
    let parent = out.parent().expect("absolute target has a parent");
    let name = file_name(&out)?;
    remove_stale_partials(parent, &name);
    let temp = parent.join(format!(".{name}{PARTIAL_MARK}{}", std::process::id()));
    if temp.exists() {
        std::fs::remove_dir_all(&temp).map_err(|source| SurgeryError::io(&temp, source))?;
    }
    std::fs::create_dir(&temp).map_err(|source| SurgeryError::io(&temp, source))?;
    Ok(OutputTarget { out, temp, replace })
}

/// Moves the finished temporary directory into place (atomically swapping with an existing
/// OUT when replacing) and makes the rename durable.
pub fn publish(target: &OutputTarget) -> Result<(), SurgeryError> {
    sync_dir(&target.temp)?;
    if target.replace {
        exchange(&target.temp, &target.out)?;
        std::fs::remove_dir_all(&target.temp).map_err(|source| SurgeryError::io(&target.temp, source))?;
    } else {
        std::fs::rename(&target.temp, &target.out).map_err(|source| SurgeryError::io(&target.out, source))?;
    }
    sync_dir(target.out.parent().expect("absolute target has a parent"))
}

/// Removes the temporary directory after a failure (best effort: the error that caused the
/// failure matters more than one from the cleanup).
pub fn discard(target: &OutputTarget) {
    let _ = std::fs::remove_dir_all(&target.temp);
}

/// Opens a directory and fsyncs it, so renames and new entries in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), SurgeryError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|source| SurgeryError::io(dir, source))
}

fn absolute_target(out: &Path) -> Result<PathBuf, SurgeryError> {
    let name = file_name(out)?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parent = parent.canonicalize().map_err(|source| SurgeryError::io(&parent, source))?;
    Ok(parent.join(name))
}

fn file_name(path: &Path) -> Result<String, SurgeryError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .filter(|n| *n != "." && *n != "..")
        .map(str::to_string)
        .ok_or_else(|| SurgeryError::BadOutputName { out: path.to_path_buf() })
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> Result<(), SurgeryError> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let cstr = |p: &Path| CString::new(p.as_os_str().as_bytes()).expect("paths have no NUL");
    let (ca, cb) = (cstr(a), cstr(b));
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call.
    let rc =
        unsafe { libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE) };
    if rc != 0 {
        return Err(SurgeryError::io(b, std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn exchange(a: &Path, b: &Path) -> Result<(), SurgeryError> {
    let aside = b.with_extension("biasprune-old");
    std::fs::rename(b, &aside).map_err(|source| SurgeryError::io(b, source))?;
    std::fs::rename(a, b).map_err(|source| SurgeryError::io(b, source))?;
    std::fs::rename(&aside, a).map_err(|source| SurgeryError::io(a, source))
}
