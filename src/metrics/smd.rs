//! Standardised mean difference (SMD) between two groups and its bootstrap confidence
//! interval.
//!
//! SMD = (mean_majority - mean_minority) / sqrt((s1^2 + s2^2) / 2) with sample variances
//! (ddof 1), and 0 when that denominator is 0, as the bias paper's code computes it.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use super::stats::{mean, quantile_sorted, sample_variance, sorted};

/// SMD of `majority` minus `minority`; `None` when a group has fewer than two values.
pub fn smd(majority: &[f64], minority: &[f64]) -> Option<f64> {
    let difference = mean(majority)? - mean(minority)?;
    let pooled = ((sample_variance(majority)? + sample_variance(minority)?) / 2.0).sqrt();
    Some(if pooled == 0.0 { 0.0 } else { difference / pooled })
}

/// A two-sided percentile-bootstrap confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceInterval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

/// Settings of a bootstrap: how many resamples, which seed, which confidence level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapSettings {
    /// Number of resamples (2000 by default).
    pub resamples: usize,
    /// Seed of the ChaCha20 generator.
    pub seed: u64,
    /// Confidence level, e.g. 0.95.
    pub confidence: f64,
}

impl Default for BootstrapSettings {
    fn default() -> Self {
        Self { resamples: 2000, seed: 0, confidence: 0.95 }
    }
}

/// Percentile bootstrap CI of [`smd`]: each resample draws `n1` values from `majority` and
/// `n2` from `minority` with replacement (resampling within each group), and the interval is
/// the `(1 - c)/2` and `(1 + c)/2` quantiles (numpy linear) of the resampled SMDs.
/// Deterministic for a given seed. `None` when a group has fewer than two values.
pub fn smd_bootstrap_ci(
    majority: &[f64],
    minority: &[f64],
    settings: &BootstrapSettings,
) -> Option<ConfidenceInterval> {
    if majority.len() < 2 || minority.len() < 2 || settings.resamples == 0 {
        return None;
    }
    let mut rng = ChaCha20Rng::seed_from_u64(settings.seed);
    let mut scratch_majority = vec![0.0; majority.len()];
    let mut scratch_minority = vec![0.0; minority.len()];
    let mut estimates = Vec::with_capacity(settings.resamples);
    for _ in 0..settings.resamples {
        resample_into(&mut rng, majority, &mut scratch_majority);
        resample_into(&mut rng, minority, &mut scratch_minority);
        estimates.push(smd(&scratch_majority, &scratch_minority)?);
    }
    let estimates = sorted(&estimates);
    let tail = (1.0 - settings.confidence) / 2.0;
    Some(ConfidenceInterval { low: quantile_sorted(&estimates, tail)?, high: quantile_sorted(&estimates, 1.0 - tail)? })
}

fn resample_into(rng: &mut ChaCha20Rng, source: &[f64], target: &mut [f64]) {
    for slot in target.iter_mut() {
        *slot = source[rng.random_range(0..source.len())];
    }
}

#[cfg(test)]
mod tests;
