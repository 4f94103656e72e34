//! Listing a model directory and hashing its files with sha256, in parallel, largest first.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::error::SignError;
use super::statement::IGNORE_PATHS;
use crate::fsutil::Links;
use crate::progress::{Progress, Unit};

/// Read buffer per hashing thread, reused for every file that thread hashes.
const READ_BUFFER_BYTES: usize = 1 << 20;

/// The sha256 of one file and the number of bytes it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileDigest {
    /// File size in bytes (checked against the directory before a precomputed digest is used).
    pub size: u64,
    /// Raw sha256 of the file's bytes.
    pub sha256: [u8; 32],
}

/// A regular file found in a model directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    /// Path relative to the directory, '/'-separated.
    pub path: String,
    /// Size in bytes at listing time.
    pub size: u64,
}

/// Hashes every regular file of `dir` except the default ignored paths (the signature and
/// git metadata); keys are relative POSIX paths. Symbolic links are refused.
pub fn digest_directory(dir: &Path, progress: &dyn Progress) -> Result<BTreeMap<String, FileDigest>, SignError> {
    let ignore: Vec<String> = IGNORE_PATHS.iter().map(|p| p.to_string()).collect();
    let listed = list_files(dir, &ignore)?;
    hash_files(dir, &listed, progress)
}

/// Hashes a base checkpoint as [`digest_directory`] hashes a release, except that symbolic
/// links are followed where the checkpoint rules allow them (inside `dir`, or into a Hugging
/// Face snapshot's blobs: see [`crate::checkpoint::resolve_inside`]). The digests are those
/// of the files' contents, so a Hub cache snapshot has the same identity as a plain copy.
pub fn digest_checkpoint(dir: &Path, progress: &dyn Progress) -> Result<BTreeMap<String, FileDigest>, SignError> {
    let ignore: Vec<String> = IGNORE_PATHS.iter().map(|p| p.to_string()).collect();
    let listed = list_checkpoint_files(dir, &ignore)?;
    hash_listed(dir, &listed, Links::Follow, progress)
}

/// Lists a base checkpoint's files (sorted, `ignore_paths` skipped) with the sizes of the
/// files links lead to; links outside what [`crate::checkpoint::resolve_inside`] allows are
/// refused.
pub fn list_checkpoint_files(dir: &Path, ignore_paths: &[String]) -> Result<Vec<ListedFile>, SignError> {
    if !dir.is_dir() {
        return Err(SignError::NotADirectory { path: dir.to_path_buf() });
    }
    let names = crate::checkpoint::list_regular_files(dir).map_err(|e| SignError::Checkpoint(Box::new(e)))?;
    names
        .into_iter()
        .filter(|name| !is_ignored(name, ignore_paths))
        .map(|name| {
            let path = dir.join(&name);
            let size = std::fs::metadata(&path).map_err(|e| SignError::io(&path, e))?.len();
            Ok(ListedFile { path: name, size })
        })
        .collect()
}

/// True when relative path `path` is one of `ignore_paths` or lies below one of them.
pub fn is_ignored(path: &str, ignore_paths: &[String]) -> bool {
    ignore_paths.iter().any(|ignored| {
        let ignored = ignored.trim_start_matches("./").trim_end_matches('/');
        !ignored.is_empty() && (path == ignored || path.strip_prefix(ignored).is_some_and(|rest| rest.starts_with('/')))
    })
}

