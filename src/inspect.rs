//! What `biasprune inspect` reports: architecture, tensors, and parameter counts per layer
//! and component, as one serialisable value.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::arch::{classify_tensor, Architecture, Component};
use crate::checkpoint::Checkpoint;

/// One tensor as stored.
#[derive(Debug, Clone, Serialize)]
pub struct TensorRow {
    /// Tensor name.
    pub name: String,
    /// Storage dtype.
    pub dtype: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Shard file holding it.
    pub shard: String,
    /// Number of elements.
    pub parameters: u64,
}

/// Parameter counts of one decoder layer, per component.
#[derive(Debug, Clone, Serialize)]
pub struct LayerParams {
    /// Layer index.
    pub layer: usize,
    /// Parameters per component (q, k, v, o, gate, up, down).
    pub components: BTreeMap<Component, u64>,
    /// Sum over the components.
    pub total: u64,
}

/// One shard file.
#[derive(Debug, Clone, Serialize)]
pub struct ShardRow {
    /// File name.
    pub file: String,
    /// File size in bytes.
    pub bytes: u64,
    /// Number of tensors it holds.
    pub tensors: usize,
}

/// Everything `inspect` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The checkpoint directory.
    pub dir: String,
    /// The resolved architecture.
    pub architecture: Architecture,
    /// Shard files.
    pub shards: Vec<ShardRow>,
    /// Every tensor, sorted by name.
    pub tensors: Vec<TensorRow>,
    /// Linear-layer parameters per decoder layer.
    pub layers: Vec<LayerParams>,
    /// Linear-layer parameters per component over all layers.
    pub components: BTreeMap<Component, u64>,
    /// Parameters of everything else (embeddings, norms, lm_head).
    pub other_parameters: u64,
    /// All parameters stored.
    pub total_parameters: u64,
}

/// Describes an opened checkpoint.
pub fn inspect(ckpt: &Checkpoint, arch: &Architecture) -> Inspection {
    let tensors: Vec<TensorRow> = ckpt
        .tensor_names()
        .map(|name| {
            let t = ckpt.tensor(name).expect("listed names exist");
            TensorRow {
                name: name.to_string(),
                dtype: format!("{:?}", t.dtype),
                shape: t.shape.to_vec(),
                shard: t.shard.to_string(),
                parameters: t.shape.iter().product::<usize>() as u64,
            }
        })
        .collect();
    let mut layers: Vec<LayerParams> = (0..arch.num_layers)
        .map(|layer| LayerParams { layer, components: Component::ALL.iter().map(|&c| (c, 0)).collect(), total: 0 })
        .collect();
    let mut other_parameters = 0;
    for row in &tensors {
        match classify_tensor(&row.name) {
            Some((layer, component)) if layer < layers.len() => {
                *layers[layer].components.entry(component).or_default() += row.parameters;
                layers[layer].total += row.parameters;
            }
            _ => other_parameters += row.parameters,
        }
    }
    let mut components: BTreeMap<Component, u64> = BTreeMap::new();
    for layer in &layers {
        for (&c, &n) in &layer.components {
            *components.entry(c).or_default() += n;
        }
    }
    let shards = ckpt
        .shards()
        .iter()
        .map(|s| ShardRow {
            file: s.file_name().to_string(),
            bytes: s.bytes().len() as u64,
            tensors: s.header().tensors().len(),
        })
        .collect();
    Inspection {
        dir: ckpt.dir().display().to_string(),
        architecture: arch.clone(),
        shards,
        total_parameters: tensors.iter().map(|t| t.parameters).sum(),
        tensors,
        layers,
        components,
        other_parameters,
    }
}
