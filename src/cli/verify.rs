//! `biasprune verify`: the auditor's command; every check is printed with PASS or FAIL.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::device::DeviceArg;
use super::inputs;
use super::Outcome;
use crate::progress::Progress;
use crate::verify::{reproduce_if_verified, verify_directory, Report, ReproduceOptions, Tolerance};

/// Arguments of `biasprune verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The signed model directory (its signature is DIR/model.sig).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// The signer's public key in PEM (SubjectPublicKeyInfo "PUBLIC KEY").
    #[arg(long, value_name = "KEY.pub")]
    public_key: PathBuf,
    /// The base checkpoint the manifest names: also check its digests against the manifest
    /// and that every byte not declared pruned equals it (needs biasprune-manifest.json). A
    /// directory, or a Hugging Face Hub id `org/name[@revision]` (found in the Hugging Face
    /// cache, downloaded when missing unless HF_HUB_OFFLINE=1).
    #[arg(long, value_name = "BASE")]
    base: Option<PathBuf>,
    /// Re-run the shipped evaluations (evidence/pruned on DIR; with --base, evidence/baseline
    /// on BASE) with their recorded seeds and settings, and compare the SMD and inlier ratios
    /// with evidence/*/summary.json and the manifest: exactly on the recorded device kind and
    /// dtype, else within the tolerances below.
    #[arg(long)]
    reproduce: bool,
    /// A directory of scenario manifests, for scenarios that are not built in (--reproduce).
    #[arg(long, value_name = "DIR", requires = "reproduce")]
    scenarios_dir: Option<PathBuf>,
    /// Largest accepted |ΔSMD| when device or dtype differ from the recorded run.
    #[arg(long, default_value_t = Tolerance::default().smd, value_name = "X", requires = "reproduce")]
    smd_tolerance: f64,
    /// Largest accepted |Δ inlier ratio| when device or dtype differ from the recorded run.
    #[arg(long, default_value_t = Tolerance::default().inlier_ratio, value_name = "X", requires = "reproduce")]
    inlier_tolerance: f64,
    /// Where the re-run runs (--reproduce).
    #[command(flatten)]
    device: DeviceArg,
    /// Print the report as JSON: {"passed": bool, "checks": [{name, passed, detail, file}]}.
    #[arg(long)]
    json: bool,
}

/// Runs the checks; exit 0 when all pass, 1 when one fails, 2 when the input is unusable.
pub fn run(mut args: VerifyArgs, progress: &dyn Progress) -> anyhow::Result<Outcome> {
    args.base = args.base.as_deref().map(|base| inputs::checkpoint(base, true)).transpose()?.map(|b| b.dir);
    let pem =
        crate::fsutil::read_capped_text(&args.public_key, crate::fsutil::MAX_KEY_BYTES, crate::fsutil::Links::Follow)
            .with_context(|| format!("reading the public key {}", args.public_key.display()))?;
    let reproduce = args.reproduce.then(|| reproduce_options(&args)).transpose()?;
    let mut report = verify_directory(&args.dir, &pem, args.base.as_deref(), progress)
        .with_context(|| format!("verifying {} with {}", args.dir.display(), args.public_key.display()))?;
    if let Some(options) = &reproduce {
        reproduce_if_verified(&mut report, &args.dir, args.base.as_deref(), options, progress);
    }
    if args.json {
        super::print_json(&report)?;
    } else {
        print_human(&report);
    }
    Ok(if report.passed() { Outcome::Ok } else { Outcome::CheckFailed })
}

fn reproduce_options(args: &VerifyArgs) -> anyhow::Result<ReproduceOptions> {
    for (flag, value) in [("--smd-tolerance", args.smd_tolerance), ("--inlier-tolerance", args.inlier_tolerance)] {
        if !(value.is_finite() && value >= 0.0) {
            anyhow::bail!("{flag} {value}: expected a finite number >= 0");
        }
    }
    Ok(ReproduceOptions {
        scenarios_dir: args.scenarios_dir.clone(),
        load: args.device.load_options(false)?,
        tolerance: Tolerance { smd: args.smd_tolerance, inlier_ratio: args.inlier_tolerance },
    })
}

fn print_human(report: &Report) {
    for check in &report.checks {
        let status = if check.passed { "PASS" } else { "FAIL" };
        match &check.file {
            Some(file) => println!("{status} {} [{file}]: {}", check.name, check.detail),
            None => println!("{status} {}: {}", check.name, check.detail),
        }
    }
    match report.outcome {
        Some(outcome) => println!(
            "evidence outcome: {outcome}: {}{}",
            outcome.headline(),
            if report.released_anyway { " (released anyway, against the rules)" } else { "" }
        ),
        None => println!("evidence outcome: none recorded (no prune verdict in the manifest)"),
    }
    let failed = report.failures().count();
    if failed == 0 {
        println!("verification passed: {} checks", report.checks.len());
    } else {
        println!("verification FAILED: {failed} of {} checks failed", report.checks.len());
    }
}
