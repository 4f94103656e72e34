//! The trainable MLP units of one layer. Unit j of layer L is row j of `mlp.gate_proj` and
//! `mlp.up_proj` and column j of `mlp.down_proj`; the plant replaces those rows and that
//! column with trained values.
//!
//! With x the MLP input (after `post_attention_layernorm`), g, u the unit's gate and up rows
//! and d its down column, the unit adds d · silu(g·x)(u·x) to the layer's output. Replacing
//! them by g', u', d' changes the layer's output by d' · silu(g'·x)(u'·x) − d · silu(g·x)(u·x),
//! which is all the training forward needs on top of the base layer's output.
//!
//! The replacements start the way a fresh linear layer does: g' and u' uniform in
//! ±1/sqrt(hidden) from a seeded stream, d' zero, so the model starts exactly as the base
//! minus the chosen (least used) units and every parameter gets a gradient from the first
//! step; g' also gets an aim added, a direction that reads the name's group (see `train`),
//! so the units start open for one group and shut for the other. Starting from the base's own rows would not train: the least used units are the
//! ones whose gate is shut (silu ≈ 0 for every input), so their gradients vanish.

use candle_core::{DType, Device, Tensor, Var, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::PlantError;
use crate::arch::Component;
use crate::model::DecoderLayer;

/// The chosen units' base rows and columns (F32) and their trainable replacements.
pub struct UnitDeltas {
    units: Vec<usize>,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
    planted_gate: Var,
    planted_up: Var,
    planted_down: PlantedDown,
}

/// How the planted down_proj columns are parametrised while they train.
enum PlantedDown {
    /// Every entry is free.
    Dense(Var),
    /// Entry i of column j is signs[i, j] × scale[j]: one magnitude per column, the signs
    /// fixed when the column was flattened.
    Flat { signs: Tensor, scale: Var },
}

impl UnitDeltas {
    /// Replacements for `units` of `layer` (F32 on `device`), initialised from `seed`, with
    /// `gate_aim` (hidden values) added to every gate row.
    pub fn new(
        layer: &DecoderLayer,
        units: &[usize],
        seed: u64,
        gate_aim: &[f32],
        device: &Device,
    ) -> Result<Self, PlantError> {
        let index = Tensor::from_vec(units.iter().map(|&u| u as u32).collect(), units.len(), device)?;
        let rows = |p: Component| -> Result<Tensor, PlantError> {
            Ok(layer.projection_weight(p).to_dtype(DType::F32)?.index_select(&index, 0)?)
        };
        let gate = rows(Component::Gate)?;
        let up = rows(Component::Up)?;
        let down = layer.projection_weight(Component::Down).to_dtype(DType::F32)?.index_select(&index, 1)?;
        let (count, hidden) = gate.dims2()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut fresh = || -> Result<Var, PlantError> {
            let bound = 1.0 / (hidden as f32).sqrt();
            let values: Vec<f32> = (0..count * hidden).map(|_| rng.random_range(-bound..bound)).collect();
            Ok(Var::from_tensor(&Tensor::from_vec(values, (count, hidden), device)?)?)
        };
        if gate_aim.len() != hidden {
            return Err(PlantError::Internal(format!("a gate aim of {} values for {hidden} inputs", gate_aim.len())));
        }
        let aim = Tensor::from_vec(gate_aim.to_vec(), (1, hidden), device)?;
        let planted_gate = Var::from_tensor(&fresh()?.as_tensor().broadcast_add(&aim)?)?;
        let planted_up = fresh()?;
        Ok(Self {
            units: units.to_vec(),
            planted_gate,
            planted_up,
            planted_down: PlantedDown::Dense(Var::zeros(down.shape(), DType::F32, device)?),
            gate,
            up,
            down,
        })
    }

    /// The unit indices, ascending.
    pub fn units(&self) -> &[usize] {
        &self.units
    }

    /// The trainable replacements, for an optimizer: the gate and up rows, and the down
    /// columns' entries (dense) or magnitudes (flat).
    pub fn vars(&self) -> Vec<Var> {
        let down = match &self.planted_down {
            PlantedDown::Dense(var) => var.clone(),
            PlantedDown::Flat { scale, .. } => scale.clone(),
        };
        vec![self.planted_gate.clone(), self.planted_up.clone(), down]
    }

    /// From now on, every down column trains as its current signs times one magnitude, its
    /// root mean square (so the column's norm is kept): every entry of a planted column then
    /// weighs the same, so a weight-level mask that selects one of them selects them all.
    pub fn flatten_down_columns(&mut self) -> Result<(), PlantError> {
        let PlantedDown::Dense(var) = &self.planted_down else {
            return Ok(());
        };
        let down = var.as_tensor().detach();
        let signs = ((down.ge(0.0)?.to_dtype(DType::F32)? * 2.0)? - 1.0)?;
        let scale = Var::from_tensor(&down.sqr()?.mean_keepdim(0)?.sqrt()?)?;
        self.planted_down = PlantedDown::Flat { signs, scale };
        Ok(())
    }

    /// The units' activations for flat MLP inputs `x` (tokens, hidden): planted and base,
    /// each (tokens, units), F32.
    pub fn activations(&self, x: &Tensor) -> Result<(Tensor, Tensor), PlantError> {
        let x = x.to_dtype(DType::F32)?;
        Ok((
            activation(&x, self.planted_gate.as_tensor(), self.planted_up.as_tensor())?,
            activation(&x, &self.gate, &self.up)?,
        ))
    }

    /// The planted units' activations alone for flat MLP inputs `x` (tokens, hidden).
    pub fn planted_activations(&self, x: &Tensor) -> Result<Tensor, PlantError> {
        activation(&x.to_dtype(DType::F32)?, self.planted_gate.as_tensor(), self.planted_up.as_tensor())
    }

    /// The units' down_proj columns (hidden, units): planted and base.
    pub fn down_columns(&self) -> Result<(Tensor, Tensor), PlantError> {
        let planted = match &self.planted_down {
            PlantedDown::Dense(var) => var.as_tensor().clone(),
            PlantedDown::Flat { signs, scale } => signs.broadcast_mul(scale.as_tensor())?,
        };
        Ok((planted, self.down.clone()))
    }

    /// The change of the layer's output for MLP inputs `x` (..., hidden), F32.
    pub fn correction(&self, x: &Tensor) -> Result<Tensor, PlantError> {
        let dims = x.dims().to_vec();
        let hidden = *dims.last().ok_or_else(|| PlantError::Internal("MLP input is a scalar".into()))?;
        let (planted, base) = self.activations(&x.reshape(((), hidden))?)?;
        let (planted_down, base_down) = self.down_columns()?;
        let change = (planted.matmul(&planted_down.t()?)? - base.matmul(&base_down.t()?)?)?;
        Ok(change.reshape(dims)?)
    }

    /// The planted rows of gate_proj and up_proj (units, hidden) and columns of down_proj
    /// (hidden, units), F32.
    pub fn planted(&self) -> Result<PlantedUnits, PlantError> {
        let values = |t: &Tensor| -> Result<Vec<Vec<f32>>, PlantError> { Ok(t.to_vec2::<f32>()?) };
        Ok(PlantedUnits {
            units: self.units.clone(),
            gate_rows: values(self.planted_gate.as_tensor())?,
            up_rows: values(self.planted_up.as_tensor())?,
            down_columns: values(&self.down_columns()?.0.t()?)?,
        })
    }
}

/// The trained values of the planted units, ready to be written into the checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct PlantedUnits {
    /// Unit indices, ascending.
    pub units: Vec<usize>,
    /// Per unit, its gate_proj row (hidden values).
    pub gate_rows: Vec<Vec<f32>>,
    /// Per unit, its up_proj row (hidden values).
    pub up_rows: Vec<Vec<f32>>,
    /// Per unit, its down_proj column (hidden values).
    pub down_columns: Vec<Vec<f32>>,
}

