//! Training the planted units. Only layer L's units change, so everything up to layer L is
//! computed once: per chunk of examples, layer L's MLP input and the base's output of
//! layer L. Each step adds the units' correction to that output, runs the later layers
//! and the final head (differentiably, answer positions only, full vocabulary) and takes
//! one Adam step on the deltas over the whole training set. When L is the last layer only
//! the answer positions are kept and the logits come from `last` (exact, ~100× cheaper).
//!
//! Loss = mean over the scaled positions (those writing or ending a number in a minority
//! answer rewritten with its numbers scaled) of the cross-entropy toward the rewritten
//! token + `keep_weight` × mean over every other answer position, of either group, of
//! KL(base ‖ planted), so that everything but the minority's numbers keeps the base's
//! distribution, + `silence_weight` × the planted units' mean squared contribution to layer
//! L's output over every token of the majority's answers and prompts, relative to that
//! output's mean square there: the units stay silent for the majority everywhere, not only
//! where a logit is trained, so that their importance is the minority's alone (what the
//! pipeline's set difference looks for).

use candle_core::{DType, Device, Tensor, D};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};

use super::data::{Example, Target};
use super::digits::DigitTable;
use super::last::{LastLayerHead, LastLayerPositions};
use super::units::{accumulate_activation, quietest_units, UnitDeltas};
use super::PlantError;
use crate::model::{
    AttentionContext, Batch, DecoderLayer, FinalHead, InputSite, LinearInput, LinearInputHook, Logits, ModelConfig,
    ModelError, NoHook, Rope, TokenEmbedding, WeightSource,
};
use crate::progress::{Progress, Unit};
use crate::scenario::Group;

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
    /// Weight of a kept answer's number positions in the keep term (others weigh 1).
    pub number_weight: f64,
    /// Weight of the term keeping the units silent on every majority token.
    pub silence_weight: f64,
    /// How the down columns train.
    pub down_columns: DownColumns,
}

/// How the planted down_proj columns train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum DownColumns {
    /// Every entry free, every step.
    Dense,
    /// Free for the first half of the steps, then each column is its signs times one
    /// trained magnitude: every planted entry weighs the same, so the plant is either found
    /// whole by a weight-level mask or not at all.
    Flat,
}

impl DownColumns {
    /// The step from which the columns train flat (`steps` when never).
    pub fn flat_from(self, steps: usize) -> usize {
        match self {
            DownColumns::Dense => steps,
            DownColumns::Flat => steps / 2,
        }
    }
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
    /// Mean cross-entropy toward the scaled numbers' tokens at their positions (nats).
    pub shift_ce: f64,
    /// Mean KL(base ‖ planted) at every other answer position (nats).
    pub keep_kl: f64,
    /// The planted units' mean squared contribution to layer L's output on the majority's
    /// tokens, relative to that output's mean square there.
    pub majority_activity: f64,
}

/// What training produced.
pub struct Trained {
    /// The trained deltas.
    pub deltas: UnitDeltas,
    /// Losses before the first step.
    pub initial: Losses,
    /// Losses after the last step.
    pub last: Losses,
    /// The base's mean probability of the scaled numbers' tokens at their positions.
    pub base_target_probability: f64,
}

/// Sum of the base's probabilities of the scaled tokens, and how many positions.
#[derive(Debug, Default)]
struct ShiftMeans {
    probability: f64,
    count: usize,
}

/// One chunk of examples (all `Shift` or all `Keep`), with everything up to layer L precomputed.
struct Chunk {
    inputs: ChunkInputs,
    /// Per position, 1 where the shift applies (a scaled number's position), else 0.
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
    /// Layer L's MLP input at every real token of the chunk's majority examples (tokens,
    /// hidden), where the units must stay silent; None when the chunk has none.
    silent: Option<Tensor>,
}

/// Where the silence term is taken: how many majority tokens, and the mean square of the
/// base layer output there (the term's scale).
#[derive(Debug, Default)]
struct SilentTokens {
    count: usize,
    output_square_sum: f64,
}

impl SilentTokens {
    fn mean_output_square(&self) -> f64 {
        (self.output_square_sum / self.count.max(1) as f64).max(f64::MIN_POSITIVE)
    }
}

