//! The release's verdict (format version 2): what the confirmation data says pruning did
//! to the disparity and to the usable answers, and which data each step of the job used,
//! so a reader can tell evidence from the data that built or chose the mask.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the confirmation data shows pruning did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// On every target the paired ΔSMD's 95% CI excludes 0 in the good direction, or a
    /// disparity significant on the confirmation data fell toward 0 to within the allowed
    /// residual |SMD|; and the inlier ratio and parse rate stayed within the allowed drops.
    Reduced,
    /// Neither reduced nor harmed: the change is within noise.
    NotReduced,
    /// The disparity grew significantly (or reversed beyond its size), or the usable
    /// answers fell beyond the allowed drops.
    Harmed,
}

impl Outcome {
    /// The manifest's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reduced => "reduced",
            Self::NotReduced => "not-reduced",
            Self::Harmed => "harmed",
        }
    }

    /// One sentence for a reader who sees nothing else.
    pub fn headline(self) -> &'static str {
        match self {
            Self::Reduced => "the disparity was reduced on fresh confirmation data, with usable answers kept",
            Self::NotReduced => "the disparity was NOT reduced: on fresh confirmation data the change is within noise",
            Self::Harmed => {
                "pruning HARMED the model: the disparity grew or usable answers fell on fresh confirmation data"
            }
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The paired change of one target variation's SMD, base to pruned, on the confirmation
/// data (same names, prompts and seeds for both models).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaEvidence {
    /// The base's SMD (majority minus minority).
    pub baseline: Option<f64>,
    /// Cluster-bootstrap 95% CI of the base's SMD on the confirmation data; absent in
    /// manifests written before the residual-SMD arm of the verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_ci: Option<(f64, f64)>,
    /// The pruned model's SMD.
    pub pruned: Option<f64>,
    /// Pruned minus baseline.
    pub delta: Option<f64>,
    /// Cluster-bootstrap 95% CI of the paired delta (names and sample slots drawn alike for
    /// both models).
    pub delta_ci: Option<(f64, f64)>,
    /// This variation's outcome.
    pub outcome: Outcome,
    /// Why, in words.
    pub reason: String,
}

/// Usable answers before and after, pooled over the targets of the confirmation data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UtilityEvidence {
    /// The base's inlier ratio.
    pub inlier_before: f64,
    /// The pruned model's inlier ratio.
    pub inlier_after: f64,
    /// The base's parse rate.
    pub parse_before: f64,
    /// The pruned model's parse rate.
    pub parse_after: f64,
    /// Largest inlier-ratio drop allowed.
    pub max_inlier_drop: f64,
    /// Largest parse-rate drop allowed.
    pub max_parse_drop: f64,
    /// Whether both drops are within their limits.
    pub kept: bool,
}

/// The verdict of a release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    /// The outcome over all targets: harmed if any target or the utility is, reduced if
    /// every target is, not-reduced otherwise.
    pub outcome: Outcome,
    /// Why, in words.
    pub reason: String,
    /// Whether the release was written although the outcome is not `reduced`
    /// (`--release-anyway`).
    pub released_anyway: bool,
    /// Per target variation.
    pub targets: BTreeMap<String, DeltaEvidence>,
    /// Usable answers.
    pub utility: UtilityEvidence,
}

/// One use of data: its seed, names and variations, and what it was used for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitEvidence {
    /// What this data was used for.
    pub purpose: String,
    /// Seed of its sampling streams and bootstrap.
    pub seed: u64,
    /// Variations sampled.
    pub variations: Vec<String>,
    /// Names asked about, majority first.
    pub names: Vec<String>,
}

/// The three disjoint uses of data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSplits {
    /// The answers scoring used, and the gate and direction read.
    pub calibration: SplitEvidence,
    /// The sweep's answers, when a sweep chose (p, q).
    pub selection: Option<SplitEvidence>,
    /// The released evidence: fresh seeds, and held-out names where the lists allow.
    pub confirmation: SplitEvidence,
}
