//! The gate before scoring: is there a disparity on the targets to remove at all, judged by
//! the cluster-aware CI of the calibration baseline, and which group's weights to prune
//! (the paper's direction unless the baseline is significantly reversed).

use std::collections::BTreeMap;

use serde::Serialize;

use super::spec::DirectionChoice;
use crate::mask::Direction;
use crate::metrics::{ConfidenceInterval, Summary};
use crate::scenario::WorseSide;

/// One target variation's disparity on the calibration baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetDisparity {
    /// SMD, majority minus minority (None when undefined).
    pub smd: Option<f64>,
    /// Why the SMD is undefined, when it is.
    pub smd_undefined: Option<String>,
    /// Cluster-bootstrap 95% CI of the SMD.
    pub smd_ci: Option<ConfidenceInterval>,
    /// The SMD oriented by the scenario's worse side: positive when the minority-name
    /// prompts get the worse answers.
    pub against_minority: Option<f64>,
    /// Two-sided p-value of the name-permutation test.
    pub p_value: Option<f64>,
    /// The smallest SMD these names and samples detect with 80% power at 5%.
    pub minimum_detectable_smd: Option<f64>,
}

impl TargetDisparity {
    /// The CI oriented like `against_minority`.
    fn oriented_ci(&self, worse: WorseSide) -> Option<(f64, f64)> {
        self.smd_ci.as_ref().map(|ci| match worse {
            WorseSide::Lower => (ci.low, ci.high),
            WorseSide::Higher => (-ci.high, -ci.low),
        })
    }
}

/// The calibration baseline's disparity on the targets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disparity {
    /// Which end of the answer scale the scenario declares worse.
    pub worse: WorseSide,
    /// Per target variation.
    pub targets: BTreeMap<String, TargetDisparity>,
    /// Whether some target's 95% CI excludes 0.
    pub significant: bool,
    /// The smallest detectable SMD over the targets (the best any target could do).
    pub minimum_detectable_smd: Option<f64>,
}

impl Disparity {
    /// Reads the targets of a calibration summary.
    pub fn of(summary: &Summary, targets: &[String], worse: WorseSide) -> Self {
        let targets: BTreeMap<String, TargetDisparity> = targets
            .iter()
            .filter_map(|t| summary.variations.get(t).map(|v| (t, v)))
            .map(|(t, v)| {
                let disparity = TargetDisparity {
                    smd: v.smd,
                    smd_undefined: v.smd_undefined.as_ref().map(|reason| reason.to_string()),
                    smd_ci: v.smd_ci,
                    against_minority: v.smd.map(|s| s * worse.orientation()),
                    p_value: v.group_test.as_ref().map(|g| g.p_value),
                    minimum_detectable_smd: v.power.as_ref().map(|p| p.minimum_detectable_smd),
                };
                (t.clone(), disparity)
            })
            .collect();
        let significant = targets.values().filter_map(|t| t.smd_ci.as_ref()).any(|ci| ci.low > 0.0 || ci.high < 0.0);
        let minimum_detectable_smd =
            targets.values().filter_map(|t| t.minimum_detectable_smd).min_by(|a, b| a.total_cmp(b));
        Disparity { worse, targets, significant, minimum_detectable_smd }
    }

    /// Whether the baseline significantly gives the majority the worse answers on some
    /// target and the minority on none.
    pub fn significantly_reversed(&self) -> bool {
        let cis: Vec<(f64, f64)> = self.targets.values().filter_map(|t| t.oriented_ci(self.worse)).collect();
        cis.iter().any(|(_, high)| *high < 0.0) && !cis.iter().any(|(low, _)| *low > 0.0)
    }

