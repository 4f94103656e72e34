//! The building blocks of a Llama checkpoint, each loadable on its own: token embedding,
//! decoder layer (attention + MLP + norms), and the final norm with lm_head.

use candle_core::{DType, Tensor};

use super::attention::{AttentionContext, SelfAttention};
use super::hooks::{InputSite, LinearInput, LinearInputHook};
use super::linear::{Linear, RmsNorm};
use super::{LayerKv, LoadOptions, ModelConfig, ModelError, WeightSource};
use crate::arch::Component;

/// The `mlp` block: down_proj(silu(gate_proj(x)) * up_proj(x)).
#[derive(Debug, Clone)]
pub struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    fn forward(
        &self,
        layer: usize,
        x: &Tensor,
        token_mask: Option<&Tensor>,
        hook: &mut dyn LinearInputHook,
    ) -> Result<Tensor, ModelError> {
        hook.observe(&LinearInput { layer, site: InputSite::GateUpInput, x, token_mask })?;
        let h = (self.gate_proj.forward(x)?.silu()? * self.up_proj.forward(x)?)?;
        hook.observe(&LinearInput { layer, site: InputSite::DownProjInput, x: &h, token_mask })?;
        self.down_proj.forward(&h)
    }
}

/// One decoder layer, `model.layers.{index}`.
#[derive(Debug, Clone)]
pub struct DecoderLayer {
    index: usize,
    input_layernorm: RmsNorm,
    self_attn: SelfAttention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

impl DecoderLayer {
    /// Loads the weights of layer `index` only.
    pub fn load(
        src: &dyn WeightSource,
        cfg: &ModelConfig,
        index: usize,
        opts: &LoadOptions,
    ) -> Result<Self, ModelError> {
        let prefix = format!("model.layers.{index}");
        let linear = |c: Component| Linear::load(src, &c.weight_name(index), cfg.linear_shape(c), opts);
        let projections = [linear(Component::Q)?, linear(Component::K)?, linear(Component::V)?, linear(Component::O)?];
        Ok(Self {
            index,
            input_layernorm: RmsNorm::load(src, &format!("{prefix}.input_layernorm.weight"), cfg, opts)?,
            self_attn: SelfAttention::new(cfg, projections),
            post_attention_layernorm: RmsNorm::load(
                src,
                &format!("{prefix}.post_attention_layernorm.weight"),
                cfg,
                opts,
            )?,
            mlp: Mlp {
                gate_proj: linear(Component::Gate)?,
                up_proj: linear(Component::Up)?,
                down_proj: linear(Component::Down)?,
            },
        })
    }

    /// The layer's index in the checkpoint.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The weight (out, in) of one projection; a `Var` when loaded trainable, so
    /// `grads.get(weight)` finds its gradient after `backward`.
    pub fn projection_weight(&self, projection: Component) -> &Tensor {
        let linear = match projection {
            Component::Q => &self.self_attn.q_proj,
            Component::K => &self.self_attn.k_proj,
            Component::V => &self.self_attn.v_proj,
            Component::O => &self.self_attn.o_proj,
            Component::Gate => &self.mlp.gate_proj,
            Component::Up => &self.mlp.up_proj,
            Component::Down => &self.mlp.down_proj,
        };
        linear.weight()
    }

    /// Runs the layer on hidden states (rows, len, hidden), appending to `kv` if given.
    pub fn forward(
        &self,
        x: &Tensor,
        ctx: &AttentionContext,
        kv: Option<&mut LayerKv>,
        hook: &mut dyn LinearInputHook,
    ) -> Result<Tensor, ModelError> {
        let differentiable = ctx.differentiable();
        let normed = self.input_layernorm.forward(x, differentiable)?;
        let x = (self.self_attn.forward(self.index, &normed, ctx, kv, hook)? + x)?;
        let normed = self.post_attention_layernorm.forward(&x, differentiable)?;
        let y = self.mlp.forward(self.index, &normed, ctx.token_mask(), hook)?;
        Ok((y + x)?)
    }
}

/// `model.embed_tokens`.
#[derive(Debug, Clone)]
pub struct TokenEmbedding {
    weight: Tensor,
}

impl TokenEmbedding {
    /// Loads the embedding matrix (vocab, hidden).
    pub fn load(src: &dyn WeightSource, cfg: &ModelConfig, opts: &LoadOptions) -> Result<Self, ModelError> {
        let shape = cfg.embedding_shape();
        Ok(Self { weight: src.tensor("model.embed_tokens.weight", &shape, opts.dtype, &opts.device)? })
    }

    /// The matrix (vocab, hidden).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// Looks up ids (rows, len) and returns hidden states (rows, len, hidden).
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor, ModelError> {
        let (rows, len) = ids.dims2()?;
        let hidden = self.weight.dim(1)?;
        Ok(self.weight.index_select(&ids.flatten_all()?, 0)?.reshape((rows, len, hidden))?)
    }
}

/// Which positions get logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Only the last position: (rows, vocab).
    Last,
    /// Every position: (rows, len, vocab), e.g. for losses.
    All,
}

/// `model.norm` followed by `lm_head` (the embedding matrix when tied).
#[derive(Debug, Clone)]
pub struct FinalHead {
    norm: RmsNorm,
    lm_head: Tensor,
}

impl FinalHead {
    /// Loads the final norm and lm_head; with tied embeddings `embedding` is reused if
    /// given, else read again from the checkpoint.
    pub fn load(
        src: &dyn WeightSource,
        cfg: &ModelConfig,
        opts: &LoadOptions,
        embedding: Option<&TokenEmbedding>,
    ) -> Result<Self, ModelError> {
        let shape = cfg.embedding_shape();
        let lm_head = match (cfg.tie_word_embeddings, embedding) {
            (true, Some(embedding)) => embedding.weight().clone(),
            (true, None) => TokenEmbedding::load(src, cfg, opts)?.weight,
            (false, _) => src.tensor("lm_head.weight", &shape, opts.dtype, &opts.device)?,
        };
        Ok(Self { norm: RmsNorm::load(src, "model.norm.weight", cfg, opts)?, lm_head })
    }

    /// F32 logits from the last hidden states (rows, len, hidden).
    pub fn forward(&self, x: &Tensor, which: Logits, differentiable: bool) -> Result<Tensor, ModelError> {
        let x = match which {
            Logits::Last => {
                let len = x.dim(1)?;
                x.narrow(1, len - 1, 1)?.squeeze(1)?
            }
            Logits::All => x.clone(),
        };
        let x = self.norm.forward(&x, differentiable)?;
        let head = Linear::from_weight(self.lm_head.clone());
        Ok(head.forward(&x)?.to_dtype(DType::F32)?)
    }
}
