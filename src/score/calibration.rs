//! Calibration sets: for one group (and optional variations) of a records file, each
//! answer's chat-templated prompt plus the model's own answer as the assistant turn,
//! tokenized, with the tokens that count for scoring and the positions of the name.

use std::collections::BTreeMap;

use super::{Group, ScoreError};
use crate::chat::{ChatTemplate, Message};
use crate::metrics::AnswerRecord;
use crate::scenario::{ContextLevel, Scenario};
use crate::tokenizer::Tokenizer;

/// Which tokens of a calibration sequence count for scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum TokenCount {
    /// Every token, prompt and answer (the authors' bias code; biasprune's default).
    #[default]
    #[cfg_attr(feature = "cli", value(help = "Prompt and answer tokens"))]
    All,
    /// Only the answer's tokens (Wei et al.).
    #[cfg_attr(feature = "cli", value(help = "Answer tokens only"))]
    Response,
}

impl TokenCount {
    /// The sidecar and command-line spelling ("all", "response").
    pub fn as_str(self) -> &'static str {
        match self {
            TokenCount::All => "all",
            TokenCount::Response => "response",
        }
    }
}

/// One tokenized calibration sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalibrationSequence {
    /// Token ids of prompt + answer turn.
    pub ids: Vec<u32>,
    /// Index of the first answer token (every token from here on is the answer turn,
    /// including the template's end-of-turn markup).
    pub response_start: usize,
    /// Per token: whether it counts for Wanda's statistic.
    pub counted: Vec<bool>,
    /// Positions of the tokens that spell the person's name in the prompt (every occurrence).
    pub name_positions: Vec<usize>,
    /// The record's variation.
    pub variation: String,
    /// The record's name.
    pub name: String,
    /// The record's sample index.
    pub sample: u32,
}

impl CalibrationSequence {
    /// Number of counted tokens.
    pub fn counted_tokens(&self) -> u64 {
        self.counted.iter().filter(|&&c| c).count() as u64
    }
}

/// The calibration set of one group, in a deterministic order (variation, context, name,
/// sample, seed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalibrationSet {
    /// Scenario id.
    pub scenario: String,
    /// Group of the names.
    pub group: Group,
    /// Variations present, sorted.
    pub variations: Vec<String>,
    /// Which tokens count.
    pub tokens: TokenCount,
    /// The sequences.
    pub sequences: Vec<CalibrationSequence>,
}

impl CalibrationSet {
    /// Total counted tokens over all sequences.
    pub fn counted_tokens(&self) -> u64 {
        self.sequences.iter().map(CalibrationSequence::counted_tokens).sum()
    }
}

/// What to select from a records file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalibrationSpec {
    /// Group whose answers are used.
    pub group: Group,
    /// Variations kept (None: all in the records).
    pub variations: Option<Vec<String>>,
    /// Which tokens count.
    pub tokens: TokenCount,
}

/// Builds the calibration set of `spec` from `records` of `scenario`: each record's prompt
/// is rebuilt with `Scenario::prompts`, rendered as a single user turn with the generation
/// prompt, and the record's raw answer appended as the assistant turn.
pub fn build_calibration(
    records: &[AnswerRecord],
    scenario: &Scenario,
    template: &ChatTemplate,
    tokenizer: &Tokenizer,
    spec: &CalibrationSpec,
) -> Result<CalibrationSet, ScoreError> {
    let selected = select_records(records, scenario, spec)?;
    let prompts = prompt_texts(scenario, &selected)?;
    let mut sequences = Vec::with_capacity(selected.len());
    for (index, record) in selected.iter().enumerate() {
        let key = (record.context, record.variation.clone(), record.name.clone());
        let text = prompts.get(&key).ok_or_else(|| ScoreError::BadRecord {
            index,
            name: record.name.clone(),
            variation: record.variation.clone(),
            reason: format!("scenario {:?} has no such name in its {:?} group", scenario.id, spec.group.to_string()),
        })?;
        sequences.push(tokenize_sequence(index, record, text, template, tokenizer, spec.tokens)?);
    }
    let mut variations: Vec<String> = selected.iter().map(|r| r.variation.clone()).collect();
    variations.sort();
    variations.dedup();
    Ok(CalibrationSet { scenario: scenario.id.clone(), group: spec.group, variations, tokens: spec.tokens, sequences })
}

