//! Bias evaluation: sample answers to every (variation, name) prompt of a scenario, parse
//! them, and summarise SMD, inlier ratio and their uncertainty.
//!
//! Runs are resumable: prompts are processed in a fixed plan of chunks, each chunk's records
//! are appended to records.jsonl in one write once complete, and `run.json` pins the
//! settings. A rerun with the same settings skips the chunks already on disk and yields the
//! same files as an uninterrupted run, because every sample draws from its own random
//! stream keyed by (seed, prompt index, sample) and chunks are batched the same way.

mod fence;
mod files;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::DeviceLocation;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::CheckpointError;
use crate::metrics::{AnswerRecord, InlierJudge, InlierRule, MetricsError, Summary, SummarySettings};
use crate::model::{ChatSession, FinishReason, LoadOptions, SamplingSettings, SessionError};
use crate::progress::{Progress, Unit};
use crate::scenario::parse::parse_completion;
use crate::scenario::{ContextLevel, NameSplit, Prompt, Scenario, ScenarioError};

pub use fence::self_fenced_copy;
pub use files::{RECORDS_FILE, RUN_FILE, SUMMARY_FILE};

/// An evaluation could not run or could not be resumed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Loading or running the model failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The scenario could not expand its prompts.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// Records or statistics failed.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The checkpoint could not be hashed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// An operating-system error on a path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// OUT holds a run with other settings.
    #[error("{}: holds a run with different settings ({differences}); use another --out", path.display())]
    RunMismatch {
        /// The run file.
        path: PathBuf,
        /// Which keys differ.
        differences: String,
    },
    /// records.jsonl does not belong to this run.
    #[error("{}: {reason}", path.display())]
    BadRecords {
        /// The records file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The baseline gives no fences for some variations.
    #[error("the baseline records have no parsed in-range answers for variation(s) {0}; inliers cannot be judged")]
    BaselineMissing(String),
}

impl EvalError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        EvalError::Io { path: path.to_path_buf(), source }
    }
}

/// What to evaluate and how.
#[derive(Debug, Clone)]
pub struct EvalSpec {
    /// The scenario.
    pub scenario: Scenario,
    /// Context level of the prompts.
    pub context: ContextLevel,
    /// Variations to run (all when absent).
    pub variations: Option<Vec<String>>,
    /// Sampling settings.
    pub sampling: SamplingSettings,
    /// Inlier rule.
    pub inlier_rule: InlierRule,
    /// Statistics settings (bootstrap resamples, seed, population).
    pub summary: SummarySettings,
    /// Held-out names that replace the scenario's own in `scenario` (already applied
    /// there); recorded in run.json so a re-run asks about the same people.
    pub names: Option<NameSplit>,
}

/// Everything that identifies a run; a rerun resumes only when it is identical.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    /// Scenario id.
    pub scenario: String,
    /// sha256 of the scenario definition (templates, variations, names, ranges).
    pub scenario_sha256: String,
    /// Context level.
    pub context: ContextLevel,
    /// Variations run, in prompt order.
    pub variations: Vec<String>,
    /// Answers per prompt.
    pub samples: usize,
    /// Longest answer in tokens.
    pub max_new_tokens: usize,
    /// Sampling temperature.
    pub temperature: f32,
    /// Nucleus mass.
    pub top_p: f32,
    /// Seed of the sampling streams.
    pub seed: u64,
    /// Prompts per chunk (the batch plan).
    pub chunk_prompts: usize,
    /// The inlier rule.
    pub inlier_rule: InlierRule,
    /// Statistics settings.
    pub summary: SummarySettings,
    /// sha256 of the baseline records, when inliers are fenced by a baseline.
    pub baseline_sha256: Option<String>,
    /// Held-out names the prompts asked about instead of the scenario's own list; absent
    /// when the scenario's names were used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<NameSplit>,
    /// The checkpoint: directory name and sha256 of every file.
    pub checkpoint: CheckpointIdentity,
    /// Where the model ran and in which compute dtype; absent in runs recorded before it
    /// was kept. Reproduction is exact only on the same device kind and dtype.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute: Option<ComputeIdentity>,
}

/// The device and compute dtype an evaluation ran with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeIdentity {
    /// `cpu`, `cuda:N` or `metal:N`.
    pub device: String,
    /// Compute dtype: `f32`, `f16`, `bf16`, ...
    pub dtype: String,
}

impl ComputeIdentity {
    /// The device and dtype of loaded weights.
    pub fn of(options: &LoadOptions) -> Self {
        let device = match options.device.location() {
            DeviceLocation::Cpu => "cpu".to_string(),
            DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
            DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
        };
        ComputeIdentity { device, dtype: options.dtype.as_str().to_string() }
    }

    /// Whether results computed with `self` and `other` are expected to be bit-identical:
    /// the same kind of device (the GPU's index does not matter) and the same dtype.
    pub fn same_arithmetic(&self, other: &ComputeIdentity) -> bool {
        let kind = |d: &str| d.split(':').next().unwrap_or(d).to_string();
        kind(&self.device) == kind(&other.device) && self.dtype == other.dtype
    }
}

/// A checkpoint's identity for reproduction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointIdentity {
    /// Directory name.
    pub name: String,
    /// sha256 (hex) of every file, by relative path.
    pub files: BTreeMap<String, String>,
    /// Masks applied in memory on top of the files, if any (their mask.json sha256).
    pub masks_applied: Vec<String>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct EvalOutput {
    /// The summary written to summary.json.
    pub summary: Summary,
    /// Every answer record.
    pub records: Vec<AnswerRecord>,
    /// Chunks found complete on disk and skipped.
    pub chunks_resumed: usize,
    /// Chunks generated in this run.
    pub chunks_generated: usize,
}

