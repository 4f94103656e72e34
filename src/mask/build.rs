//! Building masks from scores: top-q of one group minus top-p of the other, per matrix (weight
//! and row granularity), per layer (MLP units, heads) or over all layers (heads ranked
//! globally), and joining several masks (the regimes).
//!
//! Top-k selection orders by score descending, ties broken by the lower flat index, and
//! selects in linear time (quickselect on a copy of the scores), never sorting a matrix.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::unit_scores::{head_scores, mlp_unit_scores, row_sums, weight_head_scores, UnitScoreError};
use super::{BitMask, HeadMode, PruneMask};
use crate::arch::{classify_tensor, Architecture, Component};
use crate::score::{ScoreMatrix, ScoreSet};

/// Which group's important weights are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// top-q(minority) minus top-p(majority): the paper's direction.
    #[default]
    #[cfg_attr(
        feature = "cli",
        value(name = "minority", help = "Prune weights important for minority prompts but not majority prompts")
    )]
    MinorityMinusMajority,
    /// top-q(majority) minus top-p(minority): the reverse experiment.
    #[cfg_attr(
        feature = "cli",
        value(name = "majority", help = "Prune weights important for majority prompts but not minority prompts")
    )]
    MajorityMinusMinority,
}

/// The unit a mask selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Granularity {
    /// Single weight entries (the paper's "neurons").
    #[default]
    #[cfg_attr(feature = "cli", value(help = "Single weight entries"))]
    Weight,
    /// Output rows of each linear layer, scored by the sum of their entries' scores (for
    /// down_proj and o_proj a row is a residual-stream channel).
    #[cfg_attr(feature = "cli", value(help = "Output rows"))]
    Row,
    /// MLP units: unit j of a layer is row j of gate_proj and up_proj and column j of
    /// down_proj, scored by the sum of those three vectors' scores, selected per layer.
    #[cfg_attr(feature = "cli", value(help = "MLP units"))]
    Unit,
    /// Attention heads, scored as [`HeadScore`] says and ranked as [`HeadRanking`] says.
    #[cfg_attr(feature = "cli", value(help = "Attention heads"))]
    Head,
}

/// Where the per-head scores of head granularity come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum HeadScore {
    /// The score file's own head scores (attention paid to the name tokens, the authors'
    /// ranking); derived from the weight scores when a file has none.
    #[default]
    #[cfg_attr(feature = "cli", value(help = "The score files' head scores (attention paid to the name tokens)"))]
    Attention,
    /// Derived from the weight scores: the head's q_proj rows and o_proj columns plus its
    /// key/value head's k_proj and v_proj rows divided by the heads sharing them.
    #[cfg_attr(feature = "cli", value(help = "Sums of the head's weight scores"))]
    Weights,
}

/// Over which heads the set difference of head granularity is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum HeadRanking {
    /// Within each layer: floor(q x heads) and floor(p x heads) per layer.
    #[default]
    #[cfg_attr(feature = "cli", value(help = "Set difference within each layer"))]
    PerLayer,
    /// All heads of all considered layers together (the authors' code): counts from the
    /// total number of heads, ties broken by the lower (layer, head).
    #[cfg_attr(feature = "cli", value(help = "Set difference over all heads of the considered layers"))]
    Global,
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Granularity::Weight => "weight",
            Granularity::Row => "row",
            Granularity::Unit => "unit",
            Granularity::Head => "head",
        })
    }
}

impl fmt::Display for HeadScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeadScore::Attention => "attention",
            HeadScore::Weights => "weights",
        })
    }
}

