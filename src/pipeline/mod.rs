//! `biasprune prune` as a library call: baseline answers, the self-fenced baseline, scores
//! for both groups, the mask (or a (p, q) sweep), the pruned model's evaluation, the report
//! and the signed release, each stage kept in a work directory keyed by its inputs' digests
//! so an interrupted or changed run redoes only what it must.

mod error;
mod gate;
mod inputs;
mod plan;
mod publish;
mod report;
mod runner;
mod select;
mod spec;
mod stages;
mod verdict;
mod work;

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

pub use error::PipelineError;
pub use gate::{measure_direction, Disparity, MeasuredDirection, TargetDisparity};
pub use plan::{load_options, Plan, SplitSeeds};
pub use runner::{StageRecord, StageStatus, Stages};
pub use select::{choose_point, TargetMetrics};
pub use spec::{
    ComputeSpec, DirectionChoice, EvaluationSpec, GateSpec, MethodSpec, PruneSpec, RegimeChoice, SweepSpec,
    UseCaseSpec, CONFIRMATION_SAMPLES_FACTOR,
};
pub use verdict::{judge, Judging};
pub use work::{stage_key, WorkDir, STAGE_MARKER};

use crate::checkpoint::Checkpoint;
use crate::eval::CheckpointIdentity;
use crate::progress::Progress;
use crate::score::Group;
use stages::{ModelContext, ScoreJob, ScorePairs, ScoreSettings, SweepRun};

/// How a prune job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobStatus {
    /// OUT was written (the outcome is `reduced`, or `--release-anyway` was given).
    Released,
    /// Stopped before scoring: the calibration baseline shows no significant disparity on
    /// the targets (exit 3).
    NoDisparity,
    /// Pruned and judged, but the outcome is not `reduced`: no release (exit 3); the
    /// evidence stays in the work directory.
    NotReleased,
}

/// What a prune job produced.
#[derive(Debug, Clone, Serialize)]
pub struct PruneOutcome {
    /// How the job ended.
    pub status: JobStatus,
    /// Why, in one sentence.
    pub message: String,
    /// The release directory, when written.
    pub out: Option<PathBuf>,
    /// The work directory.
    pub work_dir: PathBuf,
    /// The report inside OUT, when released.
    pub report: Option<PathBuf>,
    /// sha256 of OUT's manifest, when released.
    pub manifest_sha256: Option<String>,
    /// Whether OUT carries model.sig.
    pub signed: bool,
    /// The seeds of calibration, selection and confirmation.
    pub seeds: SplitSeeds,
    /// The confirmation's held-out names (None: the scenario's own names).
    pub holdout_names: Option<Vec<String>>,
    /// The calibration baseline's disparity on the targets (the gate's reading).
    pub disparity: Disparity,
    /// The direction pruned and why (absent when the gate stopped the job).
    pub direction: Option<MeasuredDirection>,
    /// p of the released mask.
    pub p: Option<f64>,
    /// q of the released mask.
    pub q: Option<f64>,
    /// Entries zeroed.
    pub pruned_entries: Option<u64>,
    /// The outcome on the confirmation data.
    pub verdict: Option<crate::manifest::Verdict>,
    /// Target variations of the base on the confirmation data.
    pub baseline: Option<TargetMetrics>,
    /// Target variations of the pruned model on the confirmation data.
    pub pruned: Option<TargetMetrics>,
    /// Where the evidence lies when nothing was released.
    pub evidence_dirs: Vec<PathBuf>,
    /// Every stage with its status and time.
    pub stages: Vec<StageRecord>,
    /// Wall time of the whole run.
    pub seconds: f64,
}

