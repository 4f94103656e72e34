//! Building masks from scores: per-matrix top-q of one group minus top-p of the other, at
//! weight, row or head granularity, and joining several masks (the regimes).
//!
//! Top-k selection orders by score descending, ties broken by the lower flat index, and
//! selects in linear time (quickselect on a copy of the scores), never sorting a matrix.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{BitMask, HeadMode, PruneMask};
use crate::arch::{classify_tensor, linear_weight_name, Architecture, Component};
use crate::score::{ScoreMatrix, ScoreSet};

/// Which group's important weights are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// top-q(minority) minus top-p(majority): the paper's direction.
    #[default]
    MinorityMinusMajority,
    /// top-q(majority) minus top-p(minority): the reverse experiment.
    MajorityMinusMinority,
}

/// The unit a mask selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// Single weight entries (the paper's "neurons").
    #[default]
    Weight,
    /// Output rows of each linear layer, scored by the sum of their entries' scores.
    Row,
    /// Attention heads, scored per layer.
    Head,
}

/// Which matrices a mask may touch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// Components considered (all seven by default).
    pub components: BTreeSet<Component>,
    /// Inclusive layer range considered (all layers when absent).
    pub layers: Option<(usize, usize)>,
}

impl Default for Selection {
    fn default() -> Self {
        Selection { components: Component::ALL.into_iter().collect(), layers: None }
    }
}

impl Selection {
    /// Whether the weight of `component` in `layer` is considered.
    pub fn includes(&self, layer: usize, component: Component) -> bool {
        self.components.contains(&component) && self.layers.is_none_or(|(lo, hi)| (lo..=hi).contains(&layer))
    }
}

/// Parses a layer range FIRST-LAST (or one layer N); the error says what was expected.
pub fn parse_layer_range(text: &str) -> Result<(usize, usize), &'static str> {
    let (lo, hi) = text.split_once('-').unwrap_or((text, text));
    let expected = "expected FIRST-LAST, e.g. 8-20";
    let lo: usize = lo.trim().parse().map_err(|_| expected)?;
    let hi: usize = hi.trim().parse().map_err(|_| expected)?;
    if lo > hi {
        return Err("FIRST must not exceed LAST");
    }
    Ok((lo, hi))
}

/// The set-difference hyperparameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DifferenceParams {
    /// Fraction of the pruned group's top entries taken (the paper's q, minority by default).
    pub q: f64,
    /// Fraction of the other group's top entries protected (the paper's p).
    pub p: f64,
    /// The unit selected.
    pub granularity: Granularity,
    /// Which group's weights are pruned.
    pub direction: Direction,
    /// Which matrices are considered.
    pub selection: Selection,
    /// How selected heads are zeroed.
    pub head_mode: HeadMode,
}

/// Scores that cannot be turned into a mask.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A fraction outside [0, 1].
    #[error("{name} = {value} is not a fraction in [0, 1]")]
    BadFraction {
        /// "p" or "q".
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// The two score sets do not cover the same matrices with the same shapes.
    #[error("scores disagree on tensor {tensor}: {reason}")]
    Mismatch {
        /// The tensor.
        tensor: String,
        /// What differs.
        reason: String,
    },
    /// A score tensor does not fit the checkpoint's architecture.
    #[error("{group} scores, tensor {tensor}: expected {expected} from the checkpoint's architecture, found {found}")]
    ScoreShape {
        /// Which group's scores ("minority" or "majority").
        group: crate::score::Group,
        /// The score tensor.
        tensor: String,
        /// What the architecture implies.
        expected: String,
        /// What the score file holds.
        found: String,
    },
    /// Joining needs at least one mask and a sensible count.
    #[error("cannot join {masks} masks keeping entries present in at least {min_count}")]
    BadJoin {
        /// Masks given.
        masks: usize,
        /// The count asked for.
        min_count: usize,
    },
}

/// Marks the `k` largest values (ties: lower index first) in linear expected time.
pub fn top_k(values: &[f32], k: usize) -> Vec<bool> {
    let n = values.len();
    if k >= n {
        return vec![true; n];
    }
    let mut selected = vec![false; n];
    if k == 0 {
        return selected;
    }
    let mut scratch = values.to_vec();
    let (_, &mut threshold, _) = scratch.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let mut taken = 0;
    for (flag, v) in selected.iter_mut().zip(values) {
        if v.total_cmp(&threshold).is_gt() {
            *flag = true;
            taken += 1;
        }
    }
    for (flag, v) in selected.iter_mut().zip(values) {
        if taken == k {
            break;
        }
        if v.total_cmp(&threshold).is_eq() {
            *flag = true;
            taken += 1;
        }
    }
    selected
}

