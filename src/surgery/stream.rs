//! One pass per output file: bytes flow from the memory map (zeroed where the plan says) to
//! the output file while a second thread hashes the same bytes.
//!
//! A shard is written in windows of `CHUNK_BYTES` at aligned file offsets, so that on Linux
//! each window can go straight to the disk (`O_DIRECT`, see `direct`): no copy into the page
//! cache, and no long fsync of dirty pages at the end; writing runs at the disk's speed while
//! the hasher runs beside it. Windows that no plan entry touches are written from the input
//! map itself; the others are copied into an aligned buffer and zeroed there. Pages of the
//! input map are handed back to the kernel once hashed, which keeps the resident set bounded
//! whatever the checkpoint size.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};

use memmap2::Mmap;
use sha2::{Digest, Sha256};

use super::direct::{AlignedBuffer, OutputFile};
use super::SurgeryError;
use crate::checkpoint::{Shard, TensorInfo};
use crate::fsutil::digest::FileDigest;
use crate::fsutil::release_pages;
use crate::mask::{TensorZeroing, ZeroPlan};
use crate::progress::Progress;

/// Bytes moved per window: large enough for fast syscalls and disk requests, small enough to
/// bound memory. A multiple of the direct-I/O alignment.
pub const CHUNK_BYTES: usize = 4 << 20;
const CHUNKS_IN_FLIGHT: usize = 3;

/// One window of the output file on its way from the preparer to the writer to the hasher.
struct Chunk<'a> {
    /// File offset of the window.
    offset: usize,
    data: ChunkData<'a>,
}

enum ChunkData<'a> {
    /// The input map's bytes, unchanged; their pages are released once hashed.
    Mapped(&'a [u8]),
    /// A copy with zeroed entries, returned to the preparer for reuse after hashing.
    Owned(AlignedBuffer),
}

impl Chunk<'_> {
    fn bytes(&self) -> &[u8] {
        match &self.data {
            ChunkData::Mapped(bytes) => bytes,
            ChunkData::Owned(buffer) => buffer.as_slice(),
        }
    }
}

/// One tensor the plan zeroes, located in the shard file.
struct ZeroedTensor<'p> {
    name: &'p str,
    /// File offsets of the tensor's bytes.
    bytes: Range<usize>,
    /// Bytes per entry.
    element: usize,
    zeroing: &'p TensorZeroing,
}

/// Writes `shard` to `dst` with the plan's entries zeroed; returns the file digest and the
/// number of entries zeroed per tensor.
///
/// Three threads form a pipeline, so that the disk is never idle while a core zeroes or
/// hashes: this one prepares windows, a writer writes them, a hasher hashes them in order.
pub fn write_shard(
    shard: &Shard,
    plan: &ZeroPlan,
    dst: &Path,
    progress: &dyn Progress,
) -> Result<(FileDigest, BTreeMap<String, u64>), SurgeryError> {
    let file = OutputFile::create(dst)?;
    let bytes = shard.bytes();
    let mmap = shard.mmap();
    let (file, digest, zeroed) = std::thread::scope(|scope| -> Result<_, SurgeryError> {
        let (to_writer, from_preparer) = sync_channel::<Chunk<'_>>(CHUNKS_IN_FLIGHT);
        let (to_hasher, from_writer) = sync_channel::<Chunk<'_>>(CHUNKS_IN_FLIGHT);
        let (recycle, recycled) = channel::<AlignedBuffer>();
        let writer = scope.spawn(move || write_chunks(file, from_preparer, to_hasher));
        let hasher = scope.spawn(move || hash_chunks(from_writer, recycle, mmap));
        let mut preparer = Preparer::new(shard, plan, recycled);
        for offset in (0..bytes.len()).step_by(CHUNK_BYTES) {
            let window = &bytes[offset..(offset + CHUNK_BYTES).min(bytes.len())];
            if to_writer.send(preparer.prepare(window, offset)).is_err() {
                break;
            }
            progress.advance(window.len() as u64);
        }
        drop(to_writer);
        let file = writer.join().expect("writer thread does not panic").map_err(|e| input_truncated(e, shard))?;
        Ok((file, hasher.join().expect("hasher thread does not panic"), preparer.zeroed))
    })?;
    log::debug!("{}: {} of {} bytes written with direct I/O", dst.display(), file.direct_bytes(), bytes.len());
    file.sync()?;
    Ok((FileDigest { sha256: digest, size: bytes.len() as u64 }, zeroed))
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
    Ok(FileDigest { sha256: hasher.finalize().into(), size })
}

