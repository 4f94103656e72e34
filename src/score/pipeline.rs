//! Scoring a checkpoint end to end: records file + scenario -> calibration set -> Wanda or
//! SNIP scores with their sidecar filled in (what `biasprune score` and `prune` call).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::calibration::{build_calibration, CalibrationSet, CalibrationSpec, TokenCount};
use super::snip::snip_scores;
use super::stream::{score_layout, ScoreFileWriter};
use super::wanda::{wanda_scores, wanda_scores_into, RawScores, ScoreOptions};
use super::{checkpoint_fingerprint, save_scores, ScoreError, ScoreInfo, ScoreSet};
use crate::chat::ChatTemplate;
use crate::checkpoint::Checkpoint;
use crate::metrics::read_records;
use crate::model::{Llama, LoadOptions};
use crate::progress::Progress;
use crate::scenario::{Catalog, Scenario};
use crate::tokenizer::Tokenizer;

/// The scoring method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Method {
    /// |W| times input feature norms (no gradient; layer by layer).
    #[cfg_attr(feature = "cli", value(help = "|W| times input feature norms"))]
    Wanda,
    /// |W| times summed per-sample |gradient| of the answer loss.
    #[cfg_attr(feature = "cli", value(help = "|W| times summed per-sample |gradient|"))]
    Snip,
}

impl Method {
    /// The sidecar spelling ("wanda", "snip").
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Wanda => "wanda",
            Method::Snip => "snip",
        }
    }

    /// The tokens the method actually counts when `requested` is asked for: Wanda counts
    /// what is requested; SNIP's loss is the cross-entropy of the answer tokens only, so it
    /// always counts `Response` (the sidecar records this, never a request it ignored).
    pub fn tokens_counted(self, requested: TokenCount) -> TokenCount {
        match self {
            Method::Wanda => requested,
            Method::Snip => TokenCount::Response,
        }
    }
}

/// Everything one score job needs.
#[derive(Debug, Clone)]
pub struct ScoreRequest {
    /// Checkpoint directory (config.json, safetensors, tokenizer files); never modified.
    pub checkpoint: PathBuf,
    /// records.jsonl of `biasprune eval`.
    pub records: PathBuf,
    /// Scenario id; None: the single scenario the records hold.
    pub scenario: Option<String>,
    /// Extra scenario manifests (as `Catalog::load`).
    pub scenario_dir: Option<PathBuf>,
    /// Group, variations and token counting (SNIP counts the answer tokens whatever is
    /// asked: see `Method::tokens_counted`).
    pub calibration: CalibrationSpec,
    /// Wanda or SNIP.
    pub method: Method,
    /// Batch size and compute dtype/device.
    pub options: ScoreOptions,
}

/// Runs a score job in memory: reads the records (hashing them), rebuilds and tokenizes
/// the calibration set, scores the checkpoint and fills in the sidecar.
pub fn score_checkpoint(request: &ScoreRequest, progress: &dyn Progress) -> Result<ScoreSet, ScoreError> {
    let (ckpt, calib, info) = prepare(request)?;
    let raw = score_calibration(&ckpt, &calib, request.method, &request.options, progress)?;
    Ok(ScoreSet { info, weights: raw.weights, heads: raw.heads })
}

/// Runs a score job and writes the score directory `out` (scaled F16 values with `half`,
/// see `save_scores`). Wanda
/// streams each layer's scores to the file as the layer finishes, so peak memory is one
/// layer plus the calibration activations; SNIP collects them first. Returns the sidecar
/// written.
pub fn score_to_dir(
    request: &ScoreRequest,
    out: &Path,
    half: bool,
    progress: &dyn Progress,
) -> Result<ScoreInfo, ScoreError> {
    let (ckpt, calib, info) = prepare(request)?;
    match request.method {
        Method::Wanda => {
            check_calibration(&calib, &request.options)?;
            let cfg = crate::model::config_from_json(ckpt.config(), ckpt.dir())?;
            let mut writer = ScoreFileWriter::create(out, score_layout(&cfg), half)?;
            wanda_scores_into(&ckpt, &cfg, &calib, &request.options, progress, &mut writer)?;
            Ok(writer.finish(&info)?)
        }
        Method::Snip => {
            let raw = score_calibration(&ckpt, &calib, request.method, &request.options, progress)?;
            Ok(save_scores(out, &ScoreSet { info, weights: raw.weights, heads: raw.heads }, half)?)
        }
    }
}

