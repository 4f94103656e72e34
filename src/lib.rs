//! biasprune: measure, localize and prune name-based bias in Llama-family checkpoints.
//!
//! The modules follow the pipeline, each using only those listed before it:
//! - `fsutil` opens untrusted files safely and writes atomically; `fsutil::digest` is the one
//!   sha256 hasher (single files, maps, and directories on a parallel largest-first queue,
//!   with the ignore list of signing and an explicit rule for symbolic links);
//! - `checkpoint` reads a Hugging Face checkpoint and `arch` describes it: the one owner of
//!   the Llama-family vocabulary (config.json's only mirror with its defaults and checks,
//!   every weight's shape, the components and their weight names); `hub` finds a
//!   checkpoint named by Hub id in the Hugging Face cache (downloading it when allowed);
//!   `gguf` imports llama.cpp files as checkpoints; `fixture` generates random ones for
//!   tests and benchmarks;
//! - `tokenizer` and `chat` turn chat messages into token ids; `model` runs Llama-family
//!   checkpoints on arch's resolved config (forward, hooks, gradients, layer by layer,
//!   batched generation);
//! - `scenario` states use cases as data and parses answers; `metrics` computes bias
//!   statistics of sampled answers; `plot` draws them as SVG;
//! - `eval` runs resumable evaluations; `score` computes per-group weight importance;
//!   `audit` evaluates every (scenario, variation, context) cell and corrects the tests
//!   for multiplicity;
//! - `mask` turns scores into what to zero (and applies it in memory: `load_masked`, used by
//!   eval, sweep and prune), `analyze` shows
//!   where it sits, `surgery` writes the pruned checkpoint, `sweep` searches (p, q);
//! - `manifest` records what was pruned and why, and owns the release layout (file and
//!   evidence folder names, `manifest::layout`) and the schema; `sign` and `verify` implement the OpenSSF
//!   model-signing format and the auditor's checks; `report` renders a run's evidence as
//!   one self-contained HTML page; `release` writes a signed, documented pruned checkpoint
//!   in one step; `plant` writes a checkpoint with a known disparity planted (a positive
//!   control for the pipeline, never to be deployed); `pipeline` runs the whole job (`biasprune prune`) with a work directory
//!   keyed by input digests;
//! - `device` selects CPU or CUDA and `devcheck` measures parity and speed on a device;
//! - `cli` is the command-line front end, behind the default `cli` feature: the library
//!   alone (`cargo build --release --lib --no-default-features`) depends on neither clap,
//!   anyhow, indicatif nor env_logger, and reports progress through `progress::Progress`.

pub mod checkpoint;
pub mod device;
pub mod fsutil;
pub mod hub;
pub mod progress;

pub mod arch;
pub mod fixture;
pub mod gguf;
pub mod inspect;

pub mod chat;
pub mod devcheck;
pub mod model;
pub mod tokenizer;

pub mod metrics;
pub mod plot;
pub mod scenario;

pub mod eval;
pub mod score;

pub mod audit;

pub mod analyze;
pub mod mask;
pub mod surgery;
pub mod sweep;

pub mod manifest;
pub mod sign;
pub mod verify;

pub mod report;

pub mod release;

pub mod plant;

pub mod pipeline;

#[cfg(feature = "cli")]
pub mod cli;
