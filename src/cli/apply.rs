//! `biasprune apply`: write a pruned copy of a checkpoint.

use std::path::PathBuf;

use anyhow::Context;

use super::inputs::{self, EVAL_OUTPUT, MASK_OUTPUT};
use super::{bars::Bars, print_json, Outcome};
use crate::hub::HubModel;
use crate::mask::load_mask;
use crate::release::{read_use_case, release, EvidenceInput, ReleaseOptions};
use crate::surgery::{apply_mask, ApplyOptions};

/// Write a copy of CHECKPOINT to OUT with the entries, rows and heads selected by MASK set
/// to zero; every other byte is copied unchanged (shard headers included), every output
/// file is hashed while written, and OUT appears atomically once complete and fsynced.
/// The input is never opened for writing.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Input checkpoint directory, or a Hugging Face Hub id `org/name[@revision]` (found in
    /// the Hugging Face cache, downloaded when missing unless HF_HUB_OFFLINE=1; the manifest
    /// records the id and commit).
    pub checkpoint: PathBuf,
    /// A `mask` output: the directory it wrote, or its mask.json.
    #[arg(long)]
    pub mask: PathBuf,
    /// Output directory; must not exist (see --force) and must not be inside the input.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing OUT; the swap is still atomic.
    #[arg(long)]
    pub force: bool,
    /// Also write biasprune-manifest.json, the model card README.md (a base README.md is
    /// kept as README.base.md) and pruning-mask.safetensors for weight-level masks, inside
    /// the temporary directory before OUT appears.
    #[arg(long)]
    pub manifest: bool,
    /// Sign OUT (implies --manifest): writes OUT/model.sig in the OpenSSF model-signing
    /// format with this ECDSA private key (PEM), reusing the digests computed while writing.
    #[arg(long, value_name = "KEY.priv")]
    pub sign_key: Option<PathBuf>,
    /// Copy every file under DIR to OUT/evidence/ and list their sha256 in the manifest
    /// (implies --manifest).
    #[arg(long, value_name = "DIR")]
    pub evidence_dir: Option<PathBuf>,
    /// An `eval` output of the base model (the directory it wrote, or any of its files): its
    /// run.json, summary.json and records.jsonl go to OUT/evidence/baseline/ and its summary
    /// into the manifest (implies --manifest).
    #[arg(long, value_name = "DIR")]
    pub baseline_eval: Option<PathBuf>,
    /// An `eval` output of the pruned model (`eval BASE --mask MASK --baseline BASELINE`;
    /// the directory it wrote, or any of its files): to OUT/evidence/pruned/ and into the
    /// manifest, so `verify --reproduce` can re-run it (implies --manifest).
    #[arg(long, value_name = "DIR")]
    pub pruned_eval: Option<PathBuf>,
    /// JSON file with the manifest's use_case object (scenarios, variations, held_out,
    /// regime, direction), replacing the one derived from the mask (implies --manifest).
    #[arg(long, value_name = "FILE")]
    pub use_case_file: Option<PathBuf>,
    /// Print the report (files with sha256 and size, entries zeroed per tensor) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `apply`.
pub fn run(mut args: Args, bars: &Bars) -> anyhow::Result<Outcome> {
    let base = inputs::checkpoint(&args.checkpoint, true)?;
    args.checkpoint = base.dir;
    args.mask = MASK_OUTPUT.dir(&args.mask)?;
    args.baseline_eval = args.baseline_eval.as_deref().map(|d| EVAL_OUTPUT.dir(d)).transpose()?;
    args.pruned_eval = args.pruned_eval.as_deref().map(|d| EVAL_OUTPUT.dir(d)).transpose()?;
    let release_asked = args.manifest
        || args.sign_key.is_some()
        || args.evidence_dir.is_some()
        || args.use_case_file.is_some()
        || args.baseline_eval.is_some()
        || args.pruned_eval.is_some();
    if release_asked {
        return run_release(args, base.hub, bars);
    }
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

fn evidence(args: &Args) -> anyhow::Result<Option<EvidenceInput>> {
    let mut input = args.evidence_dir.as_deref().map(EvidenceInput::from_dir).transpose()?;
    if args.baseline_eval.is_some() || args.pruned_eval.is_some() {
        input
            .get_or_insert_with(EvidenceInput::default)
            .add_evaluations(args.baseline_eval.as_deref(), args.pruned_eval.as_deref())?;
    }
    Ok(input)
}

fn run_release(args: Args, base_hub: Option<HubModel>, bars: &Bars) -> anyhow::Result<Outcome> {
    let sign_key_pem = match &args.sign_key {
        Some(path) => Some(
            crate::fsutil::read_capped_text(path, crate::fsutil::MAX_KEY_BYTES, crate::fsutil::Links::Follow)
                .with_context(|| format!("reading the private key {}", path.display()))?,
        ),
        None => None,
    };
    let options = ReleaseOptions {
        apply: ApplyOptions { force: args.force },
        sign_key_pem,
        use_case: args.use_case_file.as_deref().map(read_use_case).transpose()?,
        evidence: evidence(&args)?,
        base_hub,
        ..ReleaseOptions::default()
    };
    let report = release(&args.checkpoint, &args.mask, &args.out, &options, bars)?;
    if args.json {
        print_json(&report)?;
    } else {
        println!(
            "wrote {} ({} files, {} bytes); zeroed {} entries in {} tensors; manifest sha256 {}{}",
            report.apply.out_dir.display(),
            report.apply.files.len(),
            report.apply.bytes_written,
            report.apply.total_zeroed,
            report.apply.zeroed.len(),
            report.manifest_sha256,
            report.signature.as_ref().map_or(String::new(), |s| format!("; signed, root digest {}", s.root_digest))
        );
    }
    Ok(Outcome::Ok)
}
