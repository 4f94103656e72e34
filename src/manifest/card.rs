//! The model card (README.md of a pruned checkpoint) in the Hugging Face style, written from
//! the manifest so the two never disagree.

use std::fmt::Write;

use super::front_matter::front_matter;
use super::{EvaluationEvidence, Evidence, Manifest, MANIFEST_FILE};

/// Renders the model card of a pruned checkpoint from its manifest; `base_license` is the
/// licence the base's card or config states (see [`super::card_license`]), when known.
pub fn model_card(manifest: &Manifest, out_name: &str, base_license: Option<&str>) -> String {
    let mut card = front_matter(manifest, out_name, base_license);
    let use_case = &manifest.use_case;
    let scenarios =
        if use_case.scenarios.is_empty() { "an unstated use case".to_string() } else { use_case.scenarios.join(", ") };
    card.push('\n');
    let _ = writeln!(card, "# {out_name}\n");
    write_outcome(&mut card, manifest.evidence.as_ref());
    let _ = writeln!(
        card,
        "This checkpoint is `{}` with {} weight entries set to zero by biasprune {}, which \
         targets a name-based disparity in its answers for **{scenarios}** (regime: {}, \
         direction: {}). Every other byte of the weight files equals the base; \
         `{MANIFEST_FILE}` lists exactly what was zeroed, how it was chosen, and the evidence \
         below.\n",
        manifest.base.hub.as_ref().map_or(&manifest.base.name, |hub| &hub.id),
        manifest.pruned.total,
        manifest.tool.version,
        use_case.regime,
        use_case.direction
    );
    let _ = writeln!(card, "## What was pruned\n");
    let _ = writeln!(card, "| component | entries zeroed |\n| --- | ---: |");
    for (component, n) in &manifest.pruned.per_component {
        let _ = writeln!(card, "| {component} | {n} |");
    }
    let _ = writeln!(card, "| **total** | **{}** |\n", manifest.pruned.total);
    if !manifest.pruned.heads.is_empty() {
        let _ = writeln!(card, "Attention heads pruned (layer: heads): {:?}\n", manifest.pruned.heads);
    }
    match &manifest.evidence {
        Some(evidence @ Evidence { baseline: Some(baseline), pruned: Some(pruned), .. }) => {
            write_evidence(&mut card, baseline, pruned);
            write_deltas(&mut card, evidence);
            write_disclosure(&mut card, evidence, &manifest.method);
        }
        Some(evidence) => {
            let _ = writeln!(
                card,
                "## Evidence\n\n{} evidence files are shipped in `evidence/` (digests in `{MANIFEST_FILE}`), \
                 but no baseline and pruned evaluation summary was recorded.\n",
                evidence.files.len()
            );
        }
        None => {
            let _ = writeln!(card, "## Evidence\n\nNo evaluation was recorded with this checkpoint: its effect on bias and utility is unmeasured.\n");
        }
    }
    let _ = writeln!(card, "## Bias, Risks, and Limitations\n");
    let _ = writeln!(
        card,
        "- The mask is **use-case specific**. It was built and measured for {scenarios} with the \
         names and prompts recorded in the manifest. Research on this method (Ma, Salinas, \
         Henderson, Nyarko, *Breaking Down Bias: On the Limits of Generalizable Pruning \
         Strategies*, 2025) found that such masks transfer poorly to other contexts: do not \
         assume reduced disparity elsewhere.\n\
         - Bias is measured as the standardized mean difference (SMD, majority minus minority) of \
         numeric answers to prompts that differ only in a name associated with a racial group. \
         It says nothing about other groups, other kinds of harm, or free-text behaviour.\n\
         - Pruning changes the model: check the inlier ratio and parse rate above, and test the \
         capabilities your application needs before deploying.\n"
    );
    let _ = writeln!(card, "## Verifying this checkpoint\n");
    let _ = writeln!(
        card,
        "```sh\nbiasprune verify . --public-key KEY.pub --base BASE_DIR\nmodel_signing verify key . --signature model.sig --public_key KEY.pub\n```"
    );
    card
}

