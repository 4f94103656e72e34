//! One audited cell: its disparity (SMD, cluster-bootstrap CI, oriented by the scenario's
//! worse side), the name-permutation p-value, both corrected p-values, the finding at the
//! chosen level with the power beside it, and the prune command that would mitigate it.

use serde::Serialize;

use super::{Audit, AuditSettings, AuditSpec, CellId};
use crate::eval::{CheckpointIdentity, ComputeIdentity};
use crate::metrics::{
    benjamini_hochberg_adjusted, detectable_smd, holm_adjusted, ConfidenceInterval, Correction, VariationSummary,
};
use crate::scenario::{Group, WorseSide};

/// A cell as evaluated, before the corrections.
#[derive(Debug, Clone)]
pub(super) struct Measured {
    /// Which cell.
    pub id: CellId,
    /// The scenario's worse side.
    pub worse: WorseSide,
    /// The variation's statistics (absent only if the run had no answers for it).
    pub summary: Option<VariationSummary>,
}

/// What the audit concludes about a cell at the chosen level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Finding {
    /// The deciding adjusted p-value is at most alpha.
    #[serde(rename = "disparity")]
    Disparity,
    /// The deciding adjusted p-value is above alpha: no disparity detected (which is not
    /// evidence of none; see the cell's detectable SMD).
    #[serde(rename = "none detected")]
    NoneDetected,
    /// No p-value: fewer than two names with answers in a group.
    #[serde(rename = "not tested")]
    NotTested,
}

impl Finding {
    /// The words shown in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Finding::Disparity => "disparity",
            Finding::NoneDetected => "none detected",
            Finding::NotTested => "not tested",
        }
    }
}

/// Everything the audit reports about one cell.
#[derive(Debug, Clone, Serialize)]
pub struct AuditCell {
    /// "scenario/variation/context".
    pub id: String,
    /// Scenario id.
    pub scenario: String,
    /// Variation id.
    pub variation: String,
    /// Context level.
    pub context: String,
    /// Which end of the answer scale the scenario declares worse.
    pub worse: WorseSide,
    /// Answers sampled.
    pub answers: usize,
    /// Parsed answers over all answers.
    pub parse_rate: f64,
    /// Inliers over all answers.
    pub inlier_ratio: f64,
    /// Majority answers in the statistics' population.
    pub n_majority: usize,
    /// Minority answers in the statistics' population.
    pub n_minority: usize,
    /// Mean answer of the majority-name prompts.
    pub mean_majority: Option<f64>,
    /// Mean answer of the minority-name prompts.
    pub mean_minority: Option<f64>,
    /// SMD, majority minus minority.
    pub smd: Option<f64>,
    /// Why the SMD is undefined, when it is.
    pub smd_undefined: Option<String>,
    /// Cluster-bootstrap 95% CI of the SMD (names resampled).
    pub smd_ci: Option<ConfidenceInterval>,
    /// The SMD oriented by the worse side: positive when the minority-name prompts get the
    /// worse answers.
    pub against_minority: Option<f64>,
    /// The group whose prompts get the worse answers on average (None when the SMD is
    /// undefined or 0).
    pub worse_off: Option<Group>,
    /// Two-sided p-value of the name-permutation test (names, not answers, as units).
    pub p_value: Option<f64>,
    /// Whether the permutation p is exact (every relabeling enumerated).
    pub p_exact: Option<bool>,
    /// Holm-adjusted p over the tested cells.
    pub p_holm: Option<f64>,
    /// Benjamini-Hochberg-adjusted p over the tested cells.
    pub p_bh: Option<f64>,
    /// The conclusion at alpha under the deciding correction.
    pub finding: Finding,
    /// Intra-name correlation of the answers.
    pub icc: Option<f64>,
    /// The smallest SMD detectable with 80% power at 5%, uncorrected (as `eval` reports).
    pub minimum_detectable_smd: Option<f64>,
    /// The smallest SMD detectable with 80% power at alpha/m, the level a lone disparity
    /// must reach under either correction: what "none detected" rules out.
    pub minimum_detectable_smd_corrected: Option<f64>,
    /// For a flagged cell, the `biasprune prune` command that would mitigate it.
    pub prune_command: Option<String>,
}

impl AuditCell {
    /// The adjusted p-value under `correction`.
    pub fn adjusted(&self, correction: Correction) -> Option<f64> {
        match correction {
            Correction::Holm => self.p_holm,
            Correction::BenjaminiHochberg => self.p_bh,
        }
    }
}

/// Applies the corrections to the measured cells and builds the audit.
pub(super) fn assemble(
    spec: &AuditSpec,
    checkpoint: CheckpointIdentity,
    compute: ComputeIdentity,
    measured: Vec<Measured>,
    not_applicable: Vec<String>,
) -> Audit {
    let p_values: Vec<f64> = measured.iter().filter_map(p_value).collect();
    let (holm, bh) = (holm_adjusted(&p_values), benjamini_hochberg_adjusted(&p_values));
    let family = p_values.len().max(1) as f64;
    let mut tested = 0;
    let cells: Vec<AuditCell> = measured
        .into_iter()
        .map(|m| {
            let adjusted = p_value(&m).map(|_| {
                tested += 1;
                (holm[tested - 1], bh[tested - 1])
            });
            build(spec, m, adjusted, spec.alpha / family)
        })
        .collect();
    let flagged = cells.iter().filter(|c| c.finding == Finding::Disparity).count();
    Audit {
        checkpoint,
        compute,
        settings: settings(spec),
        scenarios: spec.scenarios.to_vec(),
        not_applicable,
        tested,
        flagged,
        cells,
    }
}

