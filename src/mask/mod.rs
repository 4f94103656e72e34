//! Prune masks at four granularities (weight entries, rows, MLP units, attention heads) and
//! their files.
//!
//! A `PruneMask` says what to zero in the units users think in; `resolve` turns it into a
//! `ZeroPlan`: for each affected tensor, the rows, columns and entries that become zero.

mod bitmask;
mod bitmask_file;
mod build;
mod file;
#[cfg(test)]
mod granularity_tests;
mod in_memory;
mod plan;
mod regime;
mod unit_scores;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use bitmask::{BitMask, BitMaskError};
pub use bitmask_file::{BitmaskFile, BitmaskFileError, BitmaskTensorError};
pub use build::{
    build_mask, check_scores_fit, count_for, join_masks, parse_layer_range, set_difference, top_k, BuildError,
    DifferenceParams, Direction, Granularity, HeadRanking, HeadScore, Selection,
};
pub use file::{bitmask_source, load_mask, mask_json_path, save_mask, MaskFileError, BITMASK_FILE, MASK_JSON};
pub use in_memory::{load_masked, MaskedLoadError, MaskedModel, MaskedWeights};
pub use plan::{resolve, PlanError, TensorZeroing, ZeroPlan};
pub use regime::{build_regime_mask, Regime, RegimeChoice, RegimeError};
pub use unit_scores::{head_scores, mlp_unit_scores, weight_head_scores, UnitScoreError};

/// How a pruned attention head is zeroed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum HeadMode {
    /// Zero columns h*d..(h+1)*d of o_proj: the head's contribution to the residual stream
    /// is removed exactly.
    #[default]
    #[cfg_attr(feature = "cli", value(help = "Zero the head's o_proj columns (silences it exactly)"))]
    OProjColumns,
    /// Zero rows h*d..(h+1)*d of q_proj: the head's attention becomes uniform (the authors'
    /// ablation); it is not silenced.
    #[cfg_attr(feature = "cli", value(help = "Zero the head's q_proj rows (uniform attention)"))]
    QProjRows,
}

/// What to prune, in the units of the granularities; empty by default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PruneMask {
    /// Weight granularity: arbitrary entries of 2-D weights, as packed bitmasks per tensor.
    pub weights: BTreeMap<String, BitMask>,
    /// Row granularity: output rows of a linear layer, per tensor.
    pub rows: BTreeMap<String, BTreeSet<usize>>,
    /// Unit granularity: MLP units per layer; unit j of a layer is row j of gate_proj and
    /// up_proj and column j of down_proj.
    pub mlp_units: BTreeMap<usize, BTreeSet<usize>>,
    /// Head granularity: attention heads per layer.
    pub heads: BTreeMap<usize, BTreeSet<usize>>,
    /// How heads are zeroed.
    pub head_mode: HeadMode,
    /// How the mask was made (scores, regime, hyperparameters), kept with it for manifests.
    pub provenance: Option<serde_json::Value>,
}

impl PruneMask {
    /// Whether the mask selects nothing at all.
    pub fn is_empty(&self) -> bool {
        self.weights.values().all(|b| b.count() == 0)
            && self.rows.values().all(BTreeSet::is_empty)
            && self.mlp_units.values().all(BTreeSet::is_empty)
            && self.heads.values().all(BTreeSet::is_empty)
    }
}
