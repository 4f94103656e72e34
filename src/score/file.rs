//! Score files: one safetensors of per-weight importance scores plus a JSON sidecar saying
//! what they were computed from, so jobs on different machines can be joined later.
//!
//! A score directory holds `scores.safetensors` (F32, or F16 when written with `half`; one
//! tensor per scored weight, named like the weight, and optional per-head scores named
//! `model.layers.L.self_attn.head_scores`) and `scores.json`.
//!
//! F16 tensors are stored scaled: each tensor's scores are multiplied by a power of two that
//! puts its largest score just below F16's maximum, and `scores.json` records that scale per
//! tensor (`f16_scales`; sidecar version 2). Loading divides it out. Raw F16 would flush
//! typical SNIP scores (1e-8..1e-4) into F16's subnormals (below 6.1e-5), losing precision
//! and tying the ranking. Version 1 sidecars predate the scales: their F16 values load with
//! scale 1.

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
/// Sidecar version written: 2 records `f16_scales`; version 1 files have none.
const VERSION: u32 = 2;
/// F16's largest finite value.
const F16_MAX: f64 = 65504.0;
/// Scales outside 2^-LIMIT..2^LIMIT cannot come from finite F32 scores (their scales lie
/// between about 2^-113 and 2^165), so a sidecar recording one is refused.
const SCALE_EXPONENT_LIMIT: i32 = 192;

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
    /// The scores were computed on another checkpoint than the one they are used with.
    #[error(
        "{}: scores were computed on another checkpoint (fingerprint {found} versus {expected})",
        path.display()
    )]
    OtherCheckpoint {
        /// The score directory.
        path: PathBuf,
        /// The fingerprint the sidecar records.
        found: String,
        /// The fingerprint of the checkpoint given.
        expected: String,
    },
}

/// Which group's prompts the scores were computed on: the scenario's `Group`.
pub use crate::scenario::Group;

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
    /// Which tokens were counted ("all" or "response"); SNIP's loss counts the answer
    /// tokens only, so SNIP scores always say "response".
    pub tokens_counted: String,
    /// Number of calibration sequences.
    pub sequences: u64,
    /// Number of calibration tokens counted (for SNIP: answer tokens).
    pub tokens: u64,
    /// sha256 of the records file the calibration set came from.
    pub records_sha256: String,
    /// Fingerprint of the checkpoint scored (see `checkpoint_fingerprint`).
    pub checkpoint_fingerprint: String,
    /// Storage dtype of the scores ("F32" or "F16").
    pub dtype: String,
    /// F16 files only: per tensor, the power of two its scores were multiplied by before
    /// rounding to F16; loading divides by it. Empty for F32 files and version 1 files.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub f16_scales: BTreeMap<String, f64>,
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
            version: VERSION,
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
            f16_scales: BTreeMap::new(),
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

