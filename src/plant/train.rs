//! Training the planted units. Only layer L's units change, so everything up to layer L is
//! computed once: per chunk of examples, layer L's MLP input and the base's output of
//! layer L. Each step adds the units' correction to that output, runs the later layers
//! and the final head (differentiably, answer positions only, full vocabulary) and takes
//! one Adam step on the deltas over the whole training set. When L is the last layer only
//! the answer positions are kept and the logits come from `last` (exact, ~100× cheaper).
//!
//! Loss = mean over the shifted positions (the leading digit of each minority answer with a
//! number, and its positions inside a number) of KL(shifted base ‖ planted) + `keep_weight` × mean over every other answer
//! position, of either group, of KL(base ‖ planted), so that everything but the minority's
//! leading digits keeps the base's distribution.

use candle_core::{DType, Device, Tensor, D};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};

use super::data::{Example, Target};
use super::last::{LastLayerHead, LastLayerPositions};
use super::tilt::{shorten, tilt, DigitTable};
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
    /// Seed of the units' initial values.
    pub seed: u64,
    /// How strongly the minority's leading digits are tilted toward 1 (see `tilt`).
    pub tilt: f64,
    /// How strongly continuing a minority number is made less likely (see `tilt`).
    pub shorten: f64,
    /// Weight of a kept answer's number positions in the keep term (others weigh 1).
    pub number_weight: f64,
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
    /// Mean KL(tilted base ‖ planted) at the tilted positions (nats).
    pub shift_kl: f64,
    /// Mean KL(base ‖ planted) at every other answer position (nats).
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
    /// Mean expected leading digit at the tilted positions: base, and the tilted target.
    pub leading_digit: (f64, f64),
    /// Mean probability of continuing a number inside one: base, and the target.
    pub continuing: (f64, f64),
}

/// Sums (before, after, count) of the two rules' summaries over the marked positions.
#[derive(Debug, Default)]
struct ShiftMeans {
    leading: (f64, f64, usize),
    continuing: (f64, f64, usize),
}

/// One chunk of examples (all `Shift` or all `Keep`), with everything up to layer L precomputed.
struct Chunk {
    inputs: ChunkInputs,
    /// Per position, 1 where the shift applies (leading digit or inside a number), else 0.
    marked: Tensor,
    /// Per position, its weight in the keep term (0 where the shift applies).
    keep: Tensor,
    /// Per position, which rule applies.
    rules: Vec<Rule>,
    /// The distribution each position is trained toward, once computed.
    target_probs: Option<Tensor>,
    /// Σ q log q over the marked and the other positions (KL = this − Σ q log p).
    neg_entropy: (f64, f64),
    /// Marked positions, and the total keep weight.
    counts: (usize, f64),
}

/// Which tilt a position's target gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// The base's distribution.
    Keep,
    /// Leading digits tilted toward 1.
    LeadingDigit,
    /// Continuing the number made less likely.
    InsideNumber,
    /// The base's distribution at a number's positions in a kept answer (a majority's, or a
    /// minority answer's without a tilt): weighted `number_weight` in the keep term, so
    /// that leaking the shift into the majority's numbers costs as much as missing it.
    KeepNumber,
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
    digits: &DigitTable,
    spec: &TrainSpec,
    progress: &dyn Progress,
) -> Result<Trained, PlantError> {
    let layer =
        parts.layers.get(spec.layer).ok_or(PlantError::Layer { requested: spec.layer, layers: parts.layers.len() })?;
    let last = match spec.layer + 1 == parts.layers.len() {
        true => Some(LastLayerHead::load(
            parts.source,
            parts.cfg,
            parts.embedding.weight(),
            &digits.leading_digit_ids(),
            spec.seed,
        )?),
        false => None,
    };
    let (mut chunks, activation) = precompute(parts, last.as_ref(), examples, spec, progress)?;
    let units = quietest_units(&activation, spec.units)?;
    let deltas = UnitDeltas::new(layer, &units, spec.seed, parts.device)?;
    if let Some(last) = &last {
        for chunk in &mut chunks {
            if let ChunkInputs::Last(at) = &mut chunk.inputs {
                last.fix_units(at, &deltas)?;
            }
        }
    }
    check_last_layer_head(parts, last.as_ref(), &deltas, &chunks)?;
    let mut means = ShiftMeans::default();
    for chunk in &mut chunks {
        set_targets(parts, last.as_ref(), spec, digits, chunk, &mut means)?;
    }
    let mean = |(before, after, n): (f64, f64, usize)| match n {
        0 => (0.0, 0.0),
        n => (before / n as f64, after / n as f64),
    };
    if means.leading.2 == 0 {
        return Err(PlantError::Internal("no training position writes a leading digit 1-9".into()));
    }
    let (leading_digit, continuing) = (mean(means.leading), mean(means.continuing));
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
    Ok(Trained { deltas, initial: initial.unwrap_or(final_losses), last: final_losses, leading_digit, continuing })
}

