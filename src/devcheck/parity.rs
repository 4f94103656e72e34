//! Same checkpoint, two devices (or dtypes): how far apart are the last-position logits and
//! the Wanda statistics (per input feature, sum of squared activations)?

use candle_core::DType;
use serde::Serialize;

use crate::model::{Batch, InputSite, Llama, Logits, ModelError, SquaredNormStats};

/// How far a candidate is from a reference.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Difference {
    /// Largest |candidate - reference| over all values.
    pub max_abs: f64,
    /// `max_abs` divided by the largest |reference| value (scale-free, robust to values
    /// near zero where elementwise ratios explode).
    pub max_rel: f64,
    /// Largest |reference| value.
    pub reference_max_abs: f64,
}

impl Difference {
    /// The difference of two equally long slices.
    pub fn of(reference: &[f32], candidate: &[f32]) -> Self {
        let max_abs = reference.iter().zip(candidate).map(|(a, b)| (a - b).abs() as f64).fold(0.0, f64::max);
        let scale = reference.iter().map(|a| a.abs() as f64).fold(0.0, f64::max);
        let max_rel = if scale > 0.0 { max_abs / scale } else { max_abs };
        Self { max_abs, max_rel, reference_max_abs: scale }
    }
}

/// Logits parity over a batch of prompts.
#[derive(Debug, Clone, Serialize)]
pub struct LogitsParity {
    /// Rows compared.
    pub rows: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Difference over all rows' last-position logits.
    pub logits: Difference,
    /// Rows whose arg-max token is the same on both.
    pub argmax_agree: usize,
}

/// Wanda statistic parity over every layer and input site.
#[derive(Debug, Clone, Serialize)]
pub struct StatsParity {
    /// (layer, site) vectors compared.
    pub vectors: usize,
    /// The worst (largest `max_rel`) vector's difference.
    pub worst: Difference,
    /// Which vector was worst, e.g. `layer 3 DownProjInput`.
    pub worst_at: String,
    /// Whether the real-token counts agree everywhere.
    pub token_counts_agree: bool,
}

/// Runs `prompts` through both models and compares last-position logits.
pub fn compare_logits(reference: &Llama, candidate: &Llama, prompts: &[Vec<u32>]) -> Result<LogitsParity, ModelError> {
    let a = last_logits(reference, prompts)?;
    let b = last_logits(candidate, prompts)?;
    let flat = |rows: &[Vec<f32>]| rows.concat();
    let argmax_agree = a.iter().zip(&b).filter(|(x, y)| argmax(x) == argmax(y)).count();
    Ok(LogitsParity {
        rows: a.len(),
        vocab: a.first().map_or(0, Vec::len),
        logits: Difference::of(&flat(&a), &flat(&b)),
        argmax_agree,
    })
}

/// Accumulates Wanda statistics of `prompts` on both models and compares every vector.
pub fn compare_wanda_stats(
    reference: &Llama,
    candidate: &Llama,
    prompts: &[Vec<u32>],
) -> Result<StatsParity, ModelError> {
    let a = wanda_stats(reference, prompts)?;
    let b = wanda_stats(candidate, prompts)?;
    let mut worst = Difference { max_abs: 0.0, max_rel: 0.0, reference_max_abs: 0.0 };
    let mut worst_at = String::new();
    let mut vectors = 0;
    let mut token_counts_agree = true;
    for layer in 0..reference.config().num_layers {
        for site in InputSite::ALL {
            let projection = site.projections()[0];
            let (Some(x), Some(y)) = (a.squared_norms(layer, projection)?, b.squared_norms(layer, projection)?) else {
                return Err(missing(layer, site));
            };
            token_counts_agree &= a.token_count(layer, site) == b.token_count(layer, site);
            let diff = Difference::of(&x, &y);
            if vectors == 0 || diff.max_rel > worst.max_rel {
                worst = diff;
                worst_at = format!("layer {layer} {site:?}");
            }
            vectors += 1;
        }
    }
    Ok(StatsParity { vectors, worst, worst_at, token_counts_agree })
}

fn missing(layer: usize, site: InputSite) -> ModelError {
    ModelError::InvalidArgument(format!("no Wanda statistic recorded for layer {layer} {site:?}"))
}

fn last_logits(model: &Llama, prompts: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, ModelError> {
    let batch = Batch::left_padded(prompts, 0, &model.options().device)?;
    let logits = model.forward(&batch, None, Logits::Last)?;
    Ok(logits.to_dtype(DType::F32)?.to_vec2::<f32>()?)
}

/// Wanda statistics of `prompts` (one batch) on `model`.
pub(super) fn wanda_stats(model: &Llama, prompts: &[Vec<u32>]) -> Result<SquaredNormStats, ModelError> {
    let batch = Batch::left_padded(prompts, 0, &model.options().device)?;
    let mut stats = SquaredNormStats::new();
    model.forward(&batch, Some(&mut stats), Logits::Last)?;
    Ok(stats)
}

fn argmax(values: &[f32]) -> usize {
    values.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best }).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difference_is_scaled_by_the_reference() {
        let d = Difference::of(&[10.0, -20.0, 0.0], &[10.5, -20.0, 0.1]);
        assert!((d.max_abs - 0.5).abs() < 1e-9);
        assert!((d.max_rel - 0.025).abs() < 1e-9);
        assert_eq!(d.reference_max_abs, 20.0);
    }

    #[test]
    fn argmax_finds_the_largest() {
        assert_eq!(argmax(&[0.1, 3.0, -1.0, 2.9]), 1);
    }
}
