//! A group test that respects clustering: permute the group labels over names, not over
//! answers (method.md section 8), on the difference of the means of per-name means.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use super::cluster::{ClusteredGroups, NameCluster};

/// Result of the name permutation test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GroupTest {
    /// Mean of the majority's per-name means minus that of the minority's.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Relabelings counted: all of them when `exact`, else the Monte Carlo draws.
    pub permutations: usize,
    /// Whether every relabeling was enumerated.
    pub exact: bool,
}

/// Tolerance under which a relabeling's |statistic| counts as reaching the observed one, so
/// that rounding cannot drop the observed labeling or its mirror image from the count.
const TIE_TOLERANCE: f64 = 1e-12;

/// Permutation test of majority against minority with names as units. Each name with
/// values is reduced to its mean; the statistic is the difference of the groups' means of
/// those. The p-value is two-sided: the share of relabelings with |statistic| >=
/// |observed| - 1e-12. When C(n_majority + n_minority, n_majority) <= `permutations` all
/// relabelings are enumerated (exact, p = count / C); otherwise `permutations` random ones
/// are drawn (ChaCha20 seeded with `seed`) and p = (1 + count) / (1 + permutations).
/// `None` when a group has fewer than two names with values or `permutations` is 0.
pub fn name_permutation_test(groups: &ClusteredGroups, permutations: usize, seed: u64) -> Option<GroupTest> {
    let name_means = |clusters: &[NameCluster]| clusters.iter().filter_map(NameCluster::mean).collect::<Vec<f64>>();
    let (majority, minority) = (name_means(&groups.majority), name_means(&groups.minority));
    if majority.len() < 2 || minority.len() < 2 || permutations == 0 {
        return None;
    }
    let k = majority.len();
    let all: Vec<f64> = majority.into_iter().chain(minority).collect();
    let mut in_majority = vec![false; all.len()];
    in_majority[..k].fill(true);
    let statistic = labeled_difference(&all, &in_majority, k);
    let threshold = statistic.abs() - TIE_TOLERANCE;
    let relabelings = binomial(all.len(), k).filter(|c| *c <= permutations as u128);
    let test = match relabelings {
        Some(total) => {
            let mut count = 0usize;
            for_each_combination(all.len(), k, |chosen| {
                in_majority.fill(false);
                chosen.iter().for_each(|&i| in_majority[i] = true);
                count += usize::from(labeled_difference(&all, &in_majority, k).abs() >= threshold);
            });
            let total = usize::try_from(total).expect("total <= permutations, a usize");
            GroupTest { statistic, p_value: count as f64 / total as f64, permutations: total, exact: true }
        }
        None => {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let mut count = 0usize;
            for _ in 0..permutations {
                in_majority.shuffle(&mut rng);
                count += usize::from(labeled_difference(&all, &in_majority, k).abs() >= threshold);
            }
            let p_value = (1 + count) as f64 / (1 + permutations) as f64;
            GroupTest { statistic, p_value, permutations, exact: false }
        }
    };
    Some(test)
}

/// Mean of the values labeled majority minus mean of the others (`k` are majority); sums
/// run in index order.
fn labeled_difference(values: &[f64], in_majority: &[bool], k: usize) -> f64 {
    let (mut majority, mut minority) = (0.0, 0.0);
    for (value, &is_majority) in values.iter().zip(in_majority) {
        if is_majority {
            majority += value;
        } else {
            minority += value;
        }
    }
    majority / k as f64 - minority / (values.len() - k) as f64
}

/// C(n, k), or `None` when it does not fit in a u128.
fn binomial(n: usize, k: usize) -> Option<u128> {
    let k = k.min(n - k) as u128;
    let mut c: u128 = 1;
    for i in 0..k {
        c = c.checked_mul(n as u128 - i)? / (i + 1);
    }
    Some(c)
}

/// Calls `visit` with every k-subset of 0..n as sorted indices, in lexicographic order.
fn for_each_combination(n: usize, k: usize, mut visit: impl FnMut(&[usize])) {
    let mut chosen: Vec<usize> = (0..k).collect();
    loop {
        visit(&chosen);
        let Some(i) = (0..k).rev().find(|&i| chosen[i] != i + n - k) else {
            return;
        };
        chosen[i] += 1;
        for j in i + 1..k {
            chosen[j] = chosen[j - 1] + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(majority: &[&[f64]], minority: &[&[f64]]) -> ClusteredGroups {
        let clusters = |names: &[&[f64]], prefix: &str| {
            names
                .iter()
                .enumerate()
                .map(|(i, values)| NameCluster {
                    name: format!("{prefix}{i}"),
                    values: values.iter().map(|v| Some(*v)).collect(),
                })
                .collect()
        };
        ClusteredGroups { majority: clusters(majority, "a"), minority: clusters(minority, "b") }
    }

    #[test]
    fn exact_p_by_hand() {
        // Name means 1, 2 | 3, 4 (each from two samples): observed -2. Of the C(4, 2) = 6
        // relabelings, {1,2} gives -2 and {3,4} gives +2; the other four give 0 or ±1.
        let g = groups(&[&[0.5, 1.5], &[2.0, 2.0]], &[&[3.0, 3.0], &[4.0, 4.0]]);
        let test = name_permutation_test(&g, 6, 0).unwrap();
        assert_eq!(test, GroupTest { statistic: -2.0, p_value: 2.0 / 6.0, permutations: 6, exact: true });
    }

    #[test]
    fn monte_carlo_when_enumeration_exceeds_the_budget() {
        let g = groups(&[&[1.0], &[2.0], &[2.5]], &[&[3.0], &[4.0], &[5.0]]);
        let test = name_permutation_test(&g, 19, 5).unwrap();
        assert!(!test.exact && test.permutations == 19, "C(6, 3) = 20 > 19: {test:?}");
        assert!(test.p_value >= 1.0 / 20.0 && test.p_value <= 1.0);
        assert_eq!(Some(test), name_permutation_test(&g, 19, 5), "deterministic per seed");
        assert!(name_permutation_test(&g, 20, 5).unwrap().exact);
    }

    #[test]
    fn too_few_names_or_no_permutations_give_none() {
        let g = groups(&[&[1.0, 2.0]], &[&[3.0], &[4.0]]);
        assert_eq!(name_permutation_test(&g, 100, 0), None);
        let mut empty_name = groups(&[&[1.0], &[2.0]], &[&[3.0], &[4.0]]);
        empty_name.majority[1].values = vec![None];
        assert_eq!(name_permutation_test(&empty_name, 100, 0), None, "a name without values is dropped");
        assert_eq!(name_permutation_test(&groups(&[&[1.0], &[2.0]], &[&[3.0], &[4.0]]), 0, 0), None);
    }

    #[test]
    fn binomials_and_combinations() {
        assert_eq!(binomial(24, 12), Some(2_704_156));
        assert_eq!(binomial(5, 0), Some(1));
        assert_eq!(binomial(300, 150), None);
        let mut seen = Vec::new();
        for_each_combination(4, 2, |c| seen.push(c.to_vec()));
        assert_eq!(seen, [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]);
    }
}
