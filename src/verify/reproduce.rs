//! Reproduction checks (`verify --reproduce`): re-run the shipped evaluations with the
//! settings and seeds recorded in evidence/{pruned,baseline}/run.json, into a temporary
//! directory, and compare SMD and inlier ratio with evidence/*/summary.json and with the
//! manifest's evidence section.
//!
//! The pruned evaluation is re-run on DIR itself (its weights are the base's with the mask
//! applied, which is what was evaluated), fenced by the shipped baseline records; with a
//! base, the baseline evaluation is re-run on it too.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::agreement::{disagreements, figures, Comparison, Tolerance};
use super::names::{REPRODUCE_BASELINE, REPRODUCE_EVIDENCE, REPRODUCE_PRUNED, REPRODUCE_SCENARIO};
use super::Check;
use crate::checkpoint::file_digests;
use crate::eval::{
    run_eval, scenario_sha256, CheckpointIdentity, ComputeIdentity, EvalSpec, RunIdentity, RECORDS_FILE, RUN_FILE,
    SUMMARY_FILE,
};
use crate::manifest::{
    from_bytes, EvaluationEvidence, Manifest, BASELINE_EVIDENCE, EVIDENCE_DIR, MANIFEST_FILE, PRUNED_EVIDENCE,
};
use crate::metrics::{read_records, AnswerRecord, Summary};
use crate::model::{ChatSession, LoadOptions, SamplingSettings};
use crate::progress::Progress;
use crate::scenario::{Catalog, Scenario};

/// How to re-run the evaluations.
#[derive(Debug, Clone)]
pub struct ReproduceOptions {
    /// Extra scenario manifests (as `eval --scenarios-dir`), for scenarios not built in.
    pub scenarios_dir: Option<PathBuf>,
    /// Device and compute dtype of the re-run.
    pub load: LoadOptions,
    /// Accepted drift when the recorded device kind or dtype differs from `load`'s.
    pub tolerance: Tolerance,
}

/// One evaluation to reproduce.
struct Stage<'a> {
    check: &'static str,
    folder: &'static str,
    checkpoint: &'a Path,
    manifest_summary: Option<&'a EvaluationEvidence>,
}

/// Re-runs the pruned evaluation on `dir` and, with `base`, the baseline evaluation on the
/// base; one check per evaluation (or per reason it could not run).
pub fn check_reproduction(
    dir: &Path,
    base: Option<&Path>,
    options: &ReproduceOptions,
    progress: &dyn Progress,
) -> Vec<Check> {
    let manifest = match read_manifest(dir) {
        Ok(manifest) => manifest,
        Err(reason) => return vec![Check::fail(REPRODUCE_EVIDENCE, reason).with_file(MANIFEST_FILE)],
    };
    let evidence = manifest.evidence.as_ref();
    let mut stages = vec![Stage {
        check: REPRODUCE_PRUNED,
        folder: PRUNED_EVIDENCE,
        checkpoint: dir,
        manifest_summary: evidence.and_then(|e| e.pruned.as_ref()),
    }];
    if let Some(base) = base {
        stages.push(Stage {
            check: REPRODUCE_BASELINE,
            folder: BASELINE_EVIDENCE,
            checkpoint: base,
            manifest_summary: evidence.and_then(|e| e.baseline.as_ref()),
        });
    }
    stages.iter().flat_map(|stage| reproduce(dir, stage, options, progress)).collect()
}

fn read_manifest(dir: &Path) -> Result<Manifest, String> {
    let bytes = crate::fsutil::read_capped(
        &dir.join(MANIFEST_FILE),
        crate::fsutil::MAX_JSON_BYTES,
        crate::fsutil::Links::Refuse,
    )
    .map_err(|e| format!("{MANIFEST_FILE}: {e}; without a manifest there is no evidence to reproduce"))?;
    from_bytes(&bytes).map_err(|e| format!("{MANIFEST_FILE}: {e}"))
}

/// `evidence/<folder>/<file>` relative to the release.
fn evidence_path(folder: &str, file: &str) -> String {
    format!("{EVIDENCE_DIR}/{folder}/{file}")
}

fn read_json<T: serde::de::DeserializeOwned>(dir: &Path, relative: &str, what: &str) -> Result<T, Check> {
    let fail = |reason: String| Check::fail(REPRODUCE_EVIDENCE, reason).with_file(relative);
    let bytes =
        crate::fsutil::read_capped(&dir.join(relative), crate::fsutil::MAX_JSON_BYTES, crate::fsutil::Links::Refuse)
            .map_err(|e| {
                fail(format!(
                    "{relative}: {e}; the release ships no {what} to reproduce (expected the files of `eval`)"
                ))
            })?;
    serde_json::from_slice(&bytes).map_err(|e| fail(format!("{relative} is not an evaluation's {what}: {e}")))
}