/// Writes a score directory (created if needed; each file atomically) and returns the
/// sidecar written. With `half`, values are stored as F16, each tensor scaled as
/// `encode_f16` does, with the scales recorded in the sidecar.
pub fn save_scores(dir: &Path, scores: &ScoreSet, half: bool) -> Result<ScoreInfo, ScoreFileError> {
    std::fs::create_dir_all(dir).map_err(|source| ScoreFileError::Io { path: dir.to_path_buf(), source })?;
    let mut f16_scales = BTreeMap::new();
    let mut encode = |name: &str, values: &[f32]| -> Vec<u8> {
        if half {
            let (bytes, scale) = encode_f16(values);
            f16_scales.insert(name.to_string(), scale);
            bytes
        } else {
            values.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
    };
    let dtype = if half { Dtype::F16 } else { Dtype::F32 };
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, m) in &scores.weights {
        owned.push((name.clone(), vec![m.rows, m.cols], encode(name, &m.values)));
    }
    for (layer, values) in &scores.heads {
        let name = head_scores_name(*layer);
        let bytes = encode(&name, values);
        owned.push((name, vec![values.len()], bytes));
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
    write_sidecar(dir, &scores.info, half, f16_scales)
}

/// Writes the sidecar of values stored as F16 (`half`, with `f16_scales`) or F32, in the
/// current version, and returns it.
pub(crate) fn write_sidecar(
    dir: &Path,
    info: &ScoreInfo,
    half: bool,
    f16_scales: BTreeMap<String, f64>,
) -> Result<ScoreInfo, ScoreFileError> {
    let dtype = if half { "F16" } else { "F32" };
    let info = ScoreInfo { version: VERSION, dtype: dtype.to_string(), f16_scales, ..info.clone() };
    let mut json = serde_json::to_vec_pretty(&info).expect("sidecar serialises");
    json.push(b'\n');
    write_atomically(&dir.join(SIDECAR_FILE), &json)?;
    Ok(info)
}

/// Encodes `values` as little-endian F16 after multiplying them by a power of two, returned
/// with the bytes: the largest that keeps the largest magnitude at most F16's maximum
/// (65504), so the maximum lands in its top binade. A power of two changes no ranking, so
/// the order of the values survives up to F16 rounding (11 significant bits). Values below
/// about 2^-30 of the tensor's maximum still fall into F16's subnormals (fewer bits, the
/// smallest to 0); they rank below every other value of the tensor either way. All-zero or
/// empty tensors get scale 1; non-finite values are kept non-finite (and refused on load).
pub(crate) fn encode_f16(values: &[f32]) -> (Vec<u8>, f64) {
    let max = values.iter().map(|v| f64::from(v.abs())).filter(|v| v.is_finite()).fold(0.0, f64::max);
    let scale = if max > 0.0 { 2f64.powi(f16_exponent(max)) } else { 1.0 };
    let bytes = values.iter().flat_map(|v| f16::from_f64(f64::from(*v) * scale).to_le_bytes()).collect();
    (bytes, scale)
}

/// The largest k with `max` * 2^k <= F16's maximum (`max` positive and finite).
fn f16_exponent(max: f64) -> i32 {
    let mut k = (F16_MAX / max).log2().floor() as i32;
    while max * 2f64.powi(k) > F16_MAX {
        k -= 1;
    }
    while max * 2f64.powi(k + 1) <= F16_MAX {
        k += 1;
    }
    k
}

/// Reads a score directory as `load_scores` does and checks that its scores were computed
/// on the checkpoint whose `checkpoint_fingerprint` is `fingerprint` (every command that
/// uses scores with a checkpoint reads them through here).
pub fn load_scores_for(dir: &Path, fingerprint: &str) -> Result<ScoreSet, ScoreFileError> {
    let set = load_scores(dir)?;
    if set.info.checkpoint_fingerprint != fingerprint {
        return Err(ScoreFileError::OtherCheckpoint {
            path: dir.to_path_buf(),
            found: set.info.checkpoint_fingerprint,
            expected: fingerprint.to_string(),
        });
    }
    Ok(set)
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
    if !(1..=VERSION).contains(&info.version) {
        return Err(ScoreFileError::Bad {
            path: sidecar,
            reason: format!("expected version 1 to {VERSION}, found {}", info.version),
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
    let bad_scale = |reason: String| ScoreFileError::Bad { path: sidecar.clone(), reason };
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    if let Some(name) = info.f16_scales.keys().find(|name| tensors.tensor(name).is_err()) {
        return Err(bad_scale(format!("f16_scales names tensor {name}, which {SCORES_FILE} does not hold")));
    }
    let mut weights = BTreeMap::new();
    let mut heads = BTreeMap::new();
    for (name, view) in tensors.iter() {
        let scale = stored_scale(&info, name, view.dtype()).map_err(bad_scale)?;
        let values = decode(view.dtype(), view.data(), scale)
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

/// The scale tensor `name`'s stored values were multiplied by, checked: F16 tensors of a
/// version 2 sidecar must record a power of two within 2^-192..2^192; version 1 F16 tensors
/// and F32 tensors were stored unscaled (scale 1, and F32 tensors must record none).
fn stored_scale(info: &ScoreInfo, name: &str, dtype: Dtype) -> Result<f64, String> {
    let recorded = info.f16_scales.get(name).copied();
    match (dtype, recorded) {
        (Dtype::F16, None) if info.version < 2 => Ok(1.0),
        (Dtype::F16, None) => Err(format!("tensor {name}: stored as F16, but f16_scales records no scale for it")),
        (Dtype::F16, Some(scale)) => {
            let exponent = scale.log2().round();
            let power_of_two = scale.is_finite() && scale > 0.0 && scale == 2f64.powi(exponent as i32);
            if power_of_two && exponent.abs() <= f64::from(SCALE_EXPONENT_LIMIT) {
                Ok(scale)
            } else {
                Err(format!(
                    "tensor {name}: expected an F16 scale that is a power of two between \
                     2^-{SCALE_EXPONENT_LIMIT} and 2^{SCALE_EXPONENT_LIMIT}, found {scale}"
                ))
            }
        }
        (_, Some(scale)) => {
            Err(format!("tensor {name}: f16_scales records scale {scale}, but the tensor is stored as {dtype:?}"))
        }
        (_, None) => Ok(1.0),
    }
}

/// Values of a tensor stored in `dtype`, divided by the `scale` they were stored with.
fn decode(dtype: Dtype, bytes: &[u8], scale: f64) -> Option<Vec<f32>> {
    match dtype {
        Dtype::F32 => Some(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
        Dtype::F16 => {
            Some(bytes.chunks_exact(2).map(|b| (f16::from_le_bytes([b[0], b[1]]).to_f64() / scale) as f32).collect())
        }
        _ => None,
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ScoreFileError> {
    crate::fsutil::write_atomically(path, bytes)
        .map_err(|source| ScoreFileError::Io { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests;
