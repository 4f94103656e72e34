//! Decisions the pipeline takes from measurements: which group's weights to prune (the sign
//! of the baseline's disparity, never assumed) and which sweep point to release.

use serde::{Deserialize, Serialize};

use super::spec::{DirectionChoice, SweepSpec};
use super::PipelineError;
use crate::mask::Direction;
use crate::metrics::Summary;
use crate::sweep::SweepPoint;

/// Mean |SMD|, inlier ratio and parse rate over the target variations of a summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetMetrics {
    /// Mean over target variations of |SMD| (None when no variation has one).
    pub mean_abs_smd: Option<f64>,
    /// Sum over target variations of SMD (majority minus minority).
    pub smd_sum: Option<f64>,
    /// Inliers over answers, pooled over target variations.
    pub inlier_ratio: f64,
    /// Parsed answers over answers, pooled over target variations.
    pub parse_rate: f64,
    /// Answers counted.
    pub answers: usize,
}

impl TargetMetrics {
    /// The metrics of `targets` in `summary` (variations it lacks are skipped).
    pub fn of(summary: &Summary, targets: &[String]) -> Self {
        let chosen: Vec<_> = targets.iter().filter_map(|t| summary.variations.get(t)).collect();
        let smds: Vec<f64> = chosen.iter().filter_map(|v| v.smd).collect();
        let answers: usize = chosen.iter().map(|v| v.answers).sum();
        let pooled = |f: &dyn Fn(&crate::metrics::VariationSummary) -> f64| {
            if answers == 0 {
                0.0
            } else {
                chosen.iter().map(|v| f(v) * v.answers as f64).sum::<f64>() / answers as f64
            }
        };
        TargetMetrics {
            mean_abs_smd: (!smds.is_empty()).then(|| smds.iter().map(|s| s.abs()).sum::<f64>() / smds.len() as f64),
            smd_sum: (!smds.is_empty()).then(|| smds.iter().sum()),
            inlier_ratio: pooled(&|v| v.inlier_ratio),
            parse_rate: pooled(&|v| v.parse_rate),
            answers,
        }
    }
}

/// The direction pruned, and the measurement or setting it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasuredDirection {
    /// The set difference taken.
    pub direction: Direction,
    /// Why: the measured SMD or "set explicitly".
    pub reason: String,
    /// Whether some target variation's 95% CI of the baseline SMD excludes 0; when none
    /// does, the measured disparity (and so an automatic direction) is not distinguishable
    /// from sampling noise at these sample sizes.
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

/// Settles the direction: explicit, or from the sign of the baseline's summed SMD over the
/// target variations (SMD is majority minus minority: positive means the minority-name
/// prompts get the lower answers, so their important weights are pruned).
pub fn measure_direction(
    choice: DirectionChoice,
    baseline: &Summary,
    targets: &[String],
) -> Result<MeasuredDirection, PipelineError> {
    let significant = targets
        .iter()
        .filter_map(|t| baseline.variations.get(t).and_then(|v| v.smd_ci.as_ref()))
        .any(|ci| ci.low > 0.0 || ci.high < 0.0);
    if !significant {
        log::warn!(
            "the baseline's SMD is not significant on any target variation (every 95% CI contains 0): there may be no disparity to remove at these sample sizes; consider more samples"
        );
    }
    let explicit = |direction| Ok(MeasuredDirection { direction, reason: "set explicitly".into(), significant });
    match choice {
        DirectionChoice::Minority => explicit(Direction::MinorityMinusMajority),
        DirectionChoice::Majority => explicit(Direction::MajorityMinusMinority),
        DirectionChoice::Auto => {
            let sum = TargetMetrics::of(baseline, targets).smd_sum.filter(|s| *s != 0.0).ok_or_else(|| {
                PipelineError::Spec(format!(
                    "cannot measure the direction: the baseline has no non-zero SMD on {}; set direction to minority or majority",
                    targets.join(", ")
                ))
            })?;
            let (direction, lower) = if sum > 0.0 {
                (Direction::MinorityMinusMajority, "minority")
            } else {
                (Direction::MajorityMinusMinority, "majority")
            };
            Ok(MeasuredDirection {
                direction,
                significant,
                reason: format!(
                    "measured: baseline SMD (majority minus minority) summed over {} is {sum:+.4}, so {lower}-name prompts get the lower answers and their important weights are pruned{}",
                    targets.join(", "),
                    if significant { "" } else { " (not significant: every target's 95% CI contains 0)" }
                ),
            })
        }
    }
}

/// The released point of a sweep: the lowest mean |SMD| among points whose inlier ratio and
/// parse rate fall at most the allowed amounts below the baseline's (ties: fewer entries
/// pruned, then the grid order).
pub fn choose_point<'p>(
    points: &'p [SweepPoint],
    baseline: &TargetMetrics,
    grid: &SweepSpec,
) -> Result<&'p SweepPoint, PipelineError> {
    let qualifies = |p: &&SweepPoint| {
        p.mean_abs_smd.is_some()
            && p.inlier_ratio >= baseline.inlier_ratio - grid.max_inlier_drop
            && p.parse_rate >= baseline.parse_rate - grid.max_parse_drop
    };
    points
        .iter()
        .filter(qualifies)
        .min_by(|a, b| {
            let (x, y) = (a.mean_abs_smd.unwrap_or(f64::INFINITY), b.mean_abs_smd.unwrap_or(f64::INFINITY));
            x.total_cmp(&y).then(a.pruned_entries.cmp(&b.pruned_entries))
        })
        .ok_or_else(|| {
            PipelineError::NoAcceptablePoint(format!(
                "no sweep point keeps the inlier ratio within {} and the parse rate within {} of the baseline's ({:.3}, {:.3}); see the sweep table in the work directory and widen the grid or the allowed drops",
                grid.max_inlier_drop, grid.max_parse_drop, baseline.inlier_ratio, baseline.parse_rate
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn point(p: f64, q: f64, smd: Option<f64>, inlier: f64, pruned: u64) -> SweepPoint {
        SweepPoint {
            p,
            q,
            pruned_entries: pruned,
            mean_abs_smd: smd,
            inlier_ratio: inlier,
            parse_rate: 1.0,
            dir: PathBuf::from(format!("p{p}-q{q}")),
        }
    }

    fn baseline(inlier: f64) -> TargetMetrics {
        TargetMetrics {
            mean_abs_smd: Some(0.5),
            smd_sum: Some(0.5),
            inlier_ratio: inlier,
            parse_rate: 1.0,
            answers: 10,
        }
    }

    #[test]
    fn the_lowest_smd_among_points_that_keep_utility_is_chosen() {
        let points = [
            point(0.05, 0.15, Some(0.30), 0.90, 10),
            point(0.15, 0.15, Some(0.10), 0.70, 20),
            point(0.35, 0.15, Some(0.20), 0.88, 5),
        ];
        let chosen = choose_point(&points, &baseline(0.9), &SweepSpec::default()).unwrap();
        assert_eq!((chosen.p, chosen.q), (0.35, 0.15));
    }

    #[test]
    fn ties_go_to_fewer_pruned_entries_and_no_point_is_an_error() {
        let points = [point(0.05, 0.15, Some(0.1), 0.9, 30), point(0.15, 0.15, Some(0.1), 0.9, 20)];
        assert_eq!(choose_point(&points, &baseline(0.9), &SweepSpec::default()).unwrap().p, 0.15);
        let err = choose_point(&points, &baseline(1.0), &SweepSpec::default()).unwrap_err().to_string();
        assert!(err.contains("no sweep point"), "{err}");
    }
}
