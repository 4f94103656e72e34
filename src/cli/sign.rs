//! `biasprune sign`: write DIR/model.sig in the OpenSSF model-signing format.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::Outcome;
use crate::progress::Progress;
use crate::sign::sign_directory;

/// Arguments of `biasprune sign`.
#[derive(Args, Debug)]
pub struct SignArgs {
    /// The model directory to sign; the signature is written to DIR/model.sig.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// ECDSA private key in PEM (SEC1 "EC PRIVATE KEY" or PKCS#8), P-256, P-384 or P-521.
    #[arg(long, value_name = "KEY.priv")]
    key: PathBuf,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

/// Hashes the directory's files and writes the signature.
pub fn run(args: SignArgs, progress: &dyn Progress) -> anyhow::Result<Outcome> {
    let pem = crate::fsutil::read_capped_text(&args.key, crate::fsutil::MAX_KEY_BYTES, crate::fsutil::Links::Follow)
        .with_context(|| format!("reading the private key {}", args.key.display()))?;
    let outcome = sign_directory(&args.dir, &pem, None, progress)
        .with_context(|| format!("signing {} with {}", args.dir.display(), args.key.display()))?;
    if args.json {
        super::print_json(&outcome)?;
    } else {
        println!(
            "signed {} files, root digest {}: wrote {}",
            outcome.files,
            outcome.root_digest,
            outcome.signature.display()
        );
    }
    Ok(Outcome::Ok)
}
