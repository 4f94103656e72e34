//! Mask files: `mask.json` (what is pruned, in user units) plus `pruning-mask.safetensors`
//! (packed U8 bitmasks of weight-level masks), written atomically and checked on load.

use safetensors::Dtype;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::{BitMask, BitMaskError, BitmaskFile, BitmaskFileError, BitmaskTensorError, HeadMode, PruneMask};

/// File name of the mask description inside a mask directory.
pub const MASK_JSON: &str = "mask.json";
/// File name of the packed bitmasks inside a mask directory.
pub const BITMASK_FILE: &str = "pruning-mask.safetensors";
const FORMAT: &str = "biasprune-mask";
const VERSION: u32 = 1;

/// A mask file could not be written, read or trusted.
#[derive(Debug, thiserror::Error)]
pub enum MaskFileError {
    /// An operating-system error on a path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// mask.json does not parse or has the wrong shape.
    #[error("{}: {reason}", path.display())]
    BadDescription {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The bitmask file is damaged or does not match mask.json.
    #[error("{}: tensor {tensor}: {reason}", path.display())]
    BadBitmask {
        /// The bitmask file.
        path: PathBuf,
        /// The tensor concerned.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor of the bitmask file is not a valid bitmask of its shape (length, padding bits).
    #[error("{}: tensor {tensor}: {source}", path.display())]
    Bits {
        /// The bitmask file.
        path: PathBuf,
        /// The tensor concerned.
        tensor: String,
        /// What is wrong with its bytes.
        source: BitMaskError,
    },
    /// The bitmask file's sha256 differs from the one mask.json records.
    #[error("{}: sha256 {found} differs from {expected} recorded in mask.json", path.display())]
    DigestMismatch {
        /// The bitmask file.
        path: PathBuf,
        /// The digest recorded.
        expected: String,
        /// The digest found.
        found: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MaskDescription {
    format: String,
    version: u32,
    head_mode: HeadMode,
    #[serde(default)]
    weights: BTreeMap<String, WeightEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bitmask_file: Option<FileRef>,
    #[serde(default)]
    rows: BTreeMap<String, BTreeSet<usize>>,
    #[serde(default)]
    mlp_units: BTreeMap<usize, BTreeSet<usize>>,
    #[serde(default)]
    heads: BTreeMap<usize, BTreeSet<usize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provenance: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WeightEntry {
    shape: [usize; 2],
    count: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRef {
    path: String,
    sha256: String,
}

/// Writes `mask` into directory `dir` (created if needed) as mask.json and, when it has
/// weight-level entries, pruning-mask.safetensors; each file appears atomically.
pub fn save_mask(dir: &Path, mask: &PruneMask) -> Result<(), MaskFileError> {
    std::fs::create_dir_all(dir).map_err(|source| MaskFileError::Io { path: dir.to_path_buf(), source })?;
    let bitmask_file = if mask.weights.is_empty() {
        None
    } else {
        let bytes = bitmask_bytes(mask).map_err(|e| MaskFileError::BadBitmask {
            path: dir.join(BITMASK_FILE),
            tensor: String::new(),
            reason: e.to_string(),
        })?;
        write_atomically(&dir.join(BITMASK_FILE), &bytes)?;
        Some(FileRef { path: BITMASK_FILE.to_string(), sha256: hex::encode(Sha256::digest(&bytes)) })
    };
    let description = MaskDescription {
        format: FORMAT.to_string(),
        version: VERSION,
        head_mode: mask.head_mode,
        weights: mask
            .weights
            .iter()
            .map(|(name, bits)| (name.clone(), WeightEntry { shape: [bits.rows(), bits.cols()], count: bits.count() }))
            .collect(),
        bitmask_file,
        rows: mask.rows.clone(),
        mlp_units: mask.mlp_units.clone(),
        heads: mask.heads.clone(),
        provenance: mask.provenance.clone(),
    };
    let mut json = serde_json::to_vec_pretty(&description).expect("mask description serialises");
    json.push(b'\n');
    write_atomically(&dir.join(MASK_JSON), &json)
}

/// The mask.json of a mask given as its directory or as the mask.json path itself.
pub fn mask_json_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(MASK_JSON)
    } else {
        path.to_path_buf()
    }
}

/// Reads a mask from a directory holding mask.json, or from a mask.json path.
pub fn load_mask(path: &Path) -> Result<PruneMask, MaskFileError> {
    let json_path = mask_json_path(path);
    let text = crate::fsutil::read_capped(&json_path, crate::fsutil::MAX_JSON_BYTES, crate::fsutil::Links::Follow)
        .map_err(|source| MaskFileError::Io { path: json_path.clone(), source })?;
    let bad = |reason: String| MaskFileError::BadDescription { path: json_path.clone(), reason };
    let description: MaskDescription = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    if description.format != FORMAT || description.version != VERSION {
        return Err(bad(format!(
            "expected format {FORMAT:?} version {VERSION}, found {:?} version {}",
            description.format, description.version
        )));
    }
    let base = json_path.parent().unwrap_or(Path::new("."));
    let weights = match (&description.bitmask_file, description.weights.is_empty()) {
        (_, true) => BTreeMap::new(),
        (None, false) => return Err(bad("weight entries are listed but bitmask_file is missing".into())),
        (Some(file), false) => load_bitmasks(base, file, &description.weights)?,
    };
    Ok(PruneMask {
        weights,
        rows: description.rows,
        mlp_units: description.mlp_units,
        heads: description.heads,
        head_mode: description.head_mode,
        provenance: description.provenance,
    })
}

/// The path of the bitmask file that the mask at `path` (a mask directory or mask.json)
/// references, or None for a mask without weight-level entries; used to ship the very bytes
/// whose sha256 mask.json records.
pub fn bitmask_source(path: &Path) -> Result<Option<PathBuf>, MaskFileError> {
    let json_path = mask_json_path(path);
    let text = crate::fsutil::read_capped(&json_path, crate::fsutil::MAX_JSON_BYTES, crate::fsutil::Links::Follow)
        .map_err(|source| MaskFileError::Io { path: json_path.clone(), source })?;
    let description: MaskDescription = serde_json::from_slice(&text)
        .map_err(|e| MaskFileError::BadDescription { path: json_path.clone(), reason: e.to_string() })?;
    let Some(file) = description.bitmask_file.filter(|_| !description.weights.is_empty()) else { return Ok(None) };
    let base = json_path.parent().unwrap_or(Path::new("."));
    crate::checkpoint::resolve_inside(base, &file.path)
        .map(Some)
        .map_err(|e| MaskFileError::BadDescription { path: json_path.clone(), reason: format!("bitmask_file: {e}") })
}

fn load_bitmasks(
    base: &Path,
    file: &FileRef,
    entries: &BTreeMap<String, WeightEntry>,
) -> Result<BTreeMap<String, BitMask>, MaskFileError> {
    let opened = BitmaskFile::open(base, &file.path, &file.sha256).map_err(|e| match e {
        BitmaskFileError::Path(e) => {
            MaskFileError::BadDescription { path: base.join(MASK_JSON), reason: format!("bitmask_file: {e}") }
        }
        BitmaskFileError::Io { path, source } => MaskFileError::Io { path, source },
        BitmaskFileError::DigestMismatch { path, expected, found } => {
            MaskFileError::DigestMismatch { path, expected, found }
        }
        BitmaskFileError::Unreadable { path, reason } => {
            MaskFileError::BadBitmask { path, tensor: String::new(), reason }
        }
    })?;
    let path = opened.path().to_path_buf();
    if opened.len() != entries.len() {
        return Err(MaskFileError::BadBitmask {
            path,
            tensor: String::new(),
            reason: format!("holds {} bitmasks, mask.json lists {}", opened.len(), entries.len()),
        });
    }
    let mut out = BTreeMap::new();
    for (name, entry) in entries {
        let bad = |reason: String| MaskFileError::BadBitmask { path: path.clone(), tensor: name.clone(), reason };
        let [rows, cols] = entry.shape;
        let bits = opened.bitmask(name, rows, cols).map_err(|e| match e {
            BitmaskTensorError::Absent { .. } => bad("listed in mask.json but absent".into()),
            BitmaskTensorError::Shape { dtype, shape, .. } => {
                bad(format!("expected U8 [{rows}, {}], found {dtype:?} {shape:?}", cols.div_ceil(8)))
            }
            BitmaskTensorError::Bits { source, .. } => {
                MaskFileError::Bits { path: path.clone(), tensor: name.clone(), source }
            }
        })?;
        let count = bits.count();
        bits.release_pages();
        if count != entry.count {
            return Err(bad(format!("mask.json declares {} entries, the bitmask sets {count}", entry.count)));
        }
        out.insert(name.clone(), bits);
    }
    Ok(out)
}

fn bitmask_bytes(mask: &PruneMask) -> Result<Vec<u8>, safetensors::SafeTensorError> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = mask
        .weights
        .iter()
        .map(|(name, bits)| {
            let shape = vec![bits.rows(), bits.cols().div_ceil(8)];
            safetensors::tensor::TensorView::new(Dtype::U8, shape, bits.as_bytes()).map(|view| (name.clone(), view))
        })
        .collect::<Result<_, _>>()?;
    // One key only: safetensors writes a HashMap's keys in random order, and the file's
    // bytes must not depend on it.
    let metadata = HashMap::from([(
        "format".to_string(),
        "biasprune-bitmask: column c of a row is bit c%8 (least significant first) of byte c/8".to_string(),
    )]);
    safetensors::serialize(views, Some(metadata))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), MaskFileError> {
    crate::fsutil::write_atomically(path, bytes)
        .map_err(|source| MaskFileError::Io { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::BitMask;

    #[test]
    fn saving_the_same_mask_always_gives_the_same_bytes() {
        let mut mask = PruneMask::default();
        for (i, name) in
            ["model.layers.0.mlp.up_proj.weight", "model.layers.1.self_attn.q_proj.weight"].iter().enumerate()
        {
            let mut bits = BitMask::new(4, 19);
            bits.set(i, 3 + i);
            mask.weights.insert(name.to_string(), bits);
        }
        let dir = tempfile::tempdir().unwrap();
        let saved: Vec<(Vec<u8>, Vec<u8>)> = (0..16)
            .map(|_| {
                save_mask(dir.path(), &mask).unwrap();
                let read = |f: &str| std::fs::read(dir.path().join(f)).unwrap();
                (read(BITMASK_FILE), read(MASK_JSON))
            })
            .collect();
        assert!(saved.windows(2).all(|w| w[0] == w[1]), "mask files differ between saves");
        assert_eq!(load_mask(dir.path()).unwrap().weights, mask.weights);
    }
}