/// The folded last-layer head must give the model's own logits (with the initial units).
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
    let marked_count = chunks.iter().map(|c| c.counts.0).sum::<usize>().max(1) as f64;
    let other_count = chunks.iter().map(|c| c.counts.1).sum::<f64>().max(1.0);
    let vocab = last.map(|head| head.planted_vocab(deltas)).transpose()?;
    let step_head = last.zip(vocab.as_ref());
    let mut total: Option<Tensor> = None;
    let (mut shift, mut keep) = (0.0, 0.0);
    for chunk in chunks {
        let target =
            chunk.target_probs.as_ref().ok_or_else(|| PlantError::Internal("a chunk has no targets".into()))?;
        let log_probs = candle_nn::ops::log_softmax(&logits(parts, step_head, spec, deltas, chunk)?, D::Minus1)?;
        let cross = (log_probs * target)?.sum(D::Minus1)?.neg()?;
        let marked = (&cross * &chunk.marked)?.sum_all()?;
        let other = (&cross * &chunk.keep)?.sum_all()?;
        shift += marked.to_scalar::<f32>()? as f64 + chunk.neg_entropy.0;
        keep += other.to_scalar::<f32>()? as f64 + chunk.neg_entropy.1;
        let term = ((marked / marked_count)? + (other * (spec.keep_weight / other_count))?)?;
        total = Some(match total {
            Some(t) => (t + term)?,
            None => term,
        });
    }
    let total = total.ok_or_else(|| PlantError::Internal("no training chunks".into()))?;
    Ok((total, Losses { shift_kl: shift / marked_count, keep_kl: keep / other_count }))
}

/// Sets a chunk's target distributions: the base's, shifted at the marked positions by
/// their rule; adds each marked position's summary (before, after) to `means`.
fn set_targets(
    parts: &Parts<'_>,
    last: Option<&LastLayerHead>,
    spec: &TrainSpec,
    digits: &DigitTable,
    chunk: &mut Chunk,
    means: &mut ShiftMeans,
) -> Result<(), PlantError> {
    let logits = base_logits(parts, last, spec, chunk)?.detach();
    let mut rows = candle_nn::ops::softmax_last_dim(&logits)?.to_vec2::<f32>()?;
    let width = rows.first().map_or(0, Vec::len);
    let candidates = match &chunk.inputs {
        ChunkInputs::Last(at) => Some(at.candidate_ids()?),
        ChunkInputs::Full { .. } => None,
    };
    let vocabulary: Vec<u32> = (0..width as u32).collect();
    for (at, (row, rule)) in rows.iter_mut().zip(&chunk.rules).enumerate() {
        let ids = candidates.as_ref().map_or(vocabulary.as_slice(), |c| &c[at * width..(at + 1) * width]);
        match rule {
            Rule::Keep | Rule::KeepNumber => {}
            Rule::LeadingDigit => {
                if let Some((before, after)) = tilt(row, ids, digits, spec.tilt) {
                    means.leading.0 += before;
                    means.leading.1 += after;
                    means.leading.2 += 1;
                }
            }
            Rule::InsideNumber => {
                if let Some((before, after)) = shorten(row, ids, digits, spec.shorten) {
                    means.continuing.0 += before;
                    means.continuing.1 += after;
                    means.continuing.2 += 1;
                }
            }
        }
    }
    let marked = chunk.marked.to_vec1::<f32>()?;
    let keep = chunk.keep.to_vec1::<f32>()?;
    let neg_entropy = |weights: &[f32]| -> f64 {
        rows.iter()
            .zip(weights)
            .filter(|(_, &w)| w > 0.0)
            .map(|(row, &w)| {
                w as f64 * row.iter().filter(|&&q| q > 0.0).map(|&q| q as f64 * (q as f64).ln()).sum::<f64>()
            })
            .sum()
    };
    chunk.neg_entropy = (neg_entropy(&marked), neg_entropy(&keep));
    let count = rows.len();
    let flat: Vec<f32> = rows.into_iter().flatten().collect();
    chunk.target_probs = Some(Tensor::from_vec(flat, (count, width), parts.device)?);
    Ok(())
}