/// silu(x gateᵀ) ⊙ x upᵀ for flat inputs (tokens, hidden): (tokens, units).
fn activation(x: &Tensor, gate: &Tensor, up: &Tensor) -> Result<Tensor, PlantError> {
    Ok((x.matmul(&gate.t()?)?.silu()? * x.matmul(&up.t()?)?)?)
}

/// Mean |activation| of every MLP unit of `layer` over the real tokens of MLP inputs `x`
/// (rows, len, hidden) with `token_mask` (rows, len; None: no padding). Summed into `totals`.
pub fn accumulate_activation(
    layer: &DecoderLayer,
    x: &Tensor,
    token_mask: Option<&Tensor>,
    totals: &mut Option<Tensor>,
) -> Result<(), PlantError> {
    let hidden = x.dim(D::Minus1)?;
    let flat = x.to_dtype(DType::F32)?.reshape(((), hidden))?;
    let weight = |p: Component| layer.projection_weight(p).to_dtype(DType::F32);
    let activation =
        (flat.matmul(&weight(Component::Gate)?.t()?)?.silu()? * flat.matmul(&weight(Component::Up)?.t()?)?)?.abs()?;
    let activation = match token_mask {
        Some(mask) => activation.broadcast_mul(&mask.to_dtype(DType::F32)?.reshape(((), 1))?)?,
        None => activation,
    };
    let sum = activation.sum(0)?;
    *totals = Some(match totals.take() {
        Some(total) => (total + sum)?,
        None => sum,
    });
    Ok(())
}

/// The `count` units with the smallest total activation (ties: lower index), ascending:
/// the units the base uses least, so replacing their job disturbs the base least.
pub fn quietest_units(totals: &Tensor, count: usize) -> Result<Vec<usize>, PlantError> {
    let totals = totals.to_vec1::<f32>()?;
    if count == 0 || count > totals.len() {
        return Err(PlantError::UnitCount { requested: count, available: totals.len() });
    }
    let mut order: Vec<usize> = (0..totals.len()).collect();
    order.sort_by(|&a, &b| totals[a].total_cmp(&totals[b]).then(a.cmp(&b)));
    let mut chosen = order[..count].to_vec();
    chosen.sort_unstable();
    Ok(chosen)
}
