//! Mann-Whitney U test, two-sided, normal approximation with tie and continuity
//! correction: the same numbers as `scipy.stats.mannwhitneyu(x, y, method="asymptotic")`.

use serde::{Deserialize, Serialize};

/// The U statistic of the first sample and the two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MannWhitney {
    /// U of the first sample (scipy's `statistic`).
    pub u: f64,
    /// Two-sided asymptotic p-value, in [0, 1].
    pub p_value: f64,
}

/// Tests whether `x` and `y` come from the same distribution; `None` if either is empty.
pub fn mann_whitney_u(x: &[f64], y: &[f64]) -> Option<MannWhitney> {
    if x.is_empty() || y.is_empty() {
        return None;
    }
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let (ranks, tie_term) = average_ranks(x.iter().chain(y).copied().collect());
    let rank_sum_x: f64 = ranks[..x.len()].iter().sum();
    let u1 = rank_sum_x - n1 * (n1 + 1.0) / 2.0;
    let u = u1.max(n1 * n2 - u1);
    let n = n1 + n2;
    let sd = (n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)))).sqrt();
    let p_value = if sd > 0.0 {
        let z = (u - n1 * n2 / 2.0 - 0.5) / sd;
        (2.0 * normal_sf(z)).clamp(0.0, 1.0)
    } else {
        1.0
    };
    Some(MannWhitney { u: u1, p_value })
}

/// Ranks (1-based, ties get their average rank) of `values` in input order, and the tie
/// term sum(t^3 - t) over groups of `t` equal values.
fn average_ranks(values: Vec<f64>) -> (Vec<f64>, f64) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut tie_term = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let average = (start + end + 1) as f64 / 2.0;
        for &index in &order[start..end] {
            ranks[index] = average;
        }
        let t = (end - start) as f64;
        tie_term += t * t * t - t;
        start = end;
    }
    (ranks, tie_term)
}

/// Survival function of the standard normal distribution, 1 - Phi(z).
fn normal_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

#[cfg(test)]
mod tests;