/// floor(fraction x n), the number of entries a fraction selects.
pub fn count_for(fraction: f64, n: usize) -> usize {
    ((fraction * n as f64).floor() as usize).min(n)
}

/// top-q of `pruned` minus top-p of `protected`, as flags over the same index space.
pub fn set_difference(pruned: &[f32], protected: &[f32], q: f64, p: f64) -> Vec<bool> {
    let take = top_k(pruned, count_for(q, pruned.len()));
    let keep = top_k(protected, count_for(p, protected.len()));
    take.into_iter().zip(keep).map(|(t, k)| t && !k).collect()
}

/// Builds the mask of one (minority, majority) pair of score sets.
pub fn build_mask(
    minority: &ScoreSet,
    majority: &ScoreSet,
    arch: &Architecture,
    params: &DifferenceParams,
) -> Result<PruneMask, BuildError> {
    for (name, value) in [("p", params.p), ("q", params.q)] {
        if !(0.0..=1.0).contains(&value) {
            return Err(BuildError::BadFraction { name, value });
        }
    }
    check_scores_fit(minority, arch)?;
    check_scores_fit(majority, arch)?;
    let (pruned, protected) = match params.direction {
        Direction::MinorityMinusMajority => (minority, majority),
        Direction::MajorityMinusMinority => (majority, minority),
    };
    let mut mask = PruneMask { head_mode: params.head_mode, ..PruneMask::default() };
    match params.granularity {
        Granularity::Weight | Granularity::Row => {
            for (name, a) in selected_matrices(pruned, &params.selection) {
                let b = matching(protected, name, a)?;
                if params.granularity == Granularity::Weight {
                    let flags = set_difference(&a.values, &b.values, params.q, params.p);
                    mask.weights.insert(name.clone(), bits_from_flags(a.rows, a.cols, &flags));
                } else {
                    let flags = set_difference(&row_sums(a), &row_sums(b), params.q, params.p);
                    let rows: BTreeSet<usize> = flags.iter().enumerate().filter(|(_, &f)| f).map(|(r, _)| r).collect();
                    mask.rows.insert(name.clone(), rows);
                }
            }
        }
        Granularity::Head => {
            for layer in 0..arch.num_layers {
                if !params.selection.layers.is_none_or(|(lo, hi)| (lo..=hi).contains(&layer)) {
                    continue;
                }
                let a = head_scores(pruned, arch, layer)?;
                let b = head_scores(protected, arch, layer)?;
                let flags = set_difference(&a, &b, params.q, params.p);
                mask.heads.insert(layer, flags.iter().enumerate().filter(|(_, &f)| f).map(|(h, _)| h).collect());
            }
        }
    }
    Ok(mask)
}

/// Every score matrix must be a linear weight of a layer of `arch` with that weight's shape,
/// and every per-head score vector must belong to a layer of `arch` and hold one value per
/// head: score files state only a fingerprint, so their shapes are checked here.
pub fn check_scores_fit(scores: &ScoreSet, arch: &Architecture) -> Result<(), BuildError> {
    let misfit = |tensor: String, expected: String, found: String| BuildError::ScoreShape {
        group: scores.info.group,
        tensor,
        expected,
        found,
    };
    for (name, matrix) in &scores.weights {
        let found = format!("shape [{}, {}]", matrix.rows, matrix.cols);
        let (layer, component) = classify_tensor(name).ok_or_else(|| {
            misfit(name.clone(), "a linear weight of a decoder layer".into(), format!("another tensor, {found}"))
        })?;
        if layer >= arch.num_layers {
            return Err(misfit(name.clone(), format!("a layer below {}", arch.num_layers), format!("layer {layer}")));
        }
        let expected = arch.linear_shape(component);
        if [matrix.rows, matrix.cols] != expected || matrix.values.len() != matrix.rows * matrix.cols {
            return Err(misfit(name.clone(), format!("shape {expected:?}"), found));
        }
    }
    for (&layer, heads) in &scores.heads {
        let name = crate::score::head_scores_name(layer);
        if layer >= arch.num_layers {
            return Err(misfit(name, format!("a layer below {}", arch.num_layers), format!("layer {layer}")));
        }
        if heads.len() != arch.num_heads {
            return Err(misfit(name, format!("{} head scores", arch.num_heads), format!("{}", heads.len())));
        }
    }
    Ok(())
}

fn selected_matrices<'s>(
    scores: &'s ScoreSet,
    selection: &'s Selection,
) -> impl Iterator<Item = (&'s String, &'s ScoreMatrix)> {
    scores.weights.iter().filter(move |(name, _)| classify_tensor(name).is_some_and(|(l, c)| selection.includes(l, c)))
}

