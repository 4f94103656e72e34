//! Grouped-query self-attention with rotary embeddings, left-padding masks and an
//! optional KV cache; the per-batch context (positions, cos/sin, masks) it runs under.

use candle_core::{DType, Device, Tensor, D};

use super::hooks::{AttentionProbs, InputSite, LinearInput, LinearInputHook};
use super::linear::Linear;
use super::rope::apply_rope;
use super::{LayerKv, ModelConfig, ModelError, Rope};

/// Everything attention needs about the batch being run: rotary cos/sin for each new
/// token, the additive mask over cache slots, and which tokens are padding.
#[derive(Debug, Clone)]
pub struct AttentionContext {
    cos: Tensor,
    sin: Tensor,
    mask: Option<Tensor>,
    token_mask: Option<Tensor>,
    differentiable: bool,
}

impl AttentionContext {
    /// Context for `new_len` new tokens per row following `past_len` cached slots, where
    /// the first `left_pad[row]` slots of each row are padding. Positions count from the
    /// row's first real token. `differentiable` selects ops with backward steps.
    pub fn new(
        rope: &Rope,
        left_pad: &[usize],
        past_len: usize,
        new_len: usize,
        dtype: DType,
        device: &Device,
        differentiable: bool,
    ) -> Result<Self, ModelError> {
        let rows = left_pad.len();
        if rows == 0 || new_len == 0 {
            return Err(ModelError::InvalidArgument("a batch needs at least one row and one token".into()));
        }
        let positions: Vec<u32> = left_pad
            .iter()
            .flat_map(|&pad| (past_len..past_len + new_len).map(move |s| s.saturating_sub(pad) as u32))
            .collect();
        let (cos, sin) = rope.cos_sin(&positions, rows, dtype, device)?;
        let padded = left_pad.iter().any(|&p| p > 0);
        let mask =
            if padded || new_len > 1 { Some(attention_mask(left_pad, past_len, new_len, device)?) } else { None };
        let token_mask = if padded { Some(token_mask(left_pad, past_len, new_len, device)?) } else { None };
        Ok(Self { cos, sin, mask, token_mask, differentiable })
    }

    /// (rows, new_len) F32, 1 for real tokens and 0 for padding; None without padding.
    pub fn token_mask(&self) -> Option<&Tensor> {
        self.token_mask.as_ref()
    }

    /// Whether the context selects ops with backward steps.
    pub fn differentiable(&self) -> bool {
        self.differentiable
    }
}

/// Additive mask (rows, 1, new_len, past_len + new_len): 0 where slot j is visible from
/// new token i (causal, not padding), -inf elsewhere. A padding query sees itself so that
/// no softmax row is empty.
fn attention_mask(left_pad: &[usize], past_len: usize, new_len: usize, device: &Device) -> Result<Tensor, ModelError> {
    let total = past_len + new_len;
    let mut mask = Vec::with_capacity(left_pad.len() * new_len * total);
    for &pad in left_pad {
        for i in 0..new_len {
            let query = past_len + i;
            mask.extend((0..total).map(|j| {
                let visible = j <= query && (j >= pad || j == query);
                if visible {
                    0f32
                } else {
                    f32::NEG_INFINITY
                }
            }));
        }
    }
    Ok(Tensor::from_vec(mask, (left_pad.len(), 1, new_len, total), device)?)
}

fn token_mask(left_pad: &[usize], past_len: usize, new_len: usize, device: &Device) -> Result<Tensor, ModelError> {
    let mask: Vec<f32> = left_pad
        .iter()
        .flat_map(|&pad| (past_len..past_len + new_len).map(move |s| f32::from(u8::from(s >= pad))))
        .collect();
    Ok(Tensor::from_vec(mask, (left_pad.len(), new_len), device)?)
}

/// The `self_attn` block of a decoder layer.
#[derive(Debug, Clone)]
pub struct SelfAttention {
    pub(crate) q_proj: Linear,
    pub(crate) k_proj: Linear,
    pub(crate) v_proj: Linear,
    pub(crate) o_proj: Linear,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
}

impl SelfAttention {
    pub(crate) fn new(cfg: &ModelConfig, projections: [Linear; 4]) -> Self {
        let [q_proj, k_proj, v_proj, o_proj] = projections;
        Self {
            q_proj,
            k_proj,
            v_proj,
            o_proj,
            num_heads: cfg.num_heads,
            num_kv_heads: cfg.num_kv_heads,
            head_dim: cfg.head_dim,
        }
    }

    /// Attention over `x` (rows, len, hidden) and any cached slots; returns o_proj's output.
    pub(crate) fn forward(
        &self,
        layer: usize,
        x: &Tensor,
        ctx: &AttentionContext,
        kv: Option<&mut LayerKv>,
        hook: &mut dyn LinearInputHook,
    ) -> Result<Tensor, ModelError> {
        let (rows, len, _) = x.dims3()?;
        hook.observe(&LinearInput { layer, site: InputSite::QkvInput, x, token_mask: ctx.token_mask() })?;
        let heads = |t: Tensor, n: usize| -> Result<Tensor, ModelError> {
            Ok(t.reshape((rows, len, n, self.head_dim))?.transpose(1, 2)?)
        };
        let q = heads(self.q_proj.forward(x)?, self.num_heads)?;
        let k = heads(self.k_proj.forward(x)?, self.num_kv_heads)?;
        let v = heads(self.v_proj.forward(x)?, self.num_kv_heads)?;
        let q = apply_rope(&q, &ctx.cos, &ctx.sin, ctx.differentiable)?;
        let k = apply_rope(&k, &ctx.cos, &ctx.sin, ctx.differentiable)?;
        let (k, v) = match kv {
            Some(cache) => cache.append(&k, &v)?,
            None => (k, v.contiguous()?),
        };
        let y = self.attend(layer, &q, &k, &v, ctx, hook)?;
        let y = y.transpose(1, 2)?.reshape((rows, len, self.num_heads * self.head_dim))?;
        hook.observe(&LinearInput { layer, site: InputSite::OProjInput, x: &y, token_mask: ctx.token_mask() })?;
        self.o_proj.forward(&y)
    }

    /// softmax(q k^T / sqrt(d) + mask) v without repeating k and v: the query heads that
    /// share a key/value head are stacked along the sequence axis of one matmul.
    /// The hook sees the probabilities through `observe_attention`.
    fn attend(
        &self,
        layer: usize,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        ctx: &AttentionContext,
        hook: &mut dyn LinearInputHook,
    ) -> Result<Tensor, ModelError> {
        let (rows, _, len, _) = q.dims4()?;
        let slots = k.dim(2)?;
        let group = self.num_heads / self.num_kv_heads;
        let q = q.contiguous()?.reshape((rows, self.num_kv_heads, group * len, self.head_dim))?;
        let scores = (q.matmul(&k.t()?)? / (self.head_dim as f64).sqrt())?;
        let dtype = scores.dtype();
        let scores = scores.to_dtype(DType::F32)?.reshape((rows, self.num_heads, len, slots))?;
        let scores = match &ctx.mask {
            Some(mask) => scores.broadcast_add(mask)?,
            None => scores,
        };
        let probs = if ctx.differentiable {
            candle_nn::ops::softmax(&scores, D::Minus1)?
        } else {
            candle_nn::ops::softmax_last_dim(&scores)?
        };
        hook.observe_attention(&AttentionProbs { layer, probs: &probs })?;
        let probs = probs.to_dtype(dtype)?.reshape((rows, self.num_kv_heads, group * len, slots))?;
        Ok(probs.matmul(v)?.reshape((rows, self.num_heads, len, self.head_dim))?)
    }
}