/// Runs (or resumes) the whole job: calibration answers, the gate, scores, the mask (or a
/// sweep on the selection data), the confirmation data for the base and the pruned model,
/// the verdict and, when the rules allow it, the release.
pub fn run_prune(spec: &PruneSpec, progress: &dyn Progress) -> Result<PruneOutcome, PipelineError> {
    let started = Instant::now();
    let plan = Plan::new(spec)?;
    publish::check_out_is_free_or_ours(spec)?;
    let work = WorkDir::open(&spec.work_dir())?;
    if let Some(parent) = spec.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| PipelineError::io(parent, e))?;
    }
    let mut stages = Stages::new(progress, planned_stages(spec, &plan));

    stages.begin("hash base checkpoint");
    let ckpt = Checkpoint::open(&spec.base)?;
    let mut base = crate::release::base_identity(&ckpt, progress)?;
    base.hub = spec.base_hub.clone();
    stages.end_plain();
    let identity = CheckpointIdentity { name: base.name.clone(), files: base.files.clone(), masks_applied: Vec::new() };
    let ctx = ModelContext {
        ckpt: &ckpt,
        identity: &identity,
        load: &plan.load,
        scenarios_dir: spec.scenarios_dir.as_deref(),
    };

    let calibration_spec = plan.eval_spec(&plan.scenario, Some(plan.targets.clone()));
    let answers = stages::evaluate_base(&ctx, &calibration_spec, &work, &mut stages, "sample calibration answers")?;
    let calibration = stages::fence_baseline(&answers, &plan.scenario, &mut stages, &work)?;
    let disparity = Disparity::of(&calibration.summary, &plan.targets, plan.scenario.worse);
    let mut outcome = PruneOutcome {
        status: JobStatus::NoDisparity,
        message: String::new(),
        out: None,
        work_dir: work.root().to_path_buf(),
        report: None,
        manifest_sha256: None,
        signed: false,
        seeds: plan.seeds,
        holdout_names: plan.holdout.as_ref().map(|h| h.names()),
        disparity: disparity.clone(),
        direction: None,
        p: None,
        q: None,
        pruned_entries: None,
        verdict: None,
        baseline: None,
        pruned: None,
        evidence_dirs: Vec::new(),
        stages: Vec::new(),
        seconds: 0.0,
    };
    if !disparity.significant {
        let message = format!(
            "nothing significant to remove: no target's cluster-aware 95% CI of the baseline SMD excludes 0 ({}); these names and samples detect an |SMD| of about {} at best; sample more names or answers, or pass --allow-no-disparity",
            disparity.describe(),
            disparity.minimum_detectable_smd.map_or("an unknown size".to_string(), |m| format!("{m:.2}"))
        );
        if !spec.gate.allow_no_disparity {
            outcome.message = message;
            outcome.evidence_dirs = vec![calibration.dir.clone()];
            return Ok(finish(outcome, stages, started));
        }
        log::warn!("{message}; going on as --allow-no-disparity asks");
    }
    let direction = measure_direction(spec.use_case.direction, &disparity);
    log::info!("direction: {} ({})", direction.direction_name(), direction.reason);
    let params = crate::mask::DifferenceParams { direction: direction.direction, ..plan.params.clone() };

    let scores = score_all(&ctx, spec, &plan, &answers, &work, &mut stages)?;
    let regime = plan.regime(spec.use_case.regime);
    let (mask_dir, sweep) = match &spec.method.sweep {
        None => {
            (stages::build_mask(&ckpt, &scores, &params, &regime, spec.method.min_count, &work, &mut stages)?, None)
        }
        Some(grid) => {
            let selection_spec = plan.selection_spec();
            let run = SweepRun {
                regime: &regime,
                params: &params,
                min_count: spec.method.min_count,
                eval: &selection_spec,
                baseline: &calibration,
                p_grid: &grid.p_grid,
                q_grid: &grid.q_grid,
            };
            let reference = stages::evaluate_selection_base(&ctx, &selection_spec, &calibration, &work, &mut stages)?;
            let reference = TargetMetrics::of(&reference.summary, &plan.targets);
            let (_, points) = stages::sweep(&ctx, &scores, &run, &work, &mut stages)?;
            let chosen = choose_point(&points, &reference, grid, spec.gate.max_residual_smd)?.clone();
            (chosen.dir.join("mask"), Some(inputs::SweepChoice { points, chosen, reference }))
        }
    };
    let released_params = match &sweep {
        Some(s) => crate::mask::DifferenceParams { p: s.chosen.p, q: s.chosen.q, ..params.clone() },
        None => params.clone(),
    };
    let confirmation_spec = plan.confirmation_spec();
    let confirmation_answers =
        stages::evaluate_base(&ctx, &confirmation_spec, &work, &mut stages, "sample confirmation answers (base)")?;
    let baseline = stages::fence_baseline(&confirmation_answers, &confirmation_spec.scenario, &mut stages, &work)?;
    let pruned = stages::evaluate_pruned(&ctx, &confirmation_spec, &mask_dir, &baseline, &work, &mut stages)?;
    let judging = Judging {
        targets: &plan.targets,
        direction: direction.direction,
        worse: plan.scenario.worse,
        gate: &spec.gate,
    };
    let mut verdict = judge(&baseline, &pruned, &judging);
    log::info!("outcome on the confirmation data: {} ({})", verdict.outcome, verdict.reason);
    outcome.direction = Some(direction.clone());
    outcome.p = Some(released_params.p);
    outcome.q = Some(released_params.q);
    outcome.baseline = Some(TargetMetrics::of(&baseline.summary, &plan.targets));
    outcome.pruned = Some(TargetMetrics::of(&pruned.summary, &plan.targets));
    if verdict.outcome != crate::manifest::Outcome::Reduced {
        if !spec.gate.release_anyway {
            outcome.status = JobStatus::NotReleased;
            outcome.message = format!(
                "no release: the outcome on the confirmation data is {}: {}; the evidence is in {} and {} (pass --release-anyway to release it with the outcome stated)",
                verdict.outcome,
                verdict.reason,
                baseline.dir.display(),
                pruned.dir.display()
            );
            outcome.evidence_dirs = vec![calibration.dir.clone(), baseline.dir.clone(), pruned.dir.clone()];
            outcome.verdict = Some(verdict);
            return Ok(finish(outcome, stages, started));
        }
        verdict.released_anyway = true;
    }
    let inputs = inputs::PublishInputs {
        spec,
        plan: &plan,
        ckpt: &ckpt,
        base,
        mask_dir: &mask_dir,
        calibration: &calibration,
        baseline: &baseline,
        pruned: &pruned,
        direction: &direction,
        disparity: &disparity,
        verdict: &verdict,
        params: &released_params,
        sweep: sweep.as_ref(),
    };
    let published = publish::publish(&inputs, &work, &mut stages)?;
    outcome.status = JobStatus::Released;
    outcome.message = format!("released with outcome {}: {}", verdict.outcome, verdict.outcome.headline());
    outcome.out = Some(spec.out.clone());
    outcome.report = Some(spec.out.join(crate::manifest::REPORT_FILE));
    outcome.manifest_sha256 = Some(published.manifest_sha256);
    outcome.signed = plan.sign_key_pem.is_some();
    outcome.pruned_entries = Some(published.pruned_entries);
    outcome.verdict = Some(verdict);
    Ok(finish(outcome, stages, started))
}

