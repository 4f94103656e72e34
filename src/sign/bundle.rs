//! The Sigstore bundle v0.3 (JSON) holding a DSSE envelope signed with a public-key hint.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::error::SignError;
use super::keys::PrivateKey;
use super::statement::pae;

/// The only bundle media type the reference verifier accepts.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A Sigstore bundle as stored in `model.sig` (field order as the reference writes it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// Must be `BUNDLE_MEDIA_TYPE`.
    pub media_type: String,
    /// Key hint and (empty) transparency-log entries.
    pub verification_material: VerificationMaterial,
    /// The signed statement.
    pub dsse_envelope: DsseEnvelope,
}

/// Identifies the verifying key without embedding it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMaterial {
    /// The public key hint.
    pub public_key: PublicKeyIdentifier,
    /// Always empty for key-based signatures (no transparency log).
    #[serde(default)]
    pub tlog_entries: Vec<serde_json::Value>,
}

/// Hex sha256 of the public key's PEM text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublicKeyIdentifier {
    /// The hint; older bundles may leave it empty.
    #[serde(default)]
    pub hint: String,
}

/// A DSSE envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DsseEnvelope {
    /// Base64 of the statement JSON.
    pub payload: String,
    /// Must be `PAYLOAD_TYPE`.
    pub payload_type: String,
    /// Exactly one signature over the PAE.
    pub signatures: Vec<DsseSignature>,
}

/// One DSSE signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DsseSignature {
    /// Base64 of the DER ECDSA signature.
    pub sig: String,
    /// Empty for key-based signatures.
    #[serde(default)]
    pub keyid: String,
}

/// Signs `payload` (a statement's JSON bytes) with a PEM private key and returns the bundle
/// JSON; used by `sign_directory` and to build deliberately altered statements in tests.
pub fn sign_payload(payload: &[u8], private_key_pem: &str) -> Result<String, SignError> {
    sign_payload_with(&PrivateKey::from_pem(private_key_pem)?, payload)
}

pub(super) fn sign_payload_with(key: &PrivateKey, payload: &[u8]) -> Result<String, SignError> {
    let signature = key.sign_der(&pae(PAYLOAD_TYPE, payload))?;
    let bundle = Bundle {
        media_type: BUNDLE_MEDIA_TYPE.to_string(),
        verification_material: VerificationMaterial {
            public_key: PublicKeyIdentifier { hint: key.public_key().hint() },
            tlog_entries: Vec::new(),
        },
        dsse_envelope: DsseEnvelope {
            payload: STANDARD.encode(payload),
            payload_type: PAYLOAD_TYPE.to_string(),
            signatures: vec![DsseSignature { sig: STANDARD.encode(signature), keyid: String::new() }],
        },
    };
    serde_json::to_string(&bundle).map_err(SignError::Json)
}
