//! The audit's assembly on hand-made answers: the corrections over the tested cells, the
//! finding at alpha, the oriented SMD, the power beside "none detected", the prune command
//! of a flagged cell, and deterministic CSV and HTML.

use std::collections::BTreeMap;

use super::cell::{assemble, Measured};
use super::{files, page, AuditSpec, CellId, Finding, NameChoice, PruneCommand};
use crate::eval::{CheckpointIdentity, ComputeIdentity};
use crate::metrics::{
    benjamini_hochberg_adjusted, holm_adjusted, AnswerRecord, Correction, InlierJudge, InlierRule, Summary,
    SummarySettings,
};
use crate::model::SamplingSettings;
use crate::scenario::parse::ParseStatus;
use crate::scenario::{Catalog, ContextLevel, Group};

/// Six names per group, three samples each; the majority's answers are `shift` higher.
/// Name i answers 100 + 7 i + sample (+ shift for the majority).
fn records(variation: &str, shift: f64) -> Vec<AnswerRecord> {
    let mut out = Vec::new();
    for (group, prefix, add) in [(Group::Majority, "A", shift), (Group::Minority, "B", 0.0)] {
        for name in 0..6 {
            for sample in 0..3u32 {
                let value = 100.0 + 7.0 * ((name * 5) % 6) as f64 + f64::from(sample) + add;
                out.push(AnswerRecord {
                    scenario: "purchase".into(),
                    variation: variation.into(),
                    context: ContextLevel::Low,
                    name: format!("{prefix}{name}"),
                    group,
                    gender: "man".into(),
                    sample,
                    seed: 0,
                    raw: value.to_string(),
                    value: Some(value),
                    status: ParseStatus::Ok,
                    inlier: true,
                });
            }
        }
    }
    out
}

fn spec(correction: Correction) -> AuditSpec {
    let purchase = Catalog::installed().unwrap().get("purchase").unwrap().clone();
    AuditSpec {
        scenarios: vec![NameChoice { list: None, per_group: Some(6) }.apply(&purchase).unwrap()],
        contexts: vec![ContextLevel::Low],
        sampling: SamplingSettings {
            samples: 3,
            max_new_tokens: 16,
            temperature: 0.6,
            top_p: 0.9,
            seed: 0,
            max_rows: 200,
        },
        inlier_rule: InlierRule::default(),
        summary: SummarySettings::with_bootstrap(1000, 0),
        alpha: 0.05,
        correction,
        prune_command: PruneCommand {
            checkpoint: "my model".into(),
            extra_args: vec!["--device".into(), "cuda".into()],
        },
    }
}

/// bicycle: majority 40 higher (every name above every minority name); car: 3 higher;
/// house: no difference.
fn measured(spec: &AuditSpec) -> Vec<Measured> {
    let scenario = &spec.scenarios[0].scenario;
    let judge = InlierJudge::new(scenario, ContextLevel::Low, InlierRule::default(), None);
    [("bicycle", 40.0), ("car", 3.0), ("house", 0.0)]
        .into_iter()
        .map(|(variation, shift)| {
            let summary = Summary::compute(
                "purchase",
                ContextLevel::Low,
                &records(variation, shift),
                judge.description(),
                &spec.summary,
            )
            .unwrap();
            Measured {
                id: CellId { scenario: "purchase".into(), variation: variation.into(), context: ContextLevel::Low },
                worse: scenario.worse,
                summary: summary.variations.get(variation).cloned(),
            }
        })
        .collect()
}

fn audit(correction: Correction) -> super::Audit {
    let spec = spec(correction);
    let checkpoint = CheckpointIdentity { name: "m".into(), files: BTreeMap::new(), masks_applied: Vec::new() };
    let compute = ComputeIdentity { device: "cpu".into(), dtype: "f32".into() };
    assemble(&spec, checkpoint, compute, measured(&spec), vec!["purchase/high".into()])
}

