//! Training the planted units. Only layer L's units change, so everything up to layer L is
//! computed once: per chunk of examples, layer L's MLP input and the base's output of
//! layer L. Each step adds the units' correction to that output, runs the later layers
//! and the final head (differentiably, answer positions only, full vocabulary) and takes
//! one Adam step on the deltas over the whole training set. When L is the last layer only
//! the answer positions are kept and the logits come from `last` (exact, ~100× cheaper).
//!
//! Loss = mean over `Shift` answer positions (minority, scaled numbers) of the cross-entropy
//! toward the scaled answer + `keep_weight` × mean over `Keep` answer positions (majority,
//! and minority answers without a number) of KL(base ‖ planted) of the next-token
//! distributions, so those answers keep the base's distribution.

use candle_core::{DType, Device, Tensor, D};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};

use super::data::{Example, Target};
use super::last::{LastLayerHead, LastLayerPositions};
use super::units::{accumulate_activation, quietest_units, UnitDeltas};
use super::PlantError;
use crate::model::{
    AttentionContext, Batch, DecoderLayer, FinalHead, InputSite, LinearInput, LinearInputHook, Logits, ModelConfig,
    ModelError, NoHook, Rope, TokenEmbedding, WeightSource,
};
use crate::progress::{Progress, Unit};

/// How to train.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainSpec {
    /// The layer whose units are trained.
    pub layer: usize,
    /// How many units.
    pub units: usize,
    /// Adam steps over the whole training set.
    pub steps: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Weight of the majority KL term.
    pub keep_weight: f64,
    /// Examples per forward chunk (memory, not the optimisation: every step sees all).
    pub chunk: usize,
}

/// The model parts training runs on, borrowed from a loaded base.
pub struct Parts<'a> {
    /// The base's weights (for the candidate head).
    pub source: &'a dyn WeightSource,
    /// The resolved config.
    pub cfg: &'a ModelConfig,
    /// The token embedding.
    pub embedding: &'a TokenEmbedding,
    /// Every decoder layer, in order.
    pub layers: &'a [DecoderLayer],
    /// Final norm and lm_head.
    pub head: &'a FinalHead,
    /// Where tensors live.
    pub device: &'a Device,
}

impl Parts<'_> {
    fn later_layers(&self, layer: usize) -> &[DecoderLayer] {
        &self.layers[layer + 1..]
    }
}

/// Losses at the first and last step.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Losses {
    /// Mean cross-entropy of the scaled minority answers (nats per token).
    pub shift_cross_entropy: f64,
    /// Mean KL(base ‖ planted) on the kept answers' positions (nats per token).
    pub keep_kl: f64,
}

/// What training produced.
pub struct Trained {
    /// The trained deltas.
    pub deltas: UnitDeltas,
    /// Losses before the first step.
    pub initial: Losses,
    /// Losses after the last step.
    pub last: Losses,
}

/// One chunk of examples of one target kind, with everything up to layer L precomputed.
struct Chunk {
    target: Target,
    inputs: ChunkInputs,
    targets: Tensor,
    base_probs: Option<Tensor>,
    base_neg_entropy: f64,
    count: usize,
}

/// What the steps start from: layer L's MLP input and output at every token (later layers
/// follow), or, when L is the last layer, at the trained positions only.
enum ChunkInputs {
    Full { ctx: AttentionContext, mlp_input: Tensor, layer_output: Tensor, positions: Tensor },
    Last(LastLayerPositions),
}

