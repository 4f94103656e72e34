//! A packed bitmask over the entries of a 2-D weight, one padded byte row per matrix row.

/// Set bits mark entries to zero; bit `c % 8` (least significant first) of byte `c / 8` of a
/// row's bytes stands for column `c`. Each row starts on a byte boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitMask {
    rows: usize,
    cols: usize,
    bytes: Vec<u8>,
}

impl BitMask {
    /// An all-clear mask of the given shape.
    pub fn new(rows: usize, cols: usize) -> Self {
        BitMask { rows, cols, bytes: vec![0; rows * cols.div_ceil(8)] }
    }

    /// Wraps packed bytes; fails when the length or the padding bits are wrong.
    pub fn from_bytes(rows: usize, cols: usize, bytes: Vec<u8>) -> Result<Self, String> {
        let row_bytes = cols.div_ceil(8);
        if bytes.len() != rows * row_bytes {
            return Err(format!(
                "expected {} bytes for a {rows}x{cols} bitmask, found {}",
                rows * row_bytes,
                bytes.len()
            ));
        }
        let mask = BitMask { rows, cols, bytes };
        if cols % 8 != 0 {
            let padding = !((1u8 << (cols % 8)) - 1);
            if let Some(row) = (0..rows).find(|&r| mask.row_bytes(r)[row_bytes - 1] & padding != 0) {
                return Err(format!("padding bits past column {cols} are set in row {row}"));
            }
        }
        Ok(mask)
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
        &self.bytes
    }

    /// Marks entry (row, col).
    pub fn set(&mut self, row: usize, col: usize) {
        assert!(row < self.rows && col < self.cols, "({row}, {col}) outside {}x{}", self.rows, self.cols);
        let index = row * self.cols.div_ceil(8) + col / 8;
        self.bytes[index] |= 1 << (col % 8);
    }

    /// Whether entry (row, col) is marked.
    pub fn get(&self, row: usize, col: usize) -> bool {
        self.row_bytes(row)[col / 8] & (1 << (col % 8)) != 0
    }

    /// The packed bytes of one row.
    pub fn row_bytes(&self, row: usize) -> &[u8] {
        let width = self.cols.div_ceil(8);
        &self.bytes[row * width..(row + 1) * width]
    }

    /// Number of marked entries.
    pub fn count(&self) -> u64 {
        self.bytes.iter().map(|b| b.count_ones() as u64).sum()
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

    #[test]
    fn rejects_wrong_length_and_set_padding() {
        assert!(BitMask::from_bytes(2, 13, vec![0; 3]).unwrap_err().contains("expected 4 bytes"));
        let err = BitMask::from_bytes(1, 13, vec![0, 0b0010_0000]).unwrap_err();
        assert!(err.contains("padding"), "{err}");
        assert!(BitMask::from_bytes(1, 13, vec![0xff, 0b0001_1111]).is_ok());
    }
}
