//! Output files written with `O_DIRECT` where the filesystem allows it, and the aligned
//! buffers such writes need.
//!
//! A direct write moves bytes from memory to the disk without passing through the page
//! cache, so a shard is on the disk as it is written and the closing fsync only flushes
//! metadata and the device cache. Every write must start at an aligned file offset, from an
//! aligned address, with an aligned length; anything else (the tail of a file, a filesystem
//! that refuses direct I/O) falls back to ordinary buffered writes, which give the same bytes.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::SurgeryError;

/// Alignment of offsets, addresses and lengths for direct writes (the page size covers the
/// 512- and 4096-byte logical blocks of common disks).
pub const DIRECT_ALIGN: usize = 4096;

/// A new output file, written by position.
pub struct OutputFile {
    file: File,
    path: PathBuf,
    direct: bool,
    direct_bytes: u64,
}

impl OutputFile {
    /// Creates `path` (which must not exist), with direct I/O when the filesystem takes it
    /// (it is switched on after creation, so a refusal leaves an ordinary file, not an error).
    pub fn create(path: &Path) -> Result<Self, SurgeryError> {
        let file = File::create_new(path).map_err(|source| SurgeryError::io(path, source))?;
        let direct = set_direct(&file, true).is_ok();
        Ok(OutputFile { file, path: path.to_path_buf(), direct, direct_bytes: 0 })
    }

    /// Bytes written so far with direct I/O.
    pub fn direct_bytes(&self) -> u64 {
        self.direct_bytes
    }

    /// Writes all of `bytes` at `offset`: directly when everything is aligned, buffered
    /// otherwise (and for the rest of the file once the filesystem refused a direct write).
    pub fn write_all_at(&mut self, bytes: &[u8], offset: u64) -> Result<(), SurgeryError> {
        if self.direct && is_aligned(bytes, offset) {
            match self.file.write_all_at(bytes, offset) {
                Ok(()) => {
                    self.direct_bytes += bytes.len() as u64;
                    return Ok(());
                }
                Err(error) if error.raw_os_error() == Some(libc::EINVAL) => {}
                Err(source) => return Err(SurgeryError::io(&self.path, source)),
            }
        }
        if self.direct {
            self.stop_direct()?;
        }
        self.file.write_all_at(bytes, offset).map_err(|source| SurgeryError::io(&self.path, source))
    }

    /// Makes the file's data and metadata durable.
    pub fn sync(self) -> Result<(), SurgeryError> {
        self.file.sync_all().map_err(|source| SurgeryError::io(&self.path, source))
    }

    fn stop_direct(&mut self) -> Result<(), SurgeryError> {
        self.direct = false;
        set_direct(&self.file, false).map_err(|source| SurgeryError::io(&self.path, source))
    }
}

fn is_aligned(bytes: &[u8], offset: u64) -> bool {
    (bytes.as_ptr() as usize) % DIRECT_ALIGN == 0
        && bytes.len() % DIRECT_ALIGN == 0
        && offset % DIRECT_ALIGN as u64 == 0
}

/// Switches `O_DIRECT` on or off for an open file; the kernel refuses (EINVAL) to switch it
/// on where the filesystem cannot do direct I/O.
#[cfg(target_os = "linux")]
fn set_direct(file: &File, on: bool) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL and F_SETFL on a descriptor this File owns; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let flags = if on { flags | libc::O_DIRECT } else { flags & !libc::O_DIRECT };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn set_direct(_file: &File, on: bool) -> std::io::Result<()> {
    if on {
        Err(std::io::ErrorKind::Unsupported.into())
    } else {
        Ok(())
    }
}

/// A reusable buffer whose bytes start at a `DIRECT_ALIGN` boundary.
pub struct AlignedBuffer {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuffer {
    /// A buffer that can hold up to `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        let storage = vec![0u8; capacity + DIRECT_ALIGN];
        let start = storage.as_ptr().align_offset(DIRECT_ALIGN);
        AlignedBuffer { storage, start, len: 0 }
    }

    /// Replaces the contents with a copy of `source` and returns them for editing.
    pub fn fill_from(&mut self, source: &[u8]) -> &mut [u8] {
        assert!(source.len() + self.start <= self.storage.len(), "source fits the buffer's capacity");
        self.len = source.len();
        let bytes = &mut self.storage[self.start..self.start + self.len];
        bytes.copy_from_slice(source);
        bytes
    }

    /// The current contents.
    pub fn as_slice(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_buffer_starts_on_the_boundary_and_holds_what_was_copied() {
        let mut buffer = AlignedBuffer::new(10_000);
        let source: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        buffer.fill_from(&source)[0] = 7;
        assert_eq!(buffer.as_slice().as_ptr() as usize % DIRECT_ALIGN, 0);
        assert_eq!(buffer.as_slice()[0], 7);
        assert_eq!(&buffer.as_slice()[1..], &source[1..]);
    }

    #[test]
    fn aligned_and_unaligned_writes_give_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = OutputFile::create(&path).unwrap();
        let mut buffer = AlignedBuffer::new(2 * DIRECT_ALIGN);
        let head: Vec<u8> = (0..2 * DIRECT_ALIGN).map(|i| (i % 13) as u8).collect();
        file.write_all_at(buffer.fill_from(&head), 0).unwrap();
        file.write_all_at(&[1, 2, 3], head.len() as u64).unwrap();
        file.sync().unwrap();
        let mut expected = head.clone();
        expected.extend([1, 2, 3]);
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }

    #[test]
    fn an_existing_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let error = OutputFile::create(&path).err().expect("create refuses an existing file");
        assert!(error.to_string().contains("f:"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
    }
}