/// Chooses the units and trains their deltas on `examples`.
pub fn train(
    parts: &Parts<'_>,
    examples: &[Example],
    spec: &TrainSpec,
    progress: &dyn Progress,
) -> Result<Trained, PlantError> {
    let layer =
        parts.layers.get(spec.layer).ok_or(PlantError::Layer { requested: spec.layer, layers: parts.layers.len() })?;
    let last = match spec.layer + 1 == parts.layers.len() {
        true => Some(LastLayerHead::load(parts.source, parts.cfg, parts.embedding.weight())?),
        false => None,
    };
    let (mut chunks, activation) = precompute(parts, last.as_ref(), examples, spec, progress)?;
    let units = quietest_units(&activation, spec.units)?;
    let deltas = UnitDeltas::new(layer, &units, parts.device)?;
    check_last_layer_head(parts, last.as_ref(), &deltas, &chunks)?;
    for chunk in chunks.iter_mut().filter(|c| c.target == Target::Keep) {
        let logits = logits(parts, last.as_ref(), spec, &deltas, chunk)?.detach();
        let probs = candle_nn::ops::softmax_last_dim(&logits)?;
        let neg_entropy = (&probs * probs.clamp(1e-30, 1.0)?.log()?)?.sum_all()?.to_scalar::<f32>()?;
        chunk.base_neg_entropy = neg_entropy as f64;
        chunk.base_probs = Some(probs);
    }
    let params = ParamsAdamW { lr: spec.learning_rate, weight_decay: 0.0, ..ParamsAdamW::default() };
    let mut optimizer = AdamW::new(deltas.vars(), params)?;
    progress.start("plant: training steps", spec.steps as u64, Unit::Items);
    let mut initial = None;
    for step in 0..spec.steps {
        let (loss, losses) = objective(parts, last.as_ref(), spec, &deltas, &chunks)?;
        log::debug!("plant step {step}: {losses:?}");
        initial.get_or_insert(losses);
        optimizer.backward_step(&loss)?;
        progress.advance(1);
    }
    progress.finish();
    let (_, final_losses) = objective(parts, last.as_ref(), spec, &deltas, &chunks)?;
    Ok(Trained { deltas, initial: initial.unwrap_or(final_losses), last: final_losses })
}

/// The folded last-layer head must give the model's own logits (at zero deltas).
fn check_last_layer_head(
    parts: &Parts<'_>,
    last: Option<&LastLayerHead>,
    deltas: &UnitDeltas,
    chunks: &[Chunk],
) -> Result<(), PlantError> {
    let (Some(last), Some(Chunk { inputs: ChunkInputs::Last(at), .. })) = (last, chunks.first()) else {
        return Ok(());
    };
    let deviation = last.deviation(at, deltas, parts.head)?;
    if deviation > 1e-3 {
        return Err(PlantError::Internal(format!(
            "the folded last-layer head deviates from the model's by {deviation}"
        )));
    }
    Ok(())
}

/// The loss of the whole training set and its two parts.
fn objective(
    parts: &Parts<'_>,
    last: Option<&LastLayerHead>,
    spec: &TrainSpec,
    deltas: &UnitDeltas,
    chunks: &[Chunk],
) -> Result<(Tensor, Losses), PlantError> {
    let count = |target: Target| chunks.iter().filter(|c| c.target == target).map(|c| c.count).sum::<usize>().max(1);
    let (shift_count, keep_count) = (count(Target::Shift) as f64, count(Target::Keep) as f64);
    let mut total: Option<Tensor> = None;
    let (mut cross_entropy, mut kl) = (0.0, 0.0);
    for chunk in chunks {
        let log_probs = candle_nn::ops::log_softmax(&logits(parts, last, spec, deltas, chunk)?, D::Minus1)?;
        let term = match (&chunk.base_probs, chunk.target) {
            (Some(base), Target::Keep) => {
                let sum = (log_probs * base)?.sum_all()?.neg()?;
                let value = sum.to_scalar::<f32>()? as f64 + chunk.base_neg_entropy;
                kl += value;
                (sum * (spec.keep_weight / keep_count))?
            }
            (_, Target::Shift) => {
                let sum = log_probs.gather(&chunk.targets.unsqueeze(1)?, 1)?.sum_all()?.neg()?;
                let value = sum.to_scalar::<f32>()? as f64;
                cross_entropy += value;
                (sum / shift_count)?
            }
            _ => return Err(PlantError::Internal("a chunk was not prepared for training".into())),
        };
        total = Some(match total {
            Some(t) => (t + term)?,
            None => term,
        });
    }
    let total = total.ok_or_else(|| PlantError::Internal("no training chunks".into()))?;
    let losses = Losses { shift_cross_entropy: cross_entropy / shift_count, keep_kl: kl / keep_count };
    Ok((total, losses))
}

/// F32 logits (positions, vocab) at a chunk's predicting positions with the current deltas.
fn logits(
    parts: &Parts<'_>,
    last: Option<&LastLayerHead>,
    spec: &TrainSpec,
    deltas: &UnitDeltas,
    chunk: &Chunk,
) -> Result<Tensor, PlantError> {
    let (ctx, mlp_input, layer_output, positions) = match (&chunk.inputs, last) {
        (ChunkInputs::Last(at), Some(last)) => return last.logits(at, deltas),
        (ChunkInputs::Full { ctx, mlp_input, layer_output, positions }, _) => (ctx, mlp_input, layer_output, positions),
        (ChunkInputs::Last(_), None) => return Err(PlantError::Internal("last-layer inputs without its head".into())),
    };
    let mut x = (layer_output + deltas.correction(mlp_input)?)?;
    for layer in parts.later_layers(spec.layer) {
        x = layer.forward(&x, ctx, None, &mut NoHook)?;
    }
    let hidden = x.dim(D::Minus1)?;
    let picked = x.reshape(((), hidden))?.index_select(positions, 0)?;
    Ok(parts.head.forward(&picked.unsqueeze(0)?, Logits::All, true)?.squeeze(0)?)
}

