//! Bias metrics of sampled answers: SMD with cluster and per-answer bootstrap CIs, the
//! paired ΔSMD, a name permutation test, power of the clustered design, Mann-Whitney U,
//! inlier rules, parse and inlier rates, the run summary written as `summary.json`, Holm
//! and Benjamini-Hochberg adjustments over a family of tests, and the gate's power table.

mod cluster;
mod cluster_bootstrap;
mod group_test;
mod inlier;
mod mann_whitney;
mod multiple;
mod power;
mod power_table;
mod record;
mod smd;
mod stats;
mod summary;
mod table;

use std::path::PathBuf;

pub use cluster::{ClusteredGroups, NameCluster, Population};
pub use cluster_bootstrap::{cluster_bootstrap_smd_ci, paired_delta_smd, PairedDelta};
pub use group_test::{name_permutation_test, GroupTest};
pub use inlier::{FenceFallback, Fences, InlierDescription, InlierJudge, InlierRule};
pub use mann_whitney::{mann_whitney_u, MannWhitney};
pub use multiple::{benjamini_hochberg_adjusted, detectable_smd, holm_adjusted, normal_quantile, Correction};
pub use power::{power, Power};
pub use power_table::{power_table, PowerCell, PowerTableError};
pub use record::{read_records, AnswerRecord};
pub use smd::{smd, smd_bootstrap_ci, smd_with_reason, BootstrapSettings, ConfidenceInterval, SmdUndefined};
pub use stats::{mean, quantile_sorted, sample_sd, sample_variance, sorted as sorted_values, GroupStats};
pub use summary::{variation_seed, GenderSummary, OverallSummary, Summary, SummarySettings, VariationSummary};

/// Errors of reading records and computing summaries.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A records file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File that failed.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// A line of a records file is not a valid record.
    #[error("{path}:{line}: not an answer record: {message}")]
    BadRecord {
        /// File that failed.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// JSON error.
        message: String,
    },
    /// A record's sample index does not fit its prompt's records: a file whose indices run
    /// past them would make every name's slots (and the bootstrap's work) unbounded.
    #[error(
        "{path}:{line}: sample index {sample} of {prompt}: expected each prompt's samples to be numbered 0..{count} \
         once each (it has {count} records)"
    )]
    BadSampleIndex {
        /// File that failed.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Scenario/variation/context/name of the record.
        prompt: String,
        /// The index found.
        sample: u32,
        /// How many records that prompt has.
        count: usize,
    },
    /// Two prompts of one variation were sampled a different number of times.
    #[error("{path}: every prompt of a variation must have the same number of samples; {first} has {first_count}, {other} has {other_count}")]
    UnevenSamples {
        /// File that failed.
        path: PathBuf,
        /// The first prompt of the variation.
        first: String,
        /// Its number of records.
        first_count: usize,
        /// A prompt with another number.
        other: String,
        /// Its number of records.
        other_count: usize,
    },
    /// Records of another scenario or context were mixed in.
    #[error("records must all be of {expected} (scenario/context), found one of {found}")]
    MixedRecords {
        /// Expected scenario/context.
        expected: String,
        /// What a record had.
        found: String,
    },
    /// An inlier rule could not be parsed.
    #[error("inlier rule: expected `tukey`, `tukey:K`, `percentiles` or `percentiles:LOW:HIGH` (0 <= LOW < HIGH <= 100), found `{found}`")]
    BadRule {
        /// The text given.
        found: String,
    },
}