fn select_records<'r>(
    records: &'r [AnswerRecord],
    scenario: &Scenario,
    spec: &CalibrationSpec,
) -> Result<Vec<&'r AnswerRecord>, ScoreError> {
    if let Some(wanted) = &spec.variations {
        for id in wanted {
            scenario.variation(id)?;
        }
    }
    let mut selected: Vec<&AnswerRecord> = records
        .iter()
        .filter(|r| r.scenario == scenario.id && r.group == spec.group)
        .filter(|r| spec.variations.as_ref().is_none_or(|v| v.contains(&r.variation)))
        .collect();
    if selected.is_empty() {
        let mut present: Vec<String> =
            records.iter().map(|r| format!("{}/{}/{:?}", r.scenario, r.variation, r.group)).collect();
        present.sort();
        present.dedup();
        return Err(ScoreError::NoRecords {
            scenario: scenario.id.clone(),
            group: spec.group.to_string(),
            variations: spec.variations.as_ref().map_or("all".to_string(), |v| v.join(",")),
            detail: format!("the records hold {}", if present.is_empty() { "none".into() } else { present.join(", ") }),
        });
    }
    selected.sort_by(|a, b| {
        (&a.variation, a.context, &a.name, a.sample, a.seed).cmp(&(&b.variation, b.context, &b.name, b.sample, b.seed))
    });
    Ok(selected)
}

type PromptKey = (ContextLevel, String, String);

fn prompt_texts(scenario: &Scenario, records: &[&AnswerRecord]) -> Result<BTreeMap<PromptKey, String>, ScoreError> {
    let mut wanted: BTreeMap<ContextLevel, Vec<String>> = BTreeMap::new();
    for record in records {
        let list = wanted.entry(record.context).or_default();
        if !list.contains(&record.variation) {
            list.push(record.variation.clone());
        }
    }
    let mut texts = BTreeMap::new();
    for (context, variations) in wanted {
        for prompt in scenario.prompts(context, Some(&variations))? {
            texts.insert((prompt.context, prompt.variation, prompt.name), prompt.text);
        }
    }
    Ok(texts)
}

/// Renders and tokenizes one record; answer tokens are those ending after the rendered
/// prompt (byte offsets of the tokenizer), name tokens those overlapping the name in it.
fn tokenize_sequence(
    index: usize,
    record: &AnswerRecord,
    prompt: &str,
    template: &ChatTemplate,
    tokenizer: &Tokenizer,
    tokens: TokenCount,
) -> Result<CalibrationSequence, ScoreError> {
    let prompt_text = template.render(&[Message::user(prompt)], true)?;
    let full = template.render(&[Message::user(prompt), Message::assistant(&record.raw)], false)?;
    if !full.starts_with(&prompt_text) || full.len() == prompt_text.len() {
        return Err(ScoreError::TemplatePrefix { name: record.name.clone() });
    }
    let (ids, offsets) = tokenizer.encode_with_offsets(&full, false)?;
    let boundary = prompt_text.len();
    let response_start = offsets.iter().position(|&(_, end)| end > boundary).unwrap_or(ids.len());
    if response_start == 0 || response_start == ids.len() {
        return Err(ScoreError::TemplatePrefix { name: record.name.clone() });
    }
    let spans: Vec<(usize, usize)> =
        prompt_text.match_indices(record.name.as_str()).map(|(at, s)| (at, at + s.len())).collect();
    let name_positions: Vec<usize> = offsets
        .iter()
        .enumerate()
        .filter(|(_, &(start, end))| start < end && spans.iter().any(|&(a, b)| start < b && a < end))
        .map(|(i, _)| i)
        .collect();
    if name_positions.is_empty() {
        return Err(ScoreError::BadRecord {
            index,
            name: record.name.clone(),
            variation: record.variation.clone(),
            reason: "the name does not occur in the rendered prompt".into(),
        });
    }
    let counted = (0..ids.len()).map(|i| tokens == TokenCount::All || i >= response_start).collect();
    Ok(CalibrationSequence {
        ids,
        response_start,
        counted,
        name_positions,
        variation: record.variation.clone(),
        name: record.name.clone(),
        sample: record.sample,
    })
}
