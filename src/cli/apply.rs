//! `biasprune apply`: write a pruned copy of a checkpoint.

use std::path::PathBuf;

use super::{bars::Bars, print_json, Outcome};
use crate::mask::load_mask;
use crate::surgery::{apply_mask, ApplyOptions};

/// Write a copy of CHECKPOINT to OUT with the entries, rows and heads selected by MASK set
/// to zero; every other byte is copied unchanged (shard headers included), every output
/// file is hashed while written, and OUT appears atomically once complete and fsynced.
/// The input is never opened for writing.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Input checkpoint directory.
    pub checkpoint: PathBuf,
    /// Mask directory (holding mask.json) or a mask.json file.
    #[arg(long)]
    pub mask: PathBuf,
    /// Output directory; must not exist (see --force) and must not be inside the input.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing OUT; the swap is still atomic.
    #[arg(long)]
    pub force: bool,
    /// Print the report (files with sha256 and size, entries zeroed per tensor) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `apply`.
pub fn run(args: Args, bars: &Bars) -> anyhow::Result<Outcome> {
    let mask = load_mask(&args.mask)?;
    let report = apply_mask(&args.checkpoint, &mask, &args.out, ApplyOptions { force: args.force }, bars)?;
    if args.json {
        print_json(&report)?;
    } else {
        println!(
            "wrote {} ({} files, {} bytes); zeroed {} entries in {} tensors",
            report.out_dir.display(),
            report.files.len(),
            report.bytes_written,
            report.total_zeroed,
            report.zeroed.len()
        );
    }
    Ok(Outcome::Ok)
}
