//! The sweep's decision: which (p, q) to release, on the selection data (never the data
//! that proves the release).

use serde::{Deserialize, Serialize};

use super::spec::SweepSpec;
use super::PipelineError;
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

/// The rule a sweep's point is chosen by, in words (also recorded in the manifest).
pub const SWEEP_RULE: &str = "among points whose inlier ratio and parse rate fall at most max_inlier_drop and max_parse_drop below the base's own on the same selection prompts and seed (fenced alike): the one pruning the fewest entries among those whose mean |SMD| over the target variations is at most max_residual_smd; when none is, the lowest mean |SMD| (ties: fewer entries pruned)";

/// The released point of a sweep, among the points whose inlier ratio and parse rate fall at
/// most the allowed amounts below `reference`'s (the base's own answers to the same selection
/// prompts and seed): the smallest mask among those whose mean |SMD| is at most `reach`
/// (`max_residual_smd`), since below that bound a lower |SMD| on the selection data is noise
/// while a larger mask changes more of the model than the utility check can see; when none
/// reaches it, the lowest mean |SMD|. Ties: fewer entries pruned, then the grid order.
pub fn choose_point<'p>(
    points: &'p [SweepPoint],
    reference: &TargetMetrics,
    grid: &SweepSpec,
    reach: f64,
) -> Result<&'p SweepPoint, PipelineError> {
    let qualifying: Vec<&SweepPoint> = points
        .iter()
        .filter(|p| {
            p.mean_abs_smd.is_some()
                && p.inlier_ratio >= reference.inlier_ratio - grid.max_inlier_drop
                && p.parse_rate >= reference.parse_rate - grid.max_parse_drop
        })
        .collect();
    let smd = |p: &SweepPoint| p.mean_abs_smd.unwrap_or(f64::INFINITY);
    let smallest_within_reach = qualifying
        .iter()
        .filter(|p| smd(p) <= reach)
        .min_by(|a, b| a.pruned_entries.cmp(&b.pruned_entries).then(smd(a).total_cmp(&smd(b))));
    let lowest_smd =
        || qualifying.iter().min_by(|a, b| smd(a).total_cmp(&smd(b)).then(a.pruned_entries.cmp(&b.pruned_entries)));
    smallest_within_reach.or_else(lowest_smd).copied().ok_or_else(|| {
        PipelineError::NoAcceptablePoint(format!(
            "no sweep point keeps the inlier ratio within {} and the parse rate within {} of the base's on the selection data ({:.3}, {:.3}); see the sweep table in the work directory and widen the grid or the allowed drops",
            grid.max_inlier_drop, grid.max_parse_drop, reference.inlier_ratio, reference.parse_rate
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
        let chosen = choose_point(&points, &baseline(0.9), &SweepSpec::default(), 0.0).unwrap();
        assert_eq!((chosen.p, chosen.q), (0.35, 0.15));
    }

    #[test]
    fn among_points_within_reach_the_smallest_mask_is_chosen() {
        let points = [
            point(0.15, 0.15, Some(0.03), 0.90, 350_000),
            point(0.35, 0.15, Some(0.07), 0.90, 11_000),
            point(0.5, 0.15, Some(0.40), 0.90, 4_000),
            point(0.35, 0.4, Some(0.01), 0.50, 5_000),
        ];
        let chosen = choose_point(&points, &baseline(0.9), &SweepSpec::default(), 0.3).unwrap();
        assert_eq!((chosen.p, chosen.q), (0.35, 0.15), "the smallest qualifying mask within 0.3");
        let chosen = choose_point(&points, &baseline(0.9), &SweepSpec::default(), 0.0).unwrap();
        assert_eq!((chosen.p, chosen.q), (0.15, 0.15), "no point within reach 0: the lowest |SMD|");
    }

    #[test]
    fn ties_go_to_fewer_pruned_entries_and_no_point_is_an_error() {
        let points = [point(0.05, 0.15, Some(0.1), 0.9, 30), point(0.15, 0.15, Some(0.1), 0.9, 20)];
        assert_eq!(choose_point(&points, &baseline(0.9), &SweepSpec::default(), 0.0).unwrap().p, 0.15);
        let err = choose_point(&points, &baseline(1.0), &SweepSpec::default(), 0.3).unwrap_err().to_string();
        assert!(err.contains("no sweep point"), "{err}");
    }
}
