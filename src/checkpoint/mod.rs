//! Hugging Face checkpoint directories: memory-mapped safetensors shards, validated strictly.
//!
//! A checkpoint is a directory holding `config.json` and either `model.safetensors` or
//! shards listed by `model.safetensors.index.json`. Every shard is mapped read-only and its
//! header is checked before anything else touches it, so later stages can trust offsets.

mod digest;
mod error;
mod files;
mod header;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::Dtype;
use serde::Deserialize;

pub use digest::{file_digests, list_sized_files};
pub use error::CheckpointError;
pub use files::{hub_blobs_of, list_regular_files, resolve_inside};
pub use header::{parse_header, ShardHeader, TensorInfo, MAX_HEADER_BYTES};

/// File name of a single-file checkpoint's weights.
pub const SINGLE_FILE: &str = "model.safetensors";
/// File name of the index that maps tensors to shards.
pub const INDEX_FILE: &str = "model.safetensors.index.json";
/// File name of the model configuration.
pub const CONFIG_FILE: &str = "config.json";

/// One memory-mapped safetensors file of a checkpoint, with its validated header.
pub struct Shard {
    file_name: String,
    path: PathBuf,
    mmap: Mmap,
    header: ShardHeader,
}

impl Shard {
    /// Maps `path` read-only and validates its header; `file_name` is the name used in errors.
    pub fn open(file_name: &str, path: &Path) -> Result<Shard, CheckpointError> {
        let file = crate::fsutil::open_regular(path, crate::fsutil::Links::Follow)
            .map_err(|source| CheckpointError::io(path, source))?;
        let len = file.metadata().map_err(|source| CheckpointError::io(path, source))?.len();
        if len < 8 {
            return Err(CheckpointError::HeaderTooShort { file: path.to_path_buf(), len });
        }
        // SAFETY: the file is opened read-only and never written through this map; like every
        // mmap reader we rely on no other process truncating the file while it is open.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|source| CheckpointError::io(path, source))?;
        let header = parse_header(path, &mmap)?;
        Ok(Shard { file_name: file_name.to_string(), path: path.to_path_buf(), mmap, header })
    }

    /// The shard's file name relative to the checkpoint directory.
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// The shard's path on disk.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The validated header: tensors sorted by data offset.
    pub fn header(&self) -> &ShardHeader {
        &self.header
    }

    /// The whole file's bytes (header included), straight from the memory map.
    pub fn bytes(&self) -> &[u8] {
        &self.mmap
    }

    /// The memory map itself, for callers that give pages back to the kernel after use.
    pub fn mmap(&self) -> &Mmap {
        &self.mmap
    }

    /// The data bytes of one tensor of this shard.
    pub fn tensor_data(&self, info: &TensorInfo) -> &[u8] {
        let start = self.header.data_start() + info.start;
        &self.mmap[start..start + info.len()]
    }
}

/// A borrowed view of one tensor: dtype, shape and raw little-endian bytes.
#[derive(Debug, Clone, Copy)]
pub struct TensorRef<'a> {
    /// The tensor's name in the checkpoint.
    pub name: &'a str,
    /// The element type as stored.
    pub dtype: Dtype,
    /// The shape as stored.
    pub shape: &'a [usize],
    /// The raw bytes (row-major, little-endian).
    pub data: &'a [u8],
    /// The file name of the shard that holds it.
    pub shard: &'a str,
}

/// An opened, validated checkpoint directory.
pub struct Checkpoint {
    dir: PathBuf,
    config: serde_json::Value,
    shards: Vec<Shard>,
    tensors: BTreeMap<String, (usize, usize)>,
    index_total_size: Option<u64>,
}

#[derive(Deserialize)]
struct IndexFile {
    #[serde(default)]
    metadata: IndexMetadata,
    weight_map: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct IndexMetadata {
    total_size: Option<u64>,
}

impl Checkpoint {
    /// Opens `dir`, maps every shard and validates headers, the index and shard names.
    pub fn open(dir: &Path) -> Result<Checkpoint, CheckpointError> {
        let meta = std::fs::metadata(dir).map_err(|source| CheckpointError::io(dir, source))?;
        if !meta.is_dir() {
            return Err(CheckpointError::NotADirectory { path: dir.to_path_buf() });
        }
        let config: serde_json::Value = read_json_as(&dir.join(CONFIG_FILE))?;
        let index_path = dir.join(INDEX_FILE);
        let (shard_names, index) = if index_path.exists() {
            let index: IndexFile = read_json_as(&index_path)?;
            let mut names: Vec<String> = index.weight_map.values().cloned().collect();
            names.sort();
            names.dedup();
            (names, Some(index))
        } else if dir.join(SINGLE_FILE).exists() || dir.join(SINGLE_FILE).is_symlink() {
            (vec![SINGLE_FILE.to_string()], None)
        } else {
            return Err(CheckpointError::NoWeights { dir: dir.to_path_buf() });
        };
        let shards = open_shards(dir, &shard_names, &index_path)?;
        let tensors = locate_tensors(&shards)?;
        if let Some(index) = &index {
            check_index_matches(&index_path, index, &shards, &tensors)?;
        }
        Ok(Checkpoint {
            dir: dir.to_path_buf(),
            config,
            shards,
            tensors,
            index_total_size: index.and_then(|i| i.metadata.total_size),
        })
    }

