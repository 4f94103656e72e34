//! biasprune: measure, localize and prune name-based bias in Llama-family checkpoints.
//!
//! The modules follow the pipeline, each using only those listed before it:
//! `checkpoint` and `arch` read and describe a Hugging Face checkpoint; `mask` says what to
//! zero; `surgery` writes the pruned checkpoint; `cli` is the command-line front end.

pub mod progress;

pub mod sign;
pub mod verify;

pub mod cli;
