//! Writing a score file while the scores are computed, one matrix at a time, so that layer
//! by layer scoring never holds more than one layer's scores: the safetensors header is
//! laid out up front from the model's geometry, then each layer's data is appended.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use super::file::{encode_f16, write_sidecar};
use super::{head_scores_name, ScoreError, ScoreFileError, ScoreInfo, ScoreMatrix, SCORES_FILE};
use crate::arch::Component;
use crate::model::ModelConfig;

/// Receives scores as they are computed, in layer order.
pub trait ScoreSink {
    /// The scores of one weight matrix, named like the weight.
    fn matrix(&mut self, name: &str, matrix: ScoreMatrix) -> Result<(), ScoreError>;
    /// One layer's per-head scores.
    fn heads(&mut self, layer: usize, values: Vec<f32>) -> Result<(), ScoreError>;
}

/// Every tensor of a layer-by-layer score file in write order: per layer the seven
/// projections (checkpoint order) and then the head scores.
pub fn score_layout(cfg: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let mut layout = Vec::new();
    for layer in 0..cfg.num_layers {
        for component in Component::ALL {
            layout.push((component.weight_name(layer), cfg.linear_shape(component).to_vec()));
        }
        layout.push((head_scores_name(layer), vec![cfg.num_heads]));
    }
    layout
}

/// A score directory being written: `scores.safetensors` goes to a clearly named partial
/// file in the directory (`.scores.safetensors.biasprune-partial-PID.*`, which the next
/// writer removes when a killed run left it) and is renamed into place by `finish`,
/// followed by the sidecar.
pub struct ScoreFileWriter {
    dir: PathBuf,
    out: BufWriter<tempfile::NamedTempFile>,
    layout: Vec<(String, Vec<usize>)>,
    next: usize,
    half: bool,
    f16_scales: BTreeMap<String, f64>,
}

impl ScoreFileWriter {
    /// Creates `dir` if needed and writes the header of `layout` (F16 values with `half`,
    /// each tensor scaled by a power of two recorded in the sidecar, as `save_scores` does).
    pub fn create(dir: &Path, layout: Vec<(String, Vec<usize>)>, half: bool) -> Result<Self, ScoreFileError> {
        let io = |source| ScoreFileError::Io { path: dir.to_path_buf(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let temp = crate::fsutil::partial_file_for(&dir.join(SCORES_FILE)).map_err(io)?;
        let mut out = BufWriter::new(temp);
        let width = if half { 2 } else { 4 };
        let dtype = if half { "F16" } else { "F32" };
        let mut header = serde_json::Map::new();
        let mut offset = 0usize;
        for (name, shape) in &layout {
            let end = offset + shape.iter().product::<usize>() * width;
            header.insert(name.clone(), json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, end]}));
            offset = end;
        }
        let mut text = serde_json::to_vec(&header).expect("a header serialises");
        text.resize(text.len().div_ceil(8) * 8, b' ');
        out.write_all(&(text.len() as u64).to_le_bytes()).map_err(io)?;
        out.write_all(&text).map_err(io)?;
        Ok(Self { dir: dir.to_path_buf(), out, layout, next: 0, half, f16_scales: BTreeMap::new() })
    }

    fn append(&mut self, name: &str, values: &[f32]) -> Result<(), ScoreError> {
        let bad = |reason: String| ScoreFileError::Bad { path: self.dir.join(SCORES_FILE), reason };
        let (expected, shape) = self
            .layout
            .get(self.next)
            .ok_or_else(|| bad(format!("tensor {name} written after the last tensor of the layout")))?;
        if expected != name || shape.iter().product::<usize>() != values.len() {
            let reason =
                format!("expected tensor {expected} of shape {shape:?}, got {name} with {} values", values.len());
            return Err(bad(reason).into());
        }
        let io = |source| ScoreFileError::Io { path: self.dir.join(SCORES_FILE), source };
        let bytes: Vec<u8> = if self.half {
            let (bytes, scale) = encode_f16(values);
            self.f16_scales.insert(name.to_string(), scale);
            bytes
        } else {
            values.iter().flat_map(|v| v.to_le_bytes()).collect()
        };
        self.out.write_all(&bytes).map_err(io)?;
        self.next += 1;
        Ok(())
    }

    /// Checks every tensor was written, renames the file into place and writes the sidecar
    /// (`info` with the storage dtype and scales filled in), which it returns.
    pub fn finish(self, info: &ScoreInfo) -> Result<ScoreInfo, ScoreFileError> {
        let path = self.dir.join(SCORES_FILE);
        if self.next != self.layout.len() {
            let reason = format!("only {} of {} tensors were written", self.next, self.layout.len());
            return Err(ScoreFileError::Bad { path, reason });
        }
        let io = |source| ScoreFileError::Io { path: path.clone(), source };
        let temp = self.out.into_inner().map_err(|e| io(e.into_error()))?;
        crate::fsutil::persist_work_file(temp, &path).map_err(io)?;
        write_sidecar(&self.dir, info, self.half, self.f16_scales)
    }
}

impl ScoreSink for ScoreFileWriter {
    fn matrix(&mut self, name: &str, matrix: ScoreMatrix) -> Result<(), ScoreError> {
        self.append(name, &matrix.values)
    }

    fn heads(&mut self, layer: usize, values: Vec<f32>) -> Result<(), ScoreError> {
        self.append(&head_scores_name(layer), &values)
    }
}
