//! Wanda scores S_ij = |W_ij| * ||X_j||_2, where ||X_j||_2 = sqrt(sum over the counted
//! calibration tokens of x_j^2) is the 2-norm of input feature j of the linear layer.
//!
//! This is the authors' running-mean formulation (|W| * sqrt(mean of x_j^2)) times
//! sqrt(N) for N counted tokens: ranks within a matrix, and so masks, are identical.
//! `wanda_scores` runs the checkpoint one decoder layer at a time (only that layer's weights
//! resident, the hidden states of every sequence kept between layers, each distinct
//! prompt run once for all its answers);
//! `wanda_scores_in_memory` does the same over a model already loaded.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor};

use super::calibration::{CalibrationSequence, CalibrationSet};
use super::prefix::{shared_batches, SharedBatch};
use super::stats::{BatchMasks, ScoringStats};
use super::stream::ScoreSink;
use super::{ScoreError, ScoreMatrix};
use crate::arch::Component;
use crate::model::{
    Batch, DecoderLayer, InputSite, KvCache, Llama, LoadOptions, ModelConfig, Rope, TokenEmbedding, WeightSource,
};
use crate::progress::{Progress, Unit};

/// Per-weight and per-head scores of one method, before the sidecar is attached.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawScores {
    /// Scores by checkpoint tensor name.
    pub weights: BTreeMap<String, ScoreMatrix>,
    /// Per layer, each head's mean attention to the name tokens from answer positions.
    pub heads: BTreeMap<usize, Vec<f32>>,
}

impl ScoreSink for RawScores {
    fn matrix(&mut self, name: &str, matrix: ScoreMatrix) -> Result<(), ScoreError> {
        self.weights.insert(name.to_string(), matrix);
        Ok(())
    }

    fn heads(&mut self, layer: usize, values: Vec<f32>) -> Result<(), ScoreError> {
        self.heads.insert(layer, values);
        Ok(())
    }
}

/// How scoring runs.
#[derive(Debug, Clone)]
pub struct ScoreOptions {
    /// Sequences per forward batch (left-padded).
    pub batch: usize,
    /// Compute dtype and device (projection weights are never trainable here).
    pub load: LoadOptions,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        Self { batch: 64, load: LoadOptions::cpu_f32() }
    }
}

/// Splits the calibration set into batches of consecutive sequences of similar length:
/// sequences are ordered by length (stable), so padding stays small.
pub(crate) fn batches(calib: &CalibrationSet, size: usize) -> Vec<Vec<&CalibrationSequence>> {
    let mut order: Vec<&CalibrationSequence> = calib.sequences.iter().collect();
    order.sort_by_key(|s| s.ids.len());
    order.chunks(size.max(1)).map(<[_]>::to_vec).collect()
}

/// Wanda scores of every linear weight, layer by layer from `src`: memory holds one
/// layer's weights plus the hidden states of all calibration sequences. Answers to the
/// same prompt share the prompt's computation (see `prefix`); `opts.batch` bounds the
/// answers per batch.
pub fn wanda_scores(
    src: &dyn WeightSource,
    cfg: &ModelConfig,
    calib: &CalibrationSet,
    opts: &ScoreOptions,
    progress: &dyn Progress,
) -> Result<RawScores, ScoreError> {
    let mut scores = RawScores::default();
    wanda_scores_into(src, cfg, calib, opts, progress, &mut scores)?;
    Ok(scores)
}

