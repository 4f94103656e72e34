//! biasprune: measure, localize and prune name-based bias in Llama-family checkpoints.
//!
//! The modules follow the pipeline, each using only those listed before it:
//! `checkpoint` and `arch` read and describe a Hugging Face checkpoint; `mask` says what to
//! zero; `surgery` writes the pruned checkpoint; `cli` is the command-line front end.
//! `model` runs Llama-family checkpoints (forward, hooks, gradients, generation).
//! `fixture` generates random checkpoints for tests and benchmarks.

pub mod checkpoint;
pub mod fsutil;
pub mod model;
pub mod progress;

pub mod arch;

pub mod fixture;
pub mod inspect;
pub mod score;

pub mod mask;
pub mod surgery;

pub mod cli;
