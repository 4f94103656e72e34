//! Signature checks: bundle format, key hint, DSSE signature, statement shape, root digest.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::names::{BUNDLE_FORMAT, DSSE_SIGNATURE, KEY_HINT, ROOT_DIGEST, STATEMENT_SHAPE};
use super::Check;
use crate::sign::{
    pae, root_digest, Bundle, PublicKey, Statement, BUNDLE_MEDIA_TYPE, PAYLOAD_TYPE, PREDICATE_TYPE, SIGNATURE_FILE,
    STATEMENT_TYPE,
};

/// Why a model.sig, or the statement it carries, is malformed (authenticity aside).
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// model.sig could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// model.sig.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bundle is not JSON of the bundle's shape.
    #[error("{file} is not a Sigstore bundle in JSON: {0}", file = SIGNATURE_FILE)]
    BundleJson(serde_json::Error),
    /// The bundle's mediaType is not the one supported.
    #[error("mediaType is {found:?}, expected {:?}", BUNDLE_MEDIA_TYPE)]
    MediaType {
        /// The mediaType found.
        found: String,
    },
    /// The DSSE payloadType is not in-toto's.
    #[error("payloadType is {found:?}, expected {:?}", PAYLOAD_TYPE)]
    PayloadType {
        /// The payloadType found.
        found: String,
    },
    /// The envelope does not hold exactly one signature.
    #[error("expected exactly one DSSE signature, found {found}")]
    SignatureCount {
        /// Signatures found.
        found: usize,
    },
    /// The payload is not base64.
    #[error("payload is not base64: {0}")]
    PayloadBase64(base64::DecodeError),
    /// The signature is not base64.
    #[error("signature is not base64: {0}")]
    SignatureBase64(base64::DecodeError),
    /// The payload is not JSON of an in-toto statement's shape.
    #[error("payload is not an in-toto statement: {0}")]
    StatementJson(serde_json::Error),
    /// A statement field has another value than the one model signing uses.
    #[error("{field} is {found:?}, expected {expected:?}")]
    Field {
        /// The field.
        field: &'static str,
        /// The value found.
        found: String,
        /// The value expected.
        expected: &'static str,
    },
    /// The statement does not have exactly one subject.
    #[error("expected one subject, found {found}")]
    SubjectCount {
        /// Subjects found.
        found: usize,
    },
    /// The subject's digest is not a sha256.
    #[error("subject sha256 is {found:?}, expected 64 hex digits")]
    SubjectDigest {
        /// The digest found.
        found: String,
    },
    /// A resource's digest is not a sha256.
    #[error("resource {name:?}: expected a sha256 hex digest, found {algorithm} {digest:?}")]
    ResourceDigest {
        /// The resource.
        name: String,
        /// Its algorithm.
        algorithm: String,
        /// Its digest.
        digest: String,
    },
    /// A resource's name is not a relative POSIX path.
    #[error("resource {name:?}: expected a relative path without '.' or '..' components")]
    ResourcePath {
        /// The resource.
        name: String,
    },
    /// A resource is listed twice.
    #[error("resource {name:?} is listed twice")]
    ResourceTwice {
        /// The resource.
        name: String,
    },
}

/// The decoded parts of a model.sig bundle that the signature checks need.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The bundle's public-key hint (empty in older bundles).
    pub hint: String,
    /// The DSSE payload, base64-decoded (the in-toto statement, not yet trusted).
    pub payload: Vec<u8>,
    /// The DSSE signature, base64-decoded (DER).
    pub signature: Vec<u8>,
}

/// Runs the signature checks in order, appending to `checks`; returns the statement when it
/// is authentic (signature verified) and well formed, so the file checks can use it.
pub(super) fn check_signature(dir: &Path, key: &PublicKey, checks: &mut Vec<Check>) -> Option<Statement> {
    let envelope = match read_envelope(dir) {
        Ok(envelope) => envelope,
        Err(reason) => {
            checks.push(Check::fail(BUNDLE_FORMAT, reason.to_string()).with_file(SIGNATURE_FILE));
            return None;
        }
    };
    checks.push(
        Check::pass(BUNDLE_FORMAT, format!("Sigstore bundle {BUNDLE_MEDIA_TYPE} with one DSSE signature"))
            .with_file(SIGNATURE_FILE),
    );
    checks.push(check_hint(&envelope.hint, key));
    let signature_ok = check_dsse(&envelope, key, checks);
    if !signature_ok {
        return None;
    }
    let statement = match parse_statement(&envelope.payload) {
        Ok(statement) => statement,
        Err(reason) => {
            checks.push(Check::fail(STATEMENT_SHAPE, reason.to_string()).with_file(SIGNATURE_FILE));
            return None;
        }
    };
    checks.push(Check::pass(
        STATEMENT_SHAPE,
        format!(
            "in-toto statement, predicate {PREDICATE_TYPE}, method files, sha256, {} resources",
            statement.predicate.resources.len()
        ),
    ));
    checks.push(check_root_digest(&statement));
    Some(statement)
}

fn read_envelope(dir: &Path) -> Result<Envelope, FormatError> {
    let path = dir.join(SIGNATURE_FILE);
    let text = crate::fsutil::read_capped(&path, crate::fsutil::MAX_JSON_BYTES, crate::fsutil::Links::Refuse)
        .map_err(|source| FormatError::Unreadable { path: path.clone(), source })?;
    parse_envelope(&text)
}

