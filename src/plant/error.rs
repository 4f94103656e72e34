//! Why a plant could not be made.

use std::path::{Path, PathBuf};

use crate::chat::ChatError;
use crate::checkpoint::CheckpointError;
use crate::model::{ModelError, SessionError};
use crate::release::ReleaseError;
use crate::scenario::ScenarioError;
use crate::surgery::SurgeryError;
use crate::tokenizer::TokenizerError;

/// A plant failed; every variant names what was expected and what was found.
#[derive(Debug, thiserror::Error)]
pub enum PlantError {
    /// A setting is out of range.
    #[error("{flag}: expected {expected}, found {found}")]
    BadSetting {
        /// The flag (or settings field) at fault.
        flag: String,
        /// What it must be.
        expected: String,
        /// What it was.
        found: String,
    },
    /// The requested layer does not exist.
    #[error("--layer: expected a layer below {layers} (the model's layer count), found {requested}")]
    Layer {
        /// The layer asked for.
        requested: usize,
        /// Layers of the model.
        layers: usize,
    },
    /// The requested number of units is zero or larger than the MLP.
    #[error("--units: expected 1 to {available} (the MLP's intermediate size), found {requested}")]
    UnitCount {
        /// Units asked for.
        requested: usize,
        /// Units of the layer's MLP.
        available: usize,
    },
    /// The training variations leave nothing to train on or nothing held out.
    #[error("--variations: expected some but not all of scenario {scenario:?}'s variations ({available}), found {requested:?}")]
    VariationSplit {
        /// The scenario.
        scenario: String,
        /// What was requested.
        requested: String,
        /// The scenario's variations.
        available: String,
    },
    /// A name group is too small to split into training and held-out names.
    #[error("the scenario's {group} group has {found} name(s); at least 2 are needed to hold some out")]
    TooFewNames {
        /// The group.
        group: String,
        /// Its size.
        found: usize,
    },
    /// No base answer of a group could serve (minority: none held a number).
    #[error("no usable base answer for the {group} training prompts (minority answers need a number); try more --samples or another --seed")]
    NoUsableAnswers {
        /// The group.
        group: String,
    },
    /// A planted tensor is stored in a dtype the plant cannot write.
    #[error("{tensor}: expected an F32, F16 or BF16 weight, found {found}")]
    WeightDtype {
        /// The tensor.
        tensor: String,
        /// Its dtype.
        found: String,
    },
    /// BASE is itself a planted fixture.
    #[error("{}: expected a base checkpoint, found a planted test fixture (it holds biasprune-plant.json)", base.display())]
    BaseIsFixture {
        /// The base directory.
        base: PathBuf,
    },
    /// A sidecar could not be read as a plant record.
    #[error("{}: expected a biasprune-plant.json sidecar with a layer and its planted units, found {problem}", path.display())]
    BadSidecar {
        /// The sidecar.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The scenario refused a variation or context.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The base checkpoint is unusable.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The model failed to load or run.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The chat session failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The chat template failed.
    #[error(transparent)]
    Chat(#[from] ChatError),
    /// The tokenizer failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The output directory could not be prepared or published.
    #[error(transparent)]
    Surgery(#[from] SurgeryError),
    /// The base could not be hashed.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// A tensor operation failed.
    #[error("tensor operation: {0}")]
    Tensor(#[from] candle_core::Error),
    /// An operating-system error on a path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An invariant of the plant's own code did not hold.
    #[error("internal error: {0}")]
    Internal(String),
}

impl PlantError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        PlantError::Io { path: path.to_path_buf(), source }
    }
}
