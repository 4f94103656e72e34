//! Importance scores of weights for one group's prompts, and their files.

mod file;

pub use file::{
    checkpoint_fingerprint, head_scores_name, load_scores, save_scores, Group, ScoreFileError, ScoreInfo, ScoreMatrix,
    ScoreSet, SCORES_FILE, SIDECAR_FILE,
};