fn matching<'s>(scores: &'s ScoreSet, name: &str, like: &ScoreMatrix) -> Result<&'s ScoreMatrix, BuildError> {
    let other = scores.weights.get(name).ok_or_else(|| BuildError::Mismatch {
        tensor: name.to_string(),
        reason: format!("present in the {} scores, absent from the {} scores", opposite(scores), scores.info.group),
    })?;
    if (other.rows, other.cols) != (like.rows, like.cols) {
        return Err(BuildError::Mismatch {
            tensor: name.to_string(),
            reason: format!("shape {}x{} versus {}x{}", like.rows, like.cols, other.rows, other.cols),
        });
    }
    Ok(other)
}

fn opposite(scores: &ScoreSet) -> &'static str {
    match scores.info.group {
        crate::score::Group::Majority => "minority",
        crate::score::Group::Minority => "majority",
    }
}

fn bits_from_flags(rows: usize, cols: usize, flags: &[bool]) -> BitMask {
    let mut bits = BitMask::new(rows, cols);
    for (i, _) in flags.iter().enumerate().filter(|(_, &f)| f) {
        bits.set(i / cols, i % cols);
    }
    bits
}

fn row_sums(m: &ScoreMatrix) -> Vec<f32> {
    m.values.chunks_exact(m.cols.max(1)).map(|row| row.iter().map(|&v| v as f64).sum::<f64>() as f32).collect()
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

/// Per-head scores of a layer: the score file's own head scores when it has them, else
/// derived from weight scores as the sum over the head's q_proj rows and o_proj columns
/// plus its key/value head's k_proj and v_proj rows divided by the heads sharing them.
pub fn head_scores(scores: &ScoreSet, arch: &Architecture, layer: usize) -> Result<Vec<f32>, BuildError> {
    if let Some(heads) = scores.heads.get(&layer) {
        return Ok(heads.clone());
    }
    let get = |component: Component| {
        let name = linear_weight_name(layer, component);
        scores.weights.get(&name).ok_or_else(|| BuildError::Mismatch {
            tensor: name,
            reason: format!("head scores of layer {layer} need it, but the {} scores lack it", scores.info.group),
        })
    };
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

/// Keeps what at least `min_count` of `masks` select (all of them: the intersection).
pub fn join_masks(masks: &[PruneMask], min_count: usize) -> Result<PruneMask, BuildError> {
    if masks.is_empty() || min_count == 0 || min_count > masks.len() {
        return Err(BuildError::BadJoin { masks: masks.len(), min_count });
    }
    let mut joined = PruneMask { head_mode: masks[0].head_mode, ..PruneMask::default() };
    let weight_names: BTreeSet<&String> = masks.iter().flat_map(|m| m.weights.keys()).collect();
    for name in weight_names {
        let present: Vec<&BitMask> = masks.iter().filter_map(|m| m.weights.get(name)).collect();
        if present.len() < min_count {
            continue;
        }
        let (rows, cols) = (present[0].rows(), present[0].cols());
        let mut counts = vec![0u16; rows * cols];
        for bits in &present {
            for r in 0..rows {
                bits.for_each_in_row(r, |c| counts[r * cols + c] += 1);
            }
        }
        let flags: Vec<bool> = counts.iter().map(|&n| n as usize >= min_count).collect();
        joined.weights.insert(name.clone(), bits_from_flags(rows, cols, &flags));
    }
    joined.rows = join_sets(masks.iter().map(|m| &m.rows), min_count);
    joined.mlp_units = join_sets(masks.iter().map(|m| &m.mlp_units), min_count);
    joined.heads = join_sets(masks.iter().map(|m| &m.heads), min_count);
    Ok(joined)
}

fn join_sets<'m, K: Ord + Clone + 'm>(
    maps: impl Iterator<Item = &'m BTreeMap<K, BTreeSet<usize>>>,
    min_count: usize,
) -> BTreeMap<K, BTreeSet<usize>> {
    let mut counts: BTreeMap<K, BTreeMap<usize, usize>> = BTreeMap::new();
    for map in maps {
        for (key, set) in map {
            let entry = counts.entry(key.clone()).or_default();
            for &i in set {
                *entry.entry(i).or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .map(|(k, c)| (k, c.into_iter().filter(|&(_, n)| n >= min_count).map(|(i, _)| i).collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse_layer_range;

    #[test]
    fn layer_ranges_parse_and_say_what_is_wrong() {
        assert_eq!(parse_layer_range("8-20"), Ok((8, 20)));
        assert_eq!(parse_layer_range(" 3 "), Ok((3, 3)));
        assert_eq!(parse_layer_range("5-2"), Err("FIRST must not exceed LAST"));
        assert_eq!(parse_layer_range("a-2"), Err("expected FIRST-LAST, e.g. 8-20"));
        assert_eq!(parse_layer_range("1-"), Err("expected FIRST-LAST, e.g. 8-20"));
    }
}
