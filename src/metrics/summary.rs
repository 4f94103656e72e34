//! Per-variation and overall bias statistics of a run, serialisable as `summary.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cluster::{ClusteredGroups, Population};
use super::cluster_bootstrap::cluster_bootstrap_smd_ci;
use super::group_test::{name_permutation_test, GroupTest};
use super::inlier::InlierDescription;
use super::mann_whitney::{mann_whitney_u, MannWhitney};
use super::power::{power, Power};
use super::record::AnswerRecord;
use super::smd::{smd, smd_bootstrap_ci, smd_with_reason, BootstrapSettings, ConfidenceInterval, SmdUndefined};
use super::stats::GroupStats;
use super::MetricsError;
use crate::scenario::parse::ParseStatus;
use crate::scenario::{ContextLevel, Group};

/// Settings of the statistics (the inlier rule is fixed when records are made).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SummarySettings {
    /// Answers the statistics use.
    pub population: Population,
    /// Bootstrap of the SMD's CIs (its resamples are also the name permutation test's
    /// permutations); each variation's seed is derived from this seed and the
    /// variation id (SHA-256), so adding a variation does not change the others' CIs.
    pub bootstrap: BootstrapSettings,
}

impl SummarySettings {
    /// The default statistics with `resamples` bootstrap resamples seeded by `seed` (the
    /// settings `eval` and `prune` take from their options).
    pub fn with_bootstrap(resamples: usize, seed: u64) -> Self {
        SummarySettings {
            bootstrap: BootstrapSettings { resamples, seed, ..BootstrapSettings::default() },
            ..SummarySettings::default()
        }
    }
}

/// Statistics of one variation. Answers cluster by name (one name is sampled many times),
/// so the CI, group test and power treat names as the independent units; the per-answer
/// figures (`smd_ci_naive`, `mann_whitney`) are kept for comparison only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariationSummary {
    /// Answers recorded.
    pub answers: usize,
    /// Answers per parse status.
    pub statuses: BTreeMap<ParseStatus, usize>,
    /// Parsed answers (ok or range midpoint) over all answers.
    pub parse_rate: f64,
    /// Answers cut off by the token limit inside a number (status truncated) over all
    /// answers; 0 in summaries written before the status existed.
    #[serde(default)]
    pub truncated_rate: f64,
    /// Inliers over all answers.
    pub inlier_ratio: f64,
    /// Majority group statistics over the chosen population.
    pub majority: GroupStats,
    /// Minority group statistics over the chosen population.
    pub minority: GroupStats,
    /// SMD over the chosen population, majority minus minority; `None` when undefined
    /// (never 0 in its place; see `smd_undefined`).
    pub smd: Option<f64>,
    /// Why `smd` is undefined, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smd_undefined: Option<SmdUndefined>,
    /// SMD over every parsed answer (outliers included), whatever the population setting.
    #[serde(default)]
    pub smd_parsed: Option<f64>,
    /// Cluster-bootstrap percentile CI of the SMD (names resampled, then their samples).
    pub smd_ci: Option<ConfidenceInterval>,
    /// Per-answer bootstrap CI of the SMD: it treats answers as independent, so it is too
    /// narrow when answers cluster by name; informational.
    #[serde(default)]
    pub smd_ci_naive: Option<ConfidenceInterval>,
    /// Permutation test of the groups over names (on per-name means).
    #[serde(default)]
    pub group_test: Option<GroupTest>,
    /// ICC, design effect, effective size and minimum detectable SMD.
    #[serde(default)]
    pub power: Option<Power>,
    /// Mann-Whitney U test over answers, two-sided, asymptotic. It ignores the clustering
    /// by name (its p-value is too small when answers of one name are alike), so it is
    /// informational; `group_test` is the test to read.
    pub mann_whitney: Option<MannWhitney>,
    /// The same comparison within each gender label (no CI or test: subgroups are small).
    pub by_gender: BTreeMap<String, GenderSummary>,
}

impl VariationSummary {
    /// Whether the cluster-bootstrap CI of the SMD excludes 0.
    pub fn cluster_significant(&self) -> bool {
        self.smd_ci.is_some_and(|ci| ci.low > 0.0 || ci.high < 0.0)
    }
}

/// Majority versus minority among the names of one gender label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenderSummary {
    /// Majority names of this gender.
    pub majority: GroupStats,
    /// Minority names of this gender.
    pub minority: GroupStats,
    /// SMD, majority minus minority, within this gender.
    pub smd: Option<f64>,
}

/// Statistics over all variations of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverallSummary {
    /// Answers recorded.
    pub answers: usize,
    /// Parsed answers over all answers.
    pub parse_rate: f64,
    /// Inliers over all answers.
    pub inlier_ratio: f64,
    /// Mean of |SMD| over the variations that have an SMD.
    pub mean_abs_smd: Option<f64>,
    /// How many variations have an SMD.
    pub variations_with_smd: usize,
}

/// The bias statistics of one run of one scenario at one context level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Scenario id.
    pub scenario: String,
    /// Context level.
    pub context: ContextLevel,
    /// Statistic settings.
    pub settings: SummarySettings,
    /// Inlier rule, plausible ranges and fences used for the records.
    pub inliers: InlierDescription,
    /// Per variation, by id.
    pub variations: BTreeMap<String, VariationSummary>,
    /// Over all variations.
    pub overall: OverallSummary,
}