/// Hex sha256 of a scenario's definition, so a run is tied to the exact prompts and ranges.
pub fn scenario_sha256(scenario: &Scenario) -> String {
    let mut value = serde_json::to_value(scenario).expect("scenarios serialise");
    if let Some(object) = value.as_object_mut() {
        object.remove("path");
    }
    hex::encode(Sha256::digest(serde_json::to_vec(&value).expect("values serialise")))
}

/// Runs (or resumes) an evaluation into `out`: records.jsonl, summary.json, run.json.
pub fn run_eval(
    session: &ChatSession,
    spec: &EvalSpec,
    checkpoint: CheckpointIdentity,
    baseline: Option<(&[AnswerRecord], String)>,
    out: &Path,
    progress: &dyn Progress,
) -> Result<EvalOutput, EvalError> {
    let prompts = spec.scenario.prompts(spec.context, spec.variations.as_deref())?;
    let variations = variation_order(&prompts);
    let judge = InlierJudge::new(&spec.scenario, spec.context, spec.inlier_rule, baseline.as_ref().map(|(r, _)| *r));
    let missing = judge.missing_fences(&variations);
    if !missing.is_empty() {
        return Err(EvalError::BaselineMissing(missing.join(", ")));
    }
    let chunk_prompts = (spec.sampling.max_rows / spec.sampling.samples.max(1)).max(1);
    let identity = RunIdentity {
        scenario: spec.scenario.id.clone(),
        scenario_sha256: scenario_sha256(&spec.scenario),
        context: spec.context,
        variations,
        samples: spec.sampling.samples,
        max_new_tokens: spec.sampling.max_new_tokens,
        temperature: spec.sampling.temperature,
        top_p: spec.sampling.top_p,
        seed: spec.sampling.seed,
        chunk_prompts,
        inlier_rule: spec.inlier_rule,
        summary: spec.summary,
        baseline_sha256: baseline.as_ref().map(|(_, digest)| digest.clone()),
        names: spec.names.clone(),
        checkpoint,
        compute: Some(ComputeIdentity::of(session.model().options())),
    };
    std::fs::create_dir_all(out).map_err(|e| EvalError::io(out, e))?;
    files::claim_run(out, &identity)?;
    let chunks: Vec<std::ops::Range<usize>> = (0..prompts.len())
        .step_by(chunk_prompts)
        .map(|start| start..(start + chunk_prompts).min(prompts.len()))
        .collect();
    let sizes: Vec<usize> = chunks.iter().map(|c| c.len() * spec.sampling.samples).collect();
    let mut records = files::resume_records(out, &sizes)?;
    let done_chunks = files::complete_chunks(records.len(), &sizes);
    let total: u64 = (prompts.len() * spec.sampling.samples) as u64;
    progress.start("sampling answers", total, Unit::Items);
    progress.advance(records.len() as u64);
    let mut writer = files::RecordWriter::open(out)?;
    for chunk in &chunks[done_chunks..] {
        let chunk_records = answer_chunk(session, spec, &prompts, chunk.clone(), &judge)?;
        writer.append(&chunk_records)?;
        progress.advance(chunk_records.len() as u64);
        records.extend(chunk_records);
    }
    progress.finish();
    let summary = Summary::compute(&spec.scenario.id, spec.context, &records, judge.description(), &spec.summary)?;
    files::write_summary(out, &identity, &summary)?;
    Ok(EvalOutput { summary, records, chunks_resumed: done_chunks, chunks_generated: chunks.len() - done_chunks })
}

fn variation_order(prompts: &[Prompt]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in prompts {
        if !out.contains(&p.variation) {
            out.push(p.variation.clone());
        }
    }
    out
}

fn answer_chunk(
    session: &ChatSession,
    spec: &EvalSpec,
    prompts: &[Prompt],
    chunk: std::ops::Range<usize>,
    judge: &InlierJudge,
) -> Result<Vec<AnswerRecord>, EvalError> {
    let encoded: Vec<Vec<u32>> =
        prompts[chunk.clone()].iter().map(|p| session.encode_user_prompt(&p.text)).collect::<Result<_, _>>()?;
    let keys: Vec<usize> = chunk.clone().collect();
    let answers = session.sample(&encoded, &keys, &spec.sampling, &crate::progress::NoProgress)?;
    let mut records = Vec::with_capacity(chunk.len() * spec.sampling.samples);
    for (prompt, completions) in prompts[chunk].iter().zip(answers) {
        for (sample, completion) in completions.iter().enumerate() {
            let text = session.decode(&completion.tokens)?;
            records.push(answer_record(spec, prompt, sample as u32, &text, completion.finish, judge));
        }
    }
    Ok(records)
}

/// The record of one decoded answer: an answer that `finish`ed at the token limit while
/// writing a number is `truncated` (see `parse_completion`).
fn answer_record(
    spec: &EvalSpec,
    prompt: &Prompt,
    sample: u32,
    text: &str,
    finish: FinishReason,
    judge: &InlierJudge,
) -> AnswerRecord {
    let parsed = parse_completion(text, spec.scenario.answer, finish == FinishReason::Length);
    AnswerRecord::new(&spec.scenario.id, prompt, sample, spec.sampling.seed, parsed, judge)
}

#[cfg(test)]
mod tests;
