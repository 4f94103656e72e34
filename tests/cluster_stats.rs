//! biasprune's clustered statistics against an independent pure-Python computation
//! (tests/stats_reference.py): SMD, exact name permutation p, ICC / design effect / MDES
//! to rounding, and cluster-bootstrap CI bounds to a stated Monte Carlo tolerance.

use std::io::Write;
use std::process::{Command, Stdio};

use biasprune::metrics::{
    cluster_bootstrap_smd_ci, name_permutation_test, power, smd, smd_bootstrap_ci, BootstrapSettings, ClusteredGroups,
    ConfidenceInterval, NameCluster,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

/// Python's bootstrap uses its own generator: with 20000 replicates on both sides the CI
/// bounds differ by Monte Carlo error only, about 0.01 (one standard error) here.
const BOOTSTRAP_TOLERANCE: f64 = 0.06;

fn normal(rng: &mut ChaCha20Rng) -> f64 {
    let (u, v): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// 12 + 12 names with 20 samples each: name effects sd 1, noise sd 0.5, majority shifted
/// up by 1; about 5% of answers missing (not in the population).
fn clustered_data() -> ClusteredGroups {
    let mut rng = ChaCha20Rng::seed_from_u64(2024);
    let mut group = |prefix: &str, shift: f64| -> Vec<NameCluster> {
        (0..12)
            .map(|i| {
                let effect = shift + normal(&mut rng);
                let values = (0..20)
                    .map(|_| {
                        let value = effect + 0.5 * normal(&mut rng);
                        (rng.random::<f64>() >= 0.05).then_some(value)
                    })
                    .collect();
                NameCluster { name: format!("{prefix}{i:02}"), values }
            })
            .collect()
    };
    let majority = group("majority-", 1.0);
    ClusteredGroups { majority, minority: group("minority-", 0.0) }
}

fn python_reference(groups: &ClusteredGroups, resamples: usize) -> Value {
    let clusters = |c: &[NameCluster]| c.iter().map(|n| n.values.clone()).collect::<Vec<_>>();
    let input = json!({
        "majority": clusters(&groups.majority),
        "minority": clusters(&groups.minority),
        "resamples": resamples,
        "seed": 11,
        "confidence": 0.95,
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/stats_reference.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "stats_reference.py failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn bounds(value: &Value) -> ConfidenceInterval {
    ConfidenceInterval { low: value[0].as_f64().unwrap(), high: value[1].as_f64().unwrap() }
}

#[test]
fn clustered_statistics_match_an_independent_python_computation() {
    let groups = clustered_data();
    let reference = python_reference(&groups, 20_000);

    let measured = smd(&groups.majority_values(), &groups.minority_values()).unwrap();
    assert!((measured - reference["smd"].as_f64().unwrap()).abs() < 1e-12, "SMD {measured} vs {}", reference["smd"]);

    let test = name_permutation_test(&groups, 3_000_000, 0).unwrap();
    let want = &reference["permutation"];
    assert!(test.exact && test.permutations == 2_704_156, "C(24, 12) relabelings: {test:?}");
    assert_eq!(test.permutations as u64, want["permutations"].as_u64().unwrap());
    assert!((test.statistic - want["statistic"].as_f64().unwrap()).abs() < 1e-12, "{test:?} vs {want}");
    assert!((test.p_value - want["p_value"].as_f64().unwrap()).abs() < 1e-12, "{test:?} vs {want}");
    assert!(test.p_value < 0.05, "a shift of one name-sd is detected: {test:?}");

    let p = power(&groups).unwrap();
    let want = &reference["power"];
    for (name, ours) in [
        ("icc", p.icc),
        ("design_effect", p.design_effect),
        ("effective_per_group", p.effective_per_group),
        ("minimum_detectable_smd", p.minimum_detectable_smd),
    ] {
        assert!((ours - want[name].as_f64().unwrap()).abs() < 1e-9, "{name}: {ours} vs {}", want[name]);
    }
    assert!(p.icc > 0.5 && p.design_effect > 5.0, "name effects dominate the noise: {p:?}");

    let settings = BootstrapSettings { resamples: 20_000, seed: 5, confidence: 0.95 };
    let cluster = cluster_bootstrap_smd_ci(&groups, &settings).unwrap();
    let python_cluster = bounds(&reference["cluster_ci"]);
    assert!(
        (cluster.low - python_cluster.low).abs() < BOOTSTRAP_TOLERANCE
            && (cluster.high - python_cluster.high).abs() < BOOTSTRAP_TOLERANCE,
        "cluster CI {cluster:?} vs Python {python_cluster:?}"
    );
    let naive = smd_bootstrap_ci(&groups.majority_values(), &groups.minority_values(), &settings).unwrap();
    let python_naive = bounds(&reference["naive_ci"]);
    assert!(
        (naive.low - python_naive.low).abs() < BOOTSTRAP_TOLERANCE
            && (naive.high - python_naive.high).abs() < BOOTSTRAP_TOLERANCE,
        "naive CI {naive:?} vs Python {python_naive:?}"
    );
    let width = |ci: ConfidenceInterval| ci.high - ci.low;
    assert!(width(cluster) > 1.5 * width(naive), "cluster {cluster:?} should be wider than naive {naive:?}");
}
