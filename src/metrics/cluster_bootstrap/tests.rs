//! Cluster and paired bootstrap tests on generated clustered data and closed-form cases.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::metrics::smd_bootstrap_ci;

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha20Rng) -> f64 {
    let (u, v): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// `names` names per group, `samples` answers each: name effect sd 1, noise sd 0.5, and the
/// majority shifted up by `shift`.
fn clustered(names: usize, samples: usize, shift: f64, seed: u64) -> ClusteredGroups {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut group = |prefix: &str, offset: f64| -> Vec<NameCluster> {
        (0..names)
            .map(|i| {
                let effect = offset + normal(&mut rng);
                let values = (0..samples).map(|_| Some(effect + 0.5 * normal(&mut rng))).collect();
                NameCluster { name: format!("{prefix}{i:02}"), values }
            })
            .collect()
    };
    let majority = group("maj", shift);
    ClusteredGroups { majority, minority: group("min", 0.0) }
}

fn settings(seed: u64) -> BootstrapSettings {
    BootstrapSettings { resamples: 2000, seed, confidence: 0.95 }
}

fn width(ci: ConfidenceInterval) -> f64 {
    ci.high - ci.low
}

#[test]
fn cluster_ci_is_deterministic_and_wider_than_the_naive_ci() {
    let g = clustered(12, 20, 1.0, 3);
    let ci = cluster_bootstrap_smd_ci(&g, &settings(9)).unwrap();
    assert_eq!(Some(ci), cluster_bootstrap_smd_ci(&g, &settings(9)));
    assert_ne!(Some(ci), cluster_bootstrap_smd_ci(&g, &settings(10)));
    let naive = smd_bootstrap_ci(&g.majority_values(), &g.minority_values(), &settings(9)).unwrap();
    assert!(width(ci) > 2.0 * width(naive), "cluster {ci:?}, naive {naive:?}");
}

#[test]
fn cluster_ci_needs_two_names_with_values_per_group() {
    let mut g = clustered(2, 5, 0.0, 1);
    assert!(cluster_bootstrap_smd_ci(&g, &settings(0)).is_some());
    g.minority[1].values.fill(None);
    assert_eq!(cluster_bootstrap_smd_ci(&g, &settings(0)), None);
}

#[test]
fn constant_answers_have_no_cluster_ci() {
    let constant = |prefix: &str, value: f64| {
        (0..3).map(|i| NameCluster { name: format!("{prefix}{i}"), values: vec![Some(value); 4] }).collect()
    };
    let g = ClusteredGroups { majority: constant("a", 2.0), minority: constant("b", 1.0) };
    assert_eq!(cluster_bootstrap_smd_ci(&g, &settings(0)), None, "every replicate has zero variance");
    assert_eq!(paired_delta_smd(&g, &g, &settings(0)), None);
}

#[test]
fn paired_delta_of_identical_data_is_exactly_zero() {
    let g = clustered(12, 20, 1.0, 4);
    let paired = paired_delta_smd(&g, &g, &settings(1)).unwrap();
    assert_eq!(paired.delta, 0.0);
    assert_eq!(paired.baseline, paired.pruned);
    assert_eq!(paired.ci, Some(ConfidenceInterval { low: 0.0, high: 0.0 }));
}

#[test]
fn pairing_cancels_the_shared_name_effects() {
    // The pruned model answers exactly like the baseline but 0.5 lower for minority names:
    // every replicate's ΔSMD is -0.5 / pooled sd, which barely varies, while the separate
    // CIs each carry the full between-name uncertainty.
    let baseline = clustered(12, 20, 1.0, 5);
    let mut pruned = baseline.clone();
    for cluster in &mut pruned.minority {
        cluster.values.iter_mut().flatten().for_each(|v| *v -= 0.5);
    }
    let paired = paired_delta_smd(&baseline, &pruned, &settings(2)).unwrap();
    let ci = paired.ci.unwrap();
    assert!(paired.delta > 0.0 && ci.low > 0.0, "the minority's lower answers raise the SMD: {paired:?}");
    let separate = |g: &ClusteredGroups| width(cluster_bootstrap_smd_ci(g, &settings(2)).unwrap());
    let unpaired = (separate(&baseline).powi(2) + separate(&pruned).powi(2)).sqrt();
    assert!(width(ci) < 0.25 * unpaired, "paired {ci:?} against unpaired width {unpaired}");
}

#[test]
fn pairing_uses_only_shared_names_and_skips_missing_slots() {
    let baseline = clustered(4, 6, 1.0, 6);
    let mut pruned = clustered(4, 6, 1.0, 7);
    pruned.majority.remove(0);
    pruned.minority[0].values.truncate(3);
    let a = paired_delta_smd(&baseline, &pruned, &settings(3)).unwrap();
    assert_eq!(a, paired_delta_smd(&baseline, &pruned, &settings(3)).unwrap());
    assert!(a.ci.is_some());
    pruned.majority.truncate(1);
    let b = paired_delta_smd(&baseline, &pruned, &settings(3)).unwrap();
    assert_eq!(b.ci, None, "one shared majority name cannot be resampled");
    assert_eq!(b.delta, b.pruned - b.baseline);
}