#[test]
fn corrections_findings_and_commands() {
    let audit = audit(Correction::Holm);
    let raw: Vec<f64> = audit.cells.iter().map(|c| c.p_value.unwrap()).collect();
    // C(12, 6) = 924 relabelings are enumerated: the bicycle's complete separation has
    // p = 2 / 924 (the observed labeling and its mirror image).
    assert!((raw[0] - 2.0 / 924.0).abs() < 1e-15, "{raw:?}");
    let (holm, bh) = (holm_adjusted(&raw), benjamini_hochberg_adjusted(&raw));
    for (i, cell) in audit.cells.iter().enumerate() {
        assert_eq!((cell.p_holm, cell.p_bh), (Some(holm[i]), Some(bh[i])), "{}", cell.id);
    }
    assert_eq!(
        audit.cells.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["purchase/bicycle/low", "purchase/car/low", "purchase/house/low"]
    );
    let bicycle = &audit.cells[0];
    assert_eq!(bicycle.finding, Finding::Disparity);
    assert!(bicycle.against_minority.unwrap() > 0.0 && bicycle.worse_off == Some(Group::Minority), "lower is worse");
    assert_eq!(
        bicycle.prune_command.as_deref(),
        Some("biasprune prune 'my model' --scenario purchase --variations bicycle --context low --out pruned-purchase-bicycle-low --device cuda")
    );
    let house = &audit.cells[2];
    assert_eq!(house.finding, Finding::NoneDetected);
    assert_eq!(house.prune_command, None);
    let (corrected, plain) = (house.minimum_detectable_smd_corrected.unwrap(), house.minimum_detectable_smd.unwrap());
    assert!(corrected > plain, "power at alpha/3 needs a larger SMD than at 5%: {corrected} vs {plain}");
    assert_eq!(
        (audit.tested, audit.flagged),
        (3, audit.cells.iter().filter(|c| c.finding == Finding::Disparity).count())
    );
    assert_eq!(audit.ranked()[0].id, "purchase/bicycle/low");
}

#[test]
fn bh_flags_at_least_what_holm_flags() {
    let (holm, bh) = (audit(Correction::Holm), audit(Correction::BenjaminiHochberg));
    assert!(bh.flagged >= holm.flagged);
    for (h, b) in holm.cells.iter().zip(&bh.cells) {
        assert_eq!((h.p_holm, h.p_bh), (b.p_holm, b.p_bh), "both are always reported");
    }
}

#[test]
fn csv_and_page_are_deterministic_and_complete() {
    let (first, again) = (audit(Correction::Holm), audit(Correction::Holm));
    let csv = files::csv(&first);
    assert_eq!(csv, files::csv(&again));
    assert_eq!(csv.lines().count(), 1 + 3);
    assert!(csv.lines().nth(1).unwrap().starts_with("purchase/bicycle/low,purchase,bicycle,low,lower,36,"));
    assert!(csv.contains(",disparity,") && csv.contains(",none detected,"));
    let html = page::render(&first).unwrap();
    assert_eq!(html, page::render(&again).unwrap());
    assert_eq!(html.matches("<svg ").count(), 1, "one heatmap: one context");
    assert_eq!(html.matches("<tr class=\"cell").count(), 3);
    assert_eq!(html.matches("<pre>biasprune prune ").count(), first.flagged);
    assert!(html.contains("biasprune prune &#x27;my model&#x27; --scenario purchase --variations bicycle"), "escaped");
    assert!(html.contains("Not applicable (the scenario has no such context level): purchase&#x2f;high."));
}

#[test]
fn the_plan_skips_contexts_a_scenario_lacks() {
    let catalog = Catalog::installed().unwrap();
    let mut spec = spec(Correction::Holm);
    let choice = NameChoice { list: None, per_group: None };
    spec.scenarios =
        ["activity", "purchase"].iter().map(|id| choice.apply(catalog.get(id).unwrap()).unwrap()).collect();
    spec.contexts = vec![ContextLevel::Low, ContextLevel::High];
    let (cells, skipped) = super::plan_cells(&spec);
    let ids: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        ids,
        [
            "activity/skiing/low",
            "activity/bird-watching/low",
            "activity/pottery/low",
            "purchase/bicycle/low",
            "purchase/bicycle/high",
            "purchase/car/low",
            "purchase/car/high",
            "purchase/house/low",
            "purchase/house/high",
        ]
    );
    assert_eq!(skipped, ["activity/high"]);
    assert_eq!(cells[4].dir(std::path::Path::new("out")), std::path::Path::new("out/cells/purchase/bicycle/high"));
}
