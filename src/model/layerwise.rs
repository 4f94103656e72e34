//! Running a checkpoint one decoder layer at a time, so that only one layer's weights are
//! in memory: embed, then each layer in turn (loaded, run, dropped), then norm + lm_head.

use candle_core::Tensor;

use super::hooks::{LinearInputHook, NoHook};
use super::{
    AttentionContext, Batch, DecoderLayer, FinalHead, LoadOptions, Logits, ModelConfig, ModelError, Rope,
    TokenEmbedding, WeightSource,
};

/// Drives a layer-by-layer pass over one batch: hidden states of layer l + 1 are computed
/// only after layer l is done and its weights are released.
pub struct LayerwiseRunner<'a> {
    src: &'a dyn WeightSource,
    cfg: ModelConfig,
    opts: LoadOptions,
    ctx: AttentionContext,
}

impl<'a> LayerwiseRunner<'a> {
    /// Prepares the attention context of `batch`; nothing is loaded yet.
    pub fn new(
        src: &'a dyn WeightSource,
        cfg: ModelConfig,
        opts: LoadOptions,
        batch: &Batch,
    ) -> Result<Self, ModelError> {
        opts.check()?;
        let len = batch.ids().dim(1)?;
        let ctx = AttentionContext::new(
            &Rope::new(&cfg),
            batch.left_pad(),
            0,
            len,
            opts.dtype,
            &opts.device,
            opts.trainable,
        )?;
        Ok(Self { src, cfg, opts, ctx })
    }

    /// The batch's attention context (its token mask marks padding).
    pub fn context(&self) -> &AttentionContext {
        &self.ctx
    }

    /// Loads the embedding, looks up the batch's ids and drops the matrix again.
    pub fn embed(&self, batch: &Batch) -> Result<Tensor, ModelError> {
        TokenEmbedding::load(self.src, &self.cfg, &self.opts)?.forward(batch.ids())
    }

    /// Loads layer `index`, which callers may inspect or modify before running it.
    pub fn load_layer(&self, index: usize) -> Result<DecoderLayer, ModelError> {
        if index >= self.cfg.num_layers {
            return Err(ModelError::InvalidArgument(format!(
                "layer {index} requested from a model of {} layers",
                self.cfg.num_layers
            )));
        }
        DecoderLayer::load(self.src, &self.cfg, index, &self.opts)
    }

    /// Runs a loaded layer on `hidden` (rows, len, hidden), showing its inputs to `hook`.
    pub fn run_layer(
        &self,
        layer: &DecoderLayer,
        hidden: &Tensor,
        hook: Option<&mut dyn LinearInputHook>,
    ) -> Result<Tensor, ModelError> {
        let mut none = NoHook;
        let hook: &mut dyn LinearInputHook = match hook {
            Some(hook) => hook,
            None => &mut none,
        };
        layer.forward(hidden, &self.ctx, None, hook)
    }

    /// Loads, runs and drops layer `index`.
    pub fn layer(
        &self,
        index: usize,
        hidden: &Tensor,
        hook: Option<&mut dyn LinearInputHook>,
    ) -> Result<Tensor, ModelError> {
        let layer = self.load_layer(index)?;
        self.run_layer(&layer, hidden, hook)
    }

    /// Loads the final norm and lm_head and returns F32 logits.
    pub fn finish(&self, hidden: &Tensor, which: Logits) -> Result<Tensor, ModelError> {
        FinalHead::load(self.src, &self.cfg, &self.opts, None)?.forward(hidden, which, self.opts.trainable)
    }
}
