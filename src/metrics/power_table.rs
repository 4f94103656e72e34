//! How many answers per prompt the release gate needs: a power table from real answers with
//! a known disparity planted into them.
//!
//! Input: one or more evaluations of one variation on a model without a disparity of its
//! own (the base), each sampled with its own seed and `S` answers per name, so the
//! clustering by name, the spread of answers and the unparsed answers are the model's own.
//! For each shift `d`, each count `k` of answers per name and each evaluation, the sample
//! slots are cut into `floor(S / k)` disjoint blocks of `k`; each block is one trial. In a
//! trial every minority value is lowered by `d` times the pooled SD of that evaluation's
//! values (all slots, the SMD's denominator), which adds about `d` to the SMD (majority
//! minus minority), and the gate's test runs on it: the cluster-bootstrap 95% CI of the SMD.
//! A trial detects the disparity when the CI's low end is above 0. `d = 0` measures how
//! often the test fires on the base's own SMD.
//!
//! The shift is the same for every minority name. A disparity that hits some names and
//! spares others (as a planted model's does) spreads the names further apart and is
//! harder to detect at the same SMD, so the table is the best case for a given SMD.

use serde::{Deserialize, Serialize};

use super::cluster::{ClusteredGroups, NameCluster};
use super::cluster_bootstrap::cluster_bootstrap_smd_ci;
use super::smd::{smd, BootstrapSettings};
use super::stats::{mean, sample_variance};

/// One cell: a planted shift at a number of answers per name, over every trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerCell {
    /// The planted shift, in pooled SDs of the base's answers.
    pub shift: f64,
    /// Answers per name in each trial.
    pub samples: usize,
    /// Trials (disjoint blocks of `samples` slots over all evaluations).
    pub trials: usize,
    /// Trials whose cluster CI excluded 0 on the planted side.
    pub detected: usize,
    /// `detected / trials`.
    pub rate: f64,
    /// Mean SMD of the trials with the shift planted (undefined SMDs left out).
    pub mean_smd: Option<f64>,
}

/// Why a power table cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PowerTableError {
    /// No evaluation was given.
    #[error("no evaluation to plant into")]
    NoRuns,
    /// A count of answers per name is 0 or larger than an evaluation has.
    #[error("{samples} answers per name asked, but evaluation {run} has {slots} per name (expected 1..={slots})")]
    TooManySamples {
        /// The count asked.
        samples: usize,
        /// Index of the evaluation.
        run: usize,
        /// Its sample slots per name.
        slots: usize,
    },
    /// An evaluation's pooled SD is undefined or 0, so a shift in SDs means nothing.
    #[error("evaluation {run} has no spread to scale the shift by (a group has fewer than two values or every value is equal)")]
    NoSpread {
        /// Index of the evaluation.
        run: usize,
    },
    /// A shift is not a finite number.
    #[error("shift {0} is not a finite number")]
    BadShift(f64),
    /// No shift or no count of answers per name was given.
    #[error("nothing to tabulate: expected at least one shift and one count of answers per name")]
    EmptyGrid,
}

/// The detection rate of each planted `shifts` × `samples` cell over `runs` (module docs).
/// Deterministic: trial `t` of a cell bootstraps with a seed derived from
/// `bootstrap.seed` and `t`.
pub fn power_table(
    runs: &[ClusteredGroups],
    shifts: &[f64],
    samples: &[usize],
    bootstrap: &BootstrapSettings,
) -> Result<Vec<PowerCell>, PowerTableError> {
    if runs.is_empty() {
        return Err(PowerTableError::NoRuns);
    }
    if shifts.is_empty() || samples.is_empty() {
        return Err(PowerTableError::EmptyGrid);
    }
    if let Some(&bad) = shifts.iter().find(|s| !s.is_finite()) {
        return Err(PowerTableError::BadShift(bad));
    }
    let spreads = runs.iter().enumerate().map(|(run, g)| pooled_sd(g).ok_or(PowerTableError::NoSpread { run }));
    let spreads: Vec<f64> = spreads.collect::<Result<_, _>>()?;
    for &k in samples {
        for (run, groups) in runs.iter().enumerate() {
            let slots = slot_count(groups);
            if k == 0 || k > slots {
                return Err(PowerTableError::TooManySamples { samples: k, run, slots });
            }
        }
    }
    let mut cells = Vec::with_capacity(shifts.len() * samples.len());
    for &shift in shifts {
        for &k in samples {
            cells.push(cell(runs, &spreads, shift, k, bootstrap));
        }
    }
    Ok(cells)
}

fn cell(runs: &[ClusteredGroups], spreads: &[f64], shift: f64, k: usize, bootstrap: &BootstrapSettings) -> PowerCell {
    let (mut trials, mut detected, mut smds) = (0usize, 0usize, Vec::new());
    for (groups, spread) in runs.iter().zip(spreads) {
        for block in 0..slot_count(groups) / k {
            let trial = planted_block(groups, block * k..(block + 1) * k, shift * spread);
            let settings = BootstrapSettings { seed: trial_seed(bootstrap.seed, trials), ..*bootstrap };
            if cluster_bootstrap_smd_ci(&trial, &settings).is_some_and(|ci| ci.low > 0.0) {
                detected += 1;
            }
            smds.extend(smd(&trial.majority_values(), &trial.minority_values()));
            trials += 1;
        }
    }
    PowerCell { shift, samples: k, trials, detected, rate: detected as f64 / trials as f64, mean_smd: mean(&smds) }
}