/// Turns windows of the input map into chunks: the map's own bytes where the plan touches
/// nothing, an aligned copy with the plan's entries zeroed elsewhere.
struct Preparer<'p> {
    targets: Vec<ZeroedTensor<'p>>,
    /// Entries zeroed so far, per tensor of the plan in this shard.
    zeroed: BTreeMap<String, u64>,
    recycled: Receiver<AlignedBuffer>,
    mmap: &'p Mmap,
    flags: Vec<bool>,
}

impl<'p> Preparer<'p> {
    fn new(shard: &'p Shard, plan: &'p ZeroPlan, recycled: Receiver<AlignedBuffer>) -> Self {
        let data_start = shard.header().data_start();
        let targets: Vec<ZeroedTensor<'p>> = shard
            .header()
            .tensors()
            .iter()
            .filter_map(|info: &TensorInfo| {
                let (name, zeroing) = plan.tensors.get_key_value(&info.name)?;
                let start = data_start + info.start;
                Some(ZeroedTensor {
                    name,
                    bytes: start..start + info.len(),
                    element: info.dtype.bitsize() / 8,
                    zeroing,
                })
            })
            .collect();
        let zeroed = targets.iter().map(|t| (t.name.to_string(), 0)).collect();
        Preparer { targets, zeroed, recycled, mmap: shard.mmap(), flags: Vec::new() }
    }

    /// The chunk for `window`, the file's bytes at `offset`.
    fn prepare(&mut self, window: &'p [u8], offset: usize) -> Chunk<'p> {
        let range = offset..offset + window.len();
        if !self.targets.iter().any(|t| overlaps(&t.bytes, &range)) {
            return Chunk { offset, data: ChunkData::Mapped(window) };
        }
        let mut buffer = self.recycled.try_recv().unwrap_or_else(|_| AlignedBuffer::new(CHUNK_BYTES));
        let copy = buffer.fill_from(window);
        release_pages(self.mmap, offset, window.len());
        for target in self.targets.iter().filter(|t| overlaps(&t.bytes, &range)) {
            let count = zero_in_window(target, copy, offset, &mut self.flags);
            *self.zeroed.get_mut(target.name).expect("every target has a count") += count;
            if target.bytes.end <= range.end {
                target.zeroing.release_pages();
            }
        }
        Chunk { offset, data: ChunkData::Owned(buffer) }
    }
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

/// A write of bytes taken straight from the input's map fails with EFAULT (rather than
/// raising SIGBUS) when those pages lie past the input file's end: the input was truncated
/// while mapped. Other errors are returned as they are.
fn input_truncated(err: SurgeryError, shard: &Shard) -> SurgeryError {
    match &err {
        SurgeryError::Io { source, .. } if source.raw_os_error() == Some(libc::EFAULT) => {
            SurgeryError::InputTruncated { path: shard.path().to_path_buf() }
        }
        _ => err,
    }
}

/// Writes each chunk at its offset, then passes it on to the hasher; stops at the first
/// error (the preparer sees the closed channel and the error comes back from the join).
fn write_chunks<'a>(
    mut file: OutputFile,
    chunks: Receiver<Chunk<'a>>,
    to_hasher: SyncSender<Chunk<'a>>,
) -> Result<OutputFile, SurgeryError> {
    for chunk in chunks {
        file.write_all_at(chunk.bytes(), chunk.offset as u64)?;
        to_hasher.send(chunk).expect("hasher outlives the writer");
    }
    Ok(file)
}

/// Zeroes the entries of `target` that lie in `window` (the file's bytes from `offset`); an
/// entry split across two windows is zeroed in both. Returns the zeroed entries of the rows
/// that start in this window, so that summing over windows counts every row once.
fn zero_in_window(target: &ZeroedTensor<'_>, window: &mut [u8], offset: usize, flags: &mut Vec<bool>) -> u64 {
    let zeroing = target.zeroing;
    let row_len = zeroing.cols * target.element;
    let visible = target.bytes.start.max(offset)..target.bytes.end.min(offset + window.len());
    if row_len == 0 || visible.is_empty() {
        return 0;
    }
    flags.resize(zeroing.cols, false);
    let rows = (visible.start - target.bytes.start) / row_len..(visible.end - target.bytes.start).div_ceil(row_len);
    let mut count = 0;
    for row in rows {
        let row_bytes = target.bytes.start + row * row_len..target.bytes.start + (row + 1) * row_len;
        let zeroed = zeroing.row_flags(row, flags);
        if row_bytes.start >= visible.start {
            count += zeroed as u64;
        }
        if zeroed == zeroing.cols {
            fill_zero(window, offset, row_bytes);
        } else if zeroed > 0 && row_bytes.start >= offset && row_bytes.end <= offset + window.len() {
            zero_flagged(&mut window[row_bytes.start - offset..row_bytes.end - offset], flags, target.element);
        } else if zeroed > 0 {
            for (col, _) in flags.iter().enumerate().filter(|(_, &flag)| flag) {
                let entry = row_bytes.start + col * target.element;
                fill_zero(window, offset, entry..entry + target.element);
            }
        }
    }
    count
}

/// Zeroes the entries of one whole row whose flag is set.
fn zero_flagged(row: &mut [u8], flags: &[bool], element: usize) {
    match element {
        2 => zero_flagged_entries::<2>(row, flags),
        4 => zero_flagged_entries::<4>(row, flags),
        _ => row.chunks_exact_mut(element).zip(flags).filter(|(_, &flag)| flag).for_each(|(entry, _)| entry.fill(0)),
    }
}

fn zero_flagged_entries<const N: usize>(row: &mut [u8], flags: &[bool]) {
    for (entry, &flag) in row.chunks_exact_mut(N).zip(flags) {
        if flag {
            entry.copy_from_slice(&[0; N]);
        }
    }
}

/// Zeroes the part of the file range `bytes` that lies in `window` (the file from `offset`).
fn fill_zero(window: &mut [u8], offset: usize, bytes: Range<usize>) {
    let start = bytes.start.max(offset) - offset;
    let end = bytes.end.min(offset + window.len()).saturating_sub(offset);
    if start < end {
        window[start..end].fill(0);
    }
}

fn hash_chunks(chunks: Receiver<Chunk<'_>>, recycle: Sender<AlignedBuffer>, mmap: &Mmap) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for chunk in chunks {
        hasher.update(chunk.bytes());
        match chunk.data {
            ChunkData::Mapped(bytes) => release_pages(mmap, chunk.offset, bytes.len()),
            ChunkData::Owned(buffer) => {
                let _ = recycle.send(buffer);
            }
        }
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(zeroing: &TensorZeroing, start: usize, element: usize) -> ZeroedTensor<'_> {
        let len = zeroing.rows * zeroing.cols * element;
        ZeroedTensor { name: "t", bytes: start..start + len, element, zeroing }
    }

