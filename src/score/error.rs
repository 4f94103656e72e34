//! Errors of calibration-set building and weight scoring.

use std::path::PathBuf;

use crate::chat::ChatError;
use crate::model::ModelError;
use crate::scenario::ScenarioError;
use crate::tokenizer::TokenizerError;

/// Why a calibration set could not be built or a checkpoint could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// No record matched the requested scenario, group and variations.
    #[error("no answer records for scenario {scenario:?}, group {group}, variations {variations}: {detail}")]
    NoRecords {
        /// Scenario asked for.
        scenario: String,
        /// Group asked for.
        group: String,
        /// Variations asked for ("all" when unfiltered).
        variations: String,
        /// What the records did contain.
        detail: String,
    },
    /// A record does not match its scenario (unknown name or variation).
    #[error("record {index} ({name}, {variation}): {reason}")]
    BadRecord {
        /// 0-based position among the selected records.
        index: usize,
        /// The record's name.
        name: String,
        /// The record's variation.
        variation: String,
        /// What is wrong.
        reason: String,
    },
    /// The chat template does not render a prompt that the full conversation extends.
    #[error("chat template: the rendered conversation does not start with the rendered prompt of {name:?}; cannot tell prompt from answer tokens")]
    TemplatePrefix {
        /// The record's name.
        name: String,
    },
    /// Invalid scoring options.
    #[error("{0}")]
    InvalidArgument(String),
    /// A scenario error (unknown variation or context).
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The chat template failed.
    #[error(transparent)]
    Chat(#[from] ChatError),
    /// The tokenizer failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A tensor operation failed.
    #[error("tensor operation: {0}")]
    Candle(#[from] candle_core::Error),
    /// The records file could not be read.
    #[error(transparent)]
    Records(#[from] crate::metrics::MetricsError),
    /// The checkpoint could not be opened.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// A score file could not be written.
    #[error(transparent)]
    File(#[from] super::ScoreFileError),
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}
