//! Rough power of a clustered design: the intra-name correlation (ICC), the design effect,
//! the effective sample size per group and the smallest SMD the design detects.
//!
//! Formulas (one-way ANOVA over names, pooled across both groups with group means removed;
//! only names with values count; n_i values of name i, mean y_i; group g has N_g values and
//! mean y_g; K names and N values in all):
//!
//! - MSW = sum_g sum_i sum_j (y_ij - y_i)^2 / (N - K)
//! - MSB = sum_g sum_i n_i (y_i - y_g)^2 / (K - 2)
//! - n0 = sum_g (N_g - sum_i n_i^2 / N_g) / (K - 2)  (the mean cluster size, adjusted for
//!   unequal sizes; it equals m when every name has m values)
//! - ICC = (MSB - MSW) / (MSB + (n0 - 1) MSW), clamped to [0, 1]
//! - DE = 1 + (m_bar - 1) ICC with m_bar = N / K
//! - n_eff = N_smaller_group / DE
//! - MDES = 2.8 sqrt(2 / n_eff): the SMD detectable with 80% power at 5% two-sided
//!   (2.8 = z_0.975 + z_0.8 = 1.96 + 0.84).

use serde::{Deserialize, Serialize};

use super::cluster::{ClusteredGroups, NameCluster};

/// Power figures of one variation's clustered design (formulas in the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Power {
    /// Intra-name correlation of answers, one-way ANOVA estimator, clamped to [0, 1].
    pub icc: f64,
    /// Design effect 1 + (m_bar - 1) ICC: how much clustering inflates the variance.
    pub design_effect: f64,
    /// Values of the smaller group divided by the design effect.
    pub effective_per_group: f64,
    /// 2.8 sqrt(2 / effective_per_group): SMD detectable with 80% power at 5% two-sided.
    pub minimum_detectable_smd: f64,
}

/// The ICC, design effect, effective size and minimum detectable SMD of `groups`. `None`
/// when a group has fewer than two names with values, no name has two values, or the
/// ICC is undefined (every value equal).
pub fn power(groups: &ClusteredGroups) -> Option<Power> {
    let (mut within, mut between, mut adjusted) = (0.0, 0.0, 0.0);
    let (mut names, mut values, mut smaller) = (0usize, 0usize, usize::MAX);
    for clusters in [&groups.majority, &groups.minority] {
        let clusters: Vec<Vec<f64>> =
            clusters.iter().map(|c| NameCluster::present(c).collect::<Vec<f64>>()).filter(|v| !v.is_empty()).collect();
        if clusters.len() < 2 {
            return None;
        }
        let group_n: usize = clusters.iter().map(Vec::len).sum();
        let group_mean = clusters.iter().flatten().sum::<f64>() / group_n as f64;
        let mut squared_sizes = 0.0;
        for cluster in &clusters {
            let n = cluster.len() as f64;
            let name_mean = cluster.iter().sum::<f64>() / n;
            within += cluster.iter().map(|v| (v - name_mean) * (v - name_mean)).sum::<f64>();
            between += n * (name_mean - group_mean) * (name_mean - group_mean);
            squared_sizes += n * n;
        }
        adjusted += group_n as f64 - squared_sizes / group_n as f64;
        names += clusters.len();
        values += group_n;
        smaller = smaller.min(group_n);
    }
    let (df_within, df_between) = (values - names, names - 2);
    if df_within == 0 {
        return None;
    }
    let ms_within = within / df_within as f64;
    let ms_between = between / df_between as f64;
    let n0 = adjusted / df_between as f64;
    let denominator = ms_between + (n0 - 1.0) * ms_within;
    if denominator.is_nan() || denominator <= 0.0 {
        return None;
    }
    let icc = ((ms_between - ms_within) / denominator).clamp(0.0, 1.0);
    let design_effect = 1.0 + (values as f64 / names as f64 - 1.0) * icc;
    let effective_per_group = smaller as f64 / design_effect;
    let minimum_detectable_smd = 2.8 * (2.0 / effective_per_group).sqrt();
    Some(Power { icc, design_effect, effective_per_group, minimum_detectable_smd })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(majority: &[&[f64]], minority: &[&[f64]]) -> ClusteredGroups {
        let clusters = |names: &[&[f64]]| {
            names
                .iter()
                .enumerate()
                .map(|(i, v)| NameCluster { name: format!("n{i}"), values: v.iter().map(|x| Some(*x)).collect() })
                .collect()
        };
        ClusteredGroups { majority: clusters(majority), minority: clusters(minority) }
    }

    #[test]
    fn icc_by_hand() {
        // Majority names 0,2 (mean 1) and 4,6 (mean 5), group mean 3; minority 10,12 and
        // 14,16 likewise shifted by 10. SSW = 4 * 2 = 8 over 8 - 4 = 4 df: MSW = 2. SSB per
        // group = 2 (1 - 3)^2 + 2 (5 - 3)^2 = 16, 32 in all, over 4 - 2 = 2 df: MSB = 16.
        // n0 = 2, so ICC = (16 - 2) / (16 + 2) = 7/9 and DE = 1 + 7/9.
        let g = groups(&[&[0.0, 2.0], &[4.0, 6.0]], &[&[10.0, 12.0], &[14.0, 16.0]]);
        let p = power(&g).unwrap();
        assert!((p.icc - 7.0 / 9.0).abs() < 1e-12, "{p:?}");
        assert!((p.design_effect - (1.0 + 7.0 / 9.0)).abs() < 1e-12);
        assert!((p.effective_per_group - 4.0 / (16.0 / 9.0)).abs() < 1e-12);
        assert!((p.minimum_detectable_smd - 2.8 * (2.0 / 2.25f64).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn no_name_effect_clamps_to_zero_and_degenerate_designs_have_none() {
        // Name means all equal within groups: MSB = 0 < MSW, ICC clamps to 0, DE = 1.
        let g = groups(&[&[0.0, 2.0], &[2.0, 0.0]], &[&[5.0, 7.0], &[7.0, 5.0]]);
        let p = power(&g).unwrap();
        assert_eq!((p.icc, p.design_effect, p.effective_per_group), (0.0, 1.0, 4.0));
        assert_eq!(power(&groups(&[&[1.0, 1.0], &[1.0, 1.0]], &[&[2.0, 2.0], &[2.0, 2.0]])), None, "all equal");
        assert_eq!(power(&groups(&[&[1.0], &[2.0]], &[&[3.0], &[4.0]])), None, "one value per name");
        assert_eq!(power(&groups(&[&[1.0, 2.0]], &[&[3.0, 1.0], &[4.0, 2.0]])), None, "one majority name");
    }
}
