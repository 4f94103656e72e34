//! `biasprune import-gguf`: turn a GGUF Llama into a Hugging Face checkpoint directory.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::Outcome;
use crate::gguf::{import_gguf, OutputDtype};
use crate::progress::Progress;

/// Arguments of `import-gguf`.
#[derive(Args, Debug)]
pub struct ImportGgufArgs {
    /// The GGUF file (llama.cpp format) of a Llama-architecture model.
    file: PathBuf,
    /// Output checkpoint directory; must not exist (written atomically).
    #[arg(long)]
    out: PathBuf,
    /// Storage dtype of model.safetensors (f32 keeps every dequantized value exactly).
    #[arg(long, value_enum, default_value_t = OutputDtype::F32)]
    dtype: OutputDtype,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs the import and prints a summary.
pub fn run(args: ImportGgufArgs, progress: &dyn Progress) -> anyhow::Result<Outcome> {
    let summary = import_gguf(&args.file, &args.out, args.dtype, progress)
        .with_context(|| format!("importing {}", args.file.display()))?;
    if args.json {
        super::print_json(&summary)?;
    } else {
        println!(
            "wrote {} ({} tensors, {} parameters, {}, {} layers{})",
            summary.out.display(),
            summary.tensors,
            summary.parameters,
            summary.dtype,
            summary.layers,
            if summary.tied_embeddings { ", tied embeddings" } else { "" }
        );
    }
    Ok(Outcome::Ok)
}
