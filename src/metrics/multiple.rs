//! Multiple-testing control over a family of p-values: Holm's step-down adjustment
//! (family-wise error rate) and Benjamini-Hochberg's step-up adjustment (false discovery
//! rate), both as adjusted p-values, so a test is rejected at level alpha when its adjusted
//! p is at most alpha.
//!
//! With the m p-values sorted ascending, p_(1) <= ... <= p_(m):
//!
//! - Holm: adj_(i) = max over j <= i of min(1, (m - j + 1) p_(j));
//! - BH:   adj_(i) = min over j >= i of min(1, m p_(j) / j).
//!
//! Tied p-values get equal adjusted values in both, so the order ties are sorted in does not
//! matter. [`detectable_smd`] gives the power figure at a corrected level.

use serde::{Deserialize, Serialize};

/// Which adjustment decides a rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Correction {
    /// Holm's step-down: controls the family-wise error rate (the chance of any false
    /// rejection) at alpha under any dependence.
    Holm,
    /// Benjamini-Hochberg's step-up: controls the expected share of false rejections
    /// among the rejections at alpha (independent or positively dependent tests).
    #[serde(rename = "bh")]
    BenjaminiHochberg,
}

impl Correction {
    /// The command-line spelling: `holm` or `bh`.
    pub fn as_str(self) -> &'static str {
        match self {
            Correction::Holm => "holm",
            Correction::BenjaminiHochberg => "bh",
        }
    }

    /// Parses the command-line spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "holm" => Some(Correction::Holm),
            "bh" => Some(Correction::BenjaminiHochberg),
            _ => None,
        }
    }

    /// The adjusted p-values of `p_values` under this correction.
    pub fn adjust(self, p_values: &[f64]) -> Vec<f64> {
        match self {
            Correction::Holm => holm_adjusted(p_values),
            Correction::BenjaminiHochberg => benjamini_hochberg_adjusted(p_values),
        }
    }
}

/// Indices of `p_values` sorted by p ascending, ties by index (deterministic).
fn ascending(p_values: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p_values.len()).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]).then(a.cmp(&b)));
    order
}

/// Holm's adjusted p-values, in the order of `p_values` (each in [0, 1]).
pub fn holm_adjusted(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &index) in ascending(p_values).iter().enumerate() {
        let scaled = ((m - rank) as f64 * p_values[index]).min(1.0);
        running = running.max(scaled);
        adjusted[index] = running;
    }
    adjusted
}

/// Benjamini-Hochberg's adjusted p-values (q-values), in the order of `p_values` (each in
/// [0, 1]).
pub fn benjamini_hochberg_adjusted(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut adjusted = vec![0.0; m];
    let mut running = 1.0f64;
    for (rank, &index) in ascending(p_values).iter().enumerate().rev() {
        let scaled = (m as f64 * p_values[index] / (rank + 1) as f64).min(1.0);
        running = running.min(scaled);
        adjusted[index] = running;
    }
    adjusted
}

/// The z quantile of the standard normal: the x with Phi(x) = `probability` (bisection on
/// libm's erfc to 1e-12; `probability` in (0, 1)).
pub fn normal_quantile(probability: f64) -> f64 {
    let cdf = |x: f64| 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2);
    let (mut low, mut high) = (-40.0f64, 40.0f64);
    while high - low > 1e-12 {
        let mid = 0.5 * (low + high);
        if cdf(mid) < probability {
            low = mid;
        } else {
            high = mid;
        }
    }
    0.5 * (low + high)
}

/// The smallest SMD a two-sided test at level `alpha` detects with 80% power when each
/// group has `effective_per_group` independent answers: (z_(1 - alpha/2) + z_0.8)
/// sqrt(2 / n_eff). At alpha = 0.05 the factor is 2.80, the rounded value
/// [`super::Power`] uses; at a multiplicity-corrected alpha it grows.
pub fn detectable_smd(effective_per_group: f64, alpha: f64) -> f64 {
    (normal_quantile(1.0 - alpha / 2.0) + normal_quantile(0.8)) * (2.0 / effective_per_group).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn holm_by_hand() {
        // Sorted 0.01, 0.02, 0.03, 0.04 (m = 4): 4 x 0.01 = 0.04, 3 x 0.02 = 0.06,
        // 2 x 0.03 = 0.06, 1 x 0.04 = 0.04 -> running max 0.04, 0.06, 0.06, 0.06.
        let p = [0.03, 0.01, 0.04, 0.02];
        assert!(close(&holm_adjusted(&p), &[0.06, 0.04, 0.06, 0.06]), "{:?}", holm_adjusted(&p));
        // Scaling past 1 caps at 1.
        assert!(close(&holm_adjusted(&[0.5, 0.6]), &[1.0, 1.0]));
    }

    #[test]
    fn bh_by_hand() {
        // Sorted 0.01, 0.02, 0.03, 0.2 (m = 4): 4 x 0.01 / 1 = 0.04, 4 x 0.02 / 2 = 0.04,
        // 4 x 0.03 / 3 = 0.04, 4 x 0.2 / 4 = 0.2 -> running min from the top: the same.
        let p = [0.2, 0.03, 0.01, 0.02];
        assert!(close(&benjamini_hochberg_adjusted(&p), &[0.2, 0.04, 0.04, 0.04]));
        // 0.04, 0.01 (m = 2): 2 x 0.01 = 0.02; 2 x 0.04 / 2 = 0.04.
        assert!(close(&benjamini_hochberg_adjusted(&[0.04, 0.01]), &[0.04, 0.02]));
        // A larger p later lowers an earlier one: 0.03, 0.031 -> 0.06 would be above 0.031.
        assert!(close(&benjamini_hochberg_adjusted(&[0.03, 0.031]), &[0.031, 0.031]));
    }

    #[test]
    fn ties_get_equal_values_and_empty_families_are_empty() {
        let p = [0.01, 0.01, 0.5];
        assert!(close(&holm_adjusted(&p), &[0.03, 0.03, 0.5]));
        assert!(close(&benjamini_hochberg_adjusted(&p), &[0.015, 0.015, 0.5]));
        assert!(holm_adjusted(&[]).is_empty() && benjamini_hochberg_adjusted(&[]).is_empty());
        assert_eq!(Correction::parse("bh"), Some(Correction::BenjaminiHochberg));
        assert_eq!(Correction::parse("bonferroni"), None);
    }

    #[test]
    fn normal_quantiles_and_detectable_smd_by_table() {
        // Standard normal table: z_0.975 = 1.959964, z_0.8 = 0.841621, z_0.99995 = 3.890592.
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-8);
        assert!((normal_quantile(0.8) - 0.841_621_234).abs() < 1e-8);
        assert!((normal_quantile(0.999_95) - 3.890_591_886).abs() < 1e-8);
        assert!(normal_quantile(0.5).abs() < 1e-11);
        let at_5 = detectable_smd(50.0, 0.05);
        assert!((at_5 - (1.959_963_985 + 0.841_621_234) * (2.0f64 / 50.0).sqrt()).abs() < 1e-8, "{at_5}");
        assert!(detectable_smd(50.0, 0.0001) > at_5);
    }
}