/// Reads and hashes the records, builds the calibration set, opens the checkpoint and fills
/// in the sidecar.
fn prepare(request: &ScoreRequest) -> Result<(Checkpoint, CalibrationSet, ScoreInfo), ScoreError> {
    let bytes =
        std::fs::read(&request.records).map_err(|source| ScoreError::Io { path: request.records.clone(), source })?;
    let records_sha256 = hex::encode(Sha256::digest(&bytes));
    let records = read_records(&request.records)?;
    let catalog = Catalog::load(request.scenario_dir.as_deref())?;
    let scenario_id = match &request.scenario {
        Some(id) => id.clone(),
        None => single_scenario(&records, &request.records)?,
    };
    let scenario = catalog.get(&scenario_id)?;
    let spec = CalibrationSpec {
        tokens: request.method.tokens_counted(request.calibration.tokens),
        ..request.calibration.clone()
    };
    let calib = calibration_for_checkpoint(&request.checkpoint, &records, scenario, &spec)?;
    let ckpt = Checkpoint::open(&request.checkpoint)?;
    let mut info = ScoreInfo::new(request.method.as_str(), calib.group, &calib.scenario, calib.variations.clone());
    info.tokens_counted = calib.tokens.as_str().to_string();
    info.sequences = calib.sequences.len() as u64;
    info.tokens = calib.counted_tokens();
    info.records_sha256 = records_sha256;
    info.checkpoint_fingerprint = checkpoint_fingerprint(&ckpt);
    Ok((ckpt, calib, info))
}

fn check_calibration(calib: &CalibrationSet, options: &ScoreOptions) -> Result<(), ScoreError> {
    if calib.sequences.is_empty() {
        return Err(ScoreError::InvalidArgument("the calibration set is empty".into()));
    }
    if options.batch == 0 {
        return Err(ScoreError::InvalidArgument("batch size must be at least 1".into()));
    }
    Ok(())
}

/// The calibration set of `spec` with the chat template and tokenizer of checkpoint `dir`.
pub fn calibration_for_checkpoint(
    dir: &Path,
    records: &[crate::metrics::AnswerRecord],
    scenario: &Scenario,
    spec: &CalibrationSpec,
) -> Result<CalibrationSet, ScoreError> {
    let template = ChatTemplate::from_checkpoint_dir(dir)?;
    let tokenizer = Tokenizer::from_checkpoint_dir(dir)?;
    build_calibration(records, scenario, &template, &tokenizer, spec)
}

/// Scores an opened checkpoint on a calibration set: Wanda layer by layer, SNIP through
/// the whole trainable model.
pub fn score_calibration(
    ckpt: &Checkpoint,
    calib: &CalibrationSet,
    method: Method,
    options: &ScoreOptions,
    progress: &dyn Progress,
) -> Result<RawScores, ScoreError> {
    check_calibration(calib, options)?;
    let cfg = crate::model::config_from_json(ckpt.config(), ckpt.dir())?;
    match method {
        Method::Wanda => wanda_scores(ckpt, &cfg, calib, options, progress),
        Method::Snip => {
            let load = LoadOptions { trainable: true, ..options.load.clone() };
            let model = Llama::load(ckpt, cfg, load)?;
            snip_scores(&model, calib, progress)
        }
    }
}

fn single_scenario(records: &[crate::metrics::AnswerRecord], path: &Path) -> Result<String, ScoreError> {
    let mut ids: Vec<&str> = records.iter().map(|r| r.scenario.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    match ids.as_slice() {
        [one] => Ok(one.to_string()),
        _ => Err(ScoreError::InvalidArgument(format!(
            "{} holds records of {} scenarios ({}); choose one with --scenario",
            path.display(),
            ids.len(),
            ids.join(", ")
        ))),
    }
}
