//! The packed bitmask file (`pruning-mask.safetensors`) opened the one way mask directories
//! and releases both need: resolved inside its directory, mapped read-only, checked against
//! the sha256 its description records and parsed; each tensor is then read as a [`BitMask`]
//! of a given shape without copying.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use super::{BitMask, BitMaskError};
use crate::checkpoint::CheckpointError;

/// A bitmask file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BitmaskFileError {
    /// The file's name leads outside its directory.
    #[error(transparent)]
    Path(CheckpointError),
    /// The file could not be mapped.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file's sha256 differs from the recorded one.
    #[error("{}: sha256 {found} differs from the recorded {expected}", path.display())]
    DigestMismatch {
        /// The file.
        path: PathBuf,
        /// The recorded digest.
        expected: String,
        /// The digest found.
        found: String,
    },
    /// The file is not a safetensors file.
    #[error("{}: {reason}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        reason: String,
    },
}

/// A tensor of a bitmask file is not the bitmask expected.
#[derive(Debug, thiserror::Error)]
pub enum BitmaskTensorError {
    /// The file holds no tensor of that name.
    #[error("tensor {tensor}: absent")]
    Absent {
        /// The tensor.
        tensor: String,
    },
    /// The tensor is not a U8 [rows, ceil(cols / 8)] array.
    #[error("tensor {tensor}: expected U8 [{rows}, {}], found {dtype:?} {shape:?}", cols.div_ceil(8))]
    Shape {
        /// The tensor.
        tensor: String,
        /// Rows expected.
        rows: usize,
        /// Columns expected (bits per row).
        cols: usize,
        /// The dtype found.
        dtype: Dtype,
        /// The shape found.
        shape: Vec<usize>,
    },
    /// The tensor's bytes are not a valid bitmask (length, padding bits).
    #[error("tensor {tensor}: {source}")]
    Bits {
        /// The tensor.
        tensor: String,
        /// What is wrong.
        source: BitMaskError,
    },
}

/// One tensor of the file: dtype, shape and where its bytes lie in the map.
struct Entry {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Range<usize>,
}

/// An opened, digest-checked bitmask file.
pub struct BitmaskFile {
    path: PathBuf,
    map: Arc<Mmap>,
    tensors: BTreeMap<String, Entry>,
}

impl BitmaskFile {
    /// Opens `relative` inside `dir` (see [`crate::checkpoint::resolve_inside`]), maps it,
    /// checks its sha256 against `sha256` (hex) and parses its safetensors header.
    pub fn open(dir: &Path, relative: &str, sha256: &str) -> Result<Self, BitmaskFileError> {
        let path = crate::checkpoint::resolve_inside(dir, relative).map_err(BitmaskFileError::Path)?;
        let map = crate::fsutil::map_read_only(&path)
            .map(Arc::new)
            .map_err(|source| BitmaskFileError::Io { path: path.clone(), source })?;
        let found = hex::encode(crate::fsutil::mapped_sha256(&map));
        if found != sha256 {
            return Err(BitmaskFileError::DigestMismatch { path, expected: sha256.to_string(), found });
        }
        let parsed = SafeTensors::deserialize(&map)
            .map_err(|e| BitmaskFileError::Unreadable { path: path.clone(), reason: e.to_string() })?;
        let base = map.as_ptr() as usize;
        let tensors = parsed
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let start = view.data().as_ptr() as usize - base;
                let entry = Entry {
                    dtype: view.dtype(),
                    shape: view.shape().to_vec(),
                    bytes: start..start + view.data().len(),
                };
                (name, entry)
            })
            .collect();
        Ok(BitmaskFile { path, map, tensors })
    }

    /// The file's path (resolved inside its directory).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many tensors the file holds.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the file holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The names of the file's tensors, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The stored shape of tensor `name`, when the file holds it.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|e| e.shape.as_slice())
    }

    /// Tensor `name` as a `rows` x `cols` bitmask, its bytes read from the map: it must be
    /// U8 [rows, ceil(cols / 8)] with its padding bits clear.
    pub fn bitmask(&self, name: &str, rows: usize, cols: usize) -> Result<BitMask, BitmaskTensorError> {
        let entry = self.tensors.get(name).ok_or_else(|| BitmaskTensorError::Absent { tensor: name.to_string() })?;
        if entry.dtype != Dtype::U8 || entry.shape != [rows, cols.div_ceil(8)] {
            return Err(BitmaskTensorError::Shape {
                tensor: name.to_string(),
                rows,
                cols,
                dtype: entry.dtype,
                shape: entry.shape.clone(),
            });
        }
        BitMask::from_mapped(rows, cols, &self.map, &self.map[entry.bytes.clone()])
            .map_err(|source| BitmaskTensorError::Bits { tensor: name.to_string(), source })
    }
}
