//! One pass per output file: bytes flow from the memory map (zeroed where the plan says) to
//! the output file while a second thread hashes the same bytes.
//!
//! The writer sends each chunk to the hasher only after writing it, so both cores work at
//! once; pages of the input map are handed back to the kernel once hashed, which keeps the
//! resident set bounded whatever the checkpoint size.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};

use memmap2::{Mmap, UncheckedAdvice};
use sha2::{Digest, Sha256};

use super::{FileDigest, SurgeryError};
use crate::checkpoint::{Shard, TensorInfo};
use crate::mask::{TensorZeroing, ZeroPlan};
use crate::progress::Progress;

/// Bytes moved per chunk: large enough for fast syscalls, small enough to bound memory.
pub const CHUNK_BYTES: usize = 4 << 20;
const CHUNKS_IN_FLIGHT: usize = 3;

enum Chunk<'a> {
    /// A range of the input map, unchanged: `offset` locates it for page release.
    Mapped { bytes: &'a [u8], offset: usize },
    /// A buffer holding zeroed rows, returned to the writer for reuse after hashing.
    Owned(Vec<u8>),
}

/// Writes `shard` to `dst` with the plan's entries zeroed; returns the file digest and the
/// number of entries zeroed per tensor.
pub fn write_shard(
    shard: &Shard,
    plan: &ZeroPlan,
    dst: &Path,
    progress: &dyn Progress,
) -> Result<(FileDigest, BTreeMap<String, u64>), SurgeryError> {
    let mut file = File::create_new(dst).map_err(|source| SurgeryError::io(dst, source))?;
    let bytes = shard.bytes();
    let data_start = shard.header().data_start();
    let mut zeroed = BTreeMap::new();
    let digest = std::thread::scope(|scope| -> Result<[u8; 32], SurgeryError> {
        let (to_hasher, from_writer) = sync_channel::<Chunk<'_>>(CHUNKS_IN_FLIGHT);
        let (recycle, recycled) = channel::<Vec<u8>>();
        let mmap = shard.mmap();
        let hasher = scope.spawn(move || hash_chunks(from_writer, recycle, mmap));
        let mut sink = Sink { file: &mut file, dst, to_hasher, recycled, progress, mmap };
        sink.send_mapped(&bytes[..data_start], 0)?;
        for info in shard.header().tensors() {
            let data = shard.tensor_data(info);
            let offset = data_start + info.start;
            match plan.tensors.get(&info.name) {
                None => sink.send_mapped(data, offset)?,
                Some(zeroing) => {
                    zeroed.insert(info.name.clone(), sink.send_zeroed(info, data, offset, zeroing)?);
                }
            }
        }
        drop(sink);
        Ok(hasher.join().expect("hasher thread does not panic"))
    })?;
    file.sync_all().map_err(|source| SurgeryError::io(dst, source))?;
    Ok((FileDigest::new(digest, bytes.len() as u64), zeroed))
}

/// Copies a regular file, hashing it in the same pass; returns its digest.
pub fn copy_file(src: &Path, dst: &Path, progress: &dyn Progress) -> Result<FileDigest, SurgeryError> {
    let mut input = File::open(src).map_err(|source| SurgeryError::io(src, source))?;
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent).map_err(|source| SurgeryError::io(parent, source))?;
    }
    let mut output = File::create_new(dst).map_err(|source| SurgeryError::io(dst, source))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = input.read(&mut buffer).map_err(|source| SurgeryError::io(src, source))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        output.write_all(&buffer[..n]).map_err(|source| SurgeryError::io(dst, source))?;
        size += n as u64;
        progress.advance(n as u64);
    }
    output.sync_all().map_err(|source| SurgeryError::io(dst, source))?;
    Ok(FileDigest::new(hasher.finalize().into(), size))
}

struct Sink<'s, 'a> {
    file: &'s mut File,
    dst: &'s Path,
    to_hasher: std::sync::mpsc::SyncSender<Chunk<'a>>,
    recycled: Receiver<Vec<u8>>,
    progress: &'s dyn Progress,
    mmap: &'s Mmap,
}

impl<'a> Sink<'_, 'a> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), SurgeryError> {
        self.file.write_all(bytes).map_err(|source| SurgeryError::io(self.dst, source))?;
        self.progress.advance(bytes.len() as u64);
        Ok(())
    }

    fn send(&mut self, chunk: Chunk<'a>) {
        self.to_hasher.send(chunk).expect("hasher outlives the writer");
    }

    fn send_mapped(&mut self, bytes: &'a [u8], offset: usize) -> Result<(), SurgeryError> {
        for (i, piece) in bytes.chunks(CHUNK_BYTES).enumerate() {
            self.write(piece)?;
            self.send(Chunk::Mapped { bytes: piece, offset: offset + i * CHUNK_BYTES });
        }
        Ok(())
    }

    fn send_zeroed(
        &mut self,
        info: &TensorInfo,
        data: &[u8],
        data_offset: usize,
        zeroing: &TensorZeroing,
    ) -> Result<u64, SurgeryError> {
        let element = info.dtype.bitsize() / 8;
        let row_bytes = zeroing.cols * element;
        let rows_per_chunk = (CHUNK_BYTES / row_bytes.max(1)).max(1);
        let mut flags = vec![false; zeroing.cols];
        let mut count = 0u64;
        for first_row in (0..zeroing.rows).step_by(rows_per_chunk) {
            let last_row = (first_row + rows_per_chunk).min(zeroing.rows);
            let mut buffer = self.recycled.try_recv().unwrap_or_default();
            buffer.clear();
            buffer.extend_from_slice(&data[first_row * row_bytes..last_row * row_bytes]);
            release_pages(self.mmap, data_offset + first_row * row_bytes, buffer.len());
            for (row, bytes) in (first_row..last_row).zip(buffer.chunks_exact_mut(row_bytes)) {
                count += zero_row(zeroing, row, bytes, element, &mut flags);
            }
            self.write(&buffer)?;
            self.send(Chunk::Owned(buffer));
        }
        Ok(count)
    }
}

fn zero_row(zeroing: &TensorZeroing, row: usize, bytes: &mut [u8], element: usize, flags: &mut [bool]) -> u64 {
    let count = zeroing.row_flags(row, flags);
    if count == zeroing.cols {
        bytes.fill(0);
    } else if count > 0 {
        for (value, _) in bytes.chunks_exact_mut(element).zip(flags.iter()).filter(|(_, &flag)| flag) {
            value.fill(0);
        }
    }
    count as u64
}

fn hash_chunks(chunks: Receiver<Chunk<'_>>, recycle: Sender<Vec<u8>>, mmap: &Mmap) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for chunk in chunks {
        match chunk {
            Chunk::Mapped { bytes, offset } => {
                hasher.update(bytes);
                release_pages(mmap, offset, bytes.len());
            }
            Chunk::Owned(buffer) => {
                hasher.update(&buffer);
                let _ = recycle.send(buffer);
            }
        }
    }
    hasher.finalize().into()
}

fn release_pages(mmap: &Mmap, offset: usize, len: usize) {
    // SAFETY: the map is read-only and private to this process's reading; MADV_DONTNEED on a
    // file-backed mapping only drops the page-table entries, and any later read of the range
    // faults the same file bytes back in. Nothing holds references into released pages
    // beyond this function except slices that are re-read from the page cache on access.
    let _ = unsafe { mmap.unchecked_advise_range(UncheckedAdvice::DontNeed, offset, len) };
}
