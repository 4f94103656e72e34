//! A first pass over a GGUF header, before candle reads it: metadata keys and tensor names
//! must be unique, and `general.alignment` must be one candle and ggml can use.
//!
//! candle's reader keeps the last of two equal keys or tensor names, and divides by the
//! alignment (0 panics). The GGUF spec (ggml docs/gguf.md) says `general.alignment` is a
//! uint32 and "must be a multiple of 8"; ggml's own reader (gguf.cpp) further requires a power
//! of two. We require both: a power of two of at least 8.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};

/// The GGUF magic, "GGUF" read as a little-endian u32.
const MAGIC: u32 = 0x4655_4747;
/// Nesting depth of arrays in metadata values accepted (as candle's reader).
const MAX_DEPTH: usize = 64;
/// Most dimensions of a tensor (as ggml's GGML_MAX_DIMS).
const MAX_DIMS: u32 = 4;
/// The metadata key of the data alignment.
pub const ALIGNMENT_KEY: &str = "general.alignment";

/// What is wrong with a GGUF header, found before candle reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A metadata key appears twice.
    #[error("metadata key `{key}` appears twice; expected each key once")]
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// A tensor name appears twice.
    #[error("tensor `{name}` appears twice; expected each tensor name once")]
    DuplicateTensor {
        /// The tensor name.
        name: String,
    },
    /// `general.alignment` is not a power of two of at least 8, or not an integer.
    #[error("metadata key `general.alignment`: expected a power of two of at least 8 (GGUF requires a multiple of 8, ggml a power of two), found {found}")]
    BadAlignment {
        /// The value (or its type) found.
        found: String,
    },
    /// The header is cut short or malformed.
    #[error("malformed header: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
}

/// Reads the header from the reader's start and checks uniqueness and alignment; leaves the
/// reader at an unspecified position. A file that is not GGUF at all is left to candle.
pub fn check_header<R: Read + Seek>(reader: &mut R) -> Result<(), HeaderError> {
    let size = reader.seek(SeekFrom::End(0)).map_err(malformed)?;
    reader.seek(SeekFrom::Start(0)).map_err(malformed)?;
    let mut scan = Scan { reader, size, wide: true };
    if scan.u32()? != MAGIC {
        return Ok(());
    }
    let version = scan.u32()?;
    scan.wide = version >= 2;
    let tensors = scan.length()?;
    let keys = scan.length()?;
    let mut seen = BTreeSet::new();
    for _ in 0..keys {
        let key = scan.string()?;
        let kind = scan.u32()?;
        if key == ALIGNMENT_KEY {
            check_alignment(&mut scan, kind)?;
        } else {
            scan.skip_value(kind, 0)?;
        }
        if !seen.insert(key.clone()) {
            return Err(HeaderError::DuplicateKey { key });
        }
    }
    let mut names = BTreeSet::new();
    for _ in 0..tensors {
        let name = scan.string()?;
        let dims = scan.u32()?;
        if dims > MAX_DIMS {
            return Err(HeaderError::Malformed {
                reason: format!("tensor `{name}` has {dims} dimensions, expected at most {MAX_DIMS}"),
            });
        }
        scan.skip(u64::from(dims) * if scan.wide { 8 } else { 4 } + 4 + 8)?;
        if !names.insert(name.clone()) {
            return Err(HeaderError::DuplicateTensor { name });
        }
    }
    Ok(())
}

fn check_alignment<R: Read + Seek>(scan: &mut Scan<'_, R>, kind: u32) -> Result<(), HeaderError> {
    let value = match kind {
        0 => u64::from(scan.bytes::<1>()?[0]),
        1 => i8::from_le_bytes(scan.bytes::<1>()?) as i64 as u64,
        2 => u64::from(u16::from_le_bytes(scan.bytes::<2>()?)),
        3 => i16::from_le_bytes(scan.bytes::<2>()?) as i64 as u64,
        4 => u64::from(scan.u32()?),
        5 => i32::from_le_bytes(scan.bytes::<4>()?) as i64 as u64,
        other => {
            return Err(HeaderError::BadAlignment {
                found: format!("a value of GGUF type {other} (expected a uint32 or a narrower integer)"),
            })
        }
    };
    if value < 8 || !value.is_power_of_two() || value > u64::from(u32::MAX) {
        return Err(HeaderError::BadAlignment { found: (value as i64).to_string() });
    }
    Ok(())
}

fn malformed(e: std::io::Error) -> HeaderError {
    HeaderError::Malformed { reason: e.to_string() }
}

/// A bounded reader over the header: every length is checked against the bytes left.
struct Scan<'r, R> {
    reader: &'r mut R,
    size: u64,
    /// GGUF v2+ stores lengths as u64, v1 as u32.
    wide: bool,
}