/// `wanda_scores` handing each layer's scores to `sink` as soon as the layer is done
/// (in `score_layout` order), so they need not be kept: with a `ScoreFileWriter`, memory
/// holds one layer's weights and scores plus the calibration activations.
pub fn wanda_scores_into(
    src: &dyn WeightSource,
    cfg: &ModelConfig,
    calib: &CalibrationSet,
    opts: &ScoreOptions,
    progress: &dyn Progress,
    sink: &mut dyn ScoreSink,
) -> Result<(), ScoreError> {
    let load = LoadOptions { trainable: false, ..opts.load.clone() };
    let batches = shared_batches(calib, opts.batch, &Rope::new(cfg), &load)?;
    let mut hidden = {
        let embedding = TokenEmbedding::load(src, cfg, &load)?;
        let embed = |b: &SharedBatch| -> Result<(Tensor, Tensor), ScoreError> {
            Ok((embedding.forward(&b.prefix_ids)?, embedding.forward(&b.answer_ids)?))
        };
        batches.iter().map(embed).collect::<Result<Vec<_>, _>>()?
    };
    let one_layer = ModelConfig { num_layers: 1, ..cfg.clone() };
    let mut stats = ScoringStats::new();
    progress.start("wanda: layers", cfg.num_layers as u64, Unit::Items);
    for index in 0..cfg.num_layers {
        let layer = DecoderLayer::load(src, cfg, index, &load)?;
        for (batch, (prefix, answers)) in batches.iter().zip(hidden.iter_mut()) {
            let mut cache =
                KvCache::new(&one_layer, batch.prefix_pad.clone(), batch.capacity, load.dtype, &load.device)?;
            stats.set_batch(batch.prefix_masks.clone());
            *prefix = layer.forward(prefix, &batch.prefix_ctx, cache.layer_mut(0), &mut stats)?;
            let mut cache = cache.select_rows(&batch.rows)?;
            stats.set_batch(batch.answer_masks.clone());
            *answers = layer.forward(answers, &batch.answer_ctx, cache.layer_mut(0), &mut stats)?;
        }
        collect_layer(&layer, &mut stats, calib.sequences.len(), sink)?;
        progress.advance(1);
    }
    progress.finish();
    Ok(())
}

/// Wanda scores over a model already in memory (whole-model forward per batch); equal to
/// `wanda_scores` up to float rounding.
pub fn wanda_scores_in_memory(
    model: &Llama,
    calib: &CalibrationSet,
    opts: &ScoreOptions,
    progress: &dyn Progress,
) -> Result<RawScores, ScoreError> {
    let device = &model.options().device;
    let groups = batches(calib, opts.batch);
    let mut stats = ScoringStats::new();
    progress.start("wanda: batches", groups.len() as u64, Unit::Items);
    for group in &groups {
        let ids: Vec<&[u32]> = group.iter().map(|s| s.ids.as_slice()).collect();
        let batch = Batch::left_padded(&ids, 0, device)?;
        stats.set_batch(BatchMasks::new(group, device)?);
        model.forward(&batch, Some(&mut stats), crate::model::Logits::Last)?;
        progress.advance(1);
    }
    progress.finish();
    let mut scores = RawScores::default();
    for layer in model.layers() {
        collect_layer(layer, &mut stats, calib.sequences.len(), &mut scores)?;
    }
    Ok(scores)
}

/// Turns the accumulated statistics of one layer into its seven score matrices and its head
/// scores, then releases them.
fn collect_layer(
    layer: &DecoderLayer,
    stats: &mut ScoringStats,
    sequences: usize,
    sink: &mut dyn ScoreSink,
) -> Result<(), ScoreError> {
    let index = layer.index();
    for projection in Component::ALL {
        let sums = stats.squared_norms(index, InputSite::of(projection)).ok_or_else(|| {
            ScoreError::InvalidArgument(format!("layer {index}: no activations observed for {projection:?}"))
        })?;
        let matrix = wanda_matrix(layer.projection_weight(projection), sums)?;
        sink.matrix(&projection.weight_name(index), matrix)?;
    }
    if let Some(heads) = stats.name_attention(index) {
        let mean = (heads / sequences.max(1) as f64)?;
        sink.heads(index, mean.to_vec1::<f32>()?)?;
    }
    stats.release_layer(index);
    Ok(())
}

/// |W| * sqrt(sums) with `sums` (in,) broadcast over the rows of `weight` (out, in).
pub fn wanda_matrix(weight: &Tensor, sums: &Tensor) -> Result<ScoreMatrix, ScoreError> {
    let (rows, cols) = weight.dims2()?;
    let norms = sums.to_dtype(DType::F32)?.sqrt()?.unsqueeze(0)?;
    let values = weight.to_dtype(DType::F32)?.abs()?.broadcast_mul(&norms)?;
    Ok(ScoreMatrix { rows, cols, values: values.flatten_all()?.to_vec1::<f32>()? })
}
