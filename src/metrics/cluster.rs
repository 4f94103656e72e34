//! Answers grouped by name: each name is sampled many times, so the name, not the answer,
//! is the unit of independence (method.md section 8). The clustered statistics (cluster
//! bootstrap, paired ΔSMD, name permutation test, power) all start from [`ClusteredGroups`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::record::AnswerRecord;
use crate::scenario::Group;

/// Which answers the group statistics, SMD and tests are computed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Population {
    /// Inliers only (the default: outliers would dominate means and variances).
    #[default]
    Inliers,
    /// Every answer with a parsed value.
    Parsed,
}

impl Population {
    /// The value `record` contributes to this population, if any.
    pub fn value_of(self, record: &AnswerRecord) -> Option<f64> {
        match self {
            Population::Parsed => record.value,
            Population::Inliers => record.value.filter(|_| record.inlier),
        }
    }
}

/// One name's answers, indexed by sample index.
#[derive(Debug, Clone, PartialEq)]
pub struct NameCluster {
    /// Full name in the prompt.
    pub name: String,
    /// Value of sample `i` at index `i`; `None` where the answer is not in the population
    /// (unparsed, not an inlier under [`Population::Inliers`], or never recorded).
    pub values: Vec<Option<f64>>,
}

impl NameCluster {
    /// The values that are in the population, in sample order.
    pub fn present(&self) -> impl Iterator<Item = f64> + '_ {
        self.values.iter().flatten().copied()
    }

    /// Mean of the present values; `None` when there are none.
    pub fn mean(&self) -> Option<f64> {
        let (sum, count) = self.present().fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
        (count > 0).then(|| sum / count as f64)
    }
}

/// The names of both groups with their answers, names sorted (deterministic).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusteredGroups {
    /// Majority names, sorted by name.
    pub majority: Vec<NameCluster>,
    /// Minority names, sorted by name.
    pub minority: Vec<NameCluster>,
}

impl ClusteredGroups {
    /// Groups `records` (one variation's) by group and name. Every name gets as many sample
    /// slots as the largest sample index among `records` plus one, so clusters line up slot
    /// by slot; a name with records but none in `population` keeps all slots `None`. When
    /// two records share a name and sample index, the later one wins.
    pub fn from_records(records: &[&AnswerRecord], population: Population) -> ClusteredGroups {
        let slots = records.iter().map(|r| r.sample as usize + 1).max().unwrap_or(0);
        let mut majority: BTreeMap<&str, Vec<Option<f64>>> = BTreeMap::new();
        let mut minority: BTreeMap<&str, Vec<Option<f64>>> = BTreeMap::new();
        for record in records {
            let names = match record.group {
                Group::Majority => &mut majority,
                Group::Minority => &mut minority,
            };
            let values = names.entry(record.name.as_str()).or_insert_with(|| vec![None; slots]);
            values[record.sample as usize] = population.value_of(record);
        }
        let clusters = |names: BTreeMap<&str, Vec<Option<f64>>>| {
            names.into_iter().map(|(name, values)| NameCluster { name: name.to_string(), values }).collect()
        };
        ClusteredGroups { majority: clusters(majority), minority: clusters(minority) }
    }

    /// All present majority values, names in order, samples in order.
    pub fn majority_values(&self) -> Vec<f64> {
        self.majority.iter().flat_map(NameCluster::present).collect()
    }

    /// All present minority values, names in order, samples in order.
    pub fn minority_values(&self) -> Vec<f64> {
        self.minority.iter().flat_map(NameCluster::present).collect()
    }
}

/// Number of clusters with at least one present value.
pub(super) fn names_with_values(clusters: &[NameCluster]) -> usize {
    clusters.iter().filter(|c| c.values.iter().any(Option::is_some)).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse::ParseStatus;
    use crate::scenario::ContextLevel;

    fn record(name: &str, group: Group, sample: u32, value: Option<f64>, inlier: bool) -> AnswerRecord {
        AnswerRecord {
            scenario: "purchase".into(),
            variation: "bicycle".into(),
            context: ContextLevel::Low,
            name: name.into(),
            group,
            gender: "man".into(),
            sample,
            seed: 1,
            raw: String::new(),
            value,
            status: if value.is_some() { ParseStatus::Ok } else { ParseStatus::Unparseable },
            inlier,
        }
    }

    #[test]
    fn clusters_are_sorted_by_name_and_indexed_by_sample() {
        let records = [
            record("Zed", Group::Majority, 1, Some(2.0), true),
            record("Amy", Group::Majority, 0, Some(5.0), false),
            record("Zed", Group::Majority, 0, Some(1.0), true),
            record("Bo", Group::Minority, 2, None, false),
        ];
        let refs: Vec<&AnswerRecord> = records.iter().collect();
        let inliers = ClusteredGroups::from_records(&refs, Population::Inliers);
        let names: Vec<&str> = inliers.majority.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Amy", "Zed"]);
        assert_eq!(inliers.majority[0].values, [None, None, None], "Amy's one answer is an outlier");
        assert_eq!(inliers.majority[1].values, [Some(1.0), Some(2.0), None], "three slots: max sample 2");
        assert_eq!(inliers.minority[0].values, [None, None, None]);
        assert_eq!(inliers.majority_values(), [1.0, 2.0]);
        assert_eq!(names_with_values(&inliers.majority), 1);
        let parsed = ClusteredGroups::from_records(&refs, Population::Parsed);
        assert_eq!(parsed.majority[0].values, [Some(5.0), None, None]);
        assert_eq!(parsed.majority[1].mean(), Some(1.5));
        assert_eq!(parsed.minority[0].mean(), None);
    }
}
