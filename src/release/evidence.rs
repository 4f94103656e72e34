//! Evaluations shipped as evidence: an `eval` output directory's run.json, summary.json
//! and records.jsonl go to `evidence/baseline/` or `evidence/pruned/`, and its summary to
//! the manifest, in the layout `verify --reproduce` re-runs.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{EvidenceInput, ReleaseError};
use crate::eval::{RunIdentity, RECORDS_FILE, RUN_FILE, SUMMARY_FILE};
use crate::manifest::{EvaluationEvidence, BASELINE_EVIDENCE, PRUNED_EVIDENCE};
use crate::metrics::Summary;

impl EvidenceInput {
    /// Adds the `eval` output directories of the base model (`baseline`) and of the pruned
    /// model (`pruned`, evaluated with the mask and `--baseline <baseline>/records.jsonl`).
    /// A pruned run fenced by baseline records needs exactly those records as `baseline`,
    /// so that a reproduction can fence its inliers the same way.
    pub fn add_evaluations(&mut self, baseline: Option<&Path>, pruned: Option<&Path>) -> Result<(), ReleaseError> {
        let baseline_records = match baseline {
            Some(dir) => Some(self.add_evaluation(BASELINE_EVIDENCE, dir)?),
            None => None,
        };
        let Some(dir) = pruned else { return Ok(()) };
        self.add_evaluation(PRUNED_EVIDENCE, dir)?;
        let run_path = dir.join(RUN_FILE);
        let run: RunIdentity = read_json(&run_path)?;
        match (&run.baseline_sha256, &baseline_records) {
            (Some(wanted), Some(found)) if wanted != found => Err(bad(
                &run_path,
                format!("fenced by baseline records with sha256 {wanted}, but the baseline evaluation's records.jsonl has sha256 {found}"),
            )),
            (Some(wanted), None) => Err(bad(
                &run_path,
                format!("fenced by baseline records with sha256 {wanted}: pass that evaluation as the baseline too"),
            )),
            _ => Ok(()),
        }
    }

    /// Adds one evaluation's files under `folder` and its summary; returns the sha256 of its
    /// records.jsonl.
    fn add_evaluation(&mut self, folder: &str, dir: &Path) -> Result<String, ReleaseError> {
        for file in [RUN_FILE, SUMMARY_FILE, RECORDS_FILE] {
            let path = dir.join(file);
            if !path.is_file() {
                return Err(bad(&path, format!("missing: {} is not a finished `eval` output", dir.display())));
            }
            let key = format!("{folder}/{file}");
            if self.files.insert(key.clone(), path.clone()).is_some() {
                return Err(bad(&path, format!("evidence/{key} is given twice (also by the evidence directory)")));
            }
        }
        let summary: Summary = read_json(&dir.join(SUMMARY_FILE))?;
        let evidence = Some(EvaluationEvidence::from_summary(&summary));
        if folder == BASELINE_EVIDENCE {
            self.baseline = evidence;
        } else {
            self.pruned = evidence;
        }
        let records = dir.join(RECORDS_FILE);
        let bytes = std::fs::read(&records).map_err(|e| ReleaseError::io(&records, e))?;
        Ok(hex::encode(Sha256::digest(bytes)))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ReleaseError> {
    let bytes = crate::fsutil::read_capped(path, crate::fsutil::MAX_JSON_BYTES, crate::fsutil::Links::Follow)
        .map_err(|e| ReleaseError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| bad(path, format!("not an `eval` output file: {e}")))
}

fn bad(path: &Path, reason: String) -> ReleaseError {
    ReleaseError::BadInput { path: path.to_path_buf(), reason }
}
