//! The whole Llama model in memory: batches of left-padded token ids, a full forward pass
//! (with hooks and optional gradients) and cached incremental steps for generation.

use std::path::Path;

use candle_core::{Device, Tensor};

use super::hooks::{LinearInputHook, NoHook};
use super::{
    AttentionContext, DecoderLayer, FinalHead, KvCache, LoadOptions, Logits, ModelConfig, ModelError, Rope,
    TokenEmbedding, WeightSource,
};
use crate::arch::Component;
use crate::checkpoint::Checkpoint;

/// Token ids (rows, len) with the number of left-padding tokens of each row.
#[derive(Debug, Clone)]
pub struct Batch {
    ids: Tensor,
    left_pad: Vec<usize>,
}

impl Batch {
    /// Left-pads `sequences` with `pad_id` to the longest one.
    pub fn left_padded<S: AsRef<[u32]>>(sequences: &[S], pad_id: u32, device: &Device) -> Result<Self, ModelError> {
        let len = sequences.iter().map(|s| s.as_ref().len()).max().unwrap_or(0);
        if len == 0 {
            return Err(ModelError::InvalidArgument("a batch needs a non-empty sequence".into()));
        }
        let mut ids = Vec::with_capacity(sequences.len() * len);
        let mut left_pad = Vec::with_capacity(sequences.len());
        for seq in sequences {
            let seq = seq.as_ref();
            if seq.is_empty() {
                return Err(ModelError::InvalidArgument("a batch row is empty".into()));
            }
            left_pad.push(len - seq.len());
            ids.extend(std::iter::repeat_n(pad_id, len - seq.len()));
            ids.extend_from_slice(seq);
        }
        let ids = Tensor::from_vec(ids, (sequences.len(), len), device)?;
        Ok(Self { ids, left_pad })
    }

    /// The ids (rows, len), U32.
    pub fn ids(&self) -> &Tensor {
        &self.ids
    }

    /// Left padding of each row.
    pub fn left_pad(&self) -> &[usize] {
        &self.left_pad
    }
}

/// A Llama-family model with all layers in memory.
#[derive(Debug, Clone)]
pub struct Llama {
    cfg: ModelConfig,
    opts: LoadOptions,
    rope: Rope,
    embed_tokens: TokenEmbedding,
    layers: Vec<DecoderLayer>,
    head: FinalHead,
}

impl Llama {
    /// Loads every tensor the model needs from `src`.
    pub fn load(src: &dyn WeightSource, cfg: ModelConfig, opts: LoadOptions) -> Result<Self, ModelError> {
        opts.check()?;
        let embed_tokens = TokenEmbedding::load(src, &cfg, &opts)?;
        let layers =
            (0..cfg.num_layers).map(|index| DecoderLayer::load(src, &cfg, index, &opts)).collect::<Result<_, _>>()?;
        let head = FinalHead::load(src, &cfg, &opts, Some(&embed_tokens))?;
        Ok(Self { rope: Rope::new(&cfg), cfg, opts, embed_tokens, layers, head })
    }

    /// Loads a Hugging Face checkpoint directory (config.json + safetensors).
    pub fn load_dir(dir: &Path, opts: LoadOptions) -> Result<Self, ModelError> {
        let ckpt = Checkpoint::open(dir)?;
        Self::load_checkpoint(&ckpt, opts)
    }

    /// Loads an opened checkpoint, reading its config.json.
    pub fn load_checkpoint(ckpt: &Checkpoint, opts: LoadOptions) -> Result<Self, ModelError> {
        let cfg = crate::model::config_from_json(ckpt.config(), ckpt.dir())?;
        Self::load(ckpt, cfg, opts)
    }

    /// The resolved configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The options the model was loaded with.
    pub fn options(&self) -> &LoadOptions {
        &self.opts
    }

    /// The decoder layers in order.
    pub fn layers(&self) -> &[DecoderLayer] {
        &self.layers
    }

    /// The weight of `projection` in `layer` (a `Var` when loaded trainable).
    pub fn projection_weight(&self, layer: usize, projection: Component) -> Option<&Tensor> {
        self.layers.get(layer).map(|l| l.projection_weight(projection))
    }

    /// Full forward pass without a cache: logits (F32) at the last or every position.
    /// The hook sees every linear input; ops are differentiable when loaded trainable.
    pub fn forward(
        &self,
        batch: &Batch,
        hook: Option<&mut dyn LinearInputHook>,
        which: Logits,
    ) -> Result<Tensor, ModelError> {
        let mut none = NoHook;
        let hook: &mut dyn LinearInputHook = match hook {
            Some(hook) => hook,
            None => &mut none,
        };
        let len = batch.ids.dim(1)?;
        let ctx = self.context(batch.left_pad(), 0, len)?;
        let mut x = self.embed_tokens.forward(batch.ids())?;
        for layer in &self.layers {
            x = layer.forward(&x, &ctx, None, hook)?;
        }
        self.head.forward(&x, which, self.opts.trainable)
    }

    /// An empty cache for rows with `left_pad` padding and room for `capacity` positions.
    pub fn new_cache(&self, left_pad: Vec<usize>, capacity: usize) -> Result<KvCache, ModelError> {
        KvCache::new(&self.cfg, left_pad, capacity, self.opts.dtype, &self.opts.device)
    }

    /// Runs `ids` (rows, new) after what `cache` holds (the prompt on the first call, one
    /// token per row when decoding), appending their keys and values; padding comes from
    /// the cache.
    pub fn step(&self, ids: &Tensor, cache: &mut KvCache, which: Logits) -> Result<Tensor, ModelError> {
        let (rows, len) = ids.dims2()?;
        if rows != cache.rows() {
            return Err(ModelError::InvalidArgument(format!(
                "{rows} rows of ids for a KV cache of {} rows",
                cache.rows()
            )));
        }
        let ctx = self.context(cache.left_pad(), cache.len(), len)?;
        let mut x = self.embed_tokens.forward(ids)?;
        for layer in &self.layers {
            x = layer.forward(&x, &ctx, cache.layer_mut(layer.index()), &mut NoHook)?;
        }
        self.head.forward(&x, which, false)
    }

    fn context(&self, left_pad: &[usize], past: usize, len: usize) -> Result<AttentionContext, ModelError> {
        AttentionContext::new(&self.rope, left_pad, past, len, self.opts.dtype, &self.opts.device, self.opts.trainable)
    }
}
