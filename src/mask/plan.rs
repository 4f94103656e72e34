//! Resolving a mask against a checkpoint: which rows, columns and entries of which tensors.

use std::collections::{BTreeMap, BTreeSet};

use safetensors::Dtype;

use super::{BitMask, HeadMode, PruneMask};
use crate::arch::{linear_weight_name, Architecture, Component};
use crate::checkpoint::Checkpoint;

/// A mask that does not fit the checkpoint it is applied to.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The mask names a tensor the checkpoint does not hold.
    #[error("mask names tensor {tensor}, which the checkpoint does not hold")]
    UnknownTensor {
        /// The tensor.
        tensor: String,
    },
    /// The tensor is not a 2-D matrix.
    #[error("tensor {tensor}: masks apply to 2-D weights, found shape {shape:?}")]
    NotAMatrix {
        /// The tensor.
        tensor: String,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A weight bitmask's shape differs from its tensor's.
    #[error("tensor {tensor}: bitmask shape {mask:?} differs from the tensor shape {tensor_shape:?}")]
    ShapeMismatch {
        /// The tensor.
        tensor: String,
        /// The bitmask shape.
        mask: [usize; 2],
        /// The tensor shape.
        tensor_shape: Vec<usize>,
    },
    /// The tensor's dtype cannot be pruned.
    #[error("tensor {tensor}: surgery supports BF16, F16 and F32 weights, found {dtype:?}")]
    UnsupportedDtype {
        /// The tensor.
        tensor: String,
        /// Its dtype.
        dtype: Dtype,
    },
    /// A row index is past the tensor's rows.
    #[error("tensor {tensor}: row {row} out of range (the tensor has {rows} rows)")]
    RowOutOfRange {
        /// The tensor.
        tensor: String,
        /// The row asked for.
        row: usize,
        /// The number of rows.
        rows: usize,
    },
    /// A column index is past the tensor's columns.
    #[error("tensor {tensor}: column {col} out of range (the tensor has {cols} columns)")]
    ColumnOutOfRange {
        /// The tensor.
        tensor: String,
        /// The column asked for.
        col: usize,
        /// The number of columns.
        cols: usize,
    },
    /// A layer index is past the model's layers.
    #[error("layer {layer} out of range (the model has {num_layers} layers)")]
    LayerOutOfRange {
        /// The layer asked for.
        layer: usize,
        /// The number of layers.
        num_layers: usize,
    },
    /// A head index is past the layer's heads.
    #[error("layer {layer}: head {head} out of range (the model has {num_heads} heads)")]
    HeadOutOfRange {
        /// The layer.
        layer: usize,
        /// The head asked for.
        head: usize,
        /// The number of heads.
        num_heads: usize,
    },
    /// An MLP unit index is past the MLP width.
    #[error("layer {layer}: MLP unit {unit} out of range (intermediate_size is {width})")]
    UnitOutOfRange {
        /// The layer.
        layer: usize,
        /// The unit asked for.
        unit: usize,
        /// The MLP width.
        width: usize,
    },
}

/// Everything to zero in one 2-D tensor: whole rows, whole columns and single entries.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorZeroing {
    /// Rows of the tensor.
    pub rows: usize,
    /// Columns of the tensor.
    pub cols: usize,
    /// Rows zeroed entirely.
    pub zero_rows: BTreeSet<usize>,
    /// Columns zeroed entirely.
    pub zero_cols: BTreeSet<usize>,
    /// Single entries zeroed.
    pub entries: Option<BitMask>,
}

impl TensorZeroing {
    fn new(rows: usize, cols: usize) -> Self {
        TensorZeroing { rows, cols, zero_rows: BTreeSet::new(), zero_cols: BTreeSet::new(), entries: None }
    }

    /// Fills `flags` (one per column) with whether each entry of `row` is zeroed; returns
    /// how many are.
    pub fn row_flags(&self, row: usize, flags: &mut [bool]) -> usize {
        if self.zero_rows.contains(&row) {
            flags.fill(true);
            return self.cols;
        }
        flags.fill(false);
        for &c in &self.zero_cols {
            flags[c] = true;
        }
        if let Some(entries) = &self.entries {
            entries.for_each_in_row(row, |c| flags[c] = true);
        }
        flags.iter().filter(|&&f| f).count()
    }

    /// Gives back the pages of a memory-mapped entry mask once the tensor is done.
    pub fn release_pages(&self) {
        if let Some(entries) = &self.entries {
            entries.release_pages();
        }
    }

    /// Number of distinct entries zeroed.
    pub fn zeroed_count(&self) -> u64 {
        let mut flags = vec![false; self.cols];
        (0..self.rows).map(|r| self.row_flags(r, &mut flags) as u64).sum()
    }
}

/// The resolved surgery: per tensor name, what to zero.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZeroPlan {
    /// Affected tensors by name.
    pub tensors: BTreeMap<String, TensorZeroing>,
}

