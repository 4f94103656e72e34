//! The stages of a prune job, each a function of digested inputs whose result lives in a
//! keyed work subdirectory: evaluation, the self-fenced baseline, scores, the mask or sweep,
//! and the pruned model's evaluation.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::work::{stage_key, WorkDir};
use super::{PipelineError, Stages};
use crate::arch::Architecture;
use crate::checkpoint::Checkpoint;
use crate::eval::{
    run_eval, self_fenced_copy, CheckpointIdentity, ComputeIdentity, EvalSpec, RECORDS_FILE, SUMMARY_FILE,
};
use crate::mask::{build_regime_mask, load_masked, save_mask, DifferenceParams, Regime, MASK_JSON};
use crate::metrics::{read_records, AnswerRecord, Summary};
use crate::model::{ChatSession, LoadOptions};
use crate::scenario::Scenario;
use crate::score::{
    load_scores_for, score_to_dir, CalibrationSpec, Group, Method, ScoreOptions, ScoreRequest, TokenCount,
};
use crate::sweep::{run_sweep, sweep_svg, SweepInputs, SweepPoint};

/// A finished evaluation: its directory, summary and records.
#[derive(Clone)]
pub struct Evaluated {
    /// The stage directory (run.json, records.jsonl, summary.json).
    pub dir: PathBuf,
    /// The summary.
    pub summary: Summary,
    /// Every answer.
    pub records: Vec<AnswerRecord>,
    /// sha256 (hex) of the records file, which keys every stage that uses the answers.
    pub records_sha256: String,
}

impl Evaluated {
    /// A finished evaluation in `dir`, hashing its records file once.
    fn new(dir: &Path, summary: Summary, records: Vec<AnswerRecord>) -> Result<Self, PipelineError> {
        let records_sha256 = file_sha256(&dir.join(RECORDS_FILE))?;
        Ok(Evaluated { dir: dir.to_path_buf(), summary, records, records_sha256 })
    }

    /// The records file.
    pub fn records_path(&self) -> PathBuf {
        self.dir.join(RECORDS_FILE)
    }
}

/// What every model run shares: the base, its identity and where the model runs.
pub struct ModelContext<'a> {
    /// The base checkpoint.
    pub ckpt: &'a Checkpoint,
    /// The base's directory name and file digests.
    pub identity: &'a CheckpointIdentity,
    /// Device and dtype.
    pub load: &'a LoadOptions,
    /// Extra scenario manifests.
    pub scenarios_dir: Option<&'a Path>,
}

impl ModelContext<'_> {
    fn compute(&self) -> ComputeIdentity {
        ComputeIdentity::of(self.load)
    }
}

/// Samples answers of the base for `spec` (unfenced), resuming a partial run in place.
pub fn evaluate_base(
    ctx: &ModelContext,
    spec: &EvalSpec,
    work: &WorkDir,
    stages: &mut Stages,
    label: &str,
) -> Result<Evaluated, PipelineError> {
    let key_inputs =
        json!({"stage": "answers", "checkpoint": ctx.identity, "eval": eval_inputs(spec), "compute": ctx.compute()});
    let dir = work.stage_dir(&format!("answers-{}", spec.scenario.id), &stage_key(&key_inputs));
    let stage = EvalStage { dir, key_inputs, label: label.to_string() };
    evaluate(ctx, spec, None, None, &stage, stages)
}

/// The base's answers judged by their own fences (see `eval::self_fenced_copy`).
pub fn fence_baseline(
    answers: &Evaluated,
    scenario: &Scenario,
    stages: &mut Stages,
    work: &WorkDir,
) -> Result<Evaluated, PipelineError> {
    let key_inputs = json!({"stage": "baseline", "answers": answers.records_sha256.clone(), "scenario": scenario.id});
    let dir = work.stage_dir("baseline", &stage_key(&key_inputs));
    stages.begin("fence baseline");
    let built =
        WorkDir::build_once(&dir, |tmp| self_fenced_copy(&answers.dir, scenario, tmp).map(|_| ()).map_err(Into::into))?;
    stages.end(built, &dir);
    read_evaluation(&dir)
}