impl fmt::Display for HeadRanking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeadRanking::PerLayer => "per-layer",
            HeadRanking::Global => "global",
        })
    }
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
    /// Where head scores come from (head granularity); omitted from JSON at its default.
    #[serde(default, skip_serializing_if = "is_default")]
    pub head_score: HeadScore,
    /// How heads are ranked (head granularity); omitted from JSON at its default.
    #[serde(default, skip_serializing_if = "is_default")]
    pub head_ranking: HeadRanking,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl DifferenceParams {
    /// Checks the fractions and that the settings fit the granularity.
    pub fn check(&self) -> Result<(), BuildError> {
        for (name, value) in [("p", self.p), ("q", self.q)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(BuildError::BadFraction { name, value });
            }
        }
        let head_settings = !is_default(&self.head_score) || !is_default(&self.head_ranking);
        if head_settings && self.granularity != Granularity::Head {
            return Err(BuildError::HeadSettings {
                head_score: self.head_score,
                head_ranking: self.head_ranking,
                granularity: self.granularity,
            });
        }
        let mlp = [Component::Gate, Component::Up, Component::Down];
        let missing: Vec<Component> = mlp.into_iter().filter(|c| !self.selection.components.contains(c)).collect();
        if self.granularity == Granularity::Unit && !missing.is_empty() {
            return Err(BuildError::UnitComponents { missing });
        }
        Ok(())
    }
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
    /// Unit scores could not be computed from the weight scores.
    #[error(transparent)]
    Scores(#[from] UnitScoreError),
    /// Unit granularity without all three MLP components selected.
    #[error("granularity unit scores MLP unit j by gate_proj row j, up_proj row j and down_proj column j, so it needs components gate, up and down; missing: {}", join_components(missing))]
    UnitComponents {
        /// The MLP components not selected.
        missing: Vec<Component>,
    },
    /// A head setting other than the default at a granularity that has no heads.
    #[error("head score {head_score} and head ranking {head_ranking} apply to granularity head only, found granularity {granularity}; leave them at attention and per-layer")]
    HeadSettings {
        /// The head score source given.
        head_score: HeadScore,
        /// The head ranking given.
        head_ranking: HeadRanking,
        /// The granularity given.
        granularity: Granularity,
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
    params.check()?;
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
                    mask.rows.insert(name.clone(), selected(&flags));
                }
            }
        }
        Granularity::Unit => {
            for layer in selected_layers(arch, &params.selection) {
                let (a, b) = (mlp_unit_scores(pruned, arch, layer)?, mlp_unit_scores(protected, arch, layer)?);
                mask.mlp_units.insert(layer, selected(&set_difference(&a, &b, params.q, params.p)));
            }
        }
        Granularity::Head => mask.heads = head_difference(pruned, protected, arch, params)?,
    }
    Ok(mask)
}

/// Heads of `pruned` minus heads of `protected`, ranked within each layer or over all the
/// considered layers together; every considered layer gets an entry, possibly empty.
fn head_difference(
    pruned: &ScoreSet,
    protected: &ScoreSet,
    arch: &Architecture,
    params: &DifferenceParams,
) -> Result<BTreeMap<usize, BTreeSet<usize>>, BuildError> {
    let score = |scores: &ScoreSet, layer: usize| match params.head_score {
        HeadScore::Attention => head_scores(scores, arch, layer),
        HeadScore::Weights => weight_head_scores(scores, arch, layer),
    };
    let layers: Vec<usize> = selected_layers(arch, &params.selection).collect();
    let mut heads = BTreeMap::new();
    match params.head_ranking {
        HeadRanking::PerLayer => {
            for &layer in &layers {
                let (a, b) = (score(pruned, layer)?, score(protected, layer)?);
                heads.insert(layer, selected(&set_difference(&a, &b, params.q, params.p)));
            }
        }
        HeadRanking::Global => {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for &layer in &layers {
                a.extend(score(pruned, layer)?);
                b.extend(score(protected, layer)?);
            }
            let flags = set_difference(&a, &b, params.q, params.p);
            for (&layer, chunk) in layers.iter().zip(flags.chunks(arch.num_heads.max(1))) {
                heads.insert(layer, selected(chunk));
            }
        }
    }
    Ok(heads)
}

fn selected_layers<'a>(arch: &Architecture, selection: &'a Selection) -> impl Iterator<Item = usize> + 'a {
    (0..arch.num_layers).filter(move |&layer| selection.layers.is_none_or(|(lo, hi)| (lo..=hi).contains(&layer)))
}

fn join_components(components: &[Component]) -> String {
    components.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
}

fn selected(flags: &[bool]) -> BTreeSet<usize> {
    flags.iter().enumerate().filter(|(_, &f)| f).map(|(i, _)| i).collect()
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
