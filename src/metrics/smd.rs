//! Standardised mean difference (SMD) between two groups and its bootstrap confidence
//! interval.
//!
//! SMD = (mean_majority - mean_minority) / sqrt((s1^2 + s2^2) / 2) with sample variances
//! (ddof 1). Where the bias paper's code reports 0 for a zero denominator, biasprune reports
//! no SMD and says why ([`SmdUndefined`]): 0 would read as "no bias" when the answers
//! simply do not vary.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use super::stats::{mean, quantile_sorted, sample_variance, sorted};

/// Why an SMD has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "kebab-case")]
pub enum SmdUndefined {
    /// A group has fewer than two values, so it has no sample variance.
    #[error("a group has fewer than two values (no sample variance)")]
    TooFewValues,
    /// Both groups' answers are constant: the pooled standard deviation is 0.
    #[error("the pooled standard deviation is 0 (every answer within each group is the same)")]
    ZeroVariance,
}

/// SMD of `majority` minus `minority`, or why it is undefined (a group below two values, or
/// a pooled standard deviation of 0).
pub fn smd_with_reason(majority: &[f64], minority: &[f64]) -> Result<f64, SmdUndefined> {
    let (Some(mean_majority), Some(var_majority), Some(mean_minority), Some(var_minority)) =
        (mean(majority), sample_variance(majority), mean(minority), sample_variance(minority))
    else {
        return Err(SmdUndefined::TooFewValues);
    };
    let pooled = ((var_majority + var_minority) / 2.0).sqrt();
    if pooled == 0.0 {
        return Err(SmdUndefined::ZeroVariance);
    }
    Ok((mean_majority - mean_minority) / pooled)
}

/// SMD of `majority` minus `minority`; `None` when it is undefined (see [`smd_with_reason`]).
pub fn smd(majority: &[f64], minority: &[f64]) -> Option<f64> {
    smd_with_reason(majority, minority).ok()
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

/// Naive (per-answer) percentile bootstrap CI of [`smd`]: it treats answers as independent,
/// which they are not when a name is sampled many times (see
/// [`super::cluster_bootstrap_smd_ci`]). Each resample draws `n1` values from `majority` and
/// `n2` from `minority` with replacement (resampling within each group), and the interval is
/// the `(1 - c)/2` and `(1 + c)/2` quantiles (numpy linear) of the resampled SMDs.
/// Resamples whose SMD is undefined are skipped; `None` when a group has fewer than two
/// values or fewer than half the resamples are defined. Deterministic for a given seed.
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
        estimates.extend(smd(&scratch_majority, &scratch_minority));
    }
    percentile_interval(&estimates, settings)
}

/// The percentile interval of bootstrap `estimates` at `settings.confidence`; `None` when
/// fewer than half of `settings.resamples` replicates gave an estimate.
pub(super) fn percentile_interval(estimates: &[f64], settings: &BootstrapSettings) -> Option<ConfidenceInterval> {
    if estimates.is_empty() || estimates.len() * 2 < settings.resamples {
        return None;
    }
    let estimates = sorted(estimates);
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