/// Evaluates the base with `mask_dir` applied in memory, fenced by `baseline`.
pub fn evaluate_pruned(
    ctx: &ModelContext,
    spec: &EvalSpec,
    mask_dir: &Path,
    baseline: &Evaluated,
    work: &WorkDir,
    stages: &mut Stages,
) -> Result<Evaluated, PipelineError> {
    let mask_sha = file_sha256(&mask_dir.join(MASK_JSON))?;
    let key_inputs = json!({"stage": "pruned", "checkpoint": ctx.identity, "mask": mask_sha,
        "eval": eval_inputs(spec), "baseline": baseline.records_sha256.clone(), "compute": ctx.compute()});
    let dir = work.stage_dir("pruned", &stage_key(&key_inputs));
    let stage = EvalStage { dir, key_inputs, label: "evaluate pruned".to_string() };
    evaluate(ctx, spec, Some(mask_dir), Some(baseline), &stage, stages)
}

/// Evaluates the base itself on the sweep's selection prompts and seed, fenced by
/// `baseline` like every sweep point, so that each point's usable answers are compared with
/// the base's answers to the same prompts and seed rather than to another seed's.
pub fn evaluate_selection_base(
    ctx: &ModelContext,
    spec: &EvalSpec,
    baseline: &Evaluated,
    work: &WorkDir,
    stages: &mut Stages,
) -> Result<Evaluated, PipelineError> {
    let key_inputs = json!({"stage": "selection-base", "checkpoint": ctx.identity, "eval": eval_inputs(spec),
        "baseline": baseline.records_sha256.clone(), "compute": ctx.compute()});
    let dir = work.stage_dir("selection-base", &stage_key(&key_inputs));
    let stage = EvalStage { dir, key_inputs, label: "sample selection answers (base)".to_string() };
    evaluate(ctx, spec, None, Some(baseline), &stage, stages)
}

/// An evaluation stage's directory, the inputs that key it and its display name.
struct EvalStage {
    dir: PathBuf,
    key_inputs: serde_json::Value,
    label: String,
}

fn evaluate(
    ctx: &ModelContext,
    spec: &EvalSpec,
    mask: Option<&Path>,
    baseline: Option<&Evaluated>,
    stage: &EvalStage,
    stages: &mut Stages,
) -> Result<Evaluated, PipelineError> {
    let (dir, key_inputs) = (stage.dir.as_path(), &stage.key_inputs);
    stages.begin(&stage.label);
    if WorkDir::is_complete(dir) {
        stages.end(false, dir);
        return read_evaluation(dir);
    }
    let mut identity = ctx.identity.clone();
    let session = match mask {
        Some(mask_dir) => {
            let masked = load_masked(ctx.ckpt, mask_dir, ctx.load.clone())?;
            identity.masks_applied.push(masked.mask_sha256);
            masked.session
        }
        None => ChatSession::load_from(ctx.ckpt, ctx.ckpt, ctx.load.clone())?,
    };
    let baseline_ref = baseline.map(|b| (b.records.as_slice(), b.records_sha256.clone()));
    let output = run_eval(&session, spec, identity, baseline_ref, dir, stages.progress())?;
    WorkDir::mark_complete(dir, key_inputs)?;
    stages.end_resumable(output.chunks_resumed, output.chunks_resumed + output.chunks_generated, dir);
    Evaluated::new(dir, output.summary, output.records)
}

fn eval_inputs(spec: &EvalSpec) -> serde_json::Value {
    json!({"scenario": spec.scenario.id, "scenario_sha256": crate::eval::scenario_sha256(&spec.scenario),
        "context": spec.context, "variations": spec.variations, "samples": spec.sampling.samples,
        "max_new_tokens": spec.sampling.max_new_tokens, "temperature": spec.sampling.temperature,
        "top_p": spec.sampling.top_p, "seed": spec.sampling.seed, "max_rows": spec.sampling.max_rows,
        "inlier_rule": spec.inlier_rule, "summary": spec.summary})
}

/// Reads a completed evaluation directory.
pub fn read_evaluation(dir: &Path) -> Result<Evaluated, PipelineError> {
    #[derive(serde::Deserialize)]
    struct SummaryFile {
        #[serde(flatten)]
        summary: Summary,
    }
    let path = dir.join(SUMMARY_FILE);
    let bytes = crate::fsutil::read_capped(&path, crate::fsutil::MAX_JSON_BYTES, crate::fsutil::Links::Follow)
        .map_err(|e| PipelineError::io(&path, e))?;
    let file: SummaryFile = serde_json::from_slice(&bytes).map_err(|e| PipelineError::CorruptWorkFile {
        path: path.clone(),
        reason: format!("not a summary written by eval: {e}"),
    })?;
    let records = read_records(&dir.join(RECORDS_FILE))?;
    Evaluated::new(dir, file.summary, records)
}

