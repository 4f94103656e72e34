//! The baseline judged by its own fences: a finished run's records re-judged with the Tukey
//! (or percentile) fences of those same records, so the baseline's inlier ratio and SMD are
//! measured by the same rule as a pruned run fenced by it.
//!
//! Fences depend only on the parsed values, never on the inlier flags, so the result is
//! exactly what `run_eval` gives when it is run again with these records as its baseline:
//! the files written here reproduce with `biasprune eval --baseline OUT/records.jsonl`.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::files::{write_summary, RECORDS_FILE, RUN_FILE};
use super::{EvalError, EvalOutput, RunIdentity};
use crate::metrics::{read_records, AnswerRecord, InlierJudge, Summary};
use crate::scenario::Scenario;

/// Re-judges the finished run in `source` with its own records as baseline and writes
/// run.json, records.jsonl and summary.json into `out` (which must exist).
pub fn self_fenced_copy(source: &Path, scenario: &Scenario, out: &Path) -> Result<EvalOutput, EvalError> {
    let run_path = source.join(RUN_FILE);
    let bytes = crate::fsutil::read_capped(&run_path, crate::fsutil::MAX_JSON_BYTES, crate::fsutil::Links::Follow)
        .map_err(|e| EvalError::io(&run_path, e))?;
    let mut identity: RunIdentity = serde_json::from_slice(&bytes)
        .map_err(|e| EvalError::BadRecords { path: run_path.clone(), reason: format!("invalid run.json: {e}") })?;
    if identity.baseline_sha256.is_some() {
        return Err(EvalError::BadRecords {
            path: run_path,
            reason: "the run is already fenced by a baseline; expected an unfenced run".into(),
        });
    }
    let records = read_records(&source.join(RECORDS_FILE))?;
    let judge = InlierJudge::new(scenario, identity.context, identity.inlier_rule, Some(&records));
    let missing = judge.missing_fences(&identity.variations);
    if !missing.is_empty() {
        return Err(EvalError::BaselineMissing(missing.join(", ")));
    }
    let judged: Vec<AnswerRecord> = records
        .into_iter()
        .map(|r| {
            let inlier = judge.is_inlier(&r.variation, r.value);
            AnswerRecord { inlier, ..r }
        })
        .collect();
    let mut lines = String::new();
    for record in &judged {
        lines.push_str(&record.to_json_line());
        lines.push('\n');
    }
    let records_path = out.join(RECORDS_FILE);
    crate::fsutil::write_atomically(&records_path, lines.as_bytes()).map_err(|e| EvalError::io(&records_path, e))?;
    identity.baseline_sha256 = Some(hex::encode(Sha256::digest(lines.as_bytes())));
    let mut run = serde_json::to_vec_pretty(&serde_json::to_value(&identity).expect("identities serialise"))
        .expect("values serialise");
    run.push(b'\n');
    let out_run = out.join(RUN_FILE);
    crate::fsutil::write_atomically(&out_run, &run).map_err(|e| EvalError::io(&out_run, e))?;
    let summary = Summary::compute(&scenario.id, identity.context, &judged, judge.description(), &identity.summary)?;
    write_summary(out, &identity, &summary)?;
    Ok(EvalOutput { summary, records: judged, chunks_resumed: 0, chunks_generated: 0 })
}