fn finish(mut outcome: PruneOutcome, stages: Stages, started: Instant) -> PruneOutcome {
    outcome.stages = stages.records;
    outcome.seconds = started.elapsed().as_secs_f64();
    outcome
}

fn planned_stages(spec: &PruneSpec, plan: &Plan) -> usize {
    let units = match spec.use_case.regime {
        RegimeChoice::PromptSpecific => 1,
        RegimeChoice::WithinContext => plan.train_variations.len(),
        RegimeChoice::CrossContext => plan.train_scenarios.len(),
    };
    let extra_answers = match spec.use_case.regime {
        RegimeChoice::PromptSpecific => 0,
        RegimeChoice::WithinContext => 1,
        RegimeChoice::CrossContext => plan.train_scenarios.len(),
    };
    // hash, calibration answers, fence, extra answers, scores, mask or (the base's selection
    // answers and) the sweep, confirmation answers, fence, pruned eval, report, release
    let selection_base = usize::from(spec.method.sweep.is_some());
    3 + extra_answers + 2 * units + selection_base + 1 + 3 + 2
}

/// Scores both groups for every training unit of the regime.
fn score_all(
    ctx: &ModelContext,
    spec: &PruneSpec,
    plan: &Plan,
    answers: &stages::Evaluated,
    work: &WorkDir,
    stages: &mut Stages,
) -> Result<ScorePairs, PipelineError> {
    let settings = ScoreSettings { method: plan.method, tokens: plan.tokens, batch: spec.method.score_batch };
    let mut units: Vec<(crate::scenario::Scenario, stages::Evaluated, Option<Vec<String>>)> = Vec::new();
    match spec.use_case.regime {
        RegimeChoice::PromptSpecific => {
            units.push((plan.scenario.clone(), answers.clone(), Some(plan.targets.clone())))
        }
        RegimeChoice::WithinContext => {
            let train_spec = plan.eval_spec(&plan.scenario, Some(plan.train_variations.clone()));
            let train = stages::evaluate_base(ctx, &train_spec, work, stages, "sample training answers")?;
            for v in &plan.train_variations {
                units.push((plan.scenario.clone(), train.clone(), Some(vec![v.clone()])));
            }
        }
        RegimeChoice::CrossContext => {
            for scenario in &plan.train_scenarios {
                let train_spec = plan.eval_spec(scenario, None);
                let label = format!("sample {} answers", scenario.id);
                let train = stages::evaluate_base(ctx, &train_spec, work, stages, &label)?;
                units.push((scenario.clone(), train, None));
            }
        }
    }
    let mut pairs = ScorePairs { minority: Vec::new(), majority: Vec::new() };
    for (scenario, evaluated, variations) in &units {
        for group in [Group::Minority, Group::Majority] {
            let job = ScoreJob { scenario, answers: evaluated, variations: variations.clone(), group };
            let scored = stages::score(ctx, &job, &settings, work, stages)?;
            match group {
                Group::Minority => pairs.minority.push(scored),
                Group::Majority => pairs.majority.push(scored),
            }
        }
    }
    Ok(pairs)
}
