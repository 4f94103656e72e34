//! The verdict after pruning, from the confirmation data alone: the paired change of each
//! target's SMD (base and pruned model on the same names, prompts and seeds) with its
//! cluster-bootstrap CI, and the usable answers before and after.

use std::collections::BTreeMap;

use super::select::TargetMetrics;
use super::spec::GateSpec;
use super::stages::Evaluated;
use crate::manifest::{DeltaEvidence, Outcome, UtilityEvidence, Verdict};
use crate::mask::Direction;
use crate::metrics::{paired_delta_smd, AnswerRecord, ClusteredGroups, PairedDelta};
use crate::scenario::WorseSide;

/// What judging needs besides the two evaluations.
pub struct Judging<'a> {
    /// The target variations.
    pub targets: &'a [String],
    /// The direction pruned.
    pub direction: Direction,
    /// The scenario's worse side.
    pub worse: WorseSide,
    /// Allowed utility drops.
    pub gate: &'a GateSpec,
}

/// Judges the pruned model against the base on the confirmation data.
pub fn judge(baseline: &Evaluated, pruned: &Evaluated, judging: &Judging) -> Verdict {
    let bootstrap = baseline.summary.settings.bootstrap;
    let population = baseline.summary.settings.population;
    let aim = aim(judging.direction, judging.worse);
    let targets: BTreeMap<String, DeltaEvidence> = judging
        .targets
        .iter()
        .map(|target| {
            let groups = |e: &Evaluated| {
                let records: Vec<&AnswerRecord> = e.records.iter().filter(|r| &r.variation == target).collect();
                ClusteredGroups::from_records(&records, population)
            };
            let settings = bootstrap.for_variation(target);
            let delta = paired_delta_smd(&groups(baseline), &groups(pruned), &settings);
            let residual = Residual {
                baseline_ci: baseline.summary.variations.get(target).and_then(|v| v.smd_ci).map(|ci| (ci.low, ci.high)),
                bound: judging.gate.max_residual_smd,
            };
            (target.clone(), delta_evidence(delta, aim, residual))
        })
        .collect();
    let utility = utility(baseline, pruned, judging);
    let (outcome, reason) = overall(&targets, &utility);
    Verdict { outcome, reason, released_anyway: false, targets, utility }
}

/// The sign of a good change of the SMD: pruning the minority's specific weights aims to
/// lower the disparity against the minority (an SMD oriented by the worse side), pruning
/// the majority's aims to raise it. -1: the SMD should fall; +1: it should rise.
fn aim(direction: Direction, worse: WorseSide) -> f64 {
    let against_minority = match direction {
        Direction::MinorityMinusMajority => -1.0,
        Direction::MajorityMinusMinority => 1.0,
    };
    against_minority * worse.orientation()
}

/// What the residual-SMD arm reads besides the paired change: the base's own cluster CI on
/// the confirmation data and the largest |SMD| that counts as removed.
#[derive(Clone, Copy)]
struct Residual {
    baseline_ci: Option<(f64, f64)>,
    bound: f64,
}

impl Residual {
    /// Whether the base's confirmation CI excludes 0 on the side pruning aims away from
    /// (a disparity that is there on fresh data, not one the calibration data imagined).
    fn baseline_confirmed(&self, aim: f64) -> bool {
        self.baseline_ci.is_some_and(|(low, high)| if aim < 0.0 { low > 0.0 } else { high < 0.0 })
    }

    /// Whether the pruned model's SMD fell within the bound, moving toward 0 from a
    /// confirmed disparity.
    fn removed(&self, delta: &PairedDelta, aim: f64) -> bool {
        self.bound > 0.0
            && self.baseline_confirmed(aim)
            && delta.pruned.abs() <= self.bound
            && delta.pruned.abs() < delta.baseline.abs()
            && aim * delta.delta > 0.0
    }

