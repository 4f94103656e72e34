//! Score files: one safetensors of per-weight importance scores plus a JSON sidecar saying
//! what they were computed from, so jobs on different machines can be joined later.
//!
//! A score directory holds `scores.safetensors` (F32, or F16 when written with `half`; one
//! tensor per scored weight, named like the weight, and optional per-head scores named
//! `model.layers.L.self_attn.head_scores`) and `scores.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use half::f16;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// File name of the scores inside a score directory.
pub const SCORES_FILE: &str = "scores.safetensors";
/// File name of the sidecar inside a score directory.
pub const SIDECAR_FILE: &str = "scores.json";
const FORMAT: &str = "biasprune-scores";

/// A score directory could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ScoreFileError {
    /// An operating-system error on a path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The sidecar or the safetensors file is malformed or inconsistent.
    #[error("{}: {reason}", path.display())]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Which group's prompts the scores were computed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// Majority-name (e.g. White-associated) prompts.
    Majority,
    /// Minority-name (e.g. Black-associated) prompts.
    Minority,
}

impl std::fmt::Display for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Group::Majority => "majority",
            Group::Minority => "minority",
        })
    }
}

/// What a score file was computed from (the sidecar).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreInfo {
    /// Always "biasprune-scores".
    pub format: String,
    /// Sidecar version.
    pub version: u32,
    /// Scoring method ("wanda", "snip").
    pub method: String,
    /// The group whose prompts were used.
    pub group: Group,
    /// Scenario id of the calibration prompts.
    pub scenario: String,
    /// Variation ids of the calibration prompts, sorted.
    pub variations: Vec<String>,
    /// Which tokens were counted ("all" or "response").
    pub tokens_counted: String,
    /// Number of calibration sequences.
    pub sequences: u64,
    /// Number of calibration tokens counted.
    pub tokens: u64,
    /// sha256 of the records file the calibration set came from.
    pub records_sha256: String,
    /// Fingerprint of the checkpoint scored (see `checkpoint_fingerprint`).
    pub checkpoint_fingerprint: String,
    /// Storage dtype of the scores ("F32" or "F16").
    pub dtype: String,
}

/// Scores per weight (row-major) and optional per-head scores, with their sidecar.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSet {
    /// The sidecar.
    pub info: ScoreInfo,
    /// Per-weight scores by tensor name: shape and row-major values.
    pub weights: BTreeMap<String, ScoreMatrix>,
    /// Per-head scores by layer.
    pub heads: BTreeMap<usize, Vec<f32>>,
}

/// A matrix of scores, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreMatrix {
    /// Rows (outputs).
    pub rows: usize,
    /// Columns (inputs).
    pub cols: usize,
    /// rows x cols values.
    pub values: Vec<f32>,
}

impl ScoreInfo {
    /// A sidecar with the format fields filled in.
    pub fn new(method: &str, group: Group, scenario: &str, variations: Vec<String>) -> Self {
        ScoreInfo {
            format: FORMAT.to_string(),
            version: 1,
            method: method.to_string(),
            group,
            scenario: scenario.to_string(),
            variations,
            tokens_counted: "all".to_string(),
            sequences: 0,
            tokens: 0,
            records_sha256: String::new(),
            checkpoint_fingerprint: String::new(),
            dtype: "F32".to_string(),
        }
    }
}

/// A cheap identity of a checkpoint: sha256 over config.json and each shard's name, size and
/// header bytes. Score jobs for the same checkpoint agree on it without hashing the weights.
pub fn checkpoint_fingerprint(ckpt: &crate::checkpoint::Checkpoint) -> String {
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(ckpt.config()).expect("config serialises"));
    for shard in ckpt.shards() {
        hasher.update(shard.file_name().as_bytes());
        hasher.update((shard.bytes().len() as u64).to_le_bytes());
        hasher.update(&shard.bytes()[..shard.header().data_start()]);
    }
    hex::encode(hasher.finalize())
}

/// Name of the per-head score tensor of a layer.
pub fn head_scores_name(layer: usize) -> String {
    format!("model.layers.{layer}.self_attn.head_scores")
}

