//! Small file-system helpers shared by every module that reads or writes files: opening
//! untrusted inputs safely, capped reads, atomic writes and read-only maps; `digest` hashes.

pub mod digest;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

pub use digest::{file_sha256, mapped_sha256};

/// Largest JSON file read from untrusted input (config.json, tokenizer files, the pruning
/// manifest, model.sig, mask.json, score sidecars, run and summary files): 64 MiB. Real ones
/// are far smaller (a Llama 3 tokenizer.json is 9 MiB, a manifest a few MiB at most).
pub const MAX_JSON_BYTES: u64 = 64 << 20;

/// Largest TOML file read (scenario manifests, name lists, prune pipeline files): 16 MiB.
pub const MAX_TOML_BYTES: u64 = 16 << 20;

/// Largest PEM key file read: 64 KiB (an EC key is a few hundred bytes).
pub const MAX_KEY_BYTES: u64 = 64 << 10;

/// Whether opening an untrusted file may follow a symbolic link in the path's last component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Follow it (checkpoint directories may link their files); the target must still be a
    /// regular file, so a link to /dev/zero or a FIFO is refused.
    Follow,
    /// Refuse it (files of a signed release: the signing format has `allow_symlinks: false`).
    Refuse,
}

/// Opens an untrusted input file for reading without ever blocking or reading a device:
/// O_NONBLOCK so that opening a FIFO returns at once, O_NOFOLLOW with [`Links::Refuse`], then
/// fstat on the open descriptor requires a regular file (FIFOs, sockets, devices such as
/// /dev/zero and directories are refused with an error saying what was found). The returned
/// file is in blocking mode again.
pub fn open_regular(path: &Path, links: Links) -> std::io::Result<File> {
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let file = OpenOptions::new().read(true).custom_flags(flags).open(path).map_err(|e| {
        if links == Links::Refuse && e.raw_os_error() == Some(libc::ELOOP) {
            invalid("is a symbolic link, expected a regular file".to_string())
        } else {
            e
        }
    })?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(invalid(format!("is {}, expected a regular file", describe(kind))));
    }
    // SAFETY: fcntl on a descriptor this function owns; F_GETFL/F_SETFL touch only its flags.
    let cleared = unsafe {
        let fd = file.as_raw_fd();
        let current = libc::fcntl(fd, libc::F_GETFL);
        current >= 0 && libc::fcntl(fd, libc::F_SETFL, current & !libc::O_NONBLOCK) == 0
    };
    if !cleared {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

/// Reads a whole untrusted file opened through [`open_regular`], refusing one of more than
/// `limit` bytes (checked on fstat and again while reading, so a file that grows meanwhile
/// cannot exceed it either).
pub fn read_capped(path: &Path, limit: u64, links: Links) -> std::io::Result<Vec<u8>> {
    let file = open_regular(path, links)?;
    let len = file.metadata()?.len();
    if len > limit {
        return Err(too_large(len, limit));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64, limit));
    }
    Ok(bytes)
}

/// [`read_capped`] for text files (TOML, PEM): the bytes must be UTF-8.
pub fn read_capped_text(path: &Path, limit: u64, links: Links) -> std::io::Result<String> {
    String::from_utf8(read_capped(path, limit, links)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not UTF-8 text: {e}")))
}

fn describe(kind: std::fs::FileType) -> &'static str {
    if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, message)
}

fn too_large(len: u64, limit: u64) -> std::io::Error {
    invalid(format!("is {len} bytes, more than the limit of {limit} bytes for this kind of file"))
}

/// Permission bits of the work files biasprune writes (masks, scores, run, summary and stage
/// files): readable by everyone, like any copied file. Private keys are written with 0600
/// by the key generator, not through these helpers.
pub const WORK_FILE_MODE: u32 = 0o644;

/// Writes `bytes` to `path` through a sibling temporary file, fsync and rename, then fsyncs
/// the directory, so readers see either the old file or the complete new one and the new
/// one survives a crash. The file gets [`WORK_FILE_MODE`].
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temp = partial_file_for(path)?;
    temp.write_all(bytes)?;
    persist_work_file(temp, path)
}

/// Creates `path` with `bytes` and permission bits `mode`, failing with
/// [`std::io::ErrorKind::AlreadyExists`] when `path` exists (an existing file is never
/// replaced): the bytes go to a synced temporary file beside it that is then linked into
/// place, so the file appears complete or not at all, and the directory is fsynced.
pub fn create_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut temp = partial_file_for(path)?;
    temp.write_all(bytes)?;
    temp.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
    temp.as_file().sync_all()?;
    temp.persist_noclobber(path).map_err(|e| e.error)?;
    sync_dir(parent_dir(path))
}

