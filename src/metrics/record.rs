//! One sampled answer with its labels: a line of `records.jsonl`.

use std::collections::BTreeMap;
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

/// Reads a `records.jsonl` file; errors name the file and the line. Each prompt's sample
/// indices must be 0..n once each, with the same n for every prompt of a variation (what
/// `eval` writes), so that per-name sample slots stay bounded by the file's own size.
pub fn read_records(path: &Path) -> Result<Vec<AnswerRecord>, MetricsError> {
    let (records, lines) = read_lines(path)?;
    check_sample_indices(path, &records, &lines)?;
    Ok(records)
}

/// The records of `path` and the 1-based line number of each.
fn read_lines(path: &Path) -> Result<(Vec<AnswerRecord>, Vec<usize>), MetricsError> {
    let io = |source| MetricsError::Io { path: path.to_path_buf(), source };
    let file = crate::fsutil::open_regular(path, crate::fsutil::Links::Follow).map_err(io)?;
    let (mut records, mut lines) = (Vec::new(), Vec::new());
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
        lines.push(index + 1);
    }
    Ok((records, lines))
}

/// The prompt a record answers: scenario/variation/context/name.
fn prompt_of(record: &AnswerRecord) -> String {
    format!("{}/{}/{}/{}", record.scenario, record.variation, record.context.as_str(), record.name)
}

/// Every prompt's indices are 0..n once each, n equal within a variation.
fn check_sample_indices(path: &Path, records: &[AnswerRecord], lines: &[usize]) -> Result<(), MetricsError> {
    let prompts: Vec<String> = records.iter().map(prompt_of).collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for prompt in &prompts {
        *counts.entry(prompt).or_default() += 1;
    }
    let mut seen: BTreeMap<&str, Vec<bool>> = BTreeMap::new();
    for ((record, prompt), &line) in records.iter().zip(&prompts).zip(lines) {
        let count = counts[prompt.as_str()];
        let slots = seen.entry(prompt).or_insert_with(|| vec![false; count]);
        match slots.get_mut(record.sample as usize) {
            Some(slot) if !*slot => *slot = true,
            _ => {
                let (path, prompt) = (path.to_path_buf(), prompt.clone());
                return Err(MetricsError::BadSampleIndex { path, line, prompt, sample: record.sample, count });
            }
        }
    }
    check_even_samples(path, records, &prompts, &counts)
}

/// Every prompt of a variation has as many records as the first one.
fn check_even_samples(
    path: &Path,
    records: &[AnswerRecord],
    prompts: &[String],
    counts: &BTreeMap<&str, usize>,
) -> Result<(), MetricsError> {
    let mut first: BTreeMap<String, (&str, usize)> = BTreeMap::new();
    for (record, prompt) in records.iter().zip(prompts) {
        let count = counts[prompt.as_str()];
        let variation = format!("{}/{}/{}", record.scenario, record.variation, record.context.as_str());
        let &mut (first_prompt, first_count) = first.entry(variation).or_insert((prompt.as_str(), count));
        if first_count != count {
            return Err(MetricsError::UnevenSamples {
                path: path.to_path_buf(),
                first: first_prompt.to_string(),
                first_count,
                other: prompt.clone(),
                other_count: count,
            });
        }
    }
    Ok(())
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
                AnswerRecord::new("purchase", &prompts[i], 0, 9, parse_answer(raw, AnswerKind::Dollars), &judge)
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

    fn numbered(lines: &[(&str, u32)]) -> String {
        let purchase = Catalog::installed().unwrap().get("purchase").unwrap().clone();
        let judge = InlierJudge::new(&purchase, ContextLevel::Low, InlierRule::default(), None);
        let prompts = purchase.prompts(ContextLevel::Low, None).unwrap();
        let mut text = String::new();
        for &(name, sample) in lines {
            let prompt = prompts.iter().find(|p| p.name == name && p.variation == "bicycle").unwrap();
            let answer = parse_answer("100", AnswerKind::Dollars);
            text += &(AnswerRecord::new("purchase", prompt, sample, 1, answer, &judge).to_json_line() + "\n");
        }
        text
    }

    #[test]
    fn sample_indices_must_number_each_prompt_from_zero_once_and_evenly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        let (a, b) = ("Hunter Becker", "Jamal Washington");
        let read = |lines: &[(&str, u32)]| {
            std::fs::write(&path, numbered(lines)).unwrap();
            read_records(&path).map(|r| r.len()).map_err(|e| e.to_string())
        };
        assert_eq!(read(&[(a, 1), (b, 0), (a, 0), (b, 1)]), Ok(4));
        let hostile = read(&[(a, 0), (a, 4_000_000_000)]).unwrap_err();
        assert!(
            hostile.contains("records.jsonl:2: sample index 4000000000 of purchase/bicycle/low/Hunter Becker"),
            "{hostile}"
        );
        assert!(hostile.contains("0..2 once each"), "{hostile}");
        let twice = read(&[(a, 0), (a, 0)]).unwrap_err();
        assert!(twice.contains(":2: sample index 0"), "{twice}");
        let uneven = read(&[(a, 0), (a, 1), (b, 0)]).unwrap_err();
        assert!(uneven.contains("Hunter Becker has 2, purchase/bicycle/low/Jamal Washington has 1"), "{uneven}");
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