/// Writes a score directory (created if needed; each file atomically). With `half`, values
/// are stored as F16.
pub fn save_scores(dir: &Path, scores: &ScoreSet, half: bool) -> Result<(), ScoreFileError> {
    std::fs::create_dir_all(dir).map_err(|source| ScoreFileError::Io { path: dir.to_path_buf(), source })?;
    let encode = |values: &[f32]| -> Vec<u8> {
        if half {
            values.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect()
        } else {
            values.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
    };
    let dtype = if half { Dtype::F16 } else { Dtype::F32 };
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, m) in &scores.weights {
        owned.push((name.clone(), vec![m.rows, m.cols], encode(&m.values)));
    }
    for (layer, values) in &scores.heads {
        owned.push((head_scores_name(*layer), vec![values.len()], encode(values)));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = owned
        .iter()
        .map(|(name, shape, bytes)| {
            (name.clone(), safetensors::tensor::TensorView::new(dtype, shape.clone(), bytes).expect("consistent view"))
        })
        .collect();
    let bytes = safetensors::serialize(views, None)
        .map_err(|e| ScoreFileError::Bad { path: dir.join(SCORES_FILE), reason: e.to_string() })?;
    write_atomically(&dir.join(SCORES_FILE), &bytes)?;
    let info = ScoreInfo { dtype: format!("{dtype:?}"), ..scores.info.clone() };
    let mut json = serde_json::to_vec_pretty(&info).expect("sidecar serialises");
    json.push(b'\n');
    write_atomically(&dir.join(SIDECAR_FILE), &json)
}

/// Reads a score directory, checking the sidecar and that every value is finite.
pub fn load_scores(dir: &Path) -> Result<ScoreSet, ScoreFileError> {
    let sidecar = dir.join(SIDECAR_FILE);
    let text = crate::fsutil::read_capped(&sidecar, crate::fsutil::MAX_JSON_BYTES, crate::fsutil::Links::Follow)
        .map_err(|source| ScoreFileError::Io { path: sidecar.clone(), source })?;
    let info: ScoreInfo = serde_json::from_slice(&text)
        .map_err(|e| ScoreFileError::Bad { path: sidecar.clone(), reason: e.to_string() })?;
    if info.format != FORMAT {
        return Err(ScoreFileError::Bad {
            path: sidecar,
            reason: format!("expected format {FORMAT:?}, found {:?}", info.format),
        });
    }
    let path = dir.join(SCORES_FILE);
    let bytes = crate::fsutil::open_regular(&path, crate::fsutil::Links::Follow)
        .and_then(|mut file| {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut bytes).map(|_| bytes)
        })
        .map_err(|source| ScoreFileError::Io { path: path.clone(), source })?;
    let bad = |reason: String| ScoreFileError::Bad { path: path.clone(), reason };
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let mut weights = BTreeMap::new();
    let mut heads = BTreeMap::new();
    for (name, view) in tensors.iter() {
        let values = decode(view.dtype(), view.data())
            .ok_or_else(|| bad(format!("tensor {name}: expected F32 or F16, found {:?}", view.dtype())))?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!("tensor {name}: value {} at flat index {i} is not finite", values[i])));
        }
        if let Some(layer) = parse_head_scores_name(name) {
            heads.insert(layer, values);
        } else {
            let [rows, cols] = <[usize; 2]>::try_from(view.shape()).map_err(|_| {
                bad(format!("tensor {name}: expected a 2-D score matrix, found shape {:?}", view.shape()))
            })?;
            weights.insert(name.to_string(), ScoreMatrix { rows, cols, values });
        }
    }
    Ok(ScoreSet { info, weights, heads })
}

fn parse_head_scores_name(name: &str) -> Option<usize> {
    name.strip_prefix("model.layers.")?.strip_suffix(".self_attn.head_scores")?.parse().ok()
}

fn decode(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    match dtype {
        Dtype::F32 => Some(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
        Dtype::F16 => Some(bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()),
        _ => None,
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ScoreFileError> {
    crate::fsutil::write_atomically(path, bytes)
        .map_err(|source| ScoreFileError::Io { path: path.to_path_buf(), source })
}
