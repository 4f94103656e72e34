//! Llama-family forward pass on candle: configuration, weight loading, decoder layers with
//! linear-input hooks, a differentiable path, layer-by-layer execution, KV cache and
//! batched sampling.
//!
//! Module map: `config` resolves config.json through `arch` and checks what the forward
//! supports; `weights` reads tensors from a checkpoint;
//! `rope`, `attention` and `layer` build one decoder layer; `llama` stacks them;
//! `layerwise` runs a checkpoint one layer at a time; `cache` keeps keys and values;
//! `hooks` observes linear inputs; `sampling` and `generate` produce answers.

mod attention;
mod cache;
mod config;
mod error;
mod generate;
mod hooks;
mod layer;
mod layerwise;
mod linear;
mod llama;
mod rope;
mod sampling;
mod session;
mod weights;

pub use attention::AttentionContext;
pub use cache::{KvCache, LayerKv};
pub use config::{config_from_dir, config_from_json, ModelConfig};
pub use error::ModelError;
pub use generate::{generate, generate_keyed, Completion, FinishReason, GenerateOptions};
pub use hooks::{AttentionProbs, InputSite, LinearInput, LinearInputHook, NoHook, SquaredNormStats};
pub use layer::{DecoderLayer, FinalHead, Logits, TokenEmbedding};
pub use layerwise::LayerwiseRunner;
pub use linear::{Linear, RmsNorm};
pub use llama::{Batch, Llama};
pub use rope::Rope;
pub use sampling::{Sampler, SamplingParams};
pub use session::{ChatSession, SamplingSettings, SessionError};
pub use weights::{LoadOptions, WeightSource};
