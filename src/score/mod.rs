//! Importance scores of weights for one group's prompts, and their files: calibration sets
//! from answer records, Wanda (layer by layer) and SNIP scores, per-head name attention.

mod calibration;
mod error;
mod file;
mod pipeline;
mod prefix;
mod snip;
mod stats;
mod stream;
mod wanda;

pub use calibration::{build_calibration, CalibrationSequence, CalibrationSet, CalibrationSpec, TokenCount};
pub use error::ScoreError;
pub use file::{
    checkpoint_fingerprint, head_scores_name, load_scores, load_scores_for, save_scores, Group, ScoreFileError,
    ScoreInfo, ScoreMatrix, ScoreSet, SCORES_FILE, SIDECAR_FILE,
};
pub use pipeline::{
    calibration_for_checkpoint, score_calibration, score_checkpoint, score_to_dir, Method, ScoreRequest,
};
pub use snip::{answer_loss, snip_matrix, snip_scores};
pub use stats::{BatchMasks, ScoringStats};
pub use stream::{score_layout, ScoreFileWriter, ScoreSink};
pub use wanda::{wanda_matrix, wanda_scores, wanda_scores_in_memory, wanda_scores_into, RawScores, ScoreOptions};