impl Summary {
    /// Computes the summary of `records`, which must all belong to `scenario` at `context`.
    pub fn compute(
        scenario: &str,
        context: ContextLevel,
        records: &[AnswerRecord],
        inliers: &InlierDescription,
        settings: &SummarySettings,
    ) -> Result<Self, MetricsError> {
        let mut by_variation: BTreeMap<&str, Vec<&AnswerRecord>> = BTreeMap::new();
        for record in records {
            if record.scenario != scenario || record.context != context {
                return Err(MetricsError::MixedRecords {
                    expected: format!("{scenario}/{}", context.as_str()),
                    found: format!("{}/{}", record.scenario, record.context.as_str()),
                });
            }
            by_variation.entry(record.variation.as_str()).or_default().push(record);
        }
        let variations: BTreeMap<String, VariationSummary> =
            by_variation.into_iter().map(|(id, rs)| (id.to_string(), summarize_variation(id, &rs, settings))).collect();
        let overall = overall(records, &variations);
        Ok(Self {
            scenario: scenario.to_string(),
            context,
            settings: *settings,
            inliers: inliers.clone(),
            variations,
            overall,
        })
    }

    /// Pretty JSON with a trailing newline; the same summary always gives the same bytes.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a summary always serialises");
        text.push('\n');
        text
    }
}

fn summarize_variation(id: &str, records: &[&AnswerRecord], settings: &SummarySettings) -> VariationSummary {
    let (majority, minority) = (
        values(records, settings.population, Group::Majority, None),
        values(records, settings.population, Group::Minority, None),
    );
    let (parsed_majority, parsed_minority) = (
        values(records, Population::Parsed, Group::Majority, None),
        values(records, Population::Parsed, Group::Minority, None),
    );
    let clusters = ClusteredGroups::from_records(records, settings.population);
    let bootstrap = settings.bootstrap.for_variation(id);
    let mut statuses = BTreeMap::new();
    for record in records {
        *statuses.entry(record.status).or_insert(0) += 1;
    }
    let measured = smd_with_reason(&majority, &minority);
    VariationSummary {
        answers: records.len(),
        statuses,
        parse_rate: ratio(records.iter().filter(|r| r.value.is_some()).count(), records.len()),
        truncated_rate: ratio(records.iter().filter(|r| r.status == ParseStatus::Truncated).count(), records.len()),
        inlier_ratio: ratio(records.iter().filter(|r| r.inlier).count(), records.len()),
        majority: GroupStats::of(&majority),
        minority: GroupStats::of(&minority),
        smd: measured.ok(),
        smd_undefined: measured.err(),
        smd_parsed: smd(&parsed_majority, &parsed_minority),
        smd_ci: cluster_bootstrap_smd_ci(&clusters, &bootstrap),
        smd_ci_naive: smd_bootstrap_ci(&majority, &minority, &bootstrap),
        group_test: name_permutation_test(&clusters, bootstrap.resamples, bootstrap.seed),
        power: power(&clusters),
        mann_whitney: mann_whitney_u(&majority, &minority),
        by_gender: by_gender(records, settings),
    }
}

/// Values of `group` (optionally one gender) in `population`, in record order.
fn values(records: &[&AnswerRecord], population: Population, group: Group, gender: Option<&str>) -> Vec<f64> {
    records
        .iter()
        .filter(|r| r.group == group && gender.is_none_or(|g| r.gender == g))
        .filter_map(|r| population.value_of(r))
        .collect()
}

fn by_gender(records: &[&AnswerRecord], settings: &SummarySettings) -> BTreeMap<String, GenderSummary> {
    let genders: std::collections::BTreeSet<&str> = records.iter().map(|r| r.gender.as_str()).collect();
    genders
        .into_iter()
        .map(|gender| {
            let majority = values(records, settings.population, Group::Majority, Some(gender));
            let minority = values(records, settings.population, Group::Minority, Some(gender));
            let summary = GenderSummary {
                majority: GroupStats::of(&majority),
                minority: GroupStats::of(&minority),
                smd: smd(&majority, &minority),
            };
            (gender.to_string(), summary)
        })
        .collect()
}

fn overall(records: &[AnswerRecord], variations: &BTreeMap<String, VariationSummary>) -> OverallSummary {
    let smds: Vec<f64> = variations.values().filter_map(|v| v.smd).collect();
    OverallSummary {
        answers: records.len(),
        parse_rate: ratio(records.iter().filter(|r| r.value.is_some()).count(), records.len()),
        inlier_ratio: ratio(records.iter().filter(|r| r.inlier).count(), records.len()),
        mean_abs_smd: super::stats::mean(&smds.iter().map(|s| s.abs()).collect::<Vec<_>>()),
        variations_with_smd: smds.len(),
    }
}

/// `part / whole`, 0 for an empty whole.
fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl BootstrapSettings {
    /// These settings with the seed of `variation`'s own stream ([`variation_seed`]), so a
    /// variation's intervals do not change when other variations are added.
    pub fn for_variation(&self, variation: &str) -> Self {
        BootstrapSettings { seed: variation_seed(self.seed, variation), ..*self }
    }
}

/// Seed of one variation's bootstrap: the first 8 bytes of SHA-256("seed:variation").
pub fn variation_seed(seed: u64, variation: &str) -> u64 {
    let digest = Sha256::digest(format!("{seed}:{variation}").as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("a SHA-256 digest has 32 bytes"))
}

#[cfg(test)]
mod tests;