/// Parses the bytes of a model.sig: a Sigstore bundle with one DSSE signature over an
/// in-toto payload. Nothing is verified; the reason names what is malformed.
pub fn parse_envelope(text: &[u8]) -> Result<Envelope, FormatError> {
    let bundle: Bundle = serde_json::from_slice(text).map_err(FormatError::BundleJson)?;
    if bundle.media_type != BUNDLE_MEDIA_TYPE {
        return Err(FormatError::MediaType { found: bundle.media_type });
    }
    let envelope = bundle.dsse_envelope;
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(FormatError::PayloadType { found: envelope.payload_type });
    }
    let [signature] = envelope.signatures.as_slice() else {
        return Err(FormatError::SignatureCount { found: envelope.signatures.len() });
    };
    let payload = STANDARD.decode(&envelope.payload).map_err(FormatError::PayloadBase64)?;
    let signature = STANDARD.decode(&signature.sig).map_err(FormatError::SignatureBase64)?;
    Ok(Envelope { hint: bundle.verification_material.public_key.hint, payload, signature })
}

fn check_hint(hint: &str, key: &PublicKey) -> Check {
    let expected = key.hint();
    if hint.is_empty() {
        Check::pass(KEY_HINT, "bundle has no key hint (older format); the DSSE signature decides")
    } else if hint == expected {
        Check::pass(KEY_HINT, format!("hint {hint} is the sha256 of the given public key"))
    } else {
        Check::fail(
            KEY_HINT,
            format!("bundle was made for the key with hint {hint}, the given public key's hint is {expected}"),
        )
        .with_file(SIGNATURE_FILE)
    }
}

fn check_dsse(envelope: &Envelope, key: &PublicKey, checks: &mut Vec<Check>) -> bool {
    let message = pae(PAYLOAD_TYPE, &envelope.payload);
    match key.verify_der(&message, &envelope.signature) {
        Ok(()) => {
            checks.push(Check::pass(
                DSSE_SIGNATURE,
                format!("ECDSA {} signature over the DSSE PAE verifies", key.curve()),
            ));
            true
        }
        Err(err) => {
            checks.push(Check::fail(DSSE_SIGNATURE, err.to_string()).with_file(SIGNATURE_FILE));
            false
        }
    }
}

/// Parses a DSSE payload as the statement the signature checks accept: an in-toto
/// statement of the model-signing predicate, one subject, sha256 resources with unique
/// relative paths. The reason names the first rule broken.
pub fn parse_statement(payload: &[u8]) -> Result<Statement, FormatError> {
    let statement: Statement = serde_json::from_slice(payload).map_err(FormatError::StatementJson)?;
    let expect = |field: &'static str, found: &str, expected: &'static str| {
        if found == expected {
            Ok(())
        } else {
            Err(FormatError::Field { field, found: found.to_string(), expected })
        }
    };
    expect("_type", &statement.statement_type, STATEMENT_TYPE)?;
    expect("predicateType", &statement.predicate_type, PREDICATE_TYPE)?;
    let serialization = &statement.predicate.serialization;
    expect("serialization method", &serialization.method, "files")?;
    expect("serialization hash_type", &serialization.hash_type, "sha256")?;
    if statement.subject.len() != 1 {
        return Err(FormatError::SubjectCount { found: statement.subject.len() });
    }
    if !is_hex_digest(statement.subject_digest()) {
        return Err(FormatError::SubjectDigest { found: statement.subject_digest().to_string() });
    }
    check_resources(&statement)?;
    Ok(statement)
}

fn check_resources(statement: &Statement) -> Result<(), FormatError> {
    let mut seen = BTreeSet::new();
    for resource in &statement.predicate.resources {
        if resource.algorithm != "sha256" || !is_hex_digest(&resource.digest) {
            return Err(FormatError::ResourceDigest {
                name: resource.name.clone(),
                algorithm: resource.algorithm.clone(),
                digest: resource.digest.clone(),
            });
        }
        if !is_relative_posix_path(&resource.name) {
            return Err(FormatError::ResourcePath { name: resource.name.clone() });
        }
        if !seen.insert(resource.name.as_str()) {
            return Err(FormatError::ResourceTwice { name: resource.name.clone() });
        }
    }
    Ok(())
}

/// Whether the statement's subject digest is the root digest of its resources (the
/// `signature.root_digest` check); `statement` must come from `parse_statement`.
pub fn check_root_digest(statement: &Statement) -> Check {
    let digests: Vec<[u8; 32]> = statement
        .predicate
        .resources
        .iter()
        .map(|r| decode_digest(&r.digest).expect("resource digests were validated"))
        .collect();
    let computed = hex::encode(root_digest(&digests));
    let claimed = statement.subject_digest();
    if computed == claimed.to_ascii_lowercase() {
        Check::pass(ROOT_DIGEST, format!("root digest {computed} matches the listed resources"))
    } else {
        Check::fail(ROOT_DIGEST, format!("subject digest is {claimed}, but the listed resources hash to {computed}"))
            .with_file(SIGNATURE_FILE)
    }
}

/// Decodes a 64-digit hex sha256.
pub(super) fn decode_digest(hex_digest: &str) -> Option<[u8; 32]> {
    hex::decode(hex_digest).ok()?.try_into().ok()
}

fn is_hex_digest(text: &str) -> bool {
    text.len() == 64 && decode_digest(text).is_some()
}

fn is_relative_posix_path(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && name.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
}