impl ZeroPlan {
    /// Number of distinct entries zeroed over all tensors.
    pub fn zeroed_count(&self) -> u64 {
        self.tensors.values().map(TensorZeroing::zeroed_count).sum()
    }
}

/// Resolves `mask` against an opened checkpoint and its architecture.
pub fn resolve(mask: &PruneMask, arch: &Architecture, ckpt: &Checkpoint) -> Result<ZeroPlan, PlanError> {
    let mut plan = ZeroPlan::default();
    for (tensor, bits) in &mask.weights {
        let zeroing = entry_for(&mut plan, ckpt, tensor)?;
        if [zeroing.rows, zeroing.cols] != [bits.rows(), bits.cols()] {
            return Err(PlanError::ShapeMismatch {
                tensor: tensor.clone(),
                mask: [bits.rows(), bits.cols()],
                tensor_shape: vec![zeroing.rows, zeroing.cols],
            });
        }
        zeroing.entries = Some(bits.clone());
    }
    for (tensor, rows) in &mask.rows {
        add_rows(&mut plan, ckpt, tensor, rows.iter().copied())?;
    }
    for (&layer, units) in &mask.mlp_units {
        check_layer(arch, layer)?;
        if let Some(&unit) = units.iter().find(|&&u| u >= arch.intermediate_size) {
            return Err(PlanError::UnitOutOfRange { layer, unit, width: arch.intermediate_size });
        }
        add_rows(&mut plan, ckpt, &linear_weight_name(layer, Component::Gate), units.iter().copied())?;
        add_rows(&mut plan, ckpt, &linear_weight_name(layer, Component::Up), units.iter().copied())?;
        add_cols(&mut plan, ckpt, &linear_weight_name(layer, Component::Down), units.iter().copied())?;
    }
    for (&layer, heads) in &mask.heads {
        check_layer(arch, layer)?;
        if let Some(&head) = heads.iter().find(|&&h| h >= arch.num_heads) {
            return Err(PlanError::HeadOutOfRange { layer, head, num_heads: arch.num_heads });
        }
        let span = heads.iter().flat_map(|&h| h * arch.head_dim..(h + 1) * arch.head_dim);
        match mask.head_mode {
            HeadMode::OProjColumns => add_cols(&mut plan, ckpt, &linear_weight_name(layer, Component::O), span)?,
            HeadMode::QProjRows => add_rows(&mut plan, ckpt, &linear_weight_name(layer, Component::Q), span)?,
        }
    }
    Ok(plan)
}

fn check_layer(arch: &Architecture, layer: usize) -> Result<(), PlanError> {
    if layer >= arch.num_layers {
        return Err(PlanError::LayerOutOfRange { layer, num_layers: arch.num_layers });
    }
    Ok(())
}

fn add_rows(
    plan: &mut ZeroPlan,
    ckpt: &Checkpoint,
    tensor: &str,
    rows: impl Iterator<Item = usize>,
) -> Result<(), PlanError> {
    let zeroing = entry_for(plan, ckpt, tensor)?;
    for row in rows {
        if row >= zeroing.rows {
            return Err(PlanError::RowOutOfRange { tensor: tensor.to_string(), row, rows: zeroing.rows });
        }
        zeroing.zero_rows.insert(row);
    }
    Ok(())
}

fn add_cols(
    plan: &mut ZeroPlan,
    ckpt: &Checkpoint,
    tensor: &str,
    cols: impl Iterator<Item = usize>,
) -> Result<(), PlanError> {
    let zeroing = entry_for(plan, ckpt, tensor)?;
    for col in cols {
        if col >= zeroing.cols {
            return Err(PlanError::ColumnOutOfRange { tensor: tensor.to_string(), col, cols: zeroing.cols });
        }
        zeroing.zero_cols.insert(col);
    }
    Ok(())
}

fn entry_for<'p>(plan: &'p mut ZeroPlan, ckpt: &Checkpoint, tensor: &str) -> Result<&'p mut TensorZeroing, PlanError> {
    if !plan.tensors.contains_key(tensor) {
        let view = ckpt.tensor(tensor).map_err(|_| PlanError::UnknownTensor { tensor: tensor.to_string() })?;
        let [rows, cols] = <[usize; 2]>::try_from(view.shape)
            .map_err(|_| PlanError::NotAMatrix { tensor: tensor.to_string(), shape: view.shape.to_vec() })?;
        if !matches!(view.dtype, Dtype::BF16 | Dtype::F16 | Dtype::F32) {
            return Err(PlanError::UnsupportedDtype { tensor: tensor.to_string(), dtype: view.dtype });
        }
        plan.tensors.insert(tensor.to_string(), TensorZeroing::new(rows, cols));
    }
    Ok(plan.tensors.get_mut(tensor).expect("inserted above"))
}