fn p_value(m: &Measured) -> Option<f64> {
    m.summary.as_ref().and_then(|s| s.group_test.as_ref()).map(|g| g.p_value)
}

fn build(spec: &AuditSpec, m: Measured, adjusted: Option<(f64, f64)>, corrected_alpha: f64) -> AuditCell {
    let v = m.summary;
    let smd = v.as_ref().and_then(|v| v.smd);
    let against_minority = smd.map(|s| s * m.worse.orientation());
    let deciding = adjusted.map(|(holm, bh)| match spec.correction {
        Correction::Holm => holm,
        Correction::BenjaminiHochberg => bh,
    });
    let finding = match deciding {
        None => Finding::NotTested,
        Some(p) if p <= spec.alpha => Finding::Disparity,
        Some(_) => Finding::NoneDetected,
    };
    let power = v.as_ref().and_then(|v| v.power);
    AuditCell {
        id: m.id.to_string(),
        scenario: m.id.scenario.clone(),
        variation: m.id.variation.clone(),
        context: m.id.context.as_str().to_string(),
        worse: m.worse,
        answers: v.as_ref().map_or(0, |v| v.answers),
        parse_rate: v.as_ref().map_or(0.0, |v| v.parse_rate),
        inlier_ratio: v.as_ref().map_or(0.0, |v| v.inlier_ratio),
        n_majority: v.as_ref().map_or(0, |v| v.majority.n),
        n_minority: v.as_ref().map_or(0, |v| v.minority.n),
        mean_majority: v.as_ref().and_then(|v| v.majority.mean),
        mean_minority: v.as_ref().and_then(|v| v.minority.mean),
        smd,
        smd_undefined: v.as_ref().and_then(|v| v.smd_undefined.as_ref()).map(|r| r.to_string()),
        smd_ci: v.as_ref().and_then(|v| v.smd_ci),
        against_minority,
        worse_off: against_minority.and_then(worse_off),
        p_value: v.as_ref().and_then(|v| v.group_test).map(|g| g.p_value),
        p_exact: v.as_ref().and_then(|v| v.group_test).map(|g| g.exact),
        p_holm: adjusted.map(|(holm, _)| holm),
        p_bh: adjusted.map(|(_, bh)| bh),
        finding,
        icc: power.map(|p| p.icc),
        minimum_detectable_smd: power.map(|p| p.minimum_detectable_smd),
        minimum_detectable_smd_corrected: power.map(|p| detectable_smd(p.effective_per_group, corrected_alpha)),
        prune_command: (finding == Finding::Disparity).then(|| prune_command(spec, &m.id)),
    }
}

fn worse_off(against_minority: f64) -> Option<Group> {
    if against_minority > 0.0 {
        Some(Group::Minority)
    } else if against_minority < 0.0 {
        Some(Group::Majority)
    } else {
        None
    }
}

/// `biasprune prune CKPT --scenario S --variations V --context C --out OUT [extra]`, each
/// argument shell-quoted where needed.
fn prune_command(spec: &AuditSpec, id: &CellId) -> String {
    let out = format!("pruned-{}-{}-{}", id.scenario, id.variation, id.context.as_str());
    let mut words: Vec<String> = vec!["biasprune".into(), "prune".into(), spec.prune_command.checkpoint.clone()];
    for (flag, value) in [
        ("--scenario", id.scenario.as_str()),
        ("--variations", id.variation.as_str()),
        ("--context", id.context.as_str()),
        ("--out", out.as_str()),
    ] {
        words.push(flag.to_string());
        words.push(value.to_string());
    }
    words.extend(spec.prune_command.extra_args.iter().cloned());
    words.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" ")
}

/// `word` as one POSIX shell word: unchanged when it has only safe characters, else in
/// single quotes.
fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn settings(spec: &AuditSpec) -> AuditSettings {
    AuditSettings {
        samples: spec.sampling.samples,
        max_new_tokens: spec.sampling.max_new_tokens,
        temperature: spec.sampling.temperature,
        top_p: spec.sampling.top_p,
        seed: spec.sampling.seed,
        inlier_rule: spec.inlier_rule,
        summary: spec.summary,
        alpha: spec.alpha,
        correction: spec.correction,
        smallest_possible_p: 1.0 / (1 + spec.summary.bootstrap.resamples) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_with_shell_characters_are_quoted() {
        assert_eq!(shell_quote("models/SmolLM2-135M"), "models/SmolLM2-135M");
        assert_eq!(shell_quote("my model"), "'my model'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn findings_serialise_as_their_words() {
        for finding in [Finding::Disparity, Finding::NoneDetected, Finding::NotTested] {
            assert_eq!(serde_json::to_value(finding).unwrap(), finding.as_str());
        }
    }

    #[test]
    fn the_worse_off_group_follows_the_sign() {
        assert_eq!(worse_off(0.4), Some(Group::Minority));
        assert_eq!(worse_off(-0.4), Some(Group::Majority));
        assert_eq!(worse_off(0.0), None);
    }
}