    /// Why the residual arm does not apply, in words; `None` when it is off.
    fn why_not(&self, delta: &PairedDelta, aim: f64) -> Option<String> {
        if self.bound <= 0.0 {
            return None;
        }
        Some(if !self.baseline_confirmed(aim) {
            let ci = self.baseline_ci.map_or("none".to_string(), |(low, high)| format!("[{low:+.3}, {high:+.3}]"));
            format!(
                "the base's SMD is not significant on the confirmation data (CI {ci}), so |SMD| <= {} cannot count",
                self.bound
            )
        } else if delta.pruned.abs() > self.bound {
            format!("|SMD| after pruning, {:.3}, is above {}", delta.pruned.abs(), self.bound)
        } else {
            format!("the SMD did not move toward 0 ({:+.3} to {:+.3})", delta.baseline, delta.pruned)
        })
    }
}

fn delta_evidence(delta: Option<PairedDelta>, aim: f64, residual: Residual) -> DeltaEvidence {
    let Some(delta) = delta else {
        return DeltaEvidence {
            baseline: None,
            baseline_ci: residual.baseline_ci,
            pruned: None,
            delta: None,
            delta_ci: None,
            outcome: Outcome::NotReduced,
            reason: "the SMD is undefined for the base or the pruned model, so no change can be measured".into(),
        };
    };
    let ci = delta.ci.map(|ci| (ci.low, ci.high));
    let (outcome, reason) = match ci {
        None => (Outcome::NotReduced, "the paired change has no confidence interval".to_string()),
        Some((low, high)) => {
            let (good_low, good_high) = if aim < 0.0 { (-high, -low) } else { (low, high) };
            let grew = delta.pruned.abs() > delta.baseline.abs();
            if good_high < 0.0 {
                (
                    Outcome::Harmed,
                    format!("ΔSMD {:+.3} [{low:+.3}, {high:+.3}] moved significantly the wrong way", delta.delta),
                )
            } else if good_low > 0.0 && grew {
                (
                    Outcome::Harmed,
                    format!(
                        "ΔSMD {:+.3} [{low:+.3}, {high:+.3}] overshot: |SMD| grew from {:.3} to {:.3} the other way",
                        delta.delta,
                        delta.baseline.abs(),
                        delta.pruned.abs()
                    ),
                )
            } else if good_low > 0.0 {
                (
                    Outcome::Reduced,
                    format!("ΔSMD {:+.3} [{low:+.3}, {high:+.3}] excludes 0 in the good direction", delta.delta),
                )
            } else if residual.removed(&delta, aim) {
                let (base_low, base_high) = residual.baseline_ci.expect("a confirmed baseline has a CI");
                (
                    Outcome::Reduced,
                    format!(
                        "SMD {:+.3} [{base_low:+.3}, {base_high:+.3}] (significant on the confirmation data) fell to {:+.3}, within ±{} (ΔSMD {:+.3} [{low:+.3}, {high:+.3}])",
                        delta.baseline, delta.pruned, residual.bound, delta.delta
                    ),
                )
            } else {
                let residual = residual.why_not(&delta, aim).map_or(String::new(), |why| format!("; {why}"));
                (Outcome::NotReduced, format!("ΔSMD {:+.3} [{low:+.3}, {high:+.3}] contains 0{residual}", delta.delta))
            }
        }
    };
    DeltaEvidence {
        baseline: Some(delta.baseline),
        baseline_ci: residual.baseline_ci,
        pruned: Some(delta.pruned),
        delta: Some(delta.delta),
        delta_ci: ci,
        outcome,
        reason,
    }
}

fn utility(baseline: &Evaluated, pruned: &Evaluated, judging: &Judging) -> UtilityEvidence {
    let before = TargetMetrics::of(&baseline.summary, judging.targets);
    let after = TargetMetrics::of(&pruned.summary, judging.targets);
    let kept = after.inlier_ratio >= before.inlier_ratio - judging.gate.max_inlier_drop
        && after.parse_rate >= before.parse_rate - judging.gate.max_parse_drop;
    UtilityEvidence {
        inlier_before: before.inlier_ratio,
        inlier_after: after.inlier_ratio,
        parse_before: before.parse_rate,
        parse_after: after.parse_rate,
        max_inlier_drop: judging.gate.max_inlier_drop,
        max_parse_drop: judging.gate.max_parse_drop,
        kept,
    }
}