impl<R: Read + Seek> Scan<'_, R> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], HeaderError> {
        let mut out = [0u8; N];
        self.reader.read_exact(&mut out).map_err(|_| HeaderError::Malformed { reason: "ends early".into() })?;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, HeaderError> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }

    fn length(&mut self) -> Result<u64, HeaderError> {
        if self.wide {
            Ok(u64::from_le_bytes(self.bytes()?))
        } else {
            Ok(u64::from(self.u32()?))
        }
    }

    fn remaining(&mut self) -> Result<u64, HeaderError> {
        Ok(self.size.saturating_sub(self.reader.stream_position().map_err(malformed)?))
    }

    fn skip(&mut self, n: u64) -> Result<(), HeaderError> {
        let left = self.remaining()?;
        if n > left {
            return Err(HeaderError::Malformed { reason: format!("needs {n} more bytes, {left} are left") });
        }
        self.reader.seek(SeekFrom::Current(n as i64)).map_err(malformed)?;
        Ok(())
    }

    fn string(&mut self) -> Result<String, HeaderError> {
        let len = self.length()?;
        let left = self.remaining()?;
        if len > left {
            return Err(HeaderError::Malformed { reason: format!("a string of {len} bytes, {left} are left") });
        }
        let mut bytes = vec![0u8; len as usize];
        self.reader.read_exact(&mut bytes).map_err(malformed)?;
        String::from_utf8(bytes).map_err(|e| HeaderError::Malformed { reason: format!("a name is not UTF-8: {e}") })
    }

    fn skip_value(&mut self, kind: u32, depth: usize) -> Result<(), HeaderError> {
        match kind {
            0 | 1 | 7 => self.skip(1),
            2 | 3 => self.skip(2),
            4..=6 => self.skip(4),
            10..=12 => self.skip(8),
            8 => {
                let len = self.length()?;
                self.skip(len)
            }
            9 => {
                if depth >= MAX_DEPTH {
                    return Err(HeaderError::Malformed { reason: format!("arrays nested deeper than {MAX_DEPTH}") });
                }
                let element = self.u32()?;
                let count = self.length()?;
                let fixed = match element {
                    0 | 1 | 7 => Some(1),
                    2 | 3 => Some(2),
                    4..=6 => Some(4),
                    10..=12 => Some(8),
                    _ => None,
                };
                match fixed {
                    Some(width) => self.skip(count.saturating_mul(width)),
                    None => {
                        if count > self.remaining()? {
                            return Err(HeaderError::Malformed {
                                reason: format!("an array of {count} values in fewer bytes"),
                            });
                        }
                        (0..count).try_for_each(|_| self.skip_value(element, depth + 1))
                    }
                }
            }
            other => Err(HeaderError::Malformed { reason: format!("unknown metadata value type {other}") }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v3 header with `keys` (name, type, value bytes) and tensors named `tensors`.
    fn header(keys: &[(&str, u32, Vec<u8>)], tensors: &[&str]) -> Vec<u8> {
        let mut out = MAGIC.to_le_bytes().to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend((tensors.len() as u64).to_le_bytes());
        out.extend((keys.len() as u64).to_le_bytes());
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend((s.len() as u64).to_le_bytes());
            out.extend(s.as_bytes());
        };
        for (key, kind, value) in keys {
            string(&mut out, key);
            out.extend(kind.to_le_bytes());
            out.extend(value);
        }
        for name in tensors {
            string(&mut out, name);
            out.extend(1u32.to_le_bytes());
            out.extend(8u64.to_le_bytes());
            out.extend(0u32.to_le_bytes());
            out.extend(0u64.to_le_bytes());
        }
        out
    }

    fn check(bytes: Vec<u8>) -> Result<(), HeaderError> {
        check_header(&mut std::io::Cursor::new(bytes))
    }

    #[test]
    fn alignment_must_be_a_power_of_two_of_at_least_8() {
        for good in [8u32, 32, 64] {
            assert_eq!(check(header(&[(ALIGNMENT_KEY, 4, good.to_le_bytes().to_vec())], &[])), Ok(()));
        }
        for bad in [0u32, 3, 4, 24] {
            let err = check(header(&[(ALIGNMENT_KEY, 4, bad.to_le_bytes().to_vec())], &[])).unwrap_err();
            assert_eq!(err, HeaderError::BadAlignment { found: bad.to_string() });
        }
        let err = check(header(&[(ALIGNMENT_KEY, 6, 32f32.to_le_bytes().to_vec())], &[])).unwrap_err();
        assert!(matches!(err, HeaderError::BadAlignment { .. }), "{err}");
    }

    #[test]
    fn duplicate_keys_and_tensor_names_are_named() {
        let key = ("general.name", 4, 1u32.to_le_bytes().to_vec());
        assert_eq!(
            check(header(&[key.clone(), key], &[])),
            Err(HeaderError::DuplicateKey { key: "general.name".into() })
        );
        assert_eq!(check(header(&[], &["a", "b"])), Ok(()));
        assert_eq!(check(header(&[], &["a", "b", "a"])), Err(HeaderError::DuplicateTensor { name: "a".into() }));
    }

    #[test]
    fn a_string_longer_than_the_file_is_malformed_not_allocated() {
        let mut bytes = header(&[], &[]);
        bytes[16..24].copy_from_slice(&1u64.to_le_bytes());
        bytes.extend(u64::MAX.to_le_bytes());
        assert!(matches!(check(bytes), Err(HeaderError::Malformed { .. })));
    }
}