    /// Zeroing window by window, with windows that split rows and entries, gives the same
    /// bytes and count as zeroing the whole file at once.
    #[test]
    fn windows_that_split_rows_and_entries_zero_the_same_bytes_once_counted() {
        let mut entries = crate::mask::BitMask::new(5, 7);
        entries.set(4, 6);
        entries.set(0, 0);
        let zeroing =
            TensorZeroing { rows: 5, cols: 7, zero_rows: [1].into(), zero_cols: [3].into(), entries: Some(entries) };
        let start = 3;
        let t = target(&zeroing, start, 2);
        let file: Vec<u8> = (0..start + 5 * 7 * 2 + 4).map(|i| 1 + (i % 200) as u8).collect();

        let mut whole = file.clone();
        let whole_count = zero_in_window(&t, &mut whole, 0, &mut Vec::new());
        for window_len in [1, 2, 5, 13, 14, 64] {
            let mut pieces = file.clone();
            let mut count = 0;
            for (i, window) in pieces.chunks_mut(window_len).enumerate() {
                count += zero_in_window(&t, window, i * window_len, &mut Vec::new());
            }
            assert_eq!(pieces, whole, "window length {window_len}");
            assert_eq!(count, whole_count, "window length {window_len}");
        }
        assert_eq!(whole_count, zeroing.zeroed_count());
        let entry = |row: usize, col: usize| start + (row * 7 + col) * 2;
        for (row, col) in [(1, 0), (1, 6), (0, 3), (4, 3), (4, 6), (0, 0)] {
            assert_eq!(&whole[entry(row, col)..entry(row, col) + 2], &[0, 0], "({row}, {col})");
        }
        assert_eq!(&whole[entry(2, 2)..entry(2, 2) + 2], &file[entry(2, 2)..entry(2, 2) + 2]);
        assert_eq!(&whole[..start], &file[..start]);
        assert_eq!(&whole[t.bytes.end..], &file[t.bytes.end..]);
    }
}
