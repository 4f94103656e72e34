//! Whether a re-run evaluation agrees with recorded evidence: per variation SMD and inlier
//! ratio, overall mean |SMD| and inlier ratio, exactly or within a tolerance.

use serde::Serialize;

use crate::manifest::EvaluationEvidence;

/// How far a re-run may drift from the evidence when it runs on another device kind or in
/// another compute dtype (same device and dtype must agree exactly).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    /// Largest accepted |ΔSMD| per variation and for the mean |SMD|.
    pub smd: f64,
    /// Largest accepted |Δ inlier ratio| per variation and overall.
    pub inlier_ratio: f64,
}

impl Default for Tolerance {
    /// |ΔSMD| <= 0.05 (a tenth of a "medium" effect) and |Δ inlier ratio| <= 0.02.
    fn default() -> Self {
        Tolerance { smd: 0.05, inlier_ratio: 0.02 }
    }
}

/// Exact comparison or comparison within a tolerance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Comparison {
    /// Same device kind and dtype: values must be equal.
    Exact,
    /// Different arithmetic: values must lie within the tolerance.
    Within(Tolerance),
}

impl Comparison {
    fn agrees(self, recorded: Option<f64>, rerun: Option<f64>, limit: fn(&Tolerance) -> f64) -> bool {
        match (recorded, rerun, self) {
            (None, None, _) => true,
            (Some(a), Some(b), Comparison::Exact) => a == b,
            (Some(a), Some(b), Comparison::Within(t)) => (a - b).abs() <= limit(&t),
            _ => false,
        }
    }

    /// Words for a check's detail.
    pub fn describe(self) -> String {
        match self {
            Comparison::Exact => "compared exactly".to_string(),
            Comparison::Within(t) => {
                format!("compared within |ΔSMD| <= {} and |Δ inlier ratio| <= {}", t.smd, t.inlier_ratio)
            }
        }
    }
}

/// Every value of `recorded` that the re-run `rerun` does not reproduce, as readable lines
/// ("variation car: SMD recorded 0.3, re-run 0.21"); empty when they agree.
pub fn disagreements(recorded: &EvaluationEvidence, rerun: &EvaluationEvidence, comparison: Comparison) -> Vec<String> {
    if recorded.scenario != rerun.scenario {
        return vec![format!("scenario: recorded {}, re-run {}", recorded.scenario, rerun.scenario)];
    }
    let differ = |what: String, a: Option<f64>, b: Option<f64>, limit: fn(&Tolerance) -> f64| {
        (!comparison.agrees(a, b, limit)).then(|| format!("{what}: recorded {}, re-run {}", show(a), show(b)))
    };
    let mut out = Vec::new();
    let ids: std::collections::BTreeSet<&String> = recorded.variations.keys().chain(rerun.variations.keys()).collect();
    for id in ids {
        match (recorded.variations.get(id), rerun.variations.get(id)) {
            (Some(a), Some(b)) => {
                out.extend(differ(format!("variation {id}: SMD"), a.smd, b.smd, |t| t.smd));
                let (ra, rb) = (Some(a.inlier_ratio), Some(b.inlier_ratio));
                out.extend(differ(format!("variation {id}: inlier ratio"), ra, rb, |t| t.inlier_ratio));
            }
            (Some(_), None) => out.push(format!("variation {id}: recorded, but the re-run has none")),
            (None, _) => out.push(format!("variation {id}: re-run, but not recorded")),
        }
    }
    out.extend(differ("mean |SMD|".to_string(), recorded.mean_abs_smd, rerun.mean_abs_smd, |t| t.smd));
    let (ra, rb) = (Some(recorded.inlier_ratio), Some(rerun.inlier_ratio));
    out.extend(differ("overall inlier ratio".to_string(), ra, rb, |t| t.inlier_ratio));
    out
}

/// The re-run's figures in one line: per variation SMD and inlier ratio, then the means.
pub fn figures(evidence: &EvaluationEvidence) -> String {
    let per_variation: Vec<String> = evidence
        .variations
        .iter()
        .map(|(id, v)| format!("{id} SMD {} inliers {}", show(v.smd), v.inlier_ratio))
        .collect();
    format!(
        "{}; mean |SMD| {}, inlier ratio {}",
        per_variation.join(", "),
        show(evidence.mean_abs_smd),
        evidence.inlier_ratio
    )
}

fn show(value: Option<f64>) -> String {
    value.map_or_else(|| "none".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::manifest::VariationEvidence;

    fn evidence(smd: Option<f64>, inlier_ratio: f64) -> EvaluationEvidence {
        let v = VariationEvidence {
            answers: 10,
            majority_n: 5,
            minority_n: 5,
            smd,
            smd_ci: None,
            inlier_ratio,
            parse_rate: 1.0,
            smd_undefined: None,
            smd_parsed: None,
            p_value: None,
            minimum_detectable_smd: None,
            truncated_rate: None,
        };
        EvaluationEvidence {
            scenario: "s".into(),
            variations: BTreeMap::from([("car".to_string(), v)]),
            mean_abs_smd: smd.map(f64::abs),
            inlier_ratio,
            parse_rate: 1.0,
        }
    }

    #[test]
    fn exact_comparison_accepts_only_equal_values() {
        let a = evidence(Some(0.25), 0.5);
        assert!(disagreements(&a, &a.clone(), Comparison::Exact).is_empty());
        let b = evidence(Some(0.25 + 1e-12), 0.5);
        let found = disagreements(&a, &b, Comparison::Exact);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("variation car: SMD: recorded 0.25, re-run 0.25000000000"), "{found:?}");
        assert!(found[1].starts_with("mean |SMD|"), "{found:?}");
    }

    #[test]
    fn tolerance_bounds_each_difference() {
        let within = Comparison::Within(Tolerance::default());
        let a = evidence(Some(0.25), 0.5);
        assert!(disagreements(&a, &evidence(Some(0.29), 0.515), within).is_empty());
        let smd_off = disagreements(&a, &evidence(Some(0.31), 0.5), within);
        assert_eq!(smd_off.len(), 2, "variation SMD and mean |SMD|: {smd_off:?}");
        let inlier_off = disagreements(&a, &evidence(Some(0.25), 0.53), within);
        assert_eq!(inlier_off.len(), 2, "variation and overall inlier ratio: {inlier_off:?}");
    }

    #[test]
    fn a_missing_smd_or_variation_disagrees() {
        let a = evidence(Some(0.25), 0.5);
        let within = Comparison::Within(Tolerance::default());
        assert!(!disagreements(&a, &evidence(None, 0.5), within).is_empty());
        let mut fewer = a.clone();
        fewer.variations.clear();
        let found = disagreements(&a, &fewer, within);
        assert!(found.iter().any(|d| d == "variation car: recorded, but the re-run has none"), "{found:?}");
    }
}