fn reproduce(dir: &Path, stage: &Stage, options: &ReproduceOptions, progress: &dyn Progress) -> Vec<Check> {
    try_reproduce(dir, stage, options, progress).unwrap_or_else(|check| vec![check])
}

fn try_reproduce(
    dir: &Path,
    stage: &Stage,
    options: &ReproduceOptions,
    progress: &dyn Progress,
) -> Result<Vec<Check>, Check> {
    let run: RunIdentity = read_json(dir, &evidence_path(stage.folder, RUN_FILE), "run settings (run.json)")?;
    let summary_file = evidence_path(stage.folder, SUMMARY_FILE);
    let recorded: Summary = read_json(dir, &summary_file, "summary (summary.json)")?;
    let baseline = shipped_baseline(dir, stage.folder, &run)?;
    let scenario = find_scenario(&run, options.scenarios_dir.as_deref(), stage.folder)?;
    let rerun = rerun(stage, &run, scenario, baseline, &options.load, progress)?;
    let mut claims = vec![(summary_file, EvaluationEvidence::from_summary(&recorded))];
    if let Some(claimed) = stage.manifest_summary {
        claims.push((format!("{MANIFEST_FILE} (evidence.{})", stage.folder), claimed.clone()));
    }
    Ok(judge(stage, &run, &rerun, &claims, options.tolerance))
}

/// What a re-run produced and where it ran.
struct Rerun {
    evidence: EvaluationEvidence,
    answers: usize,
    compute: ComputeIdentity,
}

/// Loads the stage's checkpoint and runs the recorded evaluation into a temporary directory.
fn rerun(
    stage: &Stage,
    run: &RunIdentity,
    scenario: Scenario,
    baseline: Option<(Vec<AnswerRecord>, String)>,
    load: &LoadOptions,
    progress: &dyn Progress,
) -> Result<Rerun, Check> {
    let fail = |reason: String| Check::fail(stage.check, reason);
    let session = ChatSession::load(stage.checkpoint, load.clone())
        .map_err(|e| fail(format!("cannot load {}: {e}", stage.checkpoint.display())))?;
    let files = file_digests(stage.checkpoint).map_err(|e| fail(format!("cannot hash the checkpoint: {e}")))?;
    if stage.folder == BASELINE_EVIDENCE {
        check_same_checkpoint(&files, run, stage)?;
    }
    let identity = CheckpointIdentity { name: dir_name(stage.checkpoint), files, masks_applied: Vec::new() };
    let scratch = tempfile::tempdir().map_err(|e| fail(format!("cannot create a temporary directory: {e}")))?;
    let baseline_ref = baseline.as_ref().map(|(records, digest)| (records.as_slice(), digest.clone()));
    let output = run_eval(&session, &spec_of(run, scenario), identity, baseline_ref, scratch.path(), progress)
        .map_err(|e| fail(format!("the re-run failed: {e}")))?;
    Ok(Rerun {
        evidence: EvaluationEvidence::from_summary(&output.summary),
        answers: output.records.len(),
        compute: ComputeIdentity::of(session.model().options()),
    })
}

/// Compares the re-run with every claim (file, figures): exactly when it ran with the
/// recorded device kind and dtype, else within `tolerance`; one failed check per claim that
/// the re-run contradicts.
fn judge(
    stage: &Stage,
    run: &RunIdentity,
    rerun: &Rerun,
    claims: &[(String, EvaluationEvidence)],
    tolerance: Tolerance,
) -> Vec<Check> {
    let comparison = match &run.compute {
        Some(recorded) if recorded.same_arithmetic(&rerun.compute) => Comparison::Exact,
        _ => Comparison::Within(tolerance),
    };
    let recorded_on =
        run.compute.as_ref().map_or("an unrecorded device".to_string(), |c| format!("{}/{}", c.device, c.dtype));
    let preamble = format!(
        "re-ran {} ({} answers, seed {}) on {} with {}/{} (recorded on {recorded_on}: {})",
        run.scenario,
        rerun.answers,
        run.seed,
        stage.checkpoint.display(),
        rerun.compute.device,
        rerun.compute.dtype,
        comparison.describe()
    );
    let mut failures = Vec::new();
    for (file, claimed) in claims {
        let found = disagreements(claimed, &rerun.evidence, comparison);
        if !found.is_empty() {
            let detail = format!("{preamble}; {file} differs: {}", found.join("; "));
            let path = file.split(' ').next().unwrap_or(file);
            failures.push(Check::fail(stage.check, detail).with_file(path));
        }
    }
    if failures.is_empty() {
        let compared: Vec<&str> = claims.iter().map(|(file, _)| file.as_str()).collect();
        let detail = format!("{preamble}; {}; agrees with {}", figures(&rerun.evidence), compared.join(" and "));
        return vec![Check::pass(stage.check, detail)];
    }
    failures
}

