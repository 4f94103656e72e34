//! `--device` and `--compute-dtype`, shared by every command that runs the model: flatten
//! [`DeviceArg`] into a command's arguments and call [`DeviceArg::load_options`].

use anyhow::Context;
use candle_core::Device;

use crate::device::parse_device;
pub use crate::device::ComputeDtype;
use crate::model::LoadOptions;

/// Where the model runs and in which float type.
#[derive(clap::Args, Debug, Clone)]
pub struct DeviceArg {
    /// Where the model runs: cpu, cuda or cuda:N (cuda needs a build with --features cuda).
    #[arg(long, default_value = "cpu", value_name = "cpu|cuda[:N]")]
    pub device: String,
    /// Compute dtype; auto is f32 on the CPU and bf16 on a GPU.
    #[arg(long, value_enum, default_value_t = ComputeDtype::Auto)]
    pub compute_dtype: ComputeDtype,
}

impl DeviceArg {
    /// Opens the device (clear error when CUDA is not compiled in or cannot start).
    pub fn device(&self) -> anyhow::Result<Device> {
        parse_device(&self.device).with_context(|| format!("--device {}", self.device))
    }

    /// Load options for this device and dtype; `trainable` makes weights gradient-carrying.
    pub fn load_options(&self, trainable: bool) -> anyhow::Result<LoadOptions> {
        let device = self.device()?;
        let dtype = self.compute_dtype.resolve(&device);
        let opts = LoadOptions { dtype, device, trainable };
        opts.check().with_context(|| format!("--compute-dtype on --device {}", self.device))?;
        Ok(opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_f32_on_the_cpu() {
        assert_eq!(ComputeDtype::Auto.resolve(&Device::Cpu), candle_core::DType::F32);
        let arg = DeviceArg { device: "cpu".into(), compute_dtype: ComputeDtype::Auto };
        let opts = arg.load_options(false).unwrap();
        assert!(opts.device.is_cpu());
        assert_eq!(opts.dtype, candle_core::DType::F32);
    }

    #[test]
    fn bf16_on_the_cpu_is_refused() {
        let arg = DeviceArg { device: "cpu".into(), compute_dtype: ComputeDtype::Bf16 };
        let err = format!("{:#}", arg.load_options(false).unwrap_err());
        assert!(err.contains("BF16"), "{err}");
    }
}
