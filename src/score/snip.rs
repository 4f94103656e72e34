//! SNIP scores S_ij = |W_ij| * sum over calibration sequences of |dL_s/dW_ij|, where L_s is
//! the mean token cross-entropy of sequence s's answer tokens (the prompt positions are
//! masked out; the answer includes the template's end-of-turn tokens). One forward and one
//! backward per sequence through the trainable whole model, so gradients are per sample.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor};

use super::calibration::{CalibrationSequence, CalibrationSet};
use super::stats::{BatchMasks, ScoringStats};
use super::wanda::RawScores;
use super::{ScoreError, ScoreMatrix};
use crate::arch::Component;
use crate::model::{Batch, Llama, Logits};
use crate::progress::{Progress, Unit};

/// SNIP scores of every linear weight of `model`, which must be loaded trainable.
pub fn snip_scores(model: &Llama, calib: &CalibrationSet, progress: &dyn Progress) -> Result<RawScores, ScoreError> {
    if !model.options().trainable {
        return Err(ScoreError::InvalidArgument("SNIP needs a model loaded with trainable weights".into()));
    }
    let mut grad_sums: BTreeMap<(usize, Component), Tensor> = BTreeMap::new();
    let mut stats = ScoringStats::new();
    progress.start("snip: sequences", calib.sequences.len() as u64, Unit::Items);
    for seq in &calib.sequences {
        let loss = answer_loss(model, seq, &mut stats)?;
        let grads = loss.backward()?;
        for layer in 0..model.config().num_layers {
            for projection in Component::ALL {
                let weight = model.projection_weight(layer, projection).ok_or_else(|| missing(layer, projection))?;
                let grad = grads.get(weight).ok_or_else(|| missing(layer, projection))?.abs()?;
                let total = match grad_sums.remove(&(layer, projection)) {
                    Some(sum) => (sum + grad)?,
                    None => grad,
                };
                grad_sums.insert((layer, projection), total);
            }
        }
        progress.advance(1);
    }
    progress.finish();
    let mut scores = RawScores::default();
    for ((layer, projection), sum) in grad_sums {
        let weight = model.projection_weight(layer, projection).ok_or_else(|| missing(layer, projection))?;
        scores.weights.insert(projection.weight_name(layer), snip_matrix(weight, &sum)?);
        if let Some(heads) = stats.name_attention(layer) {
            let mean = (heads / calib.sequences.len().max(1) as f64)?;
            scores.heads.insert(layer, mean.to_vec1::<f32>()?);
        }
    }
    Ok(scores)
}

/// The mean cross-entropy of `seq`'s answer tokens, each predicted from the position before.
pub fn answer_loss(model: &Llama, seq: &CalibrationSequence, stats: &mut ScoringStats) -> Result<Tensor, ScoreError> {
    let device = &model.options().device;
    let batch = Batch::left_padded(&[seq.ids.as_slice()], 0, device)?;
    stats.set_batch(BatchMasks::new(&[seq], device)?);
    let logits = model.forward(&batch, Some(stats), Logits::All)?.squeeze(0)?;
    let len = seq.ids.len();
    let start = seq.response_start;
    let inputs = logits.narrow(0, start - 1, len - start)?;
    let targets = Tensor::from_slice(&seq.ids[start..], len - start, device)?;
    Ok(candle_nn::loss::cross_entropy(&inputs.to_dtype(DType::F32)?, &targets)?)
}

/// |W| * accumulated |grad|, both (out, in).
pub fn snip_matrix(weight: &Tensor, grad_sum: &Tensor) -> Result<ScoreMatrix, ScoreError> {
    let (rows, cols) = weight.dims2()?;
    let values = (weight.to_dtype(DType::F32)?.abs()? * grad_sum.to_dtype(DType::F32)?)?;
    Ok(ScoreMatrix { rows, cols, values: values.flatten_all()?.to_vec1::<f32>()? })
}

fn missing(layer: usize, projection: Component) -> ScoreError {
    ScoreError::InvalidArgument(format!("no gradient reached {}", projection.weight_name(layer)))
}
