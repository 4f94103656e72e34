//! Every way a checkpoint can be unusable, each naming the file (and tensor) concerned.

use std::path::{Path, PathBuf};

/// A checkpoint directory could not be read or failed validation.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// An operating-system error on a path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Hashing the checkpoint's files failed.
    #[error(transparent)]
    Digest(#[from] crate::fsutil::digest::DigestError),
    /// The checkpoint path is not a directory.
    #[error("{}: expected a checkpoint directory, found a file", path.display())]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// Neither `model.safetensors` nor `model.safetensors.index.json` is present.
    #[error("{}: no weights found: expected model.safetensors or model.safetensors.index.json", dir.display())]
    NoWeights {
        /// The checkpoint directory.
        dir: PathBuf,
    },
    /// A JSON file (config, index) does not parse.
    #[error("{}: invalid JSON: {source}", file.display())]
    BadJson {
        /// The file.
        file: PathBuf,
        /// The parser's complaint.
        source: serde_json::Error,
    },
    /// A shard header lists the same tensor name twice (a parser would keep only one).
    #[error("{}: tensor {tensor} is listed twice in the header; expected each name once", file.display())]
    DuplicateTensor {
        /// The shard.
        file: PathBuf,
        /// The repeated name.
        tensor: String,
    },
    /// A safetensors file is shorter than its 8-byte header length.
    #[error("{}: file is {len} bytes, too short for the 8-byte safetensors header length", file.display())]
    HeaderTooShort {
        /// The shard.
        file: PathBuf,
        /// Its length.
        len: u64,
    },
    /// The header length exceeds the 100 MB limit.
    #[error("{}: header length {header_len} exceeds the limit of {limit} bytes", file.display())]
    HeaderTooLarge {
        /// The shard.
        file: PathBuf,
        /// The declared header length.
        header_len: u64,
        /// The limit.
        limit: u64,
    },
    /// The header length points beyond the end of the file.
    #[error("{}: header length {header_len} runs beyond the end of the {file_len}-byte file", file.display())]
    HeaderBeyondFile {
        /// The shard.
        file: PathBuf,
        /// The declared header length.
        header_len: u64,
        /// The file length.
        file_len: u64,
    },
    /// The header is not valid UTF-8 JSON of the safetensors shape.
    #[error("{}: invalid safetensors header{}: {reason}", file.display(), tensor_suffix(tensor))]
    BadHeader {
        /// The shard.
        file: PathBuf,
        /// The tensor entry at fault, when one is.
        tensor: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// A tensor has a dtype the safetensors format does not define.
    #[error("{}: tensor {tensor}: unknown dtype {dtype:?}", file.display())]
    UnknownDtype {
        /// The shard.
        file: PathBuf,
        /// The tensor.
        tensor: String,
        /// The dtype string found.
        dtype: String,
    },
    /// A tensor's byte range does not match shape x dtype size.
    #[error("{}: tensor {tensor}: shape {shape:?} of {dtype:?} needs {expected} bytes, data_offsets span {found}", file.display())]
    ByteLengthMismatch {
        /// The shard.
        file: PathBuf,
        /// The tensor.
        tensor: String,
        /// Its declared shape.
        shape: Vec<usize>,
        /// Its dtype.
        dtype: safetensors::Dtype,
        /// Bytes implied by shape and dtype.
        expected: u64,
        /// Bytes spanned by data_offsets.
        found: u64,
    },
    /// Two tensors' byte ranges overlap.
    #[error("{}: tensor {tensor}: data_offsets [{start}, {end}) overlap tensor {other}", file.display())]
    OffsetsOverlap {
        /// The shard.
        file: PathBuf,
        /// The tensor.
        tensor: String,
        /// The other tensor.
        other: String,
        /// Start offset.
        start: usize,
        /// End offset.
        end: usize,
    },
    /// The data section has bytes that belong to no tensor.
    #[error("{}: {} gap in the data section: expected a tensor at offset {expected}, found {found}", file.display(), gap_place(tensor))]
    OffsetsGap {
        /// The shard.
        file: PathBuf,
        /// The tensor after the gap (none when the gap is at the end).
        tensor: Option<String>,
        /// Where the next tensor should start.
        expected: usize,
        /// Where it starts (or the data length, for a trailing gap).
        found: usize,
    },
    /// A tensor's byte range lies outside the file, or ends before it starts.
    #[error("{}: tensor {tensor}: data_offsets [{start}, {end}) outside the {data_len}-byte data section", file.display())]
    OffsetsOutOfRange {
        /// The shard.
        file: PathBuf,
        /// The tensor.
        tensor: String,
        /// Start offset.
        start: usize,
        /// End offset.
        end: usize,
        /// Length of the data section.
        data_len: usize,
    },
    /// The safetensors crate rejected a header that passed our own checks.
    #[error("{}: rejected by the safetensors parser: {source}", file.display())]
    Safetensors {
        /// The shard.
        file: PathBuf,
        /// The parser's error.
        source: safetensors::SafeTensorError,
    },
    /// A tensor appears in two shards.
    #[error("tensor {tensor} is stored twice: in {} and in {}", first.display(), second.display())]
    TensorInTwoShards {
        /// The tensor.
        tensor: String,
        /// The first shard holding it.
        first: PathBuf,
        /// The second shard holding it.
        second: PathBuf,
    },
    /// The index lists a tensor that its shard does not hold.
    #[error("{}: tensor {tensor} is listed in shard {shard} but no shard holds it", index.display())]
    IndexTensorMissing {
        /// The index file.
        index: PathBuf,
        /// The tensor.
        tensor: String,
        /// The shard the index names.
        shard: String,
    },
    /// The index names a different shard than the one holding the tensor.
    #[error("{}: tensor {tensor} is listed in shard {listed} but stored in {found}", index.display())]
    IndexShardMismatch {
        /// The index file.
        index: PathBuf,
        /// The tensor.
        tensor: String,
        /// The shard the index names.
        listed: String,
        /// The shard holding it.
        found: String,
    },
    /// A shard holds a tensor the index does not list.
    #[error("{}: tensor {tensor} stored in {} is not listed in the index", index.display(), shard.display())]
    TensorNotInIndex {
        /// The index file.
        index: PathBuf,
        /// The tensor.
        tensor: String,
        /// The shard holding it.
        shard: PathBuf,
    },
    /// A shard named by the index does not exist.
    #[error("{}: shard {shard} is listed but does not exist", index.display())]
    ShardMissing {
        /// The index file.
        index: PathBuf,
        /// The missing shard.
        shard: String,
    },
    /// A file name that could lead outside the checkpoint directory.
    #[error("{}: unsafe file name {name:?}: {reason}", dir.display())]
    UnsafePath {
        /// The checkpoint directory.
        dir: PathBuf,
        /// The offending name.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// A tensor was asked for that the checkpoint does not hold.
    #[error("{}: no tensor named {tensor}", dir.display())]
    TensorNotFound {
        /// The checkpoint directory.
        dir: PathBuf,
        /// The tensor name.
        tensor: String,
    },
}

impl CheckpointError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        CheckpointError::Io { path: path.to_path_buf(), source }
    }
}

fn tensor_suffix(tensor: &Option<String>) -> String {
    tensor.as_ref().map(|t| format!(" (tensor {t})")).unwrap_or_default()
}

fn gap_place(tensor: &Option<String>) -> String {
    match tensor {
        Some(t) => format!("tensor {t}:"),
        None => "end of file:".to_string(),
    }
}
