//! sha256 of files and directories, the crate's one hasher: a single file, a memory map, or
//! a directory's files on a parallel queue that hashes the largest file first; the listing
//! of a signed directory (symbolic links refused) and the paths signing leaves out.
//!
//! Callers choose the two rules that differ between them, explicitly: which paths to leave
//! out (`ignore_paths`: signing leaves out [`IGNORE_PATHS`], an evaluation's checkpoint
//! identity nothing) and whether a symbolic link may be followed ([`Links`]: refused in a
//! release, as the signing format has `allow_symlinks: false`; followed in a base checkpoint,
//! where the checkpoint's listing has checked each link stays inside it).

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::{open_regular, release_pages, Links};
use crate::progress::{NoProgress, Progress, Unit};

/// Read buffer per hashing thread, reused for every file that thread hashes.
const READ_BUFFER_BYTES: usize = 1 << 20;

/// Paths left out of a signature by default: the signature itself and git metadata.
pub const IGNORE_PATHS: [&str; 5] = ["model.sig", ".git", ".gitattributes", ".github", ".gitignore"];

/// [`IGNORE_PATHS`] as the owned strings a statement records and [`is_ignored`] takes.
pub fn ignore_paths() -> Vec<String> {
    IGNORE_PATHS.iter().map(|p| p.to_string()).collect()
}

/// The sha256 of one file and the number of bytes it covers; serialized (in reports of
/// written files) as `{"sha256": lowercase hex, "size": bytes}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FileDigest {
    /// Raw sha256 of the file's bytes.
    #[serde(serialize_with = "serialize_hex")]
    pub sha256: [u8; 32],
    /// File size in bytes (checked against the directory before a precomputed digest is used).
    pub size: u64,
}

/// A sha256 as the lowercase hex string reports show.
fn serialize_hex<S: serde::Serializer>(sha256: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode(sha256))
}

/// A regular file found in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    /// Path relative to the directory, '/'-separated.
    pub path: String,
    /// Size in bytes at listing time.
    pub size: u64,
}

/// Why a directory could not be listed or hashed.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// Reading a file or directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The directory to list is not a directory.
    #[error("{path}: expected a directory")]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The signed format has allow_symlinks false, so a symbolic link cannot be signed.
    #[error("{path}: is a symbolic link; model signatures cover regular files only (allow_symlinks is false)")]
    SymlinkRefused {
        /// The link found.
        path: PathBuf,
    },
    /// A device, socket or FIFO inside the directory.
    #[error("{path}: expected a regular file or directory, found another kind of file")]
    NotRegularFile {
        /// The entry found.
        path: PathBuf,
    },
    /// File names must be UTF-8 to be listed in a statement.
    #[error("{path}: file name is not valid UTF-8")]
    NonUtf8Path {
        /// The entry found.
        path: PathBuf,
    },
}

impl DigestError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        DigestError::Io { path: path.to_path_buf(), source }
    }
}

/// True when relative path `path` is one of `ignore_paths` or lies below one of them.
pub fn is_ignored(path: &str, ignore_paths: &[String]) -> bool {
    ignore_paths.iter().any(|ignored| {
        let ignored = ignored.trim_start_matches("./").trim_end_matches('/');
        !ignored.is_empty() && (path == ignored || path.strip_prefix(ignored).is_some_and(|rest| rest.starts_with('/')))
    })
}