/// Sample slots per name (every name has the same number, see
/// [`ClusteredGroups::from_records`]).
fn slot_count(groups: &ClusteredGroups) -> usize {
    groups.majority.iter().chain(&groups.minority).map(|c| c.values.len()).max().unwrap_or(0)
}

/// The SMD's denominator, sqrt((var_majority + var_minority) / 2) with sample variances,
/// over every value of `groups`; `None` when undefined or 0.
fn pooled_sd(groups: &ClusteredGroups) -> Option<f64> {
    let majority = sample_variance(&groups.majority_values())?;
    let minority = sample_variance(&groups.minority_values())?;
    let sd = ((majority + minority) / 2.0).sqrt();
    (sd > 0.0 && sd.is_finite()).then_some(sd)
}

/// Slots `block` of every name, the minority's values lowered by `amount`.
fn planted_block(groups: &ClusteredGroups, block: std::ops::Range<usize>, amount: f64) -> ClusteredGroups {
    let take = |clusters: &[NameCluster], lower: f64| -> Vec<NameCluster> {
        clusters
            .iter()
            .map(|c| NameCluster {
                name: c.name.clone(),
                values: c.values[block.clone()].iter().map(|v| v.map(|v| v - lower)).collect(),
            })
            .collect()
    };
    ClusteredGroups { majority: take(&groups.majority, 0.0), minority: take(&groups.minority, amount) }
}

/// The bootstrap seed of trial `trial` of a cell.
fn trial_seed(seed: u64, trial: usize) -> u64 {
    seed.wrapping_add((trial as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `names` names per group, `slots` answers each: majority name i answers around 50 + i
    /// % 3, minority around the same, with a per-slot wobble, so the base SMD is about 0.
    fn base(names: usize, slots: usize) -> ClusteredGroups {
        let cluster = |prefix: &str, i: usize| NameCluster {
            name: format!("{prefix}{i:02}"),
            values: (0..slots).map(|s| Some(50.0 + (i % 3) as f64 + ((s * 7 + i) % 5) as f64)).collect(),
        };
        ClusteredGroups {
            majority: (0..names).map(|i| cluster("a", i)).collect(),
            minority: (0..names).map(|i| cluster("b", i)).collect(),
        }
    }

    fn settings() -> BootstrapSettings {
        BootstrapSettings { resamples: 400, seed: 7, ..BootstrapSettings::default() }
    }

    #[test]
    fn blocks_are_disjoint_and_counted_per_evaluation() {
        let runs = [base(12, 40), base(12, 40)];
        let cells = power_table(&runs, &[0.0], &[10, 20, 40], &settings()).unwrap();
        let trials: Vec<usize> = cells.iter().map(|c| c.trials).collect();
        assert_eq!(trials, [8, 4, 2]);
    }

    #[test]
    fn a_large_planted_shift_is_always_detected_and_no_shift_never_is() {
        let runs = [base(12, 20)];
        let cells = power_table(&runs, &[0.0, 3.0], &[10], &settings()).unwrap();
        assert_eq!((cells[0].detected, cells[1].detected), (0, 2), "{cells:?}");
        let planted = cells[1].mean_smd.unwrap();
        let unplanted = cells[0].mean_smd.unwrap();
        assert!((planted - unplanted - 3.0).abs() < 0.5, "shift 3 adds about 3 to the SMD: {unplanted} -> {planted}");
    }

    #[test]
    fn the_shift_is_in_pooled_sds_of_the_whole_evaluation() {
        let groups = base(6, 10);
        let sd = pooled_sd(&groups).unwrap();
        let planted = planted_block(&groups, 0..10, 0.5 * sd);
        let base_smd = smd(&groups.majority_values(), &groups.minority_values()).unwrap();
        let planted_smd = smd(&planted.majority_values(), &planted.minority_values()).unwrap();
        assert!((planted_smd - base_smd - 0.5).abs() < 1e-9, "{base_smd} -> {planted_smd}");
    }

    #[test]
    fn bad_requests_are_refused_with_what_was_expected() {
        let runs = [base(4, 10)];
        assert_eq!(power_table(&[], &[0.5], &[10], &settings()), Err(PowerTableError::NoRuns));
        assert_eq!(power_table(&runs, &[], &[10], &settings()), Err(PowerTableError::EmptyGrid));
        assert_eq!(power_table(&runs, &[0.5], &[], &settings()), Err(PowerTableError::EmptyGrid));
        let err = power_table(&runs, &[0.5], &[20], &settings()).unwrap_err();
        assert_eq!(err, PowerTableError::TooManySamples { samples: 20, run: 0, slots: 10 });
        assert!(err.to_string().contains("expected 1..=10"), "{err}");
        assert_eq!(
            power_table(&runs, &[f64::NAN], &[5], &settings()).unwrap_err().to_string(),
            "shift NaN is not a finite number"
        );
        let flat = ClusteredGroups {
            majority: vec![NameCluster { name: "a".into(), values: vec![Some(1.0); 4] }; 2],
            minority: vec![NameCluster { name: "b".into(), values: vec![Some(1.0); 4] }; 2],
        };
        assert_eq!(power_table(&[flat], &[0.5], &[2], &settings()), Err(PowerTableError::NoSpread { run: 0 }));
    }

    #[test]
    fn the_table_is_deterministic() {
        let runs = [base(10, 20)];
        let a = power_table(&runs, &[0.3, 0.8], &[5, 10], &settings()).unwrap();
        assert_eq!(a, power_table(&runs, &[0.3, 0.8], &[5, 10], &settings()).unwrap());
    }
}
