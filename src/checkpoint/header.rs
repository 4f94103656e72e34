//! Strict parsing of one safetensors header, with errors that name the tensor at fault.
//!
//! We check every rule ourselves first (to name the tensor and the numbers), then let the
//! safetensors crate parse the same bytes, so nothing it would reject slips through.

use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use super::CheckpointError;

/// The safetensors format's cap on the JSON header length (100 MB).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// One tensor entry of a shard header; offsets are relative to the data section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// First byte, relative to the start of the data section.
    pub start: usize,
    /// One past the last byte, relative to the start of the data section.
    pub end: usize,
}

impl TensorInfo {
    /// Number of data bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the tensor holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Number of elements (product of the shape).
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A validated shard header: its length and tensors sorted by data offset.
#[derive(Debug, Clone)]
pub struct ShardHeader {
    json_len: usize,
    tensors: Vec<TensorInfo>,
}

impl ShardHeader {
    /// Offset of the data section in the file (8 + JSON length).
    pub fn data_start(&self) -> usize {
        8 + self.json_len
    }

    /// Tensors sorted by data offset (the order their bytes appear in the file).
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (usize, usize),
}

/// Parses and validates the header of the safetensors file whose bytes are `bytes`.
pub fn parse_header(file: &Path, bytes: &[u8]) -> Result<ShardHeader, CheckpointError> {
    let json_len = declared_header_len(file, bytes)?;
    let json = &bytes[8..8 + json_len];
    let data_len = bytes.len() - 8 - json_len;
    let mut tensors = parse_entries(file, json)?;
    tensors.sort_by(|a, b| (a.start, a.end, &a.name).cmp(&(b.start, b.end, &b.name)));
    check_layout(file, &tensors, data_len)?;
    SafeTensors::read_metadata(bytes)
        .map_err(|source| CheckpointError::Safetensors { file: file.to_path_buf(), source })?;
    Ok(ShardHeader { json_len, tensors })
}

fn declared_header_len(file: &Path, bytes: &[u8]) -> Result<usize, CheckpointError> {
    let file_len = bytes.len() as u64;
    let prefix: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or(CheckpointError::HeaderTooShort { file: file.to_path_buf(), len: file_len })?;
    let header_len = u64::from_le_bytes(prefix);
    if header_len > MAX_HEADER_BYTES {
        return Err(CheckpointError::HeaderTooLarge { file: file.to_path_buf(), header_len, limit: MAX_HEADER_BYTES });
    }
    if header_len.checked_add(8).is_none_or(|end| end > file_len) {
        return Err(CheckpointError::HeaderBeyondFile { file: file.to_path_buf(), header_len, file_len });
    }
    Ok(header_len as usize)
}

fn parse_entries(file: &Path, json: &[u8]) -> Result<Vec<TensorInfo>, CheckpointError> {
    let bad = |tensor: Option<&str>, reason: String| CheckpointError::BadHeader {
        file: file.to_path_buf(),
        tensor: tensor.map(str::to_string),
        reason,
    };
    let text = std::str::from_utf8(json).map_err(|e| bad(None, format!("not UTF-8: {e}")))?;
    let Entries(entries) = serde_json::from_str(text).map_err(|e| bad(None, format!("not a JSON object: {e}")))?;
    let mut tensors = Vec::with_capacity(entries.len());
    let mut seen = std::collections::BTreeSet::new();
    for (name, value) in entries {
        if !seen.insert(name.clone()) {
            return Err(CheckpointError::DuplicateTensor { file: file.to_path_buf(), tensor: name });
        }
        if name == "__metadata__" {
            check_metadata(&value).map_err(|reason| bad(None, reason))?;
            continue;
        }
        let raw: RawEntry = serde_json::from_value(value).map_err(|e| bad(Some(&name), e.to_string()))?;
        let dtype = parse_dtype(&raw.dtype).ok_or_else(|| CheckpointError::UnknownDtype {
            file: file.to_path_buf(),
            tensor: name.clone(),
            dtype: raw.dtype.clone(),
        })?;
        let (start, end) = raw.data_offsets;
        let info = TensorInfo { name, dtype, shape: raw.shape, start, end };
        check_byte_length(file, &info)?;
        tensors.push(info);
    }
    Ok(tensors)
}

/// A header's top-level entries in file order, repeated names kept: a JSON map would keep
/// only the last of two entries of the same name.
struct Entries(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> serde::de::Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

fn check_metadata(value: &serde_json::Value) -> Result<(), String> {
    let object = value.as_object().ok_or("__metadata__ must be an object of strings")?;
    match object.iter().find(|(_, v)| !v.is_string()) {
        Some((key, _)) => Err(format!("__metadata__ value for {key:?} must be a string")),
        None => Ok(()),
    }
}

fn parse_dtype(name: &str) -> Option<Dtype> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

fn check_byte_length(file: &Path, info: &TensorInfo) -> Result<(), CheckpointError> {
    let mismatch = |expected: u64| CheckpointError::ByteLengthMismatch {
        file: file.to_path_buf(),
        tensor: info.name.clone(),
        shape: info.shape.clone(),
        dtype: info.dtype,
        expected,
        found: info.end.saturating_sub(info.start) as u64,
    };
    let bits = info
        .shape
        .iter()
        .try_fold(info.dtype.bitsize() as u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| mismatch(u64::MAX))?;
    if bits % 8 != 0 {
        return Err(mismatch(bits.div_ceil(8)));
    }
    let expected = bits / 8;
    if info.end < info.start || (info.end - info.start) as u64 != expected {
        return Err(mismatch(expected));
    }
    Ok(())
}

fn check_layout(file: &Path, sorted: &[TensorInfo], data_len: usize) -> Result<(), CheckpointError> {
    let mut cursor = 0usize;
    let mut previous: Option<&TensorInfo> = None;
    for info in sorted {
        if info.end > data_len {
            return Err(CheckpointError::OffsetsOutOfRange {
                file: file.to_path_buf(),
                tensor: info.name.clone(),
                start: info.start,
                end: info.end,
                data_len,
            });
        }
        if info.start < cursor {
            return Err(CheckpointError::OffsetsOverlap {
                file: file.to_path_buf(),
                tensor: info.name.clone(),
                other: previous.map(|p| p.name.clone()).unwrap_or_default(),
                start: info.start,
                end: info.end,
            });
        }
        if info.start > cursor {
            return Err(CheckpointError::OffsetsGap {
                file: file.to_path_buf(),
                tensor: Some(info.name.clone()),
                expected: cursor,
                found: info.start,
            });
        }
        cursor = info.end;
        previous = Some(info);
    }
    if cursor != data_len {
        return Err(CheckpointError::OffsetsGap {
            file: file.to_path_buf(),
            tensor: None,
            expected: cursor,
            found: data_len,
        });
    }
    Ok(())
}