/// Lists the regular files under `dir` (sorted by relative path), skipping `ignore_paths`.
/// Symbolic links and special files are errors: the signing format has `allow_symlinks:
/// false`. (A base checkpoint, whose links may be followed, is listed by
/// `checkpoint::list_sized_files`.)
pub fn list_files(dir: &Path, ignore_paths: &[String]) -> Result<Vec<ListedFile>, DigestError> {
    if !dir.is_dir() {
        return Err(DigestError::NotADirectory { path: dir.to_path_buf() });
    }
    let mut files = Vec::new();
    let mut pending = vec![String::new()];
    while let Some(relative_dir) = pending.pop() {
        let absolute = dir.join(&relative_dir);
        let entries = std::fs::read_dir(&absolute).map_err(|e| DigestError::io(&absolute, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| DigestError::io(&absolute, e))?;
            let name = entry.file_name();
            let name = name.to_str().ok_or_else(|| DigestError::NonUtf8Path { path: entry.path() })?;
            let relative = if relative_dir.is_empty() { name.to_string() } else { format!("{relative_dir}/{name}") };
            if is_ignored(&relative, ignore_paths) {
                continue;
            }
            let kind = entry.file_type().map_err(|e| DigestError::io(&entry.path(), e))?;
            if kind.is_symlink() {
                return Err(DigestError::SymlinkRefused { path: entry.path() });
            } else if kind.is_dir() {
                pending.push(relative);
            } else if kind.is_file() {
                let size = entry.metadata().map_err(|e| DigestError::io(&entry.path(), e))?.len();
                files.push(ListedFile { path: relative, size });
            } else {
                return Err(DigestError::NotRegularFile { path: entry.path() });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Hashes `files` (relative to `dir`) over `available_parallelism()` threads, largest file
/// first so one big file does not start last; each thread streams through one buffer. A
/// file is opened with `links` (a link in its last component refused or followed).
pub fn hash_files(
    dir: &Path,
    files: &[ListedFile],
    links: Links,
    progress: &dyn Progress,
) -> Result<BTreeMap<String, FileDigest>, DigestError> {
    let mut order: Vec<&ListedFile> = files.iter().collect();
    order.sort_by_key(|f| (Reverse(f.size), f.path.as_str()));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(order.len());
    progress.start("hashing", files.iter().map(|f| f.size).sum(), Unit::Bytes);
    let queue = WorkQueue { dir, order, links, next: AtomicUsize::new(0), failed: AtomicBool::new(false) };
    let results = Mutex::new(BTreeMap::new());
    let first_error = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                if let Err(err) = queue.work(&results, progress) {
                    queue.failed.store(true, Ordering::Relaxed);
                    first_error.lock().expect("error lock").get_or_insert(err);
                }
            });
        }
    });
    progress.finish();
    match first_error.into_inner().expect("error lock") {
        Some(err) => Err(err),
        None => Ok(results.into_inner().expect("results lock")),
    }
}

/// Files ordered largest first, handed out one at a time to the hashing threads.
struct WorkQueue<'a> {
    dir: &'a Path,
    order: Vec<&'a ListedFile>,
    links: Links,
    next: AtomicUsize,
    failed: AtomicBool,
}

impl WorkQueue<'_> {
    fn work(&self, results: &Mutex<BTreeMap<String, FileDigest>>, progress: &dyn Progress) -> Result<(), DigestError> {
        let mut buffer = vec![0u8; READ_BUFFER_BYTES];
        while !self.failed.load(Ordering::Relaxed) {
            let Some(file) = self.order.get(self.next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            let path = self.dir.join(&file.path);
            let digest = hash_file(&path, self.links, &mut buffer, progress).map_err(|e| DigestError::io(&path, e))?;
            results.lock().expect("results lock").insert(file.path.clone(), digest);
        }
        Ok(())
    }
}

/// Streams one file through sha256 using `buffer`, reporting bytes as they are read.
fn hash_file(path: &Path, links: Links, buffer: &mut [u8], progress: &dyn Progress) -> std::io::Result<FileDigest> {
    let mut file = open_regular(path, links)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let n = match file.read(buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..n]);
        size += n as u64;
        progress.advance(n as u64);
    }
    Ok(FileDigest { size, sha256: hasher.finalize().into() })
}

/// The sha256 and size of one file, opened with `links` and read in 1 MiB blocks.
pub fn sha256_file(path: &Path, links: Links) -> std::io::Result<FileDigest> {
    hash_file(path, links, &mut vec![0u8; READ_BUFFER_BYTES], &NoProgress)
}

/// Hex sha256 of a file's bytes (a link in its last component followed), read in 1 MiB
/// blocks.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    sha256_file(path, Links::Follow).map(|d| hex::encode(d.sha256))
}