/// One score job: whose answers, from which records.
pub struct ScoreJob<'a> {
    /// Scenario of the records.
    pub scenario: &'a Scenario,
    /// The evaluation whose answers calibrate.
    pub answers: &'a Evaluated,
    /// Variations used (None: all in the records).
    pub variations: Option<Vec<String>>,
    /// Minority or majority.
    pub group: Group,
}

/// How scores are computed.
pub struct ScoreSettings {
    /// Wanda or SNIP.
    pub method: Method,
    /// Tokens counted.
    pub tokens: TokenCount,
    /// Answers per batch.
    pub batch: usize,
}

/// Scores the base on one group's answers into a keyed directory; returns it and its key.
pub fn score(
    ctx: &ModelContext,
    job: &ScoreJob,
    settings: &ScoreSettings,
    work: &WorkDir,
    stages: &mut Stages,
) -> Result<(PathBuf, String), PipelineError> {
    let key_inputs = json!({"stage": "score", "checkpoint": ctx.identity, "records": job.answers.records_sha256.clone(),
        "scenario": job.scenario.id, "scenario_sha256": crate::eval::scenario_sha256(job.scenario),
        "variations": job.variations, "group": job.group, "method": settings.method.as_str(),
        "tokens": settings.tokens.as_str(), "batch": settings.batch, "compute": ctx.compute()});
    let key = stage_key(&key_inputs);
    let dir = work.stage_dir(&format!("score-{}-{}", job.scenario.id, job.group), &key);
    let variations = job.variations.as_ref().map_or_else(|| "all".to_string(), |v| v.join(","));
    stages.begin(&format!("score {} {} ({variations})", job.group, job.scenario.id));
    let request = ScoreRequest {
        checkpoint: ctx.ckpt.dir().to_path_buf(),
        records: job.answers.records_path(),
        scenario: Some(job.scenario.id.clone()),
        scenario_dir: ctx.scenarios_dir.map(Path::to_path_buf),
        calibration: CalibrationSpec { group: job.group, variations: job.variations.clone(), tokens: settings.tokens },
        method: settings.method,
        options: ScoreOptions { batch: settings.batch, load: ctx.load.clone() },
    };
    let progress = stages.progress();
    let built = WorkDir::build_once(&dir, |tmp| {
        log::info!("scoring {} answers of {} into {}", job.group, job.scenario.id, dir.display());
        score_to_dir(&request, tmp, false, progress).map(|_| ()).map_err(Into::into)
    })?;
    stages.end(built, &dir);
    Ok((dir, key))
}

/// The minority and majority score directories (with their keys) that make a mask.
pub struct ScorePairs {
    /// Minority-name scores.
    pub minority: Vec<(PathBuf, String)>,
    /// Majority-name scores.
    pub majority: Vec<(PathBuf, String)>,
}

impl ScorePairs {
    fn keys(&self) -> Vec<&String> {
        self.minority.iter().chain(&self.majority).map(|(_, k)| k).collect()
    }

    /// Loads every score directory, checking each was computed on `ckpt`.
    fn load(
        &self,
        ckpt: &Checkpoint,
    ) -> Result<(Vec<crate::score::ScoreSet>, Vec<crate::score::ScoreSet>), PipelineError> {
        let fingerprint = crate::score::checkpoint_fingerprint(ckpt);
        let load = |dirs: &[(PathBuf, String)]| -> Result<Vec<_>, PipelineError> {
            dirs.iter().map(|(d, _)| load_scores_for(d, &fingerprint).map_err(Into::into)).collect()
        };
        Ok((load(&self.minority)?, load(&self.majority)?))
    }
}

