//! Signing in the OpenSSF model-signing (OMS) format: keys, file digests, statement, bundle.
//!
//! The format is the one `model_signing sign key` (PyPI `model-signing` 1.1.1) writes and
//! verifies: an in-toto Statement v1 listing every file's sha256, wrapped in a DSSE
//! envelope signed with ECDSA, inside a Sigstore bundle v0.3 stored as `DIR/model.sig`.

mod bundle;
mod digest;
mod error;
mod keys;
mod statement;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::fsutil::digest::{hash_files, ignore_paths, list_files, FileDigest, ListedFile};
use crate::fsutil::Links;
use crate::progress::Progress;

pub use bundle::{
    sign_payload, Bundle, DsseEnvelope, DsseSignature, PublicKeyIdentifier, VerificationMaterial, BUNDLE_MEDIA_TYPE,
    PAYLOAD_TYPE,
};
pub use digest::{digest_checkpoint, digest_directory, list_checkpoint_files};
pub use error::SignError;
pub use keys::{keygen, public_key_hint, Curve, KeyPair, PrivateKey, PublicKey, SignatureError, UnknownCurve};
pub use statement::{
    pae, root_digest, Predicate, Resource, Serialization, Statement, Subject, PREDICATE_TYPE, STATEMENT_TYPE,
};

/// File name of the signature inside a signed directory, as the reference tool expects it.
pub const SIGNATURE_FILE: &str = "model.sig";

/// What `sign_directory` did: where the signature went and how much it had to read.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SignOutcome {
    /// Path of the written `model.sig`.
    pub signature: PathBuf,
    /// Hex root digest of the statement (sha256 over the files' digests in listed order).
    pub root_digest: String,
    /// Number of files the signature covers.
    pub files: usize,
    /// Files whose digest came from the precomputed map instead of being read again.
    pub reused: usize,
    /// Bytes read to hash the files that had no precomputed digest.
    pub hashed_bytes: u64,
}

/// Signs every regular file of `dir` (except the ignored paths) and writes `dir/model.sig`
/// atomically. `precomputed` digests (e.g. computed by surgery while writing) are used for
/// the files they name after checking each still exists with the recorded size; files the
/// map does not name are hashed here. A stale entry is an error, never silently trusted.
pub fn sign_directory(
    dir: &Path,
    private_key_pem: &str,
    precomputed: Option<&BTreeMap<String, FileDigest>>,
    progress: &dyn Progress,
) -> Result<SignOutcome, SignError> {
    sign_directory_as(dir, &directory_name(dir)?, private_key_pem, precomputed, progress)
}

/// `sign_directory` with an explicit statement subject name, for a directory that is signed
/// under a temporary name and renamed into place afterwards (apply --sign-key).
pub fn sign_directory_as(
    dir: &Path,
    subject_name: &str,
    private_key_pem: &str,
    precomputed: Option<&BTreeMap<String, FileDigest>>,
    progress: &dyn Progress,
) -> Result<SignOutcome, SignError> {
    let key = PrivateKey::from_pem(private_key_pem)?;
    let ignore = ignore_paths();
    let listed = list_files(dir, &ignore)?;
    let (digests, reused, hashed_bytes) = collect_digests(dir, &listed, precomputed, progress)?;
    let statement = Statement::for_directory(subject_name, &digests, &ignore);
    let payload = serde_json::to_vec_pretty(&statement).map_err(SignError::Json)?;
    let bundle_json = bundle::sign_payload_with(&key, &payload)?;
    let signature = dir.join(SIGNATURE_FILE);
    crate::fsutil::write_atomically(&signature, bundle_json.as_bytes()).map_err(|e| SignError::io(&signature, e))?;
    Ok(SignOutcome {
        signature,
        root_digest: statement.subject_digest().to_string(),
        files: digests.len(),
        reused,
        hashed_bytes,
    })
}

/// Takes precomputed digests where valid for the listing and hashes the rest.
fn collect_digests(
    dir: &Path,
    listed: &[ListedFile],
    precomputed: Option<&BTreeMap<String, FileDigest>>,
    progress: &dyn Progress,
) -> Result<(BTreeMap<String, FileDigest>, usize, u64), SignError> {
    let Some(known) = precomputed else {
        let digests = hash_files(dir, listed, Links::Refuse, progress)?;
        let bytes = listed.iter().map(|f| f.size).sum();
        return Ok((digests, 0, bytes));
    };
    check_precomputed_against_listing(known, listed)?;
    let to_hash: Vec<ListedFile> = listed.iter().filter(|f| !known.contains_key(&f.path)).cloned().collect();
    let mut digests = hash_files(dir, &to_hash, Links::Refuse, progress)?;
    let reused = known.len();
    digests.extend(known.iter().map(|(path, digest)| (path.clone(), *digest)));
    Ok((digests, reused, to_hash.iter().map(|f| f.size).sum()))
}

/// Every precomputed entry must name a listed file of exactly the recorded size.
fn check_precomputed_against_listing(
    known: &BTreeMap<String, FileDigest>,
    listed: &[ListedFile],
) -> Result<(), SignError> {
    let sizes: BTreeMap<&str, u64> = listed.iter().map(|f| (f.path.as_str(), f.size)).collect();
    for (path, digest) in known {
        match sizes.get(path.as_str()) {
            None => return Err(SignError::StaleDigestMissingFile { file: path.clone() }),
            Some(&size) if size != digest.size => {
                return Err(SignError::StaleDigestSize { file: path.clone(), expected: digest.size, found: size })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The statement's subject name: the final component of the directory's canonical path.
fn directory_name(dir: &Path) -> Result<String, SignError> {
    let canonical = dir.canonicalize().map_err(|source| SignError::io(dir, source))?;
    let name = canonical.file_name().unwrap_or(canonical.as_os_str());
    name.to_str().map(str::to_string).ok_or_else(|| SignError::NonUtf8Path { path: canonical.clone() })
}
