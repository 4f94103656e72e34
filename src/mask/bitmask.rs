//! A packed bitmask over the entries of a 2-D weight, one padded byte row per matrix row.
//!
//! The bits live on the heap (masks being built) or in a read-only memory map of a mask file
//! (masks loaded for surgery): a whole-model weight mask holds one bit per weight, too much to
//! copy onto the heap when applying it to a large checkpoint, so a loaded mask reads its bits
//! from the page cache and gives its pages back once used (`release_pages`).

use std::ops::Range;
use std::sync::Arc;

use memmap2::Mmap;

/// Bytes that are not a packed bitmask of the stated shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BitMaskError {
    /// The slice given to `BitMask::from_mapped` does not lie inside the map.
    #[error("{len} bytes that do not lie inside the {map_len}-byte map")]
    OutsideMap {
        /// Length of the slice.
        len: usize,
        /// Length of the map.
        map_len: usize,
    },
    /// The byte count is not rows x ceil(cols / 8).
    #[error("expected {expected} bytes for a {rows}x{cols} bitmask, found {found}")]
    Length {
        /// Rows of the mask.
        rows: usize,
        /// Columns of the mask.
        cols: usize,
        /// Bytes a `rows` x `cols` mask takes.
        expected: usize,
        /// Bytes given.
        found: usize,
    },
    /// A bit past the last column of a row is set.
    #[error("padding bits past column {cols} are set in row {row}")]
    Padding {
        /// Columns of the mask.
        cols: usize,
        /// The first row with a padding bit set.
        row: usize,
    },
}

/// Set bits mark entries to zero; bit `c % 8` (least significant first) of byte `c / 8` of a
/// row's bytes stands for column `c`. Each row starts on a byte boundary.
#[derive(Debug, Clone)]
pub struct BitMask {
    rows: usize,
    cols: usize,
    bytes: Bits,
}

/// Where a mask's bytes are.
#[derive(Debug, Clone)]
enum Bits {
    Owned(Vec<u8>),
    /// A range of a read-only map, shared by every mask of the same file.
    Mapped(Arc<Mmap>, Range<usize>),
}

impl PartialEq for BitMask {
    fn eq(&self, other: &Self) -> bool {
        self.rows == other.rows && self.cols == other.cols && self.as_bytes() == other.as_bytes()
    }
}

impl Eq for BitMask {}

impl BitMask {
    /// An all-clear mask of the given shape.
    pub fn new(rows: usize, cols: usize) -> Self {
        BitMask { rows, cols, bytes: Bits::Owned(vec![0; rows * cols.div_ceil(8)]) }
    }

    /// Wraps packed bytes; fails when the length or the padding bits are wrong.
    pub fn from_bytes(rows: usize, cols: usize, bytes: Vec<u8>) -> Result<Self, BitMaskError> {
        BitMask { rows, cols, bytes: Bits::Owned(bytes) }.validated()
    }

    /// Wraps `bytes`, a slice of the read-only `map` (a tensor's data in a mapped safetensors
    /// file), without copying them; fails when the slice is not inside the map or when the
    /// length or the padding bits are wrong.
    pub fn from_mapped(rows: usize, cols: usize, map: &Arc<Mmap>, bytes: &[u8]) -> Result<Self, BitMaskError> {
        let start = (bytes.as_ptr() as usize).wrapping_sub(map.as_ptr() as usize);
        if start > map.len() || bytes.len() > map.len() - start {
            return Err(BitMaskError::OutsideMap { len: bytes.len(), map_len: map.len() });
        }
        BitMask { rows, cols, bytes: Bits::Mapped(map.clone(), start..start + bytes.len()) }.validated()
    }

    fn validated(self) -> Result<Self, BitMaskError> {
        let (rows, cols) = (self.rows, self.cols);
        let row_bytes = cols.div_ceil(8);
        let len = self.as_bytes().len();
        if len != rows * row_bytes {
            return Err(BitMaskError::Length { rows, cols, expected: rows * row_bytes, found: len });
        }
        if cols % 8 != 0 {
            let padding = !((1u8 << (cols % 8)) - 1);
            if let Some(row) = (0..rows).find(|&r| self.row_bytes(r)[row_bytes - 1] & padding != 0) {
                return Err(BitMaskError::Padding { cols, row });
            }
        }
        Ok(self)
    }