/// What marks a partial output: `.NAME` + this + the writer's process id (then, for files,
/// `.` and a random suffix).
pub const PARTIAL_MARK: &str = ".biasprune-partial-";

/// Creates the temporary file that becomes `path` once complete (see `persist_work_file`):
/// `.NAME.biasprune-partial-PID.XXXXXX` beside it, after removing the partial files of
/// earlier writers of `path` whose process is gone (a run killed mid-write leaves one).
pub fn partial_file_for(path: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let parent = parent_dir(path);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    remove_stale_partials(parent, &name);
    tempfile::Builder::new().prefix(&format!(".{name}{PARTIAL_MARK}{}.", std::process::id())).tempfile_in(parent)
}

/// Removes the partial outputs (`.NAME.biasprune-partial-PID`, directories or files, with
/// or without a suffix after the process id) that `parent` holds for NAME `name` and whose
/// writing process is gone. Best effort: what cannot be removed stays.
pub fn remove_stale_partials(parent: &Path, name: &str) {
    let prefix = format!(".{name}{PARTIAL_MARK}");
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else { continue };
        let pid = rest.split('.').next().unwrap_or_default();
        if pid.parse::<u32>().is_ok_and(|pid| !process_alive(pid)) {
            log::info!("removing the partial output of an interrupted run: {}", entry.path().display());
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let _ = if is_dir { std::fs::remove_dir_all(entry.path()) } else { std::fs::remove_file(entry.path()) };
        }
    }
}

fn process_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

/// Moves a finished temporary file (in `path`'s directory) to `path`: sets [`WORK_FILE_MODE`]
/// (temporary files are created 0600), fsyncs the file, renames it and fsyncs the directory.
pub fn persist_work_file(temp: tempfile::NamedTempFile, path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    temp.as_file().set_permissions(std::fs::Permissions::from_mode(WORK_FILE_MODE))?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    sync_dir(parent_dir(path))
}

/// Opens a directory and fsyncs it, so renames and new entries in it are durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// fsyncs every file and directory under `dir` (and `dir` itself), before `dir` is renamed
/// into place, so a crash after the rename cannot leave a complete-looking stage with lost
/// contents.
pub fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            sync_tree(&entry.path())?;
        } else if kind.is_file() {
            File::open(entry.path())?.sync_all()?;
        }
    }
    sync_dir(dir)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Maps a file read-only, for reading large files through the page cache without copying
/// them onto the heap. The file must not change while mapped (as with checkpoint shards).
pub fn map_read_only(path: &Path) -> std::io::Result<memmap2::Mmap> {
    let file = open_regular(path, Links::Follow)?;
    // SAFETY: a read-only map; biasprune never writes its inputs, and, as documented for
    // checkpoints and masks, they must not be changed by others while it runs.
    unsafe { memmap2::Mmap::map(&file) }
}

/// Gives the pages of `len` bytes at `offset` of a read-only file map back to the kernel, so
/// that reading a large map does not grow the resident set; a later read of the range faults
/// the same file bytes back in from the page cache.
pub fn release_pages(map: &memmap2::Mmap, offset: usize, len: usize) {
    // SAFETY: the map is read-only and file-backed: MADV_DONTNEED only drops page-table
    // entries (no data is lost), and slices into the range stay valid, re-read on access.
    let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len) };
}

/// `release_pages` for `part`, a slice of `map` (a slice from elsewhere is left alone).
pub fn release_slice_pages(map: &memmap2::Mmap, part: &[u8]) {
    let offset = (part.as_ptr() as usize).wrapping_sub(map.as_ptr() as usize);
    if offset <= map.len() && part.len() <= map.len() - offset {
        release_pages(map, offset, part.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_device_link_and_oversized_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.json");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
        let err = read_capped(&fifo, MAX_JSON_BYTES, Links::Follow).unwrap_err();
        assert!(err.to_string().contains("a FIFO"), "{err}");
        let zero = dir.path().join("zero.json");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let err = read_capped(&zero, MAX_JSON_BYTES, Links::Follow).unwrap_err();
        assert!(err.to_string().contains("a character device"), "{err}");
        let err = read_capped(&zero, MAX_JSON_BYTES, Links::Refuse).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; 11]).unwrap();
        let err = read_capped(&big, 10, Links::Refuse).unwrap_err();
        assert!(err.to_string().contains("is 11 bytes, more than the limit of 10"), "{err}");
        assert_eq!(read_capped(&big, 11, Links::Refuse).unwrap().len(), 11);
    }

    #[test]
    fn atomically_written_work_files_are_world_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mask.json");
        write_atomically(&path, b"{}").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, WORK_FILE_MODE);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
    }

    #[test]
    fn create_new_sets_mode_and_refuses_to_overwrite() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.priv");
        create_new(&path, b"first", 0o600).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let err = create_new(&path, b"second", 0o600).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }
}