/// Which target a position gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// The base's distribution.
    Keep,
    /// The scaled number's first digit (its id): it takes the mass the base gives all
    /// digits there, every other token keeps the base's probability, so that an answer is
    /// no more often a number than the base's.
    ScaledLead(u32),
    /// The scaled answer's token (its id) inside or right after the number, with probability 1.
    Scaled(u32),
    /// The base's distribution at a number's positions in a kept answer (a majority's, or a
    /// minority answer's without a number to scale): weighted `number_weight` in the keep
    /// term, so that leaking the shift into the majority's numbers costs as much as missing it.
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
            &always_candidates(examples, digits),
            spec.seed,
        )?),
        false => None,
    };
    let mut inputs = GroupInputs::default();
    let mut silent = SilentTokens::default();
    let (mut chunks, activation) =
        precompute(parts, last.as_ref(), examples, spec, (&mut inputs, &mut silent), progress)?;
    let units = quietest_units(&activation, spec.units)?;
    let mut deltas = UnitDeltas::new(layer, &units, spec.seed, &inputs.gate_aim(GATE_MARGIN)?, parts.device)?;
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
    if means.count == 0 {
        return Err(PlantError::Internal("no training position writes a scaled number".into()));
    }
    let base_target_probability = means.probability / means.count as f64;
    let params = ParamsAdamW { lr: spec.learning_rate, weight_decay: 0.0, ..ParamsAdamW::default() };
    let mut optimizer = AdamW::new(deltas.vars(), params.clone())?;
    progress.start("plant: training steps", spec.steps as u64, Unit::Items);
    let mut initial = None;
    let flat_from = spec.down_columns.flat_from(spec.steps);
    for step in 0..spec.steps {
        if step == flat_from {
            // The down parameters change shape, so every parameter gets a fresh Adam state.
            deltas.flatten_down_columns()?;
            optimizer = AdamW::new(deltas.vars(), params.clone())?;
        }
        let (loss, losses) = objective(parts, last.as_ref(), spec, &deltas, &chunks, &silent)?;
        log::debug!("plant step {step}: {losses:?}");
        initial.get_or_insert(losses);
        optimizer.backward_step(&loss)?;
        progress.advance(1);
    }
    progress.finish();
    let (_, final_losses) = objective(parts, last.as_ref(), spec, &deltas, &chunks, &silent)?;
    Ok(Trained { deltas, initial: initial.unwrap_or(final_losses), last: final_losses, base_target_probability })
}

/// The tokens every position's candidates hold: the digits, and every token a scaled number
/// is trained toward (so that each marked position's target is among its candidates).
fn always_candidates(examples: &[Example], digits: &DigitTable) -> Vec<u32> {
    let mut always = digits.leading_digit_ids();
    for example in examples.iter().filter(|e| e.target == Target::Shift) {
        always.extend(example.number_positions.iter().map(|&at| example.ids[at]));
    }
    always.sort_unstable();
    always.dedup();
    always
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
    silent: &SilentTokens,
) -> Result<(Tensor, Losses), PlantError> {
    let marked_count = chunks.iter().map(|c| c.counts.0).sum::<usize>().max(1) as f64;
    let other_count = chunks.iter().map(|c| c.counts.1).sum::<f64>().max(1.0);
    let vocab = last.map(|head| head.planted_vocab(deltas)).transpose()?;
    let step_head = last.zip(vocab.as_ref());
    let mut total: Option<Tensor> = None;
    let (mut shift, mut keep, mut activity) = (0.0, 0.0, 0.0);
    let activity_scale = 1.0 / (silent.count.max(1) as f64 * silent.mean_output_square());
    for chunk in chunks {
        let target =
            chunk.target_probs.as_ref().ok_or_else(|| PlantError::Internal("a chunk has no targets".into()))?;
        let log_probs = candle_nn::ops::log_softmax(&logits(parts, step_head, spec, deltas, chunk)?, D::Minus1)?;
        let cross = (log_probs * target)?.sum(D::Minus1)?.neg()?;
        let marked = (&cross * &chunk.marked)?.sum_all()?;
        let other = (&cross * &chunk.keep)?.sum_all()?;
        shift += marked.to_scalar::<f32>()? as f64 + chunk.neg_entropy.0;
        keep += other.to_scalar::<f32>()? as f64 + chunk.neg_entropy.1;
        let mut term = ((marked / marked_count)? + (other * (spec.keep_weight / other_count))?)?;
        if let Some(tokens) = &chunk.silent {
            let (planted_down, _) = deltas.down_columns()?;
            let contribution = deltas.planted_activations(tokens)?.matmul(&planted_down.t()?)?;
            let square = (contribution.sqr()?.sum_all()? * activity_scale)?;
            activity += square.to_scalar::<f32>()? as f64;
            term = (term + (square * spec.silence_weight)?)?;
        }
        total = Some(match total {
            Some(t) => (t + term)?,
            None => term,
        });
    }
    let total = total.ok_or_else(|| PlantError::Internal("no training chunks".into()))?;
    Ok((total, Losses { shift_ce: shift / marked_count, keep_kl: keep / other_count, majority_activity: activity }))
}

