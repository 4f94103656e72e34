//! Reading named weight tensors from a checkpoint onto a device, in the compute dtype.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use memmap2::Mmap;
use safetensors::SafeTensors;

use super::ModelError;

/// Anything that can hand out a checkpoint tensor by its name; the model loads through it
/// so that a layer's weights are read only when that layer is built.
pub trait WeightSource {
    /// Reads tensor `name`, checks it has `shape`, and returns it on `device` as `dtype`.
    fn tensor(
        &self,
        name: &str,
        shape: &[usize],
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor, ModelError>;
}

/// The safetensors files of a Hugging Face checkpoint directory, memory-mapped.
pub struct SafetensorsDir {
    dir: PathBuf,
    files: Vec<(PathBuf, Mmap)>,
    file_of: BTreeMap<String, usize>,
}

impl SafetensorsDir {
    /// Maps every `*.safetensors` file of `dir` and indexes their tensor names.
    pub fn open(dir: &Path) -> Result<Self, ModelError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ModelError::Io { path, source }
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(ModelError::MissingTensor {
                name: "*.safetensors".into(),
                location: dir.display().to_string(),
            });
        }
        let mut files = Vec::with_capacity(paths.len());
        let mut file_of = BTreeMap::new();
        for (index, path) in paths.into_iter().enumerate() {
            let file = std::fs::File::open(&path).map_err(io(&path))?;
            // SAFETY: the checkpoint is opened read-only; biasprune never writes its inputs.
            let mmap = unsafe { Mmap::map(&file) }.map_err(io(&path))?;
            for name in parse(&path, &mmap)?.names() {
                file_of.insert(name.to_string(), index);
            }
            files.push((path, mmap));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            files,
            file_of,
        })
    }

    /// Names of all tensors, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.file_of.keys().map(String::as_str)
    }
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>, ModelError> {
    SafeTensors::deserialize(bytes).map_err(|err| ModelError::Safetensors {
        path: path.to_path_buf(),
        message: err.to_string(),
    })
}

impl WeightSource for SafetensorsDir {
    fn tensor(
        &self,
        name: &str,
        shape: &[usize],
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor, ModelError> {
        let missing = || ModelError::MissingTensor {
            name: name.to_string(),
            location: self.dir.display().to_string(),
        };
        let (path, mmap) = &self.files[*self.file_of.get(name).ok_or_else(missing)?];
        let view = parse(path, mmap)?.tensor(name).map_err(|_| missing())?;
        let stored = match view.dtype() {
            safetensors::Dtype::F32 => DType::F32,
            safetensors::Dtype::F16 => DType::F16,
            safetensors::Dtype::BF16 => DType::BF16,
            other => {
                return Err(ModelError::TensorDtype {
                    name: name.to_string(),
                    found: format!("{other:?}"),
                })
            }
        };
        tensor_from_bytes(name, view.data(), stored, view.shape(), shape, dtype, device)
    }
}

/// Builds a tensor from little-endian `bytes` stored as `stored` with `found` shape,
/// checking it against `expected` and converting it to `dtype` on `device`.
pub(crate) fn tensor_from_bytes(
    name: &str,
    bytes: &[u8],
    stored: DType,
    found: &[usize],
    expected: &[usize],
    dtype: DType,
    device: &Device,
) -> Result<Tensor, ModelError> {
    if found != expected {
        return Err(ModelError::TensorShape {
            name: name.to_string(),
            expected: expected.to_vec(),
            found: found.to_vec(),
        });
    }
    let tensor = Tensor::from_raw_buffer(bytes, stored, found, &Device::Cpu)?;
    Ok(tensor.to_dtype(dtype)?.to_device(device)?)
}
