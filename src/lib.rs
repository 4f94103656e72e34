//! biasprune: measure, localize and prune name-based bias in Llama-family checkpoints.
//!
//! The modules follow the pipeline, each using only those listed before it:
//! `checkpoint` and `arch` read and describe a Hugging Face checkpoint; `mask` says what to
//! zero; `surgery` writes the pruned checkpoint; `cli` is the command-line front end.
//! `scenario` states use cases as data and parses answers; `metrics` computes bias
//! statistics of sampled answers; `plot` draws them as SVG.

pub mod progress;

pub mod metrics;
pub mod plot;
pub mod scenario;

pub mod cli;
