//! The last stages: the report and the release (surgery, manifest with evidence, model card,
//! report, signature), which appears at OUT atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::Digest;

use super::inputs::PublishInputs;
use super::spec::PruneSpec;
use super::stages::{file_sha256, write_file};
use super::work::{stage_key, WorkDir};
use super::{PipelineError, Stages};
use crate::arch::Architecture;
use crate::eval::{RECORDS_FILE, RUN_FILE, SUMMARY_FILE};
use crate::manifest::{
    DataSplits, EvaluationEvidence, SplitEvidence, UseCase, BASELINE_EVIDENCE, CALIBRATION_EVIDENCE, MANIFEST_FILE,
    PRUNED_EVIDENCE, REPORT_FILE,
};
use crate::mask::{load_mask, resolve, MASK_JSON};
use crate::release::{release, EvidenceInput, ReleaseOptions};
use crate::surgery::ApplyOptions;

/// Records of a finished release in the work directory, so a rerun knows OUT is its own.
const RELEASE_STAGE: &str = "release";

/// What the release stage reports.
pub struct Published {
    /// sha256 of OUT's manifest.
    pub manifest_sha256: String,
    /// Entries zeroed.
    pub pruned_entries: u64,
}

/// Refuses to start when OUT exists and was not released from this work directory (unless
/// `force`), so a run neither replaces someone else's directory nor ends hours of work in
/// a refusal.
pub fn check_out_is_free_or_ours(spec: &PruneSpec) -> Result<(), PipelineError> {
    if !spec.out.exists() || spec.force {
        return Ok(());
    }
    let manifest = spec.out.join(MANIFEST_FILE);
    let ours = manifest.is_file() && released_from(&spec.work_dir(), &file_sha256(&manifest)?);
    if ours {
        return Ok(());
    }
    Err(PipelineError::Spec(format!(
        "{} exists and was not written from the work directory {}; choose another out or pass --force",
        spec.out.display(),
        spec.work_dir().display()
    )))
}

/// Whether a release stage of `work_dir` recorded this manifest digest.
fn released_from(work_dir: &Path, manifest_sha256: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(work_dir) else { return false };
    entries.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(&format!("{RELEASE_STAGE}-"))).any(|e| {
        std::fs::read_to_string(e.path().join("manifest.sha256")).is_ok_and(|recorded| recorded == manifest_sha256)
    })
}

/// Writes the report and the release; reuses OUT when an earlier run released exactly this.
pub fn publish(inputs: &PublishInputs, work: &WorkDir, stages: &mut Stages) -> Result<Published, PipelineError> {
    let spec = inputs.spec;
    let mask = load_mask(inputs.mask_dir)?;
    let arch = Architecture::of_checkpoint(inputs.ckpt)?;
    let zero_plan = resolve(&mask, &arch, inputs.ckpt)?;
    let pruned_entries = zero_plan.zeroed_count();

    let (evidence, method, use_case) = (evidence(inputs)?, method(inputs, &mask), use_case(inputs));
    stages.begin("write report");
    let report = super::report::render(inputs, &zero_plan, &arch, &method, &use_case)?;
    stages.end_plain();

    stages.begin("write release");
    let mut key_inputs = json!({"stage": "release", "base": inputs.base.root_digest, "mask": file_sha256(&inputs.mask_dir.join(MASK_JSON))?,
        "evidence": evidence.files.values().map(|p| file_sha256(p)).collect::<Result<Vec<_>, _>>()?,
        "method": method, "use_case": use_case, "report": hex::encode(sha2::Sha256::digest(&report)),
        "signing_key": inputs.plan.sign_key_pem.as_ref().map(|pem| hex::encode(sha2::Sha256::digest(pem.as_bytes())))});
    // The Hub id is part of the manifest: the same base named by id or by directory are two
    // releases (keys of bases named by directory stay as they were).
    if let Some(hub) = &inputs.base.hub {
        key_inputs["base_hub"] = json!(hub);
    }
    let marker = work.stage_dir(RELEASE_STAGE, &stage_key(&key_inputs));
    if let Some(manifest_sha256) = released_here(&marker, &spec.out)? {
        stages.end(false, &spec.out);
        return Ok(Published { manifest_sha256, pruned_entries });
    }
    let options = ReleaseOptions {
        // OUT, if it exists, was checked before the run started: ours, or --force.
        apply: ApplyOptions { force: spec.out.exists() },
        sign_key_pem: inputs.plan.sign_key_pem.clone(),
        use_case: Some(use_case),
        evidence: Some(evidence),
        method: Some(method),
        extra_files: BTreeMap::from([(REPORT_FILE.to_string(), report)]),
        base: Some(inputs.base.clone()),
        base_hub: inputs.base.hub.clone(),
    };
    let released = release(&spec.base, inputs.mask_dir, &spec.out, &options, stages.progress())?;
    std::fs::create_dir_all(&marker).map_err(|e| PipelineError::io(&marker, e))?;
    write_file(&marker.join("manifest.sha256"), released.manifest_sha256.as_bytes())?;
    stages.end(true, &spec.out);
    Ok(Published { manifest_sha256: released.manifest_sha256, pruned_entries })
}

