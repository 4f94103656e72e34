//! The pruning manifest (`biasprune-manifest.json`): what was pruned from which base, for
//! which use case, by which method, with which evidence. Deterministic bytes: every map is
//! sorted and nothing depends on iteration order or the clock unless the creation time,
//! an explicit input, does.

mod card;
mod error;
mod front_matter;
mod layout;
mod verdict;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::arch::{classify_tensor, linear_weight_name, Architecture, Component};
use crate::checkpoint::Checkpoint;
use crate::mask::{HeadMode, PruneMask, ZeroPlan};
use crate::metrics::Summary;

pub use card::model_card;
pub use error::ManifestError;
pub use front_matter::{card_license, license_id};
pub use layout::{
    BASELINE_EVIDENCE, BASE_CARD_FILE, CALIBRATION_EVIDENCE, CARD_FILE, EVIDENCE_DIR, MANIFEST_FILE, PRUNED_EVIDENCE,
    REPORT_FILE,
};
pub use verdict::{DataSplits, DeltaEvidence, Outcome, SplitEvidence, UtilityEvidence, Verdict};

/// The manifest format version this build writes: 2 adds the verdict, the data splits and
/// the calibration summary to `evidence`, and cluster-aware figures to each variation.
pub const FORMAT_VERSION: u32 = 2;
/// The format versions this build reads (version 1 releases still verify).
pub const READABLE_VERSIONS: [u32; 2] = [1, 2];

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest format version.
    pub format_version: u32,
    /// The tool that wrote it.
    pub tool: Tool,
    /// Creation time, RFC 3339 UTC (from SOURCE_DATE_EPOCH when set, for reproducible builds).
    pub created: String,
    /// The base checkpoint.
    pub base: BaseIdentity,
    /// The use case the mask was built for.
    pub use_case: UseCase,
    /// How the mask was made (scoring method, p, q, granularity, sampling, seeds).
    pub method: serde_json::Value,
    /// What was zeroed.
    pub pruned: Pruned,
    /// Bias and utility evidence, when evaluations were run or evidence files shipped.
    pub evidence: Option<Evidence>,
    /// The model card (README.md) shipped beside the manifest, with its sha256; the card is
    /// rendered from the manifest without this field, then the field is set.
    pub card: Option<FileRef>,
}

/// Tool name and version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    /// "biasprune".
    pub name: String,
    /// The crate version.
    pub version: String,
}

impl Tool {
    /// This build of biasprune.
    pub fn current() -> Self {
        Tool { name: env!("CARGO_PKG_NAME").to_string(), version: env!("CARGO_PKG_VERSION").to_string() }
    }
}

/// Identity of the base checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseIdentity {
    /// Directory name of the base.
    pub name: String,
    /// sha256 (hex) of every file of the base, by relative path.
    pub files: BTreeMap<String, String>,
    /// The OpenSSF model-signing root digest of the base (sha256 over the concatenated file
    /// digests in path order, model.sig and VCS files excluded).
    pub root_digest: String,
    /// The Hugging Face Hub id and commit, when the base was named by Hub id (absent in
    /// older manifests and for bases given as directories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<crate::hub::HubModel>,
}

/// The use case a mask serves.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UseCase {
    /// Scenario ids the mask targets.
    pub scenarios: Vec<String>,
    /// Variations the mask was evaluated on.
    pub variations: Vec<String>,
    /// Variations held out of mask building (within-context).
    pub held_out: Vec<String>,
    /// prompt-specific, within-context, cross-context, or "manual" for a hand-made mask.
    pub regime: String,
    /// Which group's important weights were pruned.
    pub direction: String,
}

/// One tensor's pruning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrunedTensor {
    /// The shard file holding it.
    pub file: String,
    /// Granularities that touched it (weight, row, head).
    pub granularity: BTreeSet<String>,
    /// Output rows zeroed entirely.
    pub rows: Vec<usize>,
    /// Input columns zeroed entirely.
    pub columns: Vec<usize>,
    /// Entries set by the weight-level bitmask (in `bitmask_file` under this tensor's name).
    pub bitmask_entries: u64,
    /// Distinct entries zeroed in all.
    pub zeroed: u64,
}

/// A file shipped beside the manifest, with its digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    /// Path relative to the checkpoint directory.
    pub path: String,
    /// sha256 (hex).
    pub sha256: String,
}

