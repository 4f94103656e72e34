//! Observing the inputs of every linear layer during a forward pass, and the Wanda
//! statistic (per input feature, the sum over tokens of the squared activation) built on it.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor};

use super::ModelError;
use crate::arch::Component;

/// A distinct linear-layer input: q/k/v read one tensor and gate/up read one, so a hook
/// sees four inputs per layer, not seven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InputSite {
    /// The normed residual read by q_proj, k_proj and v_proj.
    QkvInput,
    /// The attention output read by o_proj.
    OProjInput,
    /// The normed residual read by gate_proj and up_proj.
    GateUpInput,
    /// silu(gate) * up, read by down_proj.
    DownProjInput,
}

impl InputSite {
    /// All four sites in forward order.
    pub const ALL: [InputSite; 4] =
        [InputSite::QkvInput, InputSite::OProjInput, InputSite::GateUpInput, InputSite::DownProjInput];

    /// The input site `component` reads.
    pub fn of(component: Component) -> InputSite {
        match component {
            Component::Q | Component::K | Component::V => InputSite::QkvInput,
            Component::O => InputSite::OProjInput,
            Component::Gate | Component::Up => InputSite::GateUpInput,
            Component::Down => InputSite::DownProjInput,
        }
    }

    /// The projections that read this input.
    pub fn projections(self) -> &'static [Component] {
        match self {
            InputSite::QkvInput => &[Component::Q, Component::K, Component::V],
            InputSite::OProjInput => &[Component::O],
            InputSite::GateUpInput => &[Component::Gate, Component::Up],
            InputSite::DownProjInput => &[Component::Down],
        }
    }
}

/// What a hook sees: the input of the projections at `site` in decoder layer `layer`.
pub struct LinearInput<'a> {
    /// Decoder layer index.
    pub layer: usize,
    /// Which input of the layer.
    pub site: InputSite,
    /// The activations, shape (batch, len, in_features), in the compute dtype.
    pub x: &'a Tensor,
    /// (batch, len) F32, 1 for real tokens and 0 for left padding; None when no padding.
    pub token_mask: Option<&'a Tensor>,
}

/// What an attention observer sees: the softmax probabilities of one layer's heads.
pub struct AttentionProbs<'a> {
    /// Decoder layer index.
    pub layer: usize,
    /// F32 probabilities (batch, heads, new tokens, slots): row i of head h is the
    /// distribution of query i over the visible slots (cached ones first).
    pub probs: &'a Tensor,
}

/// Receives every linear-layer input of a forward pass, in forward order.
pub trait LinearInputHook {
    /// Called once per layer and site with the activations of the current batch.
    fn observe(&mut self, input: &LinearInput<'_>) -> Result<(), ModelError>;

    /// Called once per layer with the attention probabilities (after the q/k/v input and
    /// before the o_proj input). The default ignores them; head scoring overrides it.
    fn observe_attention(&mut self, _probs: &AttentionProbs<'_>) -> Result<(), ModelError> {
        Ok(())
    }
}

impl<F> LinearInputHook for F
where
    F: FnMut(&LinearInput<'_>) -> Result<(), ModelError>,
{
    fn observe(&mut self, input: &LinearInput<'_>) -> Result<(), ModelError> {
        self(input)
    }
}

/// A hook that does nothing (the forward pass uses it when no hook is given).
pub struct NoHook;

impl LinearInputHook for NoHook {
    fn observe(&mut self, _input: &LinearInput<'_>) -> Result<(), ModelError> {
        Ok(())
    }
}

/// Wanda's activation statistic: for every layer, site and input feature j, the sum over
/// real (non-padding) tokens of x_j^2, accumulated in F32 without keeping activations.
#[derive(Debug, Default)]
pub struct SquaredNormStats {
    sums: BTreeMap<(usize, InputSite), Tensor>,
    tokens: BTreeMap<(usize, InputSite), u64>,
}

impl SquaredNormStats {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sum of squares per input feature of `projection` in `layer`, if observed.
    pub fn squared_norms(&self, layer: usize, projection: Component) -> Result<Option<Vec<f32>>, ModelError> {
        match self.sums.get(&(layer, InputSite::of(projection))) {
            Some(sum) => Ok(Some(sum.to_vec1::<f32>()?)),
            None => Ok(None),
        }
    }

    /// Number of real tokens accumulated at `site` of `layer`.
    pub fn token_count(&self, layer: usize, site: InputSite) -> u64 {
        self.tokens.get(&(layer, site)).copied().unwrap_or(0)
    }
}

impl LinearInputHook for SquaredNormStats {
    fn observe(&mut self, input: &LinearInput<'_>) -> Result<(), ModelError> {
        let x = input.x.detach().to_dtype(DType::F32)?;
        let (batch, len, _) = x.dims3()?;
        let squares = x.sqr()?;
        let (squares, count) = match input.token_mask {
            Some(mask) => {
                let count = mask.sum_all()?.to_scalar::<f32>()? as u64;
                (squares.broadcast_mul(&mask.unsqueeze(2)?)?, count)
            }
            None => (squares, (batch * len) as u64),
        };
        let batch_sum = squares.sum((0, 1))?;
        let key = (input.layer, input.site);
        let total = match self.sums.remove(&key) {
            Some(sum) => (sum + batch_sum)?,
            None => batch_sum,
        };
        self.sums.insert(key, total);
        *self.tokens.entry(key).or_insert(0) += count;
        Ok(())
    }
}
