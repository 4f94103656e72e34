//! Why a prune job could not run or finish: one variant per cause, the typed error of the
//! library call that failed kept inside.

use std::path::{Path, PathBuf};

/// A prune job could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The pipeline settings are inconsistent or incomplete.
    #[error("{0}")]
    Spec(String),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The base checkpoint is unusable.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// The base's architecture is unsupported.
    #[error(transparent)]
    Arch(#[from] crate::arch::ArchError),
    /// A scenario is missing or malformed.
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    /// Statistics or records failed.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// The device cannot be used.
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    /// Evaluation failed.
    #[error(transparent)]
    Eval(Box<crate::eval::EvalError>),
    /// The model could not be loaded.
    #[error(transparent)]
    Session(Box<crate::model::SessionError>),
    /// Scoring failed.
    #[error(transparent)]
    Score(Box<crate::score::ScoreError>),
    /// A score file could not be read.
    #[error(transparent)]
    ScoreFile(#[from] crate::score::ScoreFileError),
    /// The mask could not be built.
    #[error(transparent)]
    Regime(Box<crate::mask::RegimeError>),
    /// The mask could not be saved or read.
    #[error(transparent)]
    MaskFile(#[from] crate::mask::MaskFileError),
    /// The mask does not fit the checkpoint.
    #[error(transparent)]
    MaskPlan(#[from] crate::mask::PlanError),
    /// The sweep failed.
    #[error(transparent)]
    Sweep(Box<crate::sweep::SweepError>),
    /// Writing the release failed.
    #[error(transparent)]
    Release(Box<crate::release::ReleaseError>),
    /// A chart (the sweep plot) could not be drawn.
    #[error(transparent)]
    Plot(#[from] crate::plot::PlotError),
    /// The report could not be drawn.
    #[error("report: {0}")]
    Report(#[source] crate::report::ReportError),
    /// A file an earlier stage left in the work directory is not what that stage writes.
    #[error("{}: {reason}", path.display())]
    CorruptWorkFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No sweep point kept the model's answers usable.
    #[error("{0}")]
    NoAcceptablePoint(String),
}

/// Each cause of a failed masked load becomes the variant the pipeline already reports it by.
impl From<crate::mask::MaskedLoadError> for PipelineError {
    fn from(e: crate::mask::MaskedLoadError) -> Self {
        use crate::mask::MaskedLoadError;
        match e {
            MaskedLoadError::Mask(e) => PipelineError::MaskFile(e),
            MaskedLoadError::Arch(e) => PipelineError::Arch(e),
            MaskedLoadError::Plan(e) => PipelineError::MaskPlan(e),
            MaskedLoadError::Io { path, source } => PipelineError::Io { path, source },
            MaskedLoadError::Session(e) => PipelineError::Session(e),
        }
    }
}

impl From<crate::eval::EvalError> for PipelineError {
    fn from(e: crate::eval::EvalError) -> Self {
        PipelineError::Eval(Box::new(e))
    }
}

impl From<crate::sweep::SweepError> for PipelineError {
    fn from(e: crate::sweep::SweepError) -> Self {
        PipelineError::Sweep(Box::new(e))
    }
}

impl From<crate::release::ReleaseError> for PipelineError {
    fn from(e: crate::release::ReleaseError) -> Self {
        PipelineError::Release(Box::new(e))
    }
}

impl From<crate::score::ScoreError> for PipelineError {
    fn from(e: crate::score::ScoreError) -> Self {
        PipelineError::Score(Box::new(e))
    }
}

impl From<crate::mask::RegimeError> for PipelineError {
    fn from(e: crate::mask::RegimeError) -> Self {
        PipelineError::Regime(Box::new(e))
    }
}

impl From<crate::model::SessionError> for PipelineError {
    fn from(e: crate::model::SessionError) -> Self {
        PipelineError::Session(Box::new(e))
    }
}

impl PipelineError {
    pub(super) fn io(path: &Path, source: std::io::Error) -> Self {
        PipelineError::Io { path: path.to_path_buf(), source }
    }
}