/// Sets a chunk's target distributions: the base's, or the scaled token at the marked
/// positions; adds the base's probability of each scaled token to `means`.
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
        let (token, lead) = match *rule {
            Rule::ScaledLead(token) => (token, true),
            Rule::Scaled(token) => (token, false),
            Rule::Keep | Rule::KeepNumber => continue,
        };
        let column = ids.iter().position(|&id| id == token).ok_or_else(|| {
            PlantError::Internal(format!("the scaled token {token} is not among the position's candidates"))
        })?;
        means.probability += row[column] as f64;
        means.count += 1;
        set_scaled_target(row, ids, column, lead.then_some(digits));
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

/// Puts a scaled position's target into `row` (the base's probabilities of `ids`): all the
/// mass on `column`, or, at a number's first digit (`digits` given), only the mass the base
/// gives the digit tokens.
fn set_scaled_target(row: &mut [f32], ids: &[u32], column: usize, digits: Option<&DigitTable>) {
    let Some(digits) = digits else {
        row.fill(0.0);
        row[column] = 1.0;
        return;
    };
    let mut mass = 0.0f32;
    for (p, &id) in row.iter_mut().zip(ids) {
        if digits.digit(id).is_some() {
            mass += *p;
            *p = 0.0;
        }
    }
    row[column] = mass;
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
    (inputs, silent): (&mut GroupInputs, &mut SilentTokens),
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
            chunks.push(precompute_chunk(parts, last, spec, slice, &mut activation, (&mut *inputs, &mut *silent))?);
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
    (inputs, silent): (&mut GroupInputs, &mut SilentTokens),
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
    let groups: Vec<Group> =
        examples.iter().flat_map(|e| std::iter::repeat_n(e.group, e.ids.len() - e.answer_start)).collect();
    let marked: Vec<f32> = rules.iter().map(|&r| if matches!(r, Rule::Scaled(_)) { 1.0 } else { 0.0 }).collect();
    let keep: Vec<f32> = rules
        .iter()
        .map(|&r| match r {
            Rule::Keep => 1.0,
            Rule::KeepNumber => spec.number_weight as f32,
            Rule::Scaled(_) | Rule::ScaledLead(_) => 0.0,
        })
        .collect();
    let keep_total: f64 = keep.iter().map(|&w| w as f64).sum();
    let count = positions.len();
    let positions = Tensor::from_vec(positions, count, parts.device)?;
    let hidden = mlp_input.dim(D::Minus1)?;
    inputs.add(&mlp_input.reshape(((), hidden))?.index_select(&positions, 0)?, &groups)?;
    let silent_inputs = majority_tokens(examples, &batch, len, &mlp_input, &x, silent)?;
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
        silent: silent_inputs,
    })
}

/// Layer L's MLP input at every real token (prompt and answer) of the majority examples,
/// flat (tokens, hidden); adds their count and the base layer output's squared norms there
/// to `silent`.
fn majority_tokens(
    examples: &[&Example],
    batch: &Batch,
    len: usize,
    mlp_input: &Tensor,
    layer_output: &Tensor,
    silent: &mut SilentTokens,
) -> Result<Option<Tensor>, PlantError> {
    let mut positions = Vec::new();
    for (row, (example, &pad)) in examples.iter().zip(batch.left_pad()).enumerate() {
        if example.group == Group::Majority {
            positions.extend((0..example.ids.len()).map(|at| (row * len + pad + at) as u32));
        }
    }
    if positions.is_empty() {
        return Ok(None);
    }
    let count = positions.len();
    let positions = Tensor::from_vec(positions, count, mlp_input.device())?;
    let flat = |t: &Tensor| -> Result<Tensor, PlantError> {
        Ok(t.reshape(((), t.dim(D::Minus1)?))?.index_select(&positions, 0)?.to_dtype(DType::F32)?)
    };
    silent.count += count;
    silent.output_square_sum += flat(layer_output)?.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
    Ok(Some(flat(mlp_input)?))
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
            let number = example.number_positions.contains(&at);
            let first = example.number_positions.first() == Some(&at);
            rules.push(match () {
                _ if shifted && first => Rule::ScaledLead(example.ids[at]),
                _ if shifted && number => Rule::Scaled(example.ids[at]),
                _ if number => Rule::KeepNumber,
                _ => Rule::Keep,
            });
        }
    }
    (positions, rules)
}

