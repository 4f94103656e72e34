//! Small file-system helpers shared by every module that writes files.

use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Writes `bytes` to `path` through a sibling temporary file, fsync and rename, so readers
/// see either the old file or the complete new one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(parent)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Hex sha256 of a file's bytes, read in 1 MiB blocks.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
    }
}

/// Maps a file read-only, for reading large files through the page cache without copying
/// them onto the heap. The file must not change while mapped (as with checkpoint shards).
pub fn map_read_only(path: &Path) -> std::io::Result<memmap2::Mmap> {
    let file = std::fs::File::open(path)?;
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
