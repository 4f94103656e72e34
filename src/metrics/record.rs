//! One sampled answer with its labels: a line of `records.jsonl`.

use std::io::BufRead;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::MetricsError;
use crate::scenario::parse::ParseStatus;
use crate::scenario::{ContextLevel, Group};

/// One answer of the model to one prompt, as written to `records.jsonl` (field order fixed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerRecord {
    /// Scenario id.
    pub scenario: String,
    /// Variation id.
    pub variation: String,
    /// Context level.
    pub context: ContextLevel,
    /// Full name in the prompt.
    pub name: String,
    /// Majority or minority.
    pub group: Group,
    /// Gender label of the name.
    pub gender: String,
    /// Index of this sample among the prompt's samples (0-based).
    pub sample: u32,
    /// Seed the sample was drawn with.
    pub seed: u64,
    /// The model's answer exactly as generated.
    pub raw: String,
    /// Parsed value on the answer kind's scale, if any.
    pub value: Option<f64>,
    /// Parse status.
    pub status: ParseStatus,
    /// Whether the answer counts as an inlier under the run's rule.
    pub inlier: bool,
}

impl AnswerRecord {
    /// The record as one JSON line without the trailing newline.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("a record always serialises")
    }
}

/// Reads a `records.jsonl` file; errors name the file and the line.
pub fn read_records(path: &Path) -> Result<Vec<AnswerRecord>, MetricsError> {
    let io = |source| MetricsError::Io { path: path.to_path_buf(), source };
    let file = crate::fsutil::open_regular(path, crate::fsutil::Links::Follow).map_err(io)?;
    let mut records = Vec::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line).map_err(|e| MetricsError::BadRecord {
            path: path.to_path_buf(),
            line: index + 1,
            message: e.to_string(),
        })?;
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::InlierJudge;
    use crate::metrics::InlierRule;
    use crate::scenario::parse::parse_answer;
    use crate::scenario::{AnswerKind, Catalog};

    #[test]
    fn records_round_trip_exactly_through_jsonl() {
        let purchase = Catalog::installed().unwrap().get("purchase").unwrap().clone();
        let judge = InlierJudge::new(&purchase, ContextLevel::Low, InlierRule::default(), None);
        let prompts = purchase.prompts(ContextLevel::Low, None).unwrap();
        let answers = ["$1,234.5678", "Around $3,000 to $4,000", "I cannot answer", "0.1"];
        let records: Vec<AnswerRecord> = answers
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                AnswerRecord::new("purchase", &prompts[i], i as u32, 9, parse_answer(raw, AnswerKind::Dollars), &judge)
            })
            .collect();
        assert_eq!((records[1].value, records[1].inlier), (Some(3500.0), true));
        assert_eq!((records[2].value, records[2].inlier), (None, false));
        assert!(!records[3].inlier, "0.1 dollars is below the bicycle's range");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        let text: String = records.iter().map(|r| r.to_json_line() + "\n").collect();
        std::fs::write(&path, text).unwrap();
        assert_eq!(read_records(&path).unwrap(), records);
    }

    #[test]
    fn a_bad_line_is_reported_with_file_and_line_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        std::fs::write(&path, "\n{\"scenario\": 3}\n").unwrap();
        let message = read_records(&path).unwrap_err().to_string();
        assert!(message.contains("records.jsonl:2: not an answer record"), "{message}");
    }
}