/// sha256 of a read-only file map, giving each 4 MiB block's pages back once hashed.
pub fn mapped_sha256(map: &memmap2::Mmap) -> [u8; 32] {
    const BLOCK: usize = 4 << 20;
    let mut hasher = Sha256::new();
    for (i, block) in map.chunks(BLOCK).enumerate() {
        hasher.update(block);
        release_pages(map, i * BLOCK, block.len());
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn sample_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("sub/deeper")).unwrap();
        fs::create_dir_all(dir.path().join(".git/objects")).unwrap();
        fs::write(dir.path().join("b.bin"), vec![7u8; 3_000_000]).unwrap();
        fs::write(dir.path().join("a.json"), b"{}").unwrap();
        fs::write(dir.path().join("sub/deeper/c"), b"").unwrap();
        fs::write(dir.path().join(".git/objects/x"), b"git").unwrap();
        fs::write(dir.path().join("model.sig"), b"old signature").unwrap();
        fs::write(dir.path().join(".gitignore"), b"target").unwrap();
        dir
    }

    fn digest_directory(dir: &Path) -> Result<BTreeMap<String, FileDigest>, DigestError> {
        hash_files(dir, &list_files(dir, &ignore_paths())?, Links::Refuse, &NoProgress)
    }

    /// Apply, release and plant reports print every written file's digest in this form.
    #[test]
    fn file_digest_serializes_as_hex_sha256_then_size() {
        let digest = FileDigest { sha256: Sha256::digest(b"abc").into(), size: 3 };
        assert_eq!(
            serde_json::to_string(&digest).unwrap(),
            r#"{"sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","size":3}"#
        );
    }

    #[test]
    fn lists_regular_files_sorted_with_posix_paths_and_skips_ignored_ones() {
        let dir = sample_dir();
        let digests = digest_directory(dir.path()).unwrap();
        let names: Vec<&str> = digests.keys().map(String::as_str).collect();
        assert_eq!(names, ["a.json", "b.bin", "sub/deeper/c"]);
        assert_eq!(digests["b.bin"].size, 3_000_000);
        assert_eq!(digests["b.bin"].sha256, <[u8; 32]>::from(Sha256::digest(vec![7u8; 3_000_000])));
        assert_eq!(hex::encode(digests["sub/deeper/c"].sha256), hex::encode(Sha256::digest(b"")));
        assert_eq!(file_sha256(&dir.path().join("b.bin")).unwrap(), hex::encode(digests["b.bin"].sha256));
    }

    #[test]
    fn ignore_matches_whole_components_only() {
        let ignore = vec![".git".to_string(), "model.sig".to_string()];
        assert!(is_ignored(".git", &ignore));
        assert!(is_ignored(".git/config", &ignore));
        assert!(!is_ignored(".gitattributes", &ignore));
        assert!(!is_ignored("sub/model.sig", &ignore));
        assert!(!is_ignored("model.sig.bak", &ignore));
    }

    #[test]
    fn symlink_is_refused_and_named() {
        let dir = sample_dir();
        std::os::unix::fs::symlink("a.json", dir.path().join("link.json")).unwrap();
        let err = digest_directory(dir.path()).unwrap_err();
        assert!(matches!(&err, DigestError::SymlinkRefused { path } if path.ends_with("link.json")), "{err}");
        let err = sha256_file(&dir.path().join("link.json"), Links::Refuse).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(sha256_file(&dir.path().join("link.json"), Links::Follow).is_ok());
    }

    #[test]
    fn parallel_hashing_equals_sequential_hashing_for_many_files() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..17u8 {
            fs::write(dir.path().join(format!("f{i:02}")), vec![i; 10_000 * usize::from(i)]).unwrap();
        }
        let digests = digest_directory(dir.path()).unwrap();
        assert_eq!(digests.len(), 17);
        for (name, digest) in &digests {
            let bytes = fs::read(dir.path().join(name)).unwrap();
            assert_eq!(digest.sha256, <[u8; 32]>::from(Sha256::digest(&bytes)), "{name}");
        }
    }
}