    /// One line per target: SMD, CI, p and power, for logs and refusals.
    pub fn describe(&self) -> String {
        let fmt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:+.3}"));
        self.targets
            .iter()
            .map(|(id, t)| {
                let ci = t.smd_ci.map_or("no CI".to_string(), |ci| format!("95% CI [{:+.3}, {:+.3}]", ci.low, ci.high));
                let undefined = t.smd_undefined.as_ref().map_or(String::new(), |r| format!(" (undefined: {r})"));
                let p = t.p_value.map_or(String::new(), |p| format!(", name-permutation p = {p:.3}"));
                let power = t
                    .minimum_detectable_smd
                    .map_or(String::new(), |m| format!(", smallest detectable |SMD| about {m:.2}"));
                format!("{id}: SMD {}{undefined}, {ci}{p}{power}", fmt(t.smd))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The direction pruned, and the measurement or setting it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasuredDirection {
    /// The set difference taken.
    pub direction: Direction,
    /// Why: the rule and the measurement.
    pub reason: String,
    /// Whether some target variation's cluster-aware 95% CI of the baseline SMD excludes 0.
    pub significant: bool,
}

impl MeasuredDirection {
    /// The manifest's spelling.
    pub fn direction_name(&self) -> &'static str {
        match self.direction {
            Direction::MinorityMinusMajority => "minority-minus-majority",
            Direction::MajorityMinusMinority => "majority-minus-minority",
        }
    }
}

/// Settles the direction: explicit, or `auto`: the paper's (prune the minority's specific
/// weights), flipped only when the baseline significantly gives the majority the worse
/// answers ("worse" as the scenario declares it). A non-significant estimate never flips it.
pub fn measure_direction(choice: DirectionChoice, disparity: &Disparity) -> MeasuredDirection {
    let significant = disparity.significant;
    let explicit = |direction| MeasuredDirection { direction, reason: "set explicitly".into(), significant };
    match choice {
        DirectionChoice::Minority => explicit(Direction::MinorityMinusMajority),
        DirectionChoice::Majority => explicit(Direction::MajorityMinusMinority),
        DirectionChoice::Auto if disparity.significantly_reversed() => MeasuredDirection {
            direction: Direction::MajorityMinusMinority,
            significant,
            reason: format!(
                "auto: the baseline significantly gives the majority-name prompts the worse ({} is worse) answers ({}), so the majority's specific weights are pruned",
                disparity.worse.as_str(),
                disparity.describe()
            ),
        },
        DirectionChoice::Auto => MeasuredDirection {
            direction: Direction::MinorityMinusMajority,
            significant,
            reason: format!(
                "auto: the paper's direction, pruning the minority's specific weights ({} answers are worse; the baseline is not significantly reversed: {})",
                disparity.worse.as_str(),
                disparity.describe()
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disparity(worse: WorseSide, smd: f64, low: f64, high: f64) -> Disparity {
        let target = TargetDisparity {
            smd: Some(smd),
            smd_undefined: None,
            smd_ci: Some(ConfidenceInterval { low, high }),
            against_minority: Some(smd * worse.orientation()),
            p_value: Some(0.01),
            minimum_detectable_smd: Some(0.9),
        };
        let significant = low > 0.0 || high < 0.0;
        Disparity {
            worse,
            targets: BTreeMap::from([("v".to_string(), target)]),
            significant,
            minimum_detectable_smd: Some(0.9),
        }
    }

    #[test]
    fn the_direction_follows_the_scenarios_worse_side() {
        // The majority gets the larger answers, significantly. Where lower is worse (an
        // offer) the minority is worse off: the paper's direction. Where higher is worse (a
        // rank) the majority is worse off: auto flips to the majority's weights.
        let lower = measure_direction(DirectionChoice::Auto, &disparity(WorseSide::Lower, 0.8, 0.3, 1.2));
        assert_eq!(lower.direction, Direction::MinorityMinusMajority);
        let higher = measure_direction(DirectionChoice::Auto, &disparity(WorseSide::Higher, 0.8, 0.3, 1.2));
        assert_eq!(higher.direction, Direction::MajorityMinusMinority);
        assert!(higher.reason.contains("(higher is worse)"), "{}", higher.reason);
    }

    #[test]
    fn a_non_significant_reversal_never_flips_auto() {
        let noisy = disparity(WorseSide::Lower, -0.3, -0.7, 0.1);
        assert!(!noisy.significant && !noisy.significantly_reversed());
        assert_eq!(measure_direction(DirectionChoice::Auto, &noisy).direction, Direction::MinorityMinusMajority);
        let explicit = measure_direction(DirectionChoice::Majority, &noisy);
        assert_eq!(
            (explicit.direction, explicit.reason.as_str()),
            (Direction::MajorityMinusMinority, "set explicitly")
        );
    }
}