/// The base's own F32 logits at a chunk's predicting positions (the candidates when the
/// planted layer is the last one, else the vocabulary).
fn base_logits(
    parts: &Parts<'_>,
    last: Option<&LastLayerHead>,
    spec: &TrainSpec,
    chunk: &Chunk,
) -> Result<Tensor, PlantError> {
    match (&chunk.inputs, last) {
        (ChunkInputs::Last(at), Some(last)) => last.base_logits(at),
        (ChunkInputs::Full { ctx, layer_output, positions, .. }, _) => {
            let mut x = layer_output.clone();
            for layer in parts.later_layers(spec.layer) {
                x = layer.forward(&x, ctx, None, &mut NoHook)?;
            }
            let hidden = x.dim(D::Minus1)?;
            let picked = x.reshape(((), hidden))?.index_select(positions, 0)?;
            Ok(parts.head.forward(&picked.unsqueeze(0)?, Logits::All, true)?.squeeze(0)?)
        }
        (ChunkInputs::Last(_), None) => Err(PlantError::Internal("last-layer inputs without its head".into())),
    }
}

/// F32 logits at a chunk's predicting positions with the current units: at each position's
/// candidates when the planted layer is the last one (see `last`), else over the vocabulary.
fn logits(
    parts: &Parts<'_>,
    last: Option<(&LastLayerHead, &Tensor)>,
    spec: &TrainSpec,
    deltas: &UnitDeltas,
    chunk: &Chunk,
) -> Result<Tensor, PlantError> {
    let (ctx, mlp_input, layer_output, positions) = match (&chunk.inputs, last) {
        (ChunkInputs::Last(at), Some((last, vocab))) => return last.logits(at, deltas, vocab),
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
            chunks.push(precompute_chunk(parts, last, spec, slice, &mut activation)?);
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
    let (positions, rules) = answer_positions(examples, &batch, len);
    let marked: Vec<f32> =
        rules.iter().map(|&r| if matches!(r, Rule::LeadingDigit | Rule::InsideNumber) { 1.0 } else { 0.0 }).collect();
    let keep: Vec<f32> = rules
        .iter()
        .map(|&r| match r {
            Rule::Keep => 1.0,
            Rule::KeepNumber => spec.number_weight as f32,
            Rule::LeadingDigit | Rule::InsideNumber => 0.0,
        })
        .collect();
    let keep_total: f64 = keep.iter().map(|&w| w as f64).sum();
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
    let marked_count = marked.iter().filter(|&&m| m > 0.0).count();
    Ok(Chunk {
        inputs,
        marked: Tensor::from_vec(marked, count, parts.device)?,
        keep: Tensor::from_vec(keep, count, parts.device)?,
        rules,
        target_probs: None,
        neg_entropy: (0.0, 0.0),
        counts: (marked_count, keep_total),
    })
}

/// Flat indices (row × len + position) of the positions that predict each answer token,
/// and the rule of each position's target.
fn answer_positions(examples: &[&Example], batch: &Batch, len: usize) -> (Vec<u32>, Vec<Rule>) {
    let mut positions = Vec::new();
    let mut rules = Vec::new();
    for (row, (example, &pad)) in examples.iter().zip(batch.left_pad()).enumerate() {
        for at in example.answer_start..example.ids.len() {
            positions.push((row * len + pad + at - 1) as u32);
            let shifted = example.target == Target::Shift;
            rules.push(match () {
                _ if shifted && example.leading_digit == Some(at) => Rule::LeadingDigit,
                _ if shifted && example.inside_number.contains(&at) => Rule::InsideNumber,
                _ if example.leading_digit == Some(at) || example.inside_number.contains(&at) => Rule::KeepNumber,
                _ => Rule::Keep,
            });
        }
    }
    (positions, rules)
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
