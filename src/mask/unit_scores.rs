//! Scores of structured units (rows, attention heads, MLP units), summed from the scores of
//! the weights each unit owns, or taken from a score file's own head scores.

use crate::arch::{linear_weight_name, Architecture, Component};
use crate::score::{ScoreMatrix, ScoreSet};

/// Weight scores that cannot be summed into unit scores.
#[derive(Debug, thiserror::Error)]
pub enum UnitScoreError {
    /// A weight the unit owns has no scores.
    #[error("{unit} of layer {layer} need {tensor}, but the {group} scores lack it")]
    Missing {
        /// What was being scored ("head scores", "MLP unit scores").
        unit: &'static str,
        /// The layer.
        layer: usize,
        /// The tensor whose scores are missing.
        tensor: String,
        /// The group of the score set.
        group: crate::score::Group,
    },
    /// gate_proj, up_proj and down_proj disagree on the MLP width.
    #[error("MLP unit scores of layer {layer} need as many gate_proj rows, up_proj rows and down_proj columns as intermediate_size ({width}); the {group} scores have {gate}, {up} and {down}")]
    MlpWidth {
        /// The layer.
        layer: usize,
        /// The architecture's intermediate_size.
        width: usize,
        /// The group of the score set.
        group: crate::score::Group,
        /// Rows of the gate_proj scores.
        gate: usize,
        /// Rows of the up_proj scores.
        up: usize,
        /// Columns of the down_proj scores.
        down: usize,
    },
}

/// Per-head scores of a layer: the score file's own head scores (attention paid to the name
/// tokens) when it has them, else [`weight_head_scores`].
pub fn head_scores(scores: &ScoreSet, arch: &Architecture, layer: usize) -> Result<Vec<f32>, UnitScoreError> {
    match scores.heads.get(&layer) {
        Some(heads) => Ok(heads.clone()),
        None => weight_head_scores(scores, arch, layer),
    }
}

/// Per-head scores of a layer derived from weight scores: the sum over the head's q_proj rows
/// and o_proj columns, plus its key/value head's k_proj and v_proj rows divided by the number
/// of query heads sharing them (grouped-query attention).
pub fn weight_head_scores(scores: &ScoreSet, arch: &Architecture, layer: usize) -> Result<Vec<f32>, UnitScoreError> {
    let get = |component| layer_scores(scores, layer, component, "head scores");
    let d = arch.head_dim;
    let group = arch.num_heads / arch.num_kv_heads;
    let q = row_sums(get(Component::Q)?);
    let k = row_sums(get(Component::K)?);
    let v = row_sums(get(Component::V)?);
    let o = column_sums(get(Component::O)?);
    let span_sum = |values: &[f32], h: usize| values[h * d..(h + 1) * d].iter().map(|&x| x as f64).sum::<f64>();
    Ok((0..arch.num_heads)
        .map(|h| {
            let kv = h / group;
            let shared = (span_sum(&k, kv) + span_sum(&v, kv)) / group as f64;
            (span_sum(&q, h) + o[h * d..(h + 1) * d].iter().sum::<f64>() + shared) as f32
        })
        .collect())
}

/// Per-unit scores of a layer's MLP: unit j scores the sum of gate_proj row j, up_proj row j
/// and down_proj column j (summed in f64, rounded once to f32).
pub fn mlp_unit_scores(scores: &ScoreSet, arch: &Architecture, layer: usize) -> Result<Vec<f32>, UnitScoreError> {
    let get = |component| layer_scores(scores, layer, component, "MLP unit scores");
    let (gate, up, down) = (get(Component::Gate)?, get(Component::Up)?, get(Component::Down)?);
    let width = arch.intermediate_size;
    if gate.rows != width || up.rows != width || down.cols != width {
        return Err(UnitScoreError::MlpWidth {
            layer,
            width,
            group: scores.info.group,
            gate: gate.rows,
            up: up.rows,
            down: down.cols,
        });
    }
    let (gate, up, down) = (row_sums_f64(gate), row_sums_f64(up), column_sums(down));
    Ok((0..width).map(|j| (gate[j] + up[j] + down[j]) as f32).collect())
}

fn layer_scores<'s>(
    scores: &'s ScoreSet,
    layer: usize,
    component: Component,
    unit: &'static str,
) -> Result<&'s ScoreMatrix, UnitScoreError> {
    let tensor = linear_weight_name(layer, component);
    scores.weights.get(&tensor).ok_or(UnitScoreError::Missing { unit, layer, tensor, group: scores.info.group })
}

/// The sum of each row's scores, in f64 rounded to f32.
pub(super) fn row_sums(m: &ScoreMatrix) -> Vec<f32> {
    row_sums_f64(m).into_iter().map(|s| s as f32).collect()
}

fn row_sums_f64(m: &ScoreMatrix) -> Vec<f64> {
    m.values.chunks_exact(m.cols.max(1)).map(|row| row.iter().map(|&v| v as f64).sum::<f64>()).collect()
}

fn column_sums(m: &ScoreMatrix) -> Vec<f64> {
    let mut sums = vec![0f64; m.cols];
    for row in m.values.chunks_exact(m.cols.max(1)) {
        for (s, &v) in sums.iter_mut().zip(row) {
            *s += v as f64;
        }
    }
    sums
}
