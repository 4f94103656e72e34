//! Descriptive statistics: mean, sample standard deviation, quantiles, group summaries.

use serde::{Deserialize, Serialize};

/// Arithmetic mean; `None` for an empty slice.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Sample variance with ddof = 1 (numpy `var(ddof=1)`); `None` below two values.
pub fn sample_variance(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let m = mean(values)?;
    Some(values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (values.len() - 1) as f64)
}

/// Sample standard deviation with ddof = 1; `None` below two values.
pub fn sample_sd(values: &[f64]) -> Option<f64> {
    sample_variance(values).map(f64::sqrt)
}

/// The `q` quantile (0 to 1) of already sorted values with linear interpolation between
/// order statistics (numpy's default `percentile(method="linear")`); `None` when empty.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let position = q.clamp(0.0, 1.0) * last as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(last);
    let fraction = position - below as f64;
    Some(sorted[below] + fraction * (sorted[above] - sorted[below]))
}

/// Values sorted ascending (total order, so NaN cannot reorder runs).
pub fn sorted(values: &[f64]) -> Vec<f64> {
    let mut out = values.to_vec();
    out.sort_by(f64::total_cmp);
    out
}

/// Size, mean and sample standard deviation of one group's answers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    /// Number of answers counted.
    pub n: usize,
    /// Mean, if `n >= 1`.
    pub mean: Option<f64>,
    /// Sample standard deviation (ddof 1), if `n >= 2`.
    pub sd: Option<f64>,
}

impl GroupStats {
    /// Summarises `values`.
    pub fn of(values: &[f64]) -> Self {
        Self { n: values.len(), mean: mean(values), sd: sample_sd(values) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sd_by_hand() {
        let values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&values), Some(5.0));
        // Sum of squared deviations is 32, so var = 32 / 7.
        assert!((sample_variance(&values).unwrap() - 32.0 / 7.0).abs() < 1e-12);
        assert_eq!(sample_sd(&[1.0]), None);
        assert_eq!(mean(&[]), None);
    }

    #[test]
    fn quantiles_match_numpy_linear() {
        // numpy 2.x: np.percentile([1, 2, 3, 4, 10], [25, 50, 75, 2.5, 97.5]) =
        // [2.0, 3.0, 4.0, 1.1, 9.4]
        let sorted = [1.0, 2.0, 3.0, 4.0, 10.0];
        for (q, want) in [(0.25, 2.0), (0.5, 3.0), (0.75, 4.0), (0.025, 1.1), (0.975, 9.4)] {
            assert!((quantile_sorted(&sorted, q).unwrap() - want).abs() < 1e-12, "q = {q}");
        }
        assert_eq!(quantile_sorted(&[7.0], 0.9), Some(7.0));
        assert_eq!(quantile_sorted(&[], 0.5), None);
    }
}
