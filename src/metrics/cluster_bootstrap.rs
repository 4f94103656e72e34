//! Cluster bootstrap of the SMD and the paired bootstrap of ΔSMD (pruned minus baseline):
//! names are resampled, then each drawn name's samples, so the interval reflects how few
//! independent names there are (method.md section 8).
//!
//! One replicate, per group independently: draw as many names as the group has, with
//! replacement; for each drawn name draw as many sample slots as it has (0..len), with
//! replacement, and keep the slots whose value is present. Replicates whose SMD is undefined
//! are skipped; the interval is the percentile interval (numpy linear quantiles) of the rest.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use super::cluster::{names_with_values, ClusteredGroups, NameCluster};
use super::smd::{percentile_interval, smd, BootstrapSettings, ConfidenceInterval};

/// Percentile cluster-bootstrap CI of the SMD (majority minus minority) of `groups`.
/// Deterministic for `settings.seed` (ChaCha20). `None` when a group has fewer than two
/// names with values, or fewer than half the replicates have a defined SMD.
pub fn cluster_bootstrap_smd_ci(groups: &ClusteredGroups, settings: &BootstrapSettings) -> Option<ConfidenceInterval> {
    if names_with_values(&groups.majority) < 2 || names_with_values(&groups.minority) < 2 || settings.resamples == 0 {
        return None;
    }
    let mut rng = ChaCha20Rng::seed_from_u64(settings.seed);
    let (mut majority, mut minority) = (Vec::new(), Vec::new());
    let mut estimates = Vec::with_capacity(settings.resamples);
    for _ in 0..settings.resamples {
        draw_group(&mut rng, &groups.majority, &mut majority);
        draw_group(&mut rng, &groups.minority, &mut minority);
        estimates.extend(smd(&majority, &minority));
    }
    percentile_interval(&estimates, settings)
}

/// One group's values in one cluster-bootstrap replicate, written into `out`.
fn draw_group(rng: &mut ChaCha20Rng, clusters: &[NameCluster], out: &mut Vec<f64>) {
    out.clear();
    for _ in 0..clusters.len() {
        let values = &clusters[rng.random_range(0..clusters.len())].values;
        for _ in 0..values.len() {
            out.extend(values[rng.random_range(0..values.len())]);
        }
    }
}

/// Change of the SMD from the baseline to the pruned model, with its paired bootstrap CI.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedDelta {
    /// SMD of the baseline model over all its values.
    pub baseline: f64,
    /// SMD of the pruned model over all its values.
    pub pruned: f64,
    /// `pruned - baseline`.
    pub delta: f64,
    /// Paired cluster-bootstrap CI of `delta`; `None` when too few names are shared or too
    /// few replicates are defined.
    pub ci: Option<ConfidenceInterval>,
}

/// ΔSMD = SMD(pruned) - SMD(baseline) with a paired cluster-bootstrap CI. Both models were
/// sampled with the same names, prompts and seeds, so each replicate draws the SAME names
/// (matched by name, only names present in both) and the SAME sample slots for both
/// models; each model then keeps its own present values, and the shared name effects
/// cancel in the difference. A name's slots are drawn from 0..max(len_baseline,
/// len_pruned); a slot beyond a model's length counts as absent. Replicates where either
/// SMD is undefined are skipped. `None` when either point SMD is undefined.
pub fn paired_delta_smd(
    baseline: &ClusteredGroups,
    pruned: &ClusteredGroups,
    settings: &BootstrapSettings,
) -> Option<PairedDelta> {
    let base_smd = smd(&baseline.majority_values(), &baseline.minority_values())?;
    let pruned_smd = smd(&pruned.majority_values(), &pruned.minority_values())?;
    let majority = pairs(&baseline.majority, &pruned.majority);
    let minority = pairs(&baseline.minority, &pruned.minority);
    let ci = (enough_pairs(&majority) && enough_pairs(&minority) && settings.resamples > 0)
        .then(|| paired_ci(&majority, &minority, settings))
        .flatten();
    Some(PairedDelta { baseline: base_smd, pruned: pruned_smd, delta: pruned_smd - base_smd, ci })
}

/// One name's samples under both models.
struct Pair<'a> {
    baseline: &'a [Option<f64>],
    pruned: &'a [Option<f64>],
    slots: usize,
}

/// The names present in both `baseline` and `pruned` (both sorted by name), in name order.
fn pairs<'a>(baseline: &'a [NameCluster], pruned: &'a [NameCluster]) -> Vec<Pair<'a>> {
    baseline
        .iter()
        .filter_map(|b| {
            let p = &pruned[pruned.binary_search_by(|p| p.name.cmp(&b.name)).ok()?];
            let slots = b.values.len().max(p.values.len());
            Some(Pair { baseline: &b.values, pruned: &p.values, slots })
        })
        .collect()
}

/// Whether at least two shared names have values under each model.
fn enough_pairs(pairs: &[Pair]) -> bool {
    let baseline = pairs.iter().filter(|p| p.baseline.iter().any(Option::is_some)).count();
    let pruned = pairs.iter().filter(|p| p.pruned.iter().any(Option::is_some)).count();
    baseline >= 2 && pruned >= 2
}

fn paired_ci(majority: &[Pair], minority: &[Pair], settings: &BootstrapSettings) -> Option<ConfidenceInterval> {
    let mut rng = ChaCha20Rng::seed_from_u64(settings.seed);
    let mut draws = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    let mut estimates = Vec::with_capacity(settings.resamples);
    for _ in 0..settings.resamples {
        let [base_majority, pruned_majority, base_minority, pruned_minority] = &mut draws;
        draw_pairs(&mut rng, majority, base_majority, pruned_majority);
        draw_pairs(&mut rng, minority, base_minority, pruned_minority);
        if let (Some(base), Some(pruned)) = (smd(base_majority, base_minority), smd(pruned_majority, pruned_minority)) {
            estimates.push(pruned - base);
        }
    }
    percentile_interval(&estimates, settings)
}

/// One group's values under both models in one paired replicate.
fn draw_pairs(rng: &mut ChaCha20Rng, pairs: &[Pair], baseline: &mut Vec<f64>, pruned: &mut Vec<f64>) {
    baseline.clear();
    pruned.clear();
    for _ in 0..pairs.len() {
        let pair = &pairs[rng.random_range(0..pairs.len())];
        for _ in 0..pair.slots {
            let slot = rng.random_range(0..pair.slots);
            baseline.extend(pair.baseline.get(slot).copied().flatten());
            pruned.extend(pair.pruned.get(slot).copied().flatten());
        }
    }
}

#[cfg(test)]
mod tests;
