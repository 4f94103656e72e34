//! The files of an evaluation directory: run.json pins the settings, records.jsonl grows a
//! complete chunk at a time, summary.json is written atomically at the end.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::{EvalError, RunIdentity};
use crate::metrics::{AnswerRecord, Summary};

/// The settings and identity of the run.
pub const RUN_FILE: &str = "run.json";
/// One JSON line per answer.
pub const RECORDS_FILE: &str = "records.jsonl";
/// Statistics per variation and overall, with the run identity.
pub const SUMMARY_FILE: &str = "summary.json";

/// Records `identity` in OUT/run.json, or checks that an existing run.json matches it.
pub fn claim_run(out: &Path, identity: &RunIdentity) -> Result<(), EvalError> {
    let path = out.join(RUN_FILE);
    let wanted = serde_json::to_value(identity).expect("identities serialise");
    match crate::fsutil::read_capped(&path, crate::fsutil::MAX_JSON_BYTES, crate::fsutil::Links::Follow) {
        Ok(bytes) => {
            let found: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| EvalError::BadRecords { path: path.clone(), reason: format!("invalid JSON: {e}") })?;
            if found != wanted {
                return Err(EvalError::RunMismatch { path, differences: differing_keys(&found, &wanted) });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if out.join(RECORDS_FILE).exists() {
                return Err(EvalError::BadRecords {
                    path: out.join(RECORDS_FILE),
                    reason: format!("exists without {RUN_FILE}; it belongs to no known run"),
                });
            }
            let mut bytes = serde_json::to_vec_pretty(&wanted).expect("values serialise");
            bytes.push(b'\n');
            crate::fsutil::write_atomically(&path, &bytes).map_err(|e| EvalError::io(&path, e))
        }
        Err(e) => Err(EvalError::io(&path, e)),
    }
}

fn differing_keys(found: &serde_json::Value, wanted: &serde_json::Value) -> String {
    let keys: std::collections::BTreeSet<&String> =
        found.as_object().into_iter().chain(wanted.as_object()).flat_map(|o| o.keys()).collect();
    let differing: Vec<&str> = keys.into_iter().filter(|k| found.get(k) != wanted.get(k)).map(String::as_str).collect();
    differing.join(", ")
}

/// Number of whole chunks among `lines` records, given each chunk's record count.
pub fn complete_chunks(lines: usize, sizes: &[usize]) -> usize {
    let mut total = 0;
    for (i, &size) in sizes.iter().enumerate() {
        if total + size > lines {
            return i;
        }
        total += size;
    }
    sizes.len()
}

/// Reads the records of complete chunks, cutting off a chunk that an interruption left
/// partly written (or a torn last line) so the file holds whole chunks only.
pub fn resume_records(out: &Path, sizes: &[usize]) -> Result<Vec<AnswerRecord>, EvalError> {
    let path = out.join(RECORDS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EvalError::io(&path, e)),
    };
    let complete_lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').filter(|l| l.ends_with(b"\n")).collect();
    let keep_lines: usize = sizes[..complete_chunks(complete_lines.len(), sizes)].iter().sum();
    let mut records = Vec::with_capacity(keep_lines);
    for (i, line) in complete_lines[..keep_lines].iter().enumerate() {
        let record: AnswerRecord = serde_json::from_slice(line)
            .map_err(|e| EvalError::BadRecords { path: path.clone(), reason: format!("line {}: {e}", i + 1) })?;
        records.push(record);
    }
    let keep_bytes: usize = complete_lines[..keep_lines].iter().map(|l| l.len()).sum();
    if keep_bytes != bytes.len() {
        log::info!("{}: dropping {} bytes of an interrupted chunk", path.display(), bytes.len() - keep_bytes);
        let file = std::fs::OpenOptions::new().write(true).open(&path).map_err(|e| EvalError::io(&path, e))?;
        file.set_len(keep_bytes as u64).and_then(|_| file.sync_all()).map_err(|e| EvalError::io(&path, e))?;
    }
    Ok(records)
}

/// Appends whole chunks of records to records.jsonl, durably.
pub struct RecordWriter {
    file: std::fs::File,
    path: std::path::PathBuf,
}

impl RecordWriter {
    /// Opens OUT/records.jsonl for appending (creating it).
    pub fn open(out: &Path) -> Result<Self, EvalError> {
        let path = out.join(RECORDS_FILE);
        let file =
            std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|e| EvalError::io(&path, e))?;
        Ok(RecordWriter { file, path })
    }

    /// Appends `records` in one write and syncs them to disk.
    pub fn append(&mut self, records: &[AnswerRecord]) -> Result<(), EvalError> {
        let text: String = records.iter().map(|r| r.to_json_line() + "\n").collect();
        self.file
            .write_all(text.as_bytes())
            .and_then(|_| self.file.sync_data())
            .map_err(|e| EvalError::io(&self.path, e))
    }
}

#[derive(Serialize)]
struct SummaryFile<'a> {
    run: &'a RunIdentity,
    #[serde(flatten)]
    summary: &'a Summary,
}

/// Writes summary.json: the run identity followed by the summary, atomically.
pub fn write_summary(out: &Path, identity: &RunIdentity, summary: &Summary) -> Result<(), EvalError> {
    let path = out.join(SUMMARY_FILE);
    let mut bytes = serde_json::to_vec_pretty(&SummaryFile { run: identity, summary }).expect("summaries serialise");
    bytes.push(b'\n');
    crate::fsutil::write_atomically(&path, &bytes).map_err(|e| EvalError::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::complete_chunks;

    #[test]
    fn counts_whole_chunks_only() {
        let sizes = [10, 10, 4];
        assert_eq!(complete_chunks(0, &sizes), 0);
        assert_eq!(complete_chunks(9, &sizes), 0);
        assert_eq!(complete_chunks(10, &sizes), 1);
        assert_eq!(complete_chunks(23, &sizes), 2);
        assert_eq!(complete_chunks(24, &sizes), 3);
    }
}
