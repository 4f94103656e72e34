//! sha256 of a checkpoint's files, hashed in parallel: the identity recorded with every
//! evaluation so a run can be tied to the exact weights it used.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::{list_regular_files, CheckpointError};

/// Hex sha256 of every regular file under `dir` (relative `/`-separated paths), hashing
/// files on as many threads as there are cores, largest first.
pub fn file_digests(dir: &Path) -> Result<BTreeMap<String, String>, CheckpointError> {
    let mut files: Vec<(String, u64)> = list_regular_files(dir)?
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            std::fs::metadata(&path).map(|m| (name, m.len())).map_err(|source| CheckpointError::io(&path, source))
        })
        .collect::<Result<_, _>>()?;
    files.sort_by_key(|(name, size)| (std::cmp::Reverse(*size), name.clone()));
    let next = AtomicUsize::new(0);
    let out = Mutex::new(BTreeMap::new());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(files.len()).max(1);
    std::thread::scope(|scope| -> Result<(), CheckpointError> {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> Result<(), CheckpointError> {
                    let mut buffer = vec![0u8; 1 << 20];
                    while let Some((name, _)) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let digest = hash_file(&dir.join(name), &mut buffer)?;
                        out.lock().expect("digest map lock").insert(name.clone(), digest);
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| h.join().expect("hashing thread does not panic"))
    })?;
    Ok(out.into_inner().expect("digest map lock"))
}

fn hash_file(path: &Path, buffer: &mut [u8]) -> Result<String, CheckpointError> {
    let mut file = crate::fsutil::open_regular(path, crate::fsutil::Links::Follow)
        .map_err(|source| CheckpointError::io(path, source))?;
    let mut hasher = Sha256::new();
    loop {
        let n = file.read(buffer).map_err(|source| CheckpointError::io(path, source))?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
    }
}