/// Lists the regular files under `dir` (sorted by relative path), skipping `ignore_paths`.
/// Symbolic links and special files are errors: the format has `allow_symlinks: false`.
pub fn list_files(dir: &Path, ignore_paths: &[String]) -> Result<Vec<ListedFile>, SignError> {
    if !dir.is_dir() {
        return Err(SignError::NotADirectory { path: dir.to_path_buf() });
    }
    let mut files = Vec::new();
    let mut pending = vec![String::new()];
    while let Some(relative_dir) = pending.pop() {
        let absolute = dir.join(&relative_dir);
        let entries = std::fs::read_dir(&absolute).map_err(|e| SignError::io(&absolute, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| SignError::io(&absolute, e))?;
            let name = entry.file_name();
            let name = name.to_str().ok_or_else(|| SignError::NonUtf8Path { path: entry.path() })?;
            let relative = if relative_dir.is_empty() { name.to_string() } else { format!("{relative_dir}/{name}") };
            if is_ignored(&relative, ignore_paths) {
                continue;
            }
            let kind = entry.file_type().map_err(|e| SignError::io(&entry.path(), e))?;
            if kind.is_symlink() {
                return Err(SignError::SymlinkRefused { path: entry.path() });
            } else if kind.is_dir() {
                pending.push(relative);
            } else if kind.is_file() {
                let size = entry.metadata().map_err(|e| SignError::io(&entry.path(), e))?.len();
                files.push(ListedFile { path: relative, size });
            } else {
                return Err(SignError::NotRegularFile { path: entry.path() });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Hashes `files` (relative to `dir`) over `available_parallelism()` threads, largest file
/// first so one big shard does not start last; each thread streams through one buffer.
pub fn hash_files(
    dir: &Path,
    files: &[ListedFile],
    progress: &dyn Progress,
) -> Result<BTreeMap<String, FileDigest>, SignError> {
    hash_listed(dir, files, Links::Refuse, progress)
}

fn hash_listed(
    dir: &Path,
    files: &[ListedFile],
    links: Links,
    progress: &dyn Progress,
) -> Result<BTreeMap<String, FileDigest>, SignError> {
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
    fn work(&self, results: &Mutex<BTreeMap<String, FileDigest>>, progress: &dyn Progress) -> Result<(), SignError> {
        let mut buffer = vec![0u8; READ_BUFFER_BYTES];
        while !self.failed.load(Ordering::Relaxed) {
            let Some(file) = self.order.get(self.next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            let digest = hash_file(&self.dir.join(&file.path), self.links, &mut buffer, progress)?;
            results.lock().expect("results lock").insert(file.path.clone(), digest);
        }
        Ok(())
    }
}

/// Streams one file through sha256 using `buffer`, reporting bytes as they are read.
fn hash_file(path: &Path, links: Links, buffer: &mut [u8], progress: &dyn Progress) -> Result<FileDigest, SignError> {
    let mut file = crate::fsutil::open_regular(path, links).map_err(|e| SignError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let n = match file.read(buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(SignError::io(path, e)),
        };
        hasher.update(&buffer[..n]);
        size += n as u64;
        progress.advance(n as u64);
    }
    Ok(FileDigest { size, sha256: hasher.finalize().into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;
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

    #[test]
    fn lists_regular_files_sorted_with_posix_paths_and_skips_ignored_ones() {
        let dir = sample_dir();
        let digests = digest_directory(dir.path(), &NoProgress).unwrap();
        let names: Vec<&str> = digests.keys().map(String::as_str).collect();
        assert_eq!(names, ["a.json", "b.bin", "sub/deeper/c"]);
        assert_eq!(digests["b.bin"].size, 3_000_000);
        assert_eq!(digests["b.bin"].sha256, <[u8; 32]>::from(Sha256::digest(vec![7u8; 3_000_000])));
        assert_eq!(hex::encode(digests["sub/deeper/c"].sha256), hex::encode(Sha256::digest(b"")));
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
        let err = digest_directory(dir.path(), &NoProgress).unwrap_err();
        assert!(matches!(&err, SignError::SymlinkRefused { path } if path.ends_with("link.json")), "{err}");
    }

    #[test]
    fn parallel_hashing_equals_sequential_hashing_for_many_files() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..17u8 {
            fs::write(dir.path().join(format!("f{i:02}")), vec![i; 10_000 * usize::from(i)]).unwrap();
        }
        let digests = digest_directory(dir.path(), &NoProgress).unwrap();
        assert_eq!(digests.len(), 17);
        for (name, digest) in &digests {
            let bytes = fs::read(dir.path().join(name)).unwrap();
            assert_eq!(digest.sha256, <[u8; 32]>::from(Sha256::digest(&bytes)), "{name}");
        }
    }
}