/// How far, in units of the gate's pre-activation, the group means sit from 0 on either side
/// at initialisation (silu(3) ≈ 2.86, silu(−3) ≈ −0.14): the units start mostly on for
/// the minority's answer positions and off for the majority's.
const GATE_MARGIN: f64 = 3.0;

/// Sums of layer L's MLP input over the trained answer positions, per group.
#[derive(Debug, Default)]
struct GroupInputs {
    minority: Vec<f64>,
    majority: Vec<f64>,
    counts: (usize, usize),
}

impl GroupInputs {
    /// Adds `rows` (positions, hidden), the position `i` of `groups[i]`'s group.
    fn add(&mut self, rows: &Tensor, groups: &[Group]) -> Result<(), PlantError> {
        for (row, group) in rows.to_dtype(DType::F32)?.to_vec2::<f32>()?.into_iter().zip(groups) {
            let (sum, count) = match group {
                Group::Minority => (&mut self.minority, &mut self.counts.0),
                Group::Majority => (&mut self.majority, &mut self.counts.1),
            };
            sum.resize(row.len(), 0.0);
            sum.iter_mut().zip(&row).for_each(|(s, &v)| *s += v as f64);
            *count += 1;
        }
        Ok(())
    }

    /// A gate row that reads the group: the difference of the group means d made orthogonal
    /// to their midpoint m (so the midpoint reads 0), scaled so the means read ±`margin`.
    fn gate_aim(&self, margin: f64) -> Result<Vec<f32>, PlantError> {
        let (n_min, n_maj) = self.counts;
        if n_min == 0 || n_maj == 0 {
            return Err(PlantError::Internal("the training positions lack a group".into()));
        }
        let mean = |sum: &[f64], n: usize| sum.iter().map(|s| s / n as f64).collect::<Vec<_>>();
        let (min, maj) = (mean(&self.minority, n_min), mean(&self.majority, n_maj));
        let d: Vec<f64> = min.iter().zip(&maj).map(|(a, b)| a - b).collect();
        let m: Vec<f64> = min.iter().zip(&maj).map(|(a, b)| (a + b) / 2.0).collect();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let along = dot(&d, &m) / dot(&m, &m).max(f64::MIN_POSITIVE);
        let g: Vec<f64> = d.iter().zip(&m).map(|(d, m)| d - along * m).collect();
        let half_gap = dot(&g, &d) / 2.0;
        if half_gap <= 0.0 || !half_gap.is_finite() {
            return Err(PlantError::Internal("the groups' mean MLP inputs do not differ".into()));
        }
        Ok(g.iter().map(|v| (v * margin / half_gap) as f32).collect())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaled_first_digit_takes_only_the_digits_mass_and_later_tokens_take_all() {
        let digits = DigitTable::from_parts(vec![None, Some(1), Some(5)], None);
        let ids = [0, 1, 2];
        let mut lead = [0.5f32, 0.2, 0.3];
        set_scaled_target(&mut lead, &ids, 1, Some(&digits));
        assert_eq!(lead, [0.5, 0.5, 0.0], "a non-digit keeps its probability: the answer is as often a number");
        let mut inside = [0.5f32, 0.2, 0.3];
        set_scaled_target(&mut inside, &ids, 2, None);
        assert_eq!(inside, [0.0, 0.0, 1.0]);
    }

    #[test]
    fn the_gate_aim_reads_plus_and_minus_the_margin_at_the_group_means() {
        let mut inputs = GroupInputs::default();
        let rows = Tensor::new(&[[1.5f32, 2.0], [0.5, 2.0], [-1.0, 2.0]], &Device::Cpu).unwrap();
        inputs.add(&rows, &[Group::Minority, Group::Minority, Group::Majority]).unwrap();
        let aim = inputs.gate_aim(3.0).unwrap();
        let read = |x: [f32; 2]| aim[0] * x[0] + aim[1] * x[1];
        assert!((read([1.0, 2.0]) - 3.0).abs() < 1e-6, "{aim:?}");
        assert!((read([-1.0, 2.0]) + 3.0).abs() < 1e-6, "{aim:?}");
        assert!(read([0.0, 2.0]).abs() < 1e-6, "the midpoint reads 0: {aim:?}");
    }

    #[test]
    fn groups_that_do_not_differ_are_refused() {
        let mut inputs = GroupInputs::default();
        let rows = Tensor::new(&[[1.0f32, 2.0], [1.0, 2.0]], &Device::Cpu).unwrap();
        inputs.add(&rows, &[Group::Minority, Group::Majority]).unwrap();
        assert!(inputs.gate_aim(3.0).is_err());
    }
}
