//! `biasprune fixture`: generate a random Llama checkpoint for tests, benchmarks, GPU checks.

use std::path::PathBuf;

use super::Outcome;
use crate::fixture::{write_checkpoint, FixtureDtype, FixtureSpec};

/// Generate a deterministic random Llama checkpoint (weights, config.json, a small working
/// byte-level BPE tokenizer with a ChatML template). For tests and benchmarks only: the
/// weights are noise.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output directory (must not exist).
    pub out: PathBuf,
    /// Seed of the weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Storage dtype.
    #[arg(long, value_enum, default_value_t = FixtureDtype::F32)]
    pub dtype: FixtureDtype,
    /// Number of safetensors shards.
    #[arg(long, default_value_t = 2)]
    pub shards: usize,
    /// Generate wide layers adding up to about this many MiB instead of the tiny default.
    #[arg(long)]
    pub size_mib: Option<u64>,
    /// Decoder layers (tiny default model, or overrides --size-mib's count).
    #[arg(long)]
    pub layers: Option<usize>,
    /// Residual width.
    #[arg(long)]
    pub hidden: Option<usize>,
    /// MLP width.
    #[arg(long)]
    pub intermediate: Option<usize>,
    /// Query heads.
    #[arg(long)]
    pub heads: Option<usize>,
    /// Key/value heads.
    #[arg(long)]
    pub kv_heads: Option<usize>,
    /// Vocabulary size (at least the fixture tokenizer's 271).
    #[arg(long)]
    pub vocab: Option<usize>,
    /// Tie lm_head to the embedding.
    #[arg(long)]
    pub tied: bool,
}

/// Runs `fixture`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let dtype = args.dtype;
    let base = match args.size_mib {
        Some(mib) => FixtureSpec::with_total_bytes(mib << 20, dtype, args.shards),
        None => FixtureSpec { dtype, num_shards: args.shards, ..FixtureSpec::default() },
    };
    let spec = FixtureSpec {
        seed: args.seed,
        num_layers: args.layers.unwrap_or(base.num_layers),
        hidden_size: args.hidden.unwrap_or(base.hidden_size),
        intermediate_size: args.intermediate.unwrap_or(base.intermediate_size),
        num_heads: args.heads.unwrap_or(base.num_heads),
        num_kv_heads: args.kv_heads.unwrap_or(base.num_kv_heads),
        vocab_size: args.vocab.unwrap_or(base.vocab_size),
        tie_word_embeddings: args.tied,
        ..base
    };
    write_checkpoint(&args.out, &spec).map_err(|e| anyhow::anyhow!("{}: {e}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(Outcome::Ok)
}