/// Everything zeroed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pruned {
    /// How heads were zeroed.
    pub head_mode: HeadMode,
    /// Heads pruned per layer.
    pub heads: BTreeMap<usize, Vec<usize>>,
    /// MLP units pruned per layer (gate/up rows and down columns).
    pub mlp_units: BTreeMap<usize, Vec<usize>>,
    /// The weight-level bitmask file, when there is one.
    pub bitmask_file: Option<FileRef>,
    /// Per tensor.
    pub tensors: BTreeMap<String, PrunedTensor>,
    /// Entries zeroed per layer and component.
    pub per_layer: BTreeMap<usize, BTreeMap<Component, u64>>,
    /// Entries zeroed per component over all layers.
    pub per_component: BTreeMap<Component, u64>,
    /// Entries zeroed in all.
    pub total: u64,
}

/// The figures of one variation in one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariationEvidence {
    /// Answers sampled.
    pub answers: usize,
    /// Majority answers used for the statistics.
    pub majority_n: usize,
    /// Minority answers used for the statistics.
    pub minority_n: usize,
    /// SMD, majority minus minority.
    pub smd: Option<f64>,
    /// Bootstrap 95% CI of the SMD (low, high); in version 2 a cluster bootstrap (names,
    /// then answers within a name).
    pub smd_ci: Option<(f64, f64)>,
    /// Share of answers that are inliers.
    pub inlier_ratio: f64,
    /// Share of answers that parse to a number.
    pub parse_rate: f64,
    /// Why the SMD is undefined (null), when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smd_undefined: Option<String>,
    /// SMD over every parsed answer, beside the inlier SMD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smd_parsed: Option<f64>,
    /// Two-sided p-value of the group difference, permuting names between groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// The smallest SMD these names and samples detect with 80% power at 5%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_detectable_smd: Option<f64>,
    /// Share of answers cut off by the token limit inside a number (not parsed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_rate: Option<f64>,
}

/// One evaluation's summary, per variation and overall.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationEvidence {
    /// Scenario id.
    pub scenario: String,
    /// Per variation.
    pub variations: BTreeMap<String, VariationEvidence>,
    /// Mean |SMD| over variations.
    pub mean_abs_smd: Option<f64>,
    /// Overall inlier ratio.
    pub inlier_ratio: f64,
    /// Overall parse rate.
    pub parse_rate: f64,
}

impl EvaluationEvidence {
    /// The manifest's view of an evaluation summary.
    pub fn from_summary(summary: &Summary) -> Self {
        let variations = summary
            .variations
            .iter()
            .map(|(id, v)| {
                (
                    id.clone(),
                    VariationEvidence {
                        answers: v.answers,
                        majority_n: v.majority.n,
                        minority_n: v.minority.n,
                        smd: v.smd,
                        smd_ci: v.smd_ci.as_ref().map(|ci| (ci.low, ci.high)),
                        inlier_ratio: v.inlier_ratio,
                        parse_rate: v.parse_rate,
                        smd_undefined: v.smd_undefined.as_ref().map(|reason| reason.to_string()),
                        smd_parsed: v.smd_parsed,
                        p_value: v.group_test.as_ref().map(|t| t.p_value),
                        minimum_detectable_smd: v.power.as_ref().map(|p| p.minimum_detectable_smd),
                        truncated_rate: Some(v.truncated_rate),
                    },
                )
            })
            .collect();
        EvaluationEvidence {
            scenario: summary.scenario.clone(),
            variations,
            mean_abs_smd: summary.overall.mean_abs_smd,
            inlier_ratio: summary.overall.inlier_ratio,
            parse_rate: summary.overall.parse_rate,
        }
    }
}

/// Baseline and pruned evaluations with the files they came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// The base model's evaluation, when one was summarised (in version 2 by `prune`: on
    /// the confirmation data).
    pub baseline: Option<EvaluationEvidence>,
    /// The pruned model's evaluation (target and held-out variations), when summarised
    /// (version 2 by `prune`: the same confirmation names, prompts and seeds).
    pub pruned: Option<EvaluationEvidence>,
    /// Records and summaries shipped in `evidence/`, with digests.
    pub files: Vec<FileRef>,
    /// What the confirmation data shows pruning did (`prune` releases, version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The outcome's figures and reasons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Which data built, chose and proved the mask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub splits: Option<DataSplits>,
    /// The calibration baseline the gate and the direction read (not evidence of effect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<EvaluationEvidence>,
}

/// Builds the `pruned` section from a mask and its resolution against the base.
pub fn pruned_section(
    mask: &PruneMask,
    plan: &ZeroPlan,
    ckpt: &Checkpoint,
    arch: &Architecture,
    bitmask_file: Option<FileRef>,
) -> Pruned {
    pruned_section_counted(mask, plan, ckpt, arch, bitmask_file, &BTreeMap::new())
}