/// The baseline records that fenced a run's inliers: evidence/baseline/records.jsonl, whose
/// sha256 must be the run's baseline_sha256.
fn shipped_baseline(dir: &Path, folder: &str, run: &RunIdentity) -> Result<Option<(Vec<AnswerRecord>, String)>, Check> {
    let Some(wanted) = &run.baseline_sha256 else { return Ok(None) };
    let relative = evidence_path(BASELINE_EVIDENCE, RECORDS_FILE);
    let fail = |reason: String| Check::fail(REPRODUCE_EVIDENCE, reason).with_file(&relative);
    let bytes = std::fs::read(dir.join(&relative)).map_err(|e| {
        fail(format!(
            "{relative}: {e}; {}'s inliers were fenced by baseline records that are not shipped",
            evidence_path(folder, RUN_FILE)
        ))
    })?;
    let found = hex::encode(Sha256::digest(&bytes));
    if &found != wanted {
        return Err(fail(format!(
            "{relative} has sha256 {found}, but {} was fenced by baseline records with sha256 {wanted}",
            evidence_path(folder, RUN_FILE)
        )));
    }
    let records = read_records(&dir.join(&relative)).map_err(|e| fail(format!("{relative}: {e}")))?;
    Ok(Some((records, found)))
}

/// The scenario the run used, from the built-in catalog or `scenarios_dir`, with the same
/// definition (sha256) as recorded.
fn find_scenario(run: &RunIdentity, scenarios_dir: Option<&Path>, folder: &str) -> Result<Scenario, Check> {
    let run_file = evidence_path(folder, RUN_FILE);
    let fail = |reason: String| Check::fail(REPRODUCE_SCENARIO, reason).with_file(&run_file);
    let catalog = Catalog::load(scenarios_dir).map_err(|e| fail(format!("cannot load the scenarios: {e}")))?;
    let scenario = catalog.get(&run.scenario).map_err(|e| {
        fail(format!(
            "{run_file} names scenario {:?}: {e} (pass its manifest's folder with --scenarios-dir)",
            run.scenario
        ))
    })?;
    let scenario = match &run.names {
        Some(split) => scenario.with_names(split),
        None => scenario.clone(),
    };
    let found = scenario_sha256(&scenario);
    if found != run.scenario_sha256 {
        return Err(fail(format!(
            "scenario {:?} here has definition sha256 {found}, {run_file} was run with {} \
             (pass the scenario it was run with via --scenarios-dir)",
            run.scenario, run.scenario_sha256
        )));
    }
    Ok(scenario)
}

/// The baseline must be re-run on the checkpoint it was recorded on.
fn check_same_checkpoint(
    files: &std::collections::BTreeMap<String, String>,
    run: &RunIdentity,
    stage: &Stage,
) -> Result<(), Check> {
    let recorded = &run.checkpoint.files;
    let differing: Vec<&String> =
        recorded.keys().chain(files.keys()).filter(|name| recorded.get(*name) != files.get(*name)).collect();
    match differing.first() {
        None => Ok(()),
        Some(name) => Err(Check::fail(
            stage.check,
            format!(
                "{} is not the checkpoint {} was run on: {name} differs (sha256 {} here, {} recorded)",
                stage.checkpoint.display(),
                evidence_path(stage.folder, RUN_FILE),
                files.get(*name).map_or("absent", String::as_str),
                recorded.get(*name).map_or("absent", String::as_str)
            ),
        )
        .with_file(evidence_path(stage.folder, RUN_FILE))),
    }
}

/// The evaluation spec a run.json describes; max_rows gives back its chunk plan.
fn spec_of(run: &RunIdentity, scenario: Scenario) -> EvalSpec {
    EvalSpec {
        scenario,
        context: run.context,
        variations: Some(run.variations.clone()),
        sampling: SamplingSettings {
            samples: run.samples,
            max_new_tokens: run.max_new_tokens,
            temperature: run.temperature,
            top_p: run.top_p,
            seed: run.seed,
            max_rows: run.chunk_prompts * run.samples.max(1),
        },
        inlier_rule: run.inlier_rule,
        summary: run.summary,
        names: run.names.clone(),
    }
}

fn dir_name(path: &Path) -> String {
    path.canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| path.display().to_string())
}