/// Harmed if any target or the utility is, reduced if every target is, not-reduced
/// otherwise.
fn overall(targets: &BTreeMap<String, DeltaEvidence>, utility: &UtilityEvidence) -> (Outcome, String) {
    let each =
        targets.iter().map(|(id, d)| format!("{id}: {} ({})", d.outcome, d.reason)).collect::<Vec<_>>().join("; ");
    let usable = format!(
        "inlier ratio {:.3} -> {:.3}, parse rate {:.3} -> {:.3} (allowed drops {}, {})",
        utility.inlier_before,
        utility.inlier_after,
        utility.parse_before,
        utility.parse_after,
        utility.max_inlier_drop,
        utility.max_parse_drop
    );
    if !utility.kept {
        return (Outcome::Harmed, format!("usable answers fell beyond the allowed drop: {usable}; {each}"));
    }
    if targets.values().any(|d| d.outcome == Outcome::Harmed) {
        return (Outcome::Harmed, format!("{each}; {usable}"));
    }
    if !targets.is_empty() && targets.values().all(|d| d.outcome == Outcome::Reduced) {
        return (Outcome::Reduced, format!("{each}; {usable}"));
    }
    (Outcome::NotReduced, format!("{each}; {usable}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ConfidenceInterval;

    fn delta(baseline: f64, pruned: f64, low: f64, high: f64) -> Option<PairedDelta> {
        Some(PairedDelta { baseline, pruned, delta: pruned - baseline, ci: Some(ConfidenceInterval { low, high }) })
    }

    #[test]
    fn a_significant_fall_toward_zero_is_reduced_when_lower_answers_are_worse() {
        let aim = aim(Direction::MinorityMinusMajority, WorseSide::Lower);
        assert_eq!(delta_evidence(delta(0.8, 0.1, -0.9, -0.4), aim, OFF).outcome, Outcome::Reduced);
        assert_eq!(delta_evidence(delta(0.8, 0.7, -0.3, 0.1), aim, OFF).outcome, Outcome::NotReduced);
        assert_eq!(delta_evidence(delta(0.8, 1.4, 0.3, 0.9), aim, OFF).outcome, Outcome::Harmed);
        assert_eq!(delta_evidence(delta(0.5, -1.2, -2.0, -1.4), aim, OFF).outcome, Outcome::Harmed, "overshoot");
    }

    #[test]
    fn the_good_direction_flips_when_higher_answers_are_worse() {
        // A rank: the minority gets larger (worse) ranks, so SMD (majority minus minority) < 0
        // and pruning the minority's weights should raise it toward 0.
        let aim = aim(Direction::MinorityMinusMajority, WorseSide::Higher);
        assert_eq!(delta_evidence(delta(-0.8, -0.1, 0.4, 0.9), aim, OFF).outcome, Outcome::Reduced);
        assert_eq!(delta_evidence(delta(-0.8, -1.4, -0.9, -0.3), aim, OFF).outcome, Outcome::Harmed);
    }

    /// The residual arm off: only the ΔSMD CI can show a reduction.
    const OFF: Residual = Residual { baseline_ci: None, bound: 0.0 };

    fn confirmed(low: f64, high: f64) -> Residual {
        Residual { baseline_ci: Some((low, high)), bound: 0.3 }
    }

    #[test]
    fn a_confirmed_disparity_brought_within_the_bound_is_reduced_though_the_delta_ci_holds_0() {
        let aim = aim(Direction::MinorityMinusMajority, WorseSide::Lower);
        let fell = delta(0.9, 0.2, -1.6, 0.1);
        assert_eq!(delta_evidence(fell, aim, OFF).outcome, Outcome::NotReduced);
        let evidence = delta_evidence(fell, aim, confirmed(0.3, 1.5));
        assert_eq!(evidence.outcome, Outcome::Reduced, "{}", evidence.reason);
        assert!(evidence.reason.contains("within ±0.3"), "{}", evidence.reason);
        assert_eq!(evidence.baseline_ci, Some((0.3, 1.5)));
    }

    #[test]
    fn the_residual_arm_needs_a_confirmed_disparity_a_small_residual_and_a_move_toward_0() {
        let aim = aim(Direction::MinorityMinusMajority, WorseSide::Lower);
        let fell = delta(0.9, 0.2, -1.6, 0.1);
        assert_eq!(delta_evidence(fell, aim, confirmed(-0.1, 1.5)).outcome, Outcome::NotReduced, "not confirmed");
        assert_eq!(delta_evidence(fell, aim, confirmed(-1.5, -0.3)).outcome, Outcome::NotReduced, "wrong side");
        let stayed = delta(0.9, 0.4, -1.2, 0.3);
        assert_eq!(delta_evidence(stayed, aim, confirmed(0.3, 1.5)).outcome, Outcome::NotReduced, "above the bound");
        let small = delta(0.25, 0.28, -0.5, 0.6);
        assert_eq!(delta_evidence(small, aim, confirmed(0.01, 0.5)).outcome, Outcome::NotReduced, "grew");
        let flipped = delta(0.9, -0.2, -1.9, 0.1);
        assert_eq!(delta_evidence(flipped, aim, confirmed(0.3, 1.5)).outcome, Outcome::Reduced, "|-0.2| <= 0.3");
        let off = Residual { bound: 0.0, ..confirmed(0.3, 1.5) };
        assert_eq!(delta_evidence(fell, aim, off).outcome, Outcome::NotReduced, "arm off");
        let reasons = [
            delta_evidence(fell, aim, confirmed(-0.1, 1.5)).reason,
            delta_evidence(stayed, aim, confirmed(0.3, 1.5)).reason,
            delta_evidence(fell, aim, off).reason,
        ];
        assert!(
            reasons[0].ends_with(
                "not significant on the confirmation data (CI [-0.100, +1.500]), so |SMD| <= 0.3 cannot count"
            ),
            "{}",
            reasons[0]
        );
        assert!(reasons[1].ends_with("|SMD| after pruning, 0.400, is above 0.3"), "{}", reasons[1]);
        assert!(reasons[2].ends_with("contains 0"), "{}", reasons[2]);
    }

    #[test]
    fn the_residual_arm_follows_the_aim_when_higher_answers_are_worse() {
        let aim = aim(Direction::MinorityMinusMajority, WorseSide::Higher);
        let rose = delta(-0.9, -0.1, -0.2, 1.5);
        assert_eq!(delta_evidence(rose, aim, confirmed(-1.5, -0.3)).outcome, Outcome::Reduced);
        assert_eq!(delta_evidence(rose, aim, confirmed(0.3, 1.5)).outcome, Outcome::NotReduced);
    }

    #[test]
    fn an_undefined_smd_is_never_a_reduction() {
        assert_eq!(delta_evidence(None, -1.0, OFF).outcome, Outcome::NotReduced);
    }

    #[test]
    fn utility_loss_is_harm_whatever_the_smd() {
        let targets = BTreeMap::from([("bicycle".to_string(), delta_evidence(delta(0.8, 0.1, -0.9, -0.4), -1.0, OFF))]);
        let utility = UtilityEvidence {
            inlier_before: 0.9,
            inlier_after: 0.8,
            parse_before: 1.0,
            parse_after: 1.0,
            max_inlier_drop: 0.05,
            max_parse_drop: 0.05,
            kept: false,
        };
        assert_eq!(overall(&targets, &utility).0, Outcome::Harmed);
        let kept = UtilityEvidence { inlier_after: 0.88, kept: true, ..utility };
        assert_eq!(overall(&targets, &kept).0, Outcome::Reduced);
    }
}