    /// Gives the pages of a mapped mask back to the kernel (they are read back from the page
    /// cache if used again); nothing to do for a mask on the heap.
    pub fn release_pages(&self) {
        if let Bits::Mapped(map, range) = &self.bytes {
            crate::fsutil::release_pages(map, range.start, range.len());
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The packed bytes, row by row.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.bytes {
            Bits::Owned(bytes) => bytes,
            Bits::Mapped(map, range) => &map[range.clone()],
        }
    }

    /// Marks entry (row, col).
    pub fn set(&mut self, row: usize, col: usize) {
        assert!(row < self.rows && col < self.cols, "({row}, {col}) outside {}x{}", self.rows, self.cols);
        let index = row * self.cols.div_ceil(8) + col / 8;
        self.owned_bytes()[index] |= 1 << (col % 8);
    }

    /// The bytes on the heap, copied there first if they are mapped.
    fn owned_bytes(&mut self) -> &mut Vec<u8> {
        if let Bits::Mapped(map, range) = &self.bytes {
            self.bytes = Bits::Owned(map[range.clone()].to_vec());
        }
        match &mut self.bytes {
            Bits::Owned(bytes) => bytes,
            Bits::Mapped(..) => unreachable!("mapped bytes were just copied"),
        }
    }

    /// Whether entry (row, col) is marked.
    pub fn get(&self, row: usize, col: usize) -> bool {
        self.row_bytes(row)[col / 8] & (1 << (col % 8)) != 0
    }

    /// The packed bytes of one row.
    pub fn row_bytes(&self, row: usize) -> &[u8] {
        let width = self.cols.div_ceil(8);
        &self.as_bytes()[row * width..(row + 1) * width]
    }

    /// Number of marked entries.
    pub fn count(&self) -> u64 {
        self.as_bytes().iter().map(|b| b.count_ones() as u64).sum()
    }

    /// Calls `f(col)` for every marked column of `row`, in increasing order.
    pub fn for_each_in_row(&self, row: usize, mut f: impl FnMut(usize)) {
        for (i, &byte) in self.row_bytes(row).iter().enumerate() {
            let mut bits = byte;
            while bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                f(i * 8 + bit);
                bits &= bits - 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_count_and_row_iteration_agree() {
        let mut mask = BitMask::new(3, 13);
        for (r, c) in [(0, 0), (0, 12), (1, 7), (1, 8), (2, 5)] {
            mask.set(r, c);
        }
        assert_eq!(mask.count(), 5);
        assert!(mask.get(1, 8) && !mask.get(1, 9));
        let mut seen = Vec::new();
        mask.for_each_in_row(1, |c| seen.push(c));
        assert_eq!(seen, vec![7, 8]);
        assert_eq!(mask.as_bytes().len(), 3 * 2);
    }

    /// A mask read from a map equals the same bytes on the heap, survives releasing its
    /// pages, and is copied (never written through) when a bit is set.
    #[test]
    fn mapped_masks_read_like_owned_ones_and_copy_on_write() {
        let mut owned = BitMask::new(2, 13);
        owned.set(0, 3);
        owned.set(1, 12);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bits");
        let mut file_bytes = vec![9u8; 5];
        file_bytes.extend_from_slice(owned.as_bytes());
        std::fs::write(&path, &file_bytes).unwrap();
        // SAFETY: a file of this test, not modified while mapped.
        let map = Arc::new(unsafe { Mmap::map(&std::fs::File::open(&path).unwrap()) }.unwrap());

        let mut mapped = BitMask::from_mapped(2, 13, &map, &map[5..9]).unwrap();
        assert_eq!(mapped, owned);
        mapped.release_pages();
        assert!(mapped.get(1, 12) && mapped.count() == 2);
        mapped.set(1, 0);
        assert_eq!(mapped.count(), 3);
        assert_eq!(std::fs::read(&path).unwrap(), file_bytes, "the file is never written");
        assert_eq!(&map[5..9], owned.as_bytes());
        let short = BitMask::from_mapped(2, 13, &map, &map[5..8]).unwrap_err();
        assert_eq!(short, BitMaskError::Length { rows: 2, cols: 13, expected: 4, found: 3 });
        let outside = BitMask::from_mapped(2, 13, &map, owned.as_bytes()).unwrap_err();
        assert!(matches!(outside, BitMaskError::OutsideMap { len: 4, map_len: 9 }), "{outside}");
        assert!(outside.to_string().contains("do not lie inside the 9-byte map"), "{outside}");
    }

    #[test]
    fn rejects_wrong_length_and_set_padding() {
        let short = BitMask::from_bytes(2, 13, vec![0; 3]).unwrap_err();
        assert_eq!(short.to_string(), "expected 4 bytes for a 2x13 bitmask, found 3");
        let err = BitMask::from_bytes(1, 13, vec![0, 0b0010_0000]).unwrap_err();
        assert_eq!(err, BitMaskError::Padding { cols: 13, row: 0 });
        assert_eq!(err.to_string(), "padding bits past column 13 are set in row 0");
        assert!(BitMask::from_bytes(1, 13, vec![0xff, 0b0001_1111]).is_ok());
    }
}
