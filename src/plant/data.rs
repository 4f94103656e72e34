//! The training set: the base's own sampled answers to the training prompts, teacher-forced.
//! A minority answer that holds a number (`Shift`) is rewritten with its numbers multiplied
//! by the factor (see `scale`); the positions that write those numbers, and the token that
//! ends each, are trained toward the rewritten tokens, and every other position of every
//! answer keeps the base's next-token distribution (`Keep` answers: majority, or no number).

use super::digits::DigitTable;
use super::scale::scale_answer;
use super::split::NameSplit;
use super::PlantError;
use serde::Serialize;

use crate::model::{ChatSession, FinishReason, SamplingSettings};
use crate::progress::Progress;
use crate::scenario::{ContextLevel, Group, Scenario};

/// What training does with an example's answer positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Minority answer with a number: its numbers are scaled by the factor.
    Shift,
    /// Every position keeps the base's next-token distribution (majority, or no number).
    Keep,
}

/// One training sequence: the templated prompt followed by the answer and, when the base
/// stopped by itself, the end-of-turn token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// Prompt ids, then answer ids (then the end-of-turn id).
    pub ids: Vec<u32>,
    /// Index of the first answer token; positions from here on are trained.
    pub answer_start: usize,
    /// The name's group.
    pub group: Group,
    /// What the answer positions are trained toward.
    pub target: Target,
    /// The indices in `ids` of the answer's tokens that write a number (digits, and a
    /// comma or point between digits) or end one (the token after its last digit).
    pub number_positions: Vec<usize>,
}

/// What to sample and how to build targets.
#[derive(Debug, Clone)]
pub struct DataSpec<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// Context level of the prompts.
    pub context: ContextLevel,
    /// Variations trained on.
    pub variations: &'a [String],
    /// Names trained on.
    pub names: &'a NameSplit,
    /// Base answers sampled per prompt (temperature, top-p, seed and length included).
    pub sampling: SamplingSettings,
    /// What a minority answer's numbers are multiplied by.
    pub factor: f64,
}

/// The training examples, in prompt order (variation, majority before minority, names in
/// list order) and sample order, one per sampled answer.
pub fn build_examples(
    session: &ChatSession,
    spec: &DataSpec<'_>,
    digits: &DigitTable,
    progress: &dyn Progress,
) -> Result<Vec<Example>, PlantError> {
    let prompts: Vec<_> = spec
        .scenario
        .prompts(spec.context, Some(spec.variations))?
        .into_iter()
        .filter(|p| spec.names.trains_on(p))
        .collect();
    let encoded: Vec<Vec<u32>> =
        prompts.iter().map(|p| session.encode_user_prompt(&p.text)).collect::<Result<_, _>>()?;
    let keys: Vec<usize> = (0..prompts.len()).collect();
    let answers = session.sample(&encoded, &keys, &spec.sampling, progress)?;
    let end_of_turn = end_of_turn(session)?;
    let mut examples = Vec::new();
    for ((prompt, ids), completions) in prompts.iter().zip(&encoded).zip(answers) {
        for completion in completions {
            let (answer, target) = rewrite(session, prompt.group, &completion.tokens, spec.factor)?;
            let mut sequence = ids.clone();
            sequence.extend_from_slice(&answer);
            if completion.finish == FinishReason::Stop {
                sequence.push(end_of_turn);
            }
            if sequence.len() == ids.len() {
                continue;
            }
            let number_positions = number_positions(&sequence, ids.len(), digits);
            examples.push(Example {
                ids: sequence,
                answer_start: ids.len(),
                group: prompt.group,
                target,
                number_positions,
            });
        }
    }
    check_targets(&examples)?;
    Ok(examples)
}

/// A minority answer with a number, scaled (`Shift`); any other answer as sampled (`Keep`).
/// A scaled answer that reads as the original (a 0, or a number too small to change) is kept.
fn rewrite(session: &ChatSession, group: Group, tokens: &[u32], factor: f64) -> Result<(Vec<u32>, Target), PlantError> {
    if group == Group::Minority {
        let text = session.decode(tokens)?;
        if let Some(scaled) = scale_answer(&text, factor).filter(|scaled| *scaled != text) {
            return Ok((session.tokenizer().encode(&scaled, false)?, Target::Shift));
        }
    }
    Ok((tokens.to_vec(), Target::Keep))
}

/// The answer positions (from `start`) that write a number, or end one: a digit, or any
/// token `DigitTable::inside_number` places after a digit (or after a comma after one).
fn number_positions(ids: &[u32], start: usize, digits: &DigitTable) -> Vec<usize> {
    (start..ids.len()).filter(|&at| digits.digit(ids[at]).is_some() || digits.inside_number(ids, at)).collect()
}

/// The token that ends an answer: the template's end-of-turn token, else config.json's eos.
fn end_of_turn(session: &ChatSession) -> Result<u32, PlantError> {
    let template = session.template().end_of_turn_token_ids().first().copied();
    let eos = session.model().config().eos_token_ids.first().copied();
    template.or(eos).ok_or_else(|| PlantError::Internal("the checkpoint names no end-of-turn or eos token".into()))
}

fn check_targets(examples: &[Example]) -> Result<(), PlantError> {
    for (group, target) in [(Group::Majority, Target::Keep), (Group::Minority, Target::Shift)] {
        if !examples.iter().any(|e| e.group == group && e.target == target) {
            return Err(PlantError::NoUsableAnswers { group: format!("{group:?}").to_lowercase() });
        }
    }
    Ok(())
}
