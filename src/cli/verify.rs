//! `biasprune verify`: the auditor's command; every check is printed with PASS or FAIL.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::Outcome;
use crate::progress::Progress;
use crate::verify::{verify_directory, Report};

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
    /// and that every byte not declared pruned equals it (needs biasprune-manifest.json).
    #[arg(long, value_name = "BASE")]
    base: Option<PathBuf>,
    /// Print the report as JSON: {"passed": bool, "checks": [{name, passed, detail, file}]}.
    #[arg(long)]
    json: bool,
}

/// Runs the checks; exit 0 when all pass, 1 when one fails, 2 when the input is unusable.
pub fn run(args: VerifyArgs, progress: &dyn Progress) -> anyhow::Result<Outcome> {
    let pem = std::fs::read_to_string(&args.public_key)
        .with_context(|| format!("reading the public key {}", args.public_key.display()))?;
    let report = verify_directory(&args.dir, &pem, args.base.as_deref(), progress)
        .with_context(|| format!("verifying {} with {}", args.dir.display(), args.public_key.display()))?;
    if args.json {
        super::print_json(&report)?;
    } else {
        print_human(&report);
    }
    Ok(if report.passed() { Outcome::Ok } else { Outcome::CheckFailed })
}

fn print_human(report: &Report) {
    for check in &report.checks {
        let status = if check.passed { "PASS" } else { "FAIL" };
        match &check.file {
            Some(file) => println!("{status} {} [{file}]: {}", check.name, check.detail),
            None => println!("{status} {}: {}", check.name, check.detail),
        }
    }
    let failed = report.failures().count();
    if failed == 0 {
        println!("verification passed: {} checks", report.checks.len());
    } else {
        println!("verification FAILED: {failed} of {} checks failed", report.checks.len());
    }
}
