//! `biasprune keygen`: write an ECDSA key pair for signing checkpoints.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::Outcome;
use crate::sign::{keygen, Curve};

/// Arguments of `biasprune keygen`.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Path prefix: writes PREFIX.priv (PKCS#8 PEM, mode 0600) and PREFIX.pub (SPKI PEM).
    #[arg(long, value_name = "PREFIX")]
    out: PathBuf,
    /// Elliptic curve (each is verified with its own hash: SHA-256, SHA-384, SHA-512).
    #[arg(long, value_enum, default_value_t = Curve::P256)]
    curve: Curve,
    /// Print the written paths and key hint as JSON.
    #[arg(long)]
    json: bool,
}

/// Generates the pair and writes both files, refusing to overwrite either.
pub fn run(args: KeygenArgs) -> anyhow::Result<Outcome> {
    let pair = keygen(args.curve).context("generating the key pair")?;
    let (private, public) =
        pair.write(&args.out).with_context(|| format!("writing the key pair {}.priv/.pub", args.out.display()))?;
    let hint = crate::sign::public_key_hint(&pair.public_pem);
    if args.json {
        super::print_json(&serde_json::json!({
            "curve": pair.curve, "private_key": private, "public_key": public, "hint": hint,
        }))?;
    } else {
        println!(
            "wrote {} (private, keep secret) and {} ({} public key, hint {hint})",
            private.display(),
            public.display(),
            pair.curve
        );
    }
    Ok(Outcome::Ok)
}
