//! Key/value cache for incremental decoding: preallocated per layer, written in place,
//! with per-row left padding recorded so attention masks can be rebuilt at every step.

use candle_core::{DType, Device, Tensor};

use super::{ModelConfig, ModelError};

/// Keys and values of one decoder layer: (rows, kv_heads, capacity, head_dim), of which
/// the first `len` slots are filled.
#[derive(Debug, Clone)]
pub struct LayerKv {
    k: Tensor,
    v: Tensor,
    len: usize,
}

impl LayerKv {
    fn new(shape: (usize, usize, usize, usize), dtype: DType, device: &Device) -> Result<Self, ModelError> {
        Ok(Self { k: Tensor::zeros(shape, dtype, device)?, v: Tensor::zeros(shape, dtype, device)?, len: 0 })
    }

    /// Filled slots.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no slot is filled yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes `k`, `v` (rows, kv_heads, new, head_dim) after the filled slots and returns
    /// views of all filled keys and values.
    pub fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor), ModelError> {
        let new = k.dim(2)?;
        let capacity = self.k.dim(2)?;
        if self.len + new > capacity {
            return Err(ModelError::InvalidArgument(format!(
                "KV cache holds {capacity} positions, {} are filled and {new} more were given",
                self.len
            )));
        }
        self.k.slice_set(&k.contiguous()?, 2, self.len)?;
        self.v.slice_set(&v.contiguous()?, 2, self.len)?;
        self.len += new;
        Ok((self.k.narrow(2, 0, self.len)?, self.v.narrow(2, 0, self.len)?))
    }

    fn select_rows(&self, rows: &Tensor) -> Result<Self, ModelError> {
        Ok(Self { k: self.k.index_select(rows, 0)?, v: self.v.index_select(rows, 0)?, len: self.len })
    }
}

/// The cache of a whole model for a batch of rows whose sequences are left-padded.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<LayerKv>,
    left_pad: Vec<usize>,
}

impl KvCache {
    /// An empty cache of `capacity` positions for rows with the given left padding.
    pub fn new(
        cfg: &ModelConfig,
        left_pad: Vec<usize>,
        capacity: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let shape = (left_pad.len(), cfg.num_kv_heads, capacity, cfg.head_dim);
        let layers = (0..cfg.num_layers).map(|_| LayerKv::new(shape, dtype, device)).collect::<Result<_, _>>()?;
        Ok(Self { layers, left_pad })
    }

    /// Filled positions (the same in every layer once a forward pass has finished).
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, LayerKv::len)
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.left_pad.len()
    }

    /// Left padding of each row.
    pub fn left_pad(&self) -> &[usize] {
        &self.left_pad
    }

    /// The cache of layer `index`.
    pub fn layer_mut(&mut self, index: usize) -> Option<&mut LayerKv> {
        self.layers.get_mut(index)
    }

    /// A new cache holding the given rows (indices may repeat: copying a prompt's cache
    /// once per sample), in that order.
    pub fn select_rows(&self, rows: &[u32]) -> Result<Self, ModelError> {
        let bad = rows.iter().find(|&&r| r as usize >= self.rows());
        if let Some(row) = bad {
            return Err(ModelError::InvalidArgument(format!(
                "row {row} selected from a KV cache of {} rows",
                self.rows()
            )));
        }
        let device = self.layers.first().map_or(Device::Cpu, |l| l.k.device().clone());
        let index = Tensor::from_slice(rows, rows.len(), &device)?;
        Ok(Self {
            layers: self.layers.iter().map(|layer| layer.select_rows(&index)).collect::<Result<_, _>>()?,
            left_pad: rows.iter().map(|&r| self.left_pad[r as usize]).collect(),
        })
    }
}