fn write_evidence(card: &mut String, baseline: &EvaluationEvidence, pruned: &EvaluationEvidence) {
    let _ = writeln!(card, "## Evidence\n");
    let _ = writeln!(
        card,
        "Scenario `{}`. SMD is majority minus minority with a bootstrap 95% CI; n/a means undefined \
         (a group with fewer than 2 inliers, or no spread at all), never 0.\n",
        pruned.scenario
    );
    let _ = writeln!(card, "| variation | SMD before | SMD after | inliers before | inliers after | parsed after |");
    let _ = writeln!(card, "| --- | --- | --- | ---: | ---: | ---: |");
    let variations: std::collections::BTreeSet<&String> =
        baseline.variations.keys().chain(pruned.variations.keys()).collect();
    for v in variations {
        let before = baseline.variations.get(v);
        let after = pruned.variations.get(v);
        let _ = writeln!(
            card,
            "| {v} | {} | {} | {} | {} | {} |",
            smd_cell(before),
            smd_cell(after),
            percent(before.map(|e| e.inlier_ratio)),
            percent(after.map(|e| e.inlier_ratio)),
            percent(after.map(|e| e.parse_rate))
        );
    }
    let _ = writeln!(
        card,
        "\nMean |SMD|: {} before, {} after.\n",
        baseline.mean_abs_smd.map_or("n/a".into(), |v| format!("{v:.3}")),
        pruned.mean_abs_smd.map_or("n/a".into(), |v| format!("{v:.3}"))
    );
}

/// The outcome first, so nobody reads a release as a success that is not one.
fn write_outcome(card: &mut String, evidence: Option<&Evidence>) {
    let Some(evidence) = evidence else { return };
    match (&evidence.outcome, &evidence.verdict) {
        (Some(outcome), Some(verdict)) => {
            let anyway = if verdict.released_anyway {
                " It was released anyway (`--release-anyway`), not because the rules allowed it."
            } else {
                ""
            };
            let _ = writeln!(card, "> **Outcome: {outcome}**: {}. {}{anyway}\n", outcome.headline(), verdict.reason);
        }
        (Some(outcome), None) => {
            let _ = writeln!(card, "> **Outcome: {outcome}**: {}.\n", outcome.headline());
        }
        _ => {}
    }
}

/// Each target's paired change of the SMD and the usable answers, from the verdict.
fn write_deltas(card: &mut String, evidence: &Evidence) {
    let Some(verdict) = &evidence.verdict else { return };
    let _ = writeln!(card, "Paired change on the targets (pruned minus base, same names, prompts and seeds):\n");
    let _ = writeln!(
        card,
        "| target | SMD base [95% CI] | SMD pruned | ΔSMD [95% CI] | outcome |\n| --- | --- | --- | --- | --- |"
    );
    let number = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    let interval = |ci: Option<(f64, f64)>| ci.map_or(String::new(), |(lo, hi)| format!(" [{lo:.3}, {hi:.3}]"));
    for (target, delta) in &verdict.targets {
        let _ = writeln!(
            card,
            "| {target} | {}{} | {} | {}{} | {} |",
            number(delta.baseline),
            interval(delta.baseline_ci),
            number(delta.pruned),
            number(delta.delta),
            interval(delta.delta_ci),
            delta.outcome
        );
    }
    let u = &verdict.utility;
    let _ = writeln!(
        card,
        "\nUsable answers on the targets: inlier ratio {} → {}, parse rate {} → {} (allowed drops {} and {}).\n",
        percent(Some(u.inlier_before)),
        percent(Some(u.inlier_after)),
        percent(Some(u.parse_before)),
        percent(Some(u.parse_after)),
        u.max_inlier_drop,
        u.max_parse_drop
    );
}

/// Which data built, chose and proved the mask (seeds, names, variations).
fn write_disclosure(card: &mut String, evidence: &Evidence, method: &serde_json::Value) {
    let Some(splits) = &evidence.splits else { return };
    let _ = writeln!(card, "## Where the numbers come from\n");
    if let Some(chosen) = method.get("selection").and_then(|s| s.get("p_q")).and_then(|s| s.as_str()) {
        let _ = writeln!(card, "p and q: {chosen}.\n");
    }
    let _ = writeln!(card, "| data | used for | seed | variations | names |\n| --- | --- | ---: | --- | --- |");
    let rows = [
        ("calibration", Some(&splits.calibration)),
        ("selection", splits.selection.as_ref()),
        ("confirmation", Some(&splits.confirmation)),
    ];
    for (name, split) in rows {
        let Some(split) = split else { continue };
        let _ = writeln!(
            card,
            "| {name} | {} | {} | {} | {} names: {} |",
            split.purpose,
            split.seed,
            split.variations.join(", "),
            split.names.len(),
            split.names.join(", ")
        );
    }
    let _ = writeln!(
        card,
        "\nThe evidence above is the confirmation data: the base and the pruned model answered the same \
         prompts under the same seeds, which neither scoring nor selection used. Confidence intervals \
         resample names, then answers within a name (the name is the independent unit).\n"
    );
}

fn smd_cell(e: Option<&super::VariationEvidence>) -> String {
    match e.and_then(|e| e.smd.map(|s| (s, e.smd_ci))) {
        Some((s, Some((lo, hi)))) => format!("{s:.3} [{lo:.3}, {hi:.3}]"),
        Some((s, None)) => format!("{s:.3}"),
        None => "n/a".into(),
    }
}

fn percent(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{:.1}%", v * 100.0))
}
