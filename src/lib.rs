//! biasprune: measure, localize and prune name-based bias in Llama-family checkpoints.
//!
//! The modules follow the pipeline, each using only those listed before it:
//! `checkpoint` and `arch` read and describe a Hugging Face checkpoint; `mask` says what to
//! zero; `surgery` writes the pruned checkpoint; `cli` is the command-line front end.
//! `fixture` generates random checkpoints for tests and benchmarks. `gguf` imports llama.cpp
//! files as checkpoints; `tokenizer` and `chat` turn chat messages into token ids.

pub mod checkpoint;
pub mod fsutil;
pub mod progress;

pub mod arch;

pub mod fixture;
pub mod inspect;
pub mod score;

pub mod mask;
pub mod surgery;

pub mod chat;
pub mod gguf;
pub mod tokenizer;

pub mod cli;