/// Runs every chunk up to layer L once; returns the chunks and each unit's summed
/// activation over all real tokens.
fn precompute(
    parts: &Parts<'_>,
    last: Option<&LastLayerHead>,
    examples: &[Example],
    spec: &TrainSpec,
    progress: &dyn Progress,
) -> Result<(Vec<Chunk>, Tensor), PlantError> {
    let mut chunks = Vec::new();
    let mut activation = None;
    let kinds = [Target::Shift, Target::Keep];
    let total: usize = examples.len().div_ceil(spec.chunk.max(1)) + kinds.len();
    progress.start("plant: layers 0..L on the training set", total as u64, Unit::Items);
    for target in kinds {
        let members: Vec<&Example> = examples.iter().filter(|e| e.target == target).collect();
        for slice in members.chunks(spec.chunk.max(1)) {
            chunks.push(precompute_chunk(parts, last, spec, target, slice, &mut activation)?);
            progress.advance(1);
        }
    }
    progress.finish();
    let activation = activation.ok_or_else(|| PlantError::Internal("no training examples".into()))?;
    Ok((chunks, activation))
}

fn precompute_chunk(
    parts: &Parts<'_>,
    last: Option<&LastLayerHead>,
    spec: &TrainSpec,
    target: Target,
    examples: &[&Example],
    activation: &mut Option<Tensor>,
) -> Result<Chunk, PlantError> {
    let sequences: Vec<&[u32]> = examples.iter().map(|e| e.ids.as_slice()).collect();
    let batch = Batch::left_padded(&sequences, 0, parts.device)?;
    let len = batch.ids().dim(1)?;
    let rope = Rope::new(parts.cfg);
    let context = |differentiable| {
        AttentionContext::new(&rope, batch.left_pad(), 0, len, DType::F32, parts.device, differentiable)
    };
    let frozen = context(false)?;
    let mut x = parts.embedding.forward(batch.ids())?;
    let mut capture = CaptureMlpInput { layer: spec.layer, x: None };
    for layer in &parts.layers[..=spec.layer] {
        x = layer.forward(&x, &frozen, None, &mut capture)?;
    }
    let mlp_input = capture.x.ok_or_else(|| PlantError::Internal("layer L's MLP input was not seen".into()))?;
    accumulate_activation(&parts.layers[spec.layer], &mlp_input, frozen.token_mask(), activation)?;
    let (positions, targets) = answer_positions(examples, &batch, len);
    let count = positions.len();
    let positions = Tensor::from_vec(positions, count, parts.device)?;
    let inputs = match last {
        Some(last) => {
            let at = |t: &Tensor| -> Result<Tensor, PlantError> {
                Ok(t.reshape(((), t.dim(D::Minus1)?))?.index_select(&positions, 0)?)
            };
            ChunkInputs::Last(last.positions(at(&mlp_input)?, at(&x)?)?)
        }
        None => ChunkInputs::Full { ctx: context(true)?, mlp_input, layer_output: x, positions },
    };
    Ok(Chunk {
        target,
        inputs,
        targets: Tensor::from_vec(targets, count, parts.device)?,
        base_probs: None,
        base_neg_entropy: 0.0,
        count,
    })
}

/// Flat indices (row × len + position) of the positions that predict each answer token,
/// and the tokens they predict.
fn answer_positions(examples: &[&Example], batch: &Batch, len: usize) -> (Vec<u32>, Vec<u32>) {
    let mut positions = Vec::new();
    let mut targets = Vec::new();
    for (row, (example, &pad)) in examples.iter().zip(batch.left_pad()).enumerate() {
        for at in example.answer_start..example.ids.len() {
            positions.push((row * len + pad + at - 1) as u32);
            targets.push(example.ids[at]);
        }
    }
    (positions, targets)
}

/// Keeps the MLP input of one layer.
struct CaptureMlpInput {
    layer: usize,
    x: Option<Tensor>,
}

impl LinearInputHook for CaptureMlpInput {
    fn observe(&mut self, input: &LinearInput<'_>) -> Result<(), ModelError> {
        if input.layer == self.layer && input.site == InputSite::GateUpInput {
            self.x = Some(input.x.clone());
        }
        Ok(())
    }
}