    /// The checkpoint directory as given.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The parsed `config.json`.
    pub fn config(&self) -> &serde_json::Value {
        &self.config
    }

    /// The shards in file-name order.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// `metadata.total_size` from the index, when there is one.
    pub fn index_total_size(&self) -> Option<u64> {
        self.index_total_size
    }

    /// Every tensor name, sorted.
    pub fn tensor_names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Whether the checkpoint holds a tensor of that name.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// A view of the named tensor's metadata and bytes.
    pub fn tensor(&self, name: &str) -> Result<TensorRef<'_>, CheckpointError> {
        let (name, &(shard_idx, info_idx)) = self
            .tensors
            .get_key_value(name)
            .ok_or_else(|| CheckpointError::TensorNotFound { dir: self.dir.clone(), tensor: name.to_string() })?;
        let shard = &self.shards[shard_idx];
        let info = &shard.header.tensors()[info_idx];
        Ok(TensorRef {
            name,
            dtype: info.dtype,
            shape: &info.shape,
            data: shard.tensor_data(info),
            shard: &shard.file_name,
        })
    }

    /// The sum of all tensors' byte lengths.
    pub fn total_tensor_bytes(&self) -> u64 {
        self.shards.iter().flat_map(|s| s.header.tensors()).map(|t| t.len() as u64).sum()
    }

    /// Paths (relative, `/`-separated) of every regular file that is not a weight shard.
    pub fn other_files(&self) -> Result<Vec<String>, CheckpointError> {
        let shards: std::collections::BTreeSet<&str> = self.shards.iter().map(|s| s.file_name.as_str()).collect();
        Ok(list_regular_files(&self.dir)?.into_iter().filter(|f| !shards.contains(f.as_str())).collect())
    }
}

fn open_shards(dir: &Path, names: &[String], index_path: &Path) -> Result<Vec<Shard>, CheckpointError> {
    names
        .iter()
        .map(|name| {
            let path = resolve_inside(dir, name)?;
            if !path.exists() {
                return Err(CheckpointError::ShardMissing { index: index_path.to_path_buf(), shard: name.clone() });
            }
            Shard::open(name, &path)
        })
        .collect()
}

fn locate_tensors(shards: &[Shard]) -> Result<BTreeMap<String, (usize, usize)>, CheckpointError> {
    let mut tensors: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (shard_idx, shard) in shards.iter().enumerate() {
        for (info_idx, info) in shard.header.tensors().iter().enumerate() {
            if let Some(&(first, _)) = tensors.get(&info.name) {
                return Err(CheckpointError::TensorInTwoShards {
                    tensor: info.name.clone(),
                    first: shards[first].path.clone(),
                    second: shard.path.clone(),
                });
            }
            tensors.insert(info.name.clone(), (shard_idx, info_idx));
        }
    }
    Ok(tensors)
}

fn check_index_matches(
    index_path: &Path,
    index: &IndexFile,
    shards: &[Shard],
    tensors: &BTreeMap<String, (usize, usize)>,
) -> Result<(), CheckpointError> {
    for (tensor, shard_name) in &index.weight_map {
        match tensors.get(tensor) {
            Some(&(idx, _)) if &shards[idx].file_name == shard_name => {}
            Some(&(idx, _)) => {
                return Err(CheckpointError::IndexShardMismatch {
                    index: index_path.to_path_buf(),
                    tensor: tensor.clone(),
                    listed: shard_name.clone(),
                    found: shards[idx].file_name.clone(),
                })
            }
            None => {
                return Err(CheckpointError::IndexTensorMissing {
                    index: index_path.to_path_buf(),
                    tensor: tensor.clone(),
                    shard: shard_name.clone(),
                })
            }
        }
    }
    for (tensor, &(idx, _)) in tensors {
        if !index.weight_map.contains_key(tensor) {
            return Err(CheckpointError::TensorNotInIndex {
                index: index_path.to_path_buf(),
                tensor: tensor.clone(),
                shard: shards[idx].path.clone(),
            });
        }
    }
    Ok(())
}

fn read_json_as<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, CheckpointError> {
    let bytes = crate::fsutil::read_capped(path, crate::fsutil::MAX_JSON_BYTES, crate::fsutil::Links::Follow)
        .map_err(|source| CheckpointError::io(path, source))?;
    serde_json::from_slice(&bytes).map_err(|source| CheckpointError::BadJson { file: path.to_path_buf(), source })
}