/// Builds the set-difference mask of `scores` under `regime` into a keyed directory.
pub fn build_mask(
    ckpt: &Checkpoint,
    scores: &ScorePairs,
    params: &DifferenceParams,
    regime: &Regime,
    min_count: Option<usize>,
    work: &WorkDir,
    stages: &mut Stages,
) -> Result<PathBuf, PipelineError> {
    let key_inputs =
        json!({"stage": "mask", "scores": scores.keys(), "params": params, "regime": regime, "min_count": min_count});
    let dir = work.stage_dir("mask", &stage_key(&key_inputs));
    stages.begin("build mask");
    let built = WorkDir::build_once(&dir, |tmp| {
        let (minority, majority) = scores.load(ckpt)?;
        let arch = Architecture::of_checkpoint(ckpt)?;
        let mask = build_regime_mask(&minority, &majority, &arch, params, regime, min_count)?;
        save_mask(tmp, &mask)?;
        Ok(())
    })?;
    stages.end(built, &dir);
    Ok(dir)
}

/// What a sweep needs besides the scores.
pub struct SweepRun<'a> {
    /// Regime, parameters (p and q replaced per point) and joining.
    pub regime: &'a Regime,
    /// Set-difference parameters.
    pub params: &'a DifferenceParams,
    /// Joining threshold.
    pub min_count: Option<usize>,
    /// Evaluation of each point (the target variations).
    pub eval: &'a EvalSpec,
    /// The fenced baseline.
    pub baseline: &'a Evaluated,
    /// The grid.
    pub p_grid: &'a [f64],
    /// The grid.
    pub q_grid: &'a [f64],
}

/// Runs (or resumes) the (p, q) sweep in a keyed directory; returns the points.
pub fn sweep(
    ctx: &ModelContext,
    scores: &ScorePairs,
    run: &SweepRun,
    work: &WorkDir,
    stages: &mut Stages,
) -> Result<(PathBuf, Vec<SweepPoint>), PipelineError> {
    let key_inputs = json!({"stage": "sweep", "checkpoint": ctx.identity, "scores": scores.keys(), "params": run.params,
        "regime": run.regime, "min_count": run.min_count, "eval": eval_inputs(run.eval),
        "baseline": run.baseline.records_sha256.clone(), "p_grid": run.p_grid, "q_grid": run.q_grid, "compute": ctx.compute()});
    let dir = work.stage_dir("sweep", &stage_key(&key_inputs));
    stages.begin(&format!("sweep {} points", run.p_grid.len() * run.q_grid.len()));
    let table = dir.join("sweep.json");
    if WorkDir::is_complete(&dir) {
        let bytes = crate::fsutil::read_capped(&table, crate::fsutil::MAX_JSON_BYTES, crate::fsutil::Links::Follow)
            .map_err(|e| PipelineError::io(&table, e))?;
        let points = serde_json::from_slice(&bytes).map_err(|e| PipelineError::CorruptWorkFile {
            path: table.clone(),
            reason: format!("not a sweep table: {e}"),
        })?;
        stages.end(false, &dir);
        return Ok((dir, points));
    }
    let (minority, majority) = scores.load(ctx.ckpt)?;
    let inputs = SweepInputs {
        ckpt: ctx.ckpt,
        identity: ctx.identity.clone(),
        minority: &minority,
        majority: &majority,
        regime: run.regime.clone(),
        min_count: run.min_count,
        params: run.params.clone(),
        eval: run.eval.clone(),
        load: ctx.load.clone(),
        baseline: Some((run.baseline.records.as_slice(), run.baseline.records_sha256.clone())),
    };
    let points = run_sweep(&inputs, run.p_grid, run.q_grid, &dir, stages.progress())?;
    let svg = sweep_svg(&points, run.p_grid, run.q_grid)?;
    write_file(&dir.join("sweep.svg"), svg.as_bytes())?;
    let mut bytes = serde_json::to_vec_pretty(&points).expect("points serialise");
    bytes.push(b'\n');
    write_file(&table, &bytes)?;
    WorkDir::mark_complete(&dir, &key_inputs)?;
    stages.end(true, &dir);
    Ok((dir, points))
}

/// sha256 (hex) of a file's bytes.
pub fn file_sha256(path: &Path) -> Result<String, PipelineError> {
    crate::fsutil::file_sha256(path).map_err(|e| PipelineError::io(path, e))
}

/// Writes a file atomically.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), PipelineError> {
    crate::fsutil::write_atomically(path, bytes).map_err(|e| PipelineError::io(path, e))
}
