//! Choosing where the model runs: parsing `cpu`, `cuda` and `cuda:N` into a candle
//! `Device`, with errors that say what to do when CUDA is not compiled in or fails to start.

use candle_core::{DType, Device};

/// The float type the model computes in, as users name it (command line and job files).
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum ComputeDtype {
    /// f32 on the CPU, bf16 on a GPU.
    #[default]
    Auto,
    /// 32-bit float.
    F32,
    /// 16-bit float.
    F16,
    /// bfloat16 (GPU only: candle's CPU matmul has no bf16 kernel).
    Bf16,
}

impl ComputeDtype {
    /// The candle dtype on `device`.
    pub fn resolve(self, device: &Device) -> DType {
        match self {
            ComputeDtype::Auto if device.is_cpu() => DType::F32,
            ComputeDtype::Auto => DType::BF16,
            ComputeDtype::F32 => DType::F32,
            ComputeDtype::F16 => DType::F16,
            ComputeDtype::Bf16 => DType::BF16,
        }
    }
}

impl std::fmt::Display for ComputeDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            ComputeDtype::Auto => "auto",
            ComputeDtype::F32 => "f32",
            ComputeDtype::F16 => "f16",
            ComputeDtype::Bf16 => "bf16",
        };
        f.write_str(name)
    }
}

/// Why a device specification could not be turned into a device.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The text is not `cpu`, `cuda` or `cuda:N`.
    #[error("unknown device {spec:?}: expected cpu, cuda or cuda:N (N a GPU ordinal, e.g. cuda:0)")]
    Invalid {
        /// The text given.
        spec: String,
    },
    /// CUDA was asked for but this binary was built without the `cuda` feature.
    #[error(
        "device {spec:?}: biasprune was built without CUDA support; \
         rebuild with --features cuda (scripts/build-cuda.sh)"
    )]
    NotCompiled {
        /// The text given.
        spec: String,
    },
    /// The CUDA driver or the GPU could not be initialised.
    #[error("cannot initialise CUDA device cuda:{ordinal}: {message}")]
    CudaInit {
        /// GPU ordinal asked for.
        ordinal: usize,
        /// candle's (cudarc's) error text.
        message: String,
    },
}

/// A parsed device specification, before any driver is touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The CPU.
    Cpu,
    /// NVIDIA GPU with this ordinal.
    Cuda(usize),
}

impl DeviceSpec {
    /// Parses `cpu`, `cuda` (ordinal 0) or `cuda:N`, case-insensitively.
    pub fn parse(spec: &str) -> Result<Self, DeviceError> {
        let text = spec.trim().to_ascii_lowercase();
        let invalid = || DeviceError::Invalid { spec: spec.to_string() };
        match text.as_str() {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => {
                let ordinal = text.strip_prefix("cuda:").ok_or_else(invalid)?;
                ordinal.parse::<usize>().map(Self::Cuda).map_err(|_| invalid())
            }
        }
    }
}

/// Whether this binary was built with the `cuda` feature.
pub const fn cuda_compiled() -> bool {
    cfg!(feature = "cuda")
}

/// Parses `spec` (`cpu`, `cuda`, `cuda:N`) and opens that device.
pub fn parse_device(spec: &str) -> Result<Device, DeviceError> {
    match DeviceSpec::parse(spec)? {
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Cuda(_) if !cuda_compiled() => Err(DeviceError::NotCompiled { spec: spec.to_string() }),
        DeviceSpec::Cuda(ordinal) => Device::new_cuda(ordinal)
            .map_err(|e| DeviceError::CudaInit { ordinal, message: first_line(&e.to_string()) }),
    }
}

/// candle appends a backtrace to driver errors when RUST_BACKTRACE is set; the message
/// is its first line.
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

/// A short name for reports: `cpu` or `cuda:N`.
pub fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".to_string(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_cuda_forms() {
        assert_eq!(DeviceSpec::parse("cpu").unwrap(), DeviceSpec::Cpu);
        assert_eq!(DeviceSpec::parse("CUDA").unwrap(), DeviceSpec::Cuda(0));
        assert_eq!(DeviceSpec::parse("cuda:3").unwrap(), DeviceSpec::Cuda(3));
    }

    #[test]
    fn rejects_other_text_naming_it() {
        for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", "metal", ""] {
            let err = DeviceSpec::parse(bad).unwrap_err();
            assert!(matches!(err, DeviceError::Invalid { .. }), "{bad}: {err}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn cpu_opens_the_cpu() {
        assert!(parse_device("cpu").unwrap().is_cpu());
        assert_eq!(device_name(&parse_device("cpu").unwrap()), "cpu");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_rebuild() {
        let err = parse_device("cuda:1").unwrap_err();
        assert!(matches!(err, DeviceError::NotCompiled { .. }));
        let text = err.to_string();
        assert!(text.contains("built without CUDA support"), "{text}");
        assert!(text.contains("--features cuda (scripts/build-cuda.sh)"), "{text}");
        assert!(text.contains("cuda:1"), "{text}");
    }
}