/// The manifest digest when `marker` says this exact release was written to `out` and
/// `out`'s manifest still has it.
fn released_here(marker: &Path, out: &Path) -> Result<Option<String>, PipelineError> {
    let recorded = match std::fs::read_to_string(marker.join("manifest.sha256")) {
        Ok(text) => text,
        Err(_) => return Ok(None),
    };
    let manifest = out.join(MANIFEST_FILE);
    if !manifest.is_file() {
        return Ok(None);
    }
    Ok((file_sha256(&manifest)? == recorded).then_some(recorded))
}

fn evidence(inputs: &PublishInputs) -> Result<EvidenceInput, PipelineError> {
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    let shipped = [
        (CALIBRATION_EVIDENCE, inputs.calibration),
        (BASELINE_EVIDENCE, inputs.baseline),
        (PRUNED_EVIDENCE, inputs.pruned),
    ];
    for (name, evaluated) in shipped {
        for file in [RUN_FILE, SUMMARY_FILE, RECORDS_FILE] {
            files.insert(format!("{name}/{file}"), evaluated.dir.join(file));
        }
    }
    Ok(EvidenceInput {
        files,
        baseline: Some(EvaluationEvidence::from_summary(&inputs.baseline.summary)),
        pruned: Some(EvaluationEvidence::from_summary(&inputs.pruned.summary)),
        verdict: Some(inputs.verdict.clone()),
        splits: Some(splits(inputs)),
        calibration: Some(EvaluationEvidence::from_summary(&inputs.calibration.summary)),
    })
}

/// The three uses of data, with their seeds, variations and names.
fn splits(inputs: &PublishInputs) -> DataSplits {
    let plan = inputs.plan;
    let own_names: Vec<String> =
        plan.scenario.majority.people.iter().chain(&plan.scenario.minority.people).map(|p| p.name.clone()).collect();
    let mut trained: Vec<String> = plan.targets.clone();
    trained.extend(plan.train_variations.iter().cloned());
    trained.extend(plan.train_scenarios.iter().map(|s| format!("scenario {}", s.id)));
    let scoring = match inputs.spec.use_case.regime {
        super::RegimeChoice::PromptSpecific => "scoring (the targets' answers), the gate and the direction",
        _ => "scoring (the training variations' or scenarios' answers), the gate and the direction (the targets' answers)",
    };
    DataSplits {
        calibration: SplitEvidence {
            purpose: scoring.to_string(),
            seed: plan.seeds.calibration,
            variations: trained,
            names: own_names.clone(),
        },
        selection: inputs.sweep.map(|_| SplitEvidence {
            purpose: "the (p, q) sweep".to_string(),
            seed: plan.seeds.selection,
            variations: plan.targets.clone(),
            names: own_names.clone(),
        }),
        confirmation: SplitEvidence {
            purpose: "the released evidence: the base and the pruned model on the same prompts and seeds".to_string(),
            seed: plan.seeds.confirmation,
            variations: plan.evidence_variations(),
            names: plan.holdout.as_ref().map_or(own_names, |h| h.names()),
        },
    }
}