/// [`pruned_section`] with entries zeroed per tensor already counted (surgery counts them
/// while writing: `ApplyReport::zeroed`); tensors missing from `zeroed` are counted here.
pub fn pruned_section_counted(
    mask: &PruneMask,
    plan: &ZeroPlan,
    ckpt: &Checkpoint,
    arch: &Architecture,
    bitmask_file: Option<FileRef>,
    zeroed: &BTreeMap<String, u64>,
) -> Pruned {
    let mut tensors = BTreeMap::new();
    for (name, zeroing) in &plan.tensors {
        let shard = ckpt.tensor(name).map(|t| t.shard.to_string()).unwrap_or_default();
        tensors.insert(
            name.clone(),
            PrunedTensor {
                file: shard,
                granularity: granularities_of(mask, name),
                rows: zeroing.zero_rows.iter().copied().collect(),
                columns: zeroing.zero_cols.iter().copied().collect(),
                bitmask_entries: zeroing.entries.as_ref().map_or(0, |b| b.count()),
                zeroed: zeroed.get(name).copied().unwrap_or_else(|| zeroing.zeroed_count()),
            },
        );
    }
    // Per layer and component from the per-tensor counts (each tensor is counted once).
    let mut per_layer: BTreeMap<usize, BTreeMap<Component, u64>> = BTreeMap::new();
    for (name, tensor) in tensors.iter().filter(|(_, t)| t.zeroed > 0) {
        if let Some((layer, component)) = classify_tensor(name).filter(|(l, _)| *l < arch.num_layers) {
            *per_layer.entry(layer).or_default().entry(component).or_default() += tensor.zeroed;
        }
    }
    let mut per_component: BTreeMap<Component, u64> = BTreeMap::new();
    for counts in per_layer.values() {
        for (&c, &n) in counts {
            *per_component.entry(c).or_default() += n;
        }
    }
    let total: u64 = tensors.values().map(|t| t.zeroed).sum();
    Pruned {
        head_mode: mask.head_mode,
        heads: mask
            .heads
            .iter()
            .filter(|(_, h)| !h.is_empty())
            .map(|(&l, h)| (l, h.iter().copied().collect()))
            .collect(),
        mlp_units: mask
            .mlp_units
            .iter()
            .filter(|(_, u)| !u.is_empty())
            .map(|(&l, u)| (l, u.iter().copied().collect()))
            .collect(),
        bitmask_file,
        tensors,
        per_layer,
        per_component,
        total,
    }
}

fn granularities_of(mask: &PruneMask, tensor: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if mask.weights.contains_key(tensor) {
        out.insert("weight".to_string());
    }
    if mask.rows.contains_key(tensor) {
        out.insert("row".to_string());
    }
    let touched_by = |layers: &BTreeMap<usize, BTreeSet<usize>>, components: &[Component]| {
        layers.iter().any(|(&l, set)| !set.is_empty() && components.iter().any(|&c| linear_weight_name(l, c) == tensor))
    };
    if touched_by(&mask.mlp_units, &[Component::Gate, Component::Up, Component::Down]) {
        out.insert("row".to_string());
    }
    let head_component = match mask.head_mode {
        HeadMode::OProjColumns => Component::O,
        HeadMode::QProjRows => Component::Q,
    };
    if touched_by(&mask.heads, &[head_component]) {
        out.insert("head".to_string());
    }
    out
}

/// Serialises a manifest to its canonical bytes (pretty JSON, sorted maps, final newline).
pub fn to_bytes(manifest: &Manifest) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(manifest).expect("manifest serialises");
    bytes.push(b'\n');
    bytes
}

/// Parses a manifest, refusing unknown fields and format versions this build cannot read.
pub fn from_bytes(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let manifest: Manifest = serde_json::from_slice(bytes).map_err(ManifestError::Json)?;
    if !READABLE_VERSIONS.contains(&manifest.format_version) {
        return Err(ManifestError::UnsupportedVersion { found: manifest.format_version, readable: &READABLE_VERSIONS });
    }
    Ok(manifest)
}

/// The creation time to record: SOURCE_DATE_EPOCH when set (reproducible builds), else now;
/// RFC 3339 in UTC with whole seconds.
pub fn creation_time() -> String {
    let seconds = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
    });
    rfc3339(seconds)
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_867_199), "2026-11-28T11:59:59Z");
    }
}
