//! Writing the planted checkpoint: every file of BASE copied byte for byte, except the
//! planted rows of gate_proj and up_proj and columns of down_proj, which take the trained
//! values in the base's dtype. Shard headers are kept, so offsets and names are identical.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use safetensors::Dtype;
use sha2::{Digest, Sha256};

use super::units::PlantedUnits;
use super::PlantError;
use crate::arch::Component;
use crate::checkpoint::{list_regular_files, Checkpoint, Shard};
use crate::fsutil::digest::FileDigest;
use crate::progress::NoProgress;
use crate::surgery::copy_file;

/// The projections whose planted rows (gate, up) or columns (down) take new values.
pub const CHANGED: [Component; 3] = [Component::Gate, Component::Up, Component::Down];

/// New bytes for one tensor's data, at its offset in its shard file.
struct Patch {
    offset: usize,
    bytes: Vec<u8>,
}

/// Copies every file of `ckpt` into `dir` (which exists and is empty) with `planted`
/// written into layer `layer`'s MLP; returns each file's sha256 and size.
pub fn write_planted(
    ckpt: &Checkpoint,
    layer: usize,
    planted: &PlantedUnits,
    dir: &Path,
) -> Result<BTreeMap<String, FileDigest>, PlantError> {
    let mut patches: BTreeMap<String, Vec<Patch>> = BTreeMap::new();
    for projection in CHANGED {
        let (shard, patch) = patch_tensor(ckpt, &projection.weight_name(layer), projection, planted)?;
        patches.entry(shard).or_default().push(patch);
    }
    let mut digests = BTreeMap::new();
    for name in list_regular_files(ckpt.dir())? {
        let (src, dst) = (ckpt.dir().join(&name), dir.join(&name));
        let digest = match (patches.get_mut(&name), ckpt.shards().iter().find(|s| s.file_name() == name)) {
            (Some(list), Some(shard)) => {
                list.sort_by_key(|p| p.offset);
                write_patched(shard, list, &dst)?
            }
            _ => copy_file(&src, &dst, &NoProgress)?,
        };
        digests.insert(name, digest);
    }
    Ok(digests)
}

/// The tensor's bytes with the planted rows (gate, up) or columns (down) replaced.
fn patch_tensor(
    ckpt: &Checkpoint,
    name: &str,
    projection: Component,
    planted: &PlantedUnits,
) -> Result<(String, Patch), PlantError> {
    let view = ckpt.tensor(name)?;
    let size = element_size(name, view.dtype)?;
    let [rows, cols] = *view.shape else {
        return Err(PlantError::Internal(format!("{name} is not a matrix: shape {:?}", view.shape)));
    };
    let mut bytes = view.data.to_vec();
    for (k, &unit) in planted.units.iter().enumerate() {
        let (values, at): (&[f32], Box<dyn Fn(usize) -> usize>) = match projection {
            Component::Gate => (&planted.gate_rows[k], Box::new(move |i| unit * cols + i)),
            Component::Up => (&planted.up_rows[k], Box::new(move |i| unit * cols + i)),
            _ => (&planted.down_columns[k], Box::new(move |i| i * cols + unit)),
        };
        if values.len() != if projection == Component::Down { rows } else { cols } {
            return Err(PlantError::Internal(format!("{name}: planted unit {unit} has {} values", values.len())));
        }
        for (i, &value) in values.iter().enumerate() {
            let start = at(i) * size;
            bytes[start..start + size].copy_from_slice(&encode(value, view.dtype));
        }
    }
    let shard = shard_of(ckpt, view.shard)?;
    let info = shard.header().tensors().iter().find(|t| t.name == name).expect("the tensor is in its shard");
    Ok((view.shard.to_string(), Patch { offset: shard.header().data_start() + info.start, bytes }))
}

fn shard_of<'c>(ckpt: &'c Checkpoint, file_name: &str) -> Result<&'c Shard, PlantError> {
    ckpt.shards()
        .iter()
        .find(|s| s.file_name() == file_name)
        .ok_or_else(|| PlantError::Internal(format!("no shard named {file_name}")))
}

fn element_size(name: &str, dtype: Dtype) -> Result<usize, PlantError> {
    match dtype {
        Dtype::F32 => Ok(4),
        Dtype::F16 | Dtype::BF16 => Ok(2),
        other => Err(PlantError::WeightDtype { tensor: name.to_string(), found: format!("{other:?}") }),
    }
}

fn encode(value: f32, dtype: Dtype) -> Vec<u8> {
    match dtype {
        Dtype::BF16 => half::bf16::from_f32(value).to_le_bytes().to_vec(),
        Dtype::F16 => half::f16::from_f32(value).to_le_bytes().to_vec(),
        _ => value.to_le_bytes().to_vec(),
    }
}

/// Writes the shard's bytes with `patches` (sorted, disjoint) in place, hashing as it goes.
fn write_patched(shard: &Shard, patches: &[Patch], dst: &Path) -> Result<FileDigest, PlantError> {
    let io = |e| PlantError::io(dst, e);
    let mut file = File::create_new(dst).map_err(io)?;
    let mut hasher = Sha256::new();
    let source = shard.bytes();
    let mut at = 0;
    let mut put = |bytes: &[u8]| -> Result<(), PlantError> {
        hasher.update(bytes);
        file.write_all(bytes).map_err(io)
    };
    for patch in patches {
        put(&source[at..patch.offset])?;
        put(&patch.bytes)?;
        at = patch.offset + patch.bytes.len();
    }
    put(&source[at..])?;
    file.sync_all().map_err(io)?;
    Ok(FileDigest { sha256: hasher.finalize().into(), size: source.len() as u64 })
}