fn use_case(inputs: &PublishInputs) -> UseCase {
    let plan = inputs.plan;
    let spec = inputs.spec;
    let mut scenarios = vec![plan.scenario.id.clone()];
    scenarios.extend(plan.train_scenarios.iter().map(|s| s.id.clone()));
    UseCase {
        scenarios,
        variations: plan.targets.clone(),
        held_out: plan.held_out.clone(),
        regime: serde_json::to_value(spec.use_case.regime)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        direction: inputs.direction.direction_name().to_string(),
    }
}

/// The manifest's `method`: how the mask was made (its provenance), how answers were
/// sampled and judged, where the model ran, how the direction and the (p, q) were chosen.
/// `evaluation.confirmation_samples` appears only when it differs from `samples` (as in
/// releases from before the setting existed, its absence means the same count).
fn method(inputs: &PublishInputs, mask: &crate::mask::PruneMask) -> serde_json::Value {
    let spec = inputs.spec;
    let plan = inputs.plan;
    let sweep = inputs.sweep.map(|s| {
        let grid = spec.method.sweep.as_ref().expect("a sweep ran");
        json!({"p_grid": grid.p_grid, "q_grid": grid.q_grid, "max_inlier_drop": grid.max_inlier_drop,
            "max_parse_drop": grid.max_parse_drop, "chosen": {"p": s.chosen.p, "q": s.chosen.q},
            "rule": super::select::SWEEP_RULE,
            "reference": {"inlier_ratio": s.reference.inlier_ratio, "parse_rate": s.reference.parse_rate,
                "mean_abs_smd": s.reference.mean_abs_smd, "answers": s.reference.answers},
            "points": s.points.iter().map(|p| json!({"p": p.p, "q": p.q, "pruned_entries": p.pruned_entries,
                "mean_abs_smd": p.mean_abs_smd, "inlier_ratio": p.inlier_ratio, "parse_rate": p.parse_rate})).collect::<Vec<_>>()})
    });
    let selection = match inputs.sweep {
        Some(_) => format!(
            "chosen by a sweep on the selection data (seed {}, the targets, the calibration names), never on the confirmation data",
            plan.seeds.selection
        ),
        None => format!("fixed by the settings (p = {}, q = {})", inputs.params.p, inputs.params.q),
    };
    let mut method = json!({
        "scoring": mask.provenance,
        "selection": {"p_q": selection},
        "gate": {"disparity": inputs.disparity, "allow_no_disparity": spec.gate.allow_no_disparity,
            "release_anyway": spec.gate.release_anyway, "max_inlier_drop": spec.gate.max_inlier_drop,
            "max_parse_drop": spec.gate.max_parse_drop, "max_residual_smd": spec.gate.max_residual_smd},
        "seeds": plan.seeds,
        "method": spec.method.method,
        "tokens": plan.tokens.as_str(),
        "granularity": spec.method.granularity,
        "p": inputs.params.p,
        "q": inputs.params.q,
        "score_batch": spec.method.score_batch,
        "direction": {"choice": spec.use_case.direction, "reason": inputs.direction.reason,
            "significant": inputs.direction.significant},
        "evaluation": {"context": plan.context, "samples": plan.sampling.samples, "seed": plan.seeds.calibration,
            "temperature": decimal(plan.sampling.temperature), "top_p": decimal(plan.sampling.top_p),
            "max_new_tokens": plan.sampling.max_new_tokens, "max_rows": plan.sampling.max_rows,
            "inlier_rule": plan.inlier_rule, "summary": plan.summary,
            "holdout_names": spec.use_case.holdout_names,
            "baseline_inliers": "the base's answers judged by the fences of those same answers (evidence/baseline); the pruned model's by the same fences"},
        "compute": crate::eval::ComputeIdentity::of(&plan.load),
        "sweep": sweep,
    });
    if plan.confirmation_samples != plan.sampling.samples {
        method["evaluation"]["confirmation_samples"] = json!(plan.confirmation_samples);
    }
    method
}

/// An f32 setting as the decimal it was written as (0.6, not 0.6000000238418579).
fn decimal(value: f32) -> f64 {
    value.to_string().parse().expect("a float's display parses")
}
