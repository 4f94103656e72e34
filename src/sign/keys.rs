//! ECDSA key pairs on P-256, P-384 and P-521: generation, PEM parsing, DER signatures, hints.
//!
//! All cryptography is RustCrypto's (p256, p384, p521 with ecdsa); this file only picks the
//! curve and its hash (SHA-256, SHA-384, SHA-512, as the reference verifier does).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use p256::ecdsa::signature::{Signer, Verifier};
use p256::elliptic_curve::rand_core::OsRng;
use p256::elliptic_curve::zeroize::Zeroizing;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use sha2::{Digest, Sha256};

use super::error::SignError;

/// An elliptic curve the reference verifier accepts, each with its fixed hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Curve {
    /// NIST P-256 (prime256v1) with SHA-256.
    #[cfg_attr(feature = "cli", value(help = None))]
    P256,
    /// NIST P-384 (secp384r1) with SHA-384.
    #[cfg_attr(feature = "cli", value(help = None))]
    P384,
    /// NIST P-521 (secp521r1) with SHA-512.
    #[cfg_attr(feature = "cli", value(help = None))]
    P521,
}

impl fmt::Display for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Curve::P256 => "p256",
            Curve::P384 => "p384",
            Curve::P521 => "p521",
        })
    }
}

impl FromStr for Curve {
    type Err = UnknownCurve;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "p256" | "p-256" | "prime256v1" => Ok(Curve::P256),
            "p384" | "p-384" | "secp384r1" => Ok(Curve::P384),
            "p521" | "p-521" | "secp521r1" => Ok(Curve::P521),
            other => Err(UnknownCurve { found: other.to_string() }),
        }
    }
}

/// A freshly generated key pair as PEM text: PKCS#8 private key, SPKI public key.
pub struct KeyPair {
    /// The curve of both keys.
    pub curve: Curve,
    /// PKCS#8 "PRIVATE KEY" PEM; wiped from memory on drop.
    pub private_pem: Zeroizing<String>,
    /// SubjectPublicKeyInfo "PUBLIC KEY" PEM, LF line endings.
    pub public_pem: String,
}

/// Generates a key pair on `curve` from the operating system's random source.
pub fn keygen(curve: Curve) -> Result<KeyPair, SignError> {
    let encode_err = |e: &dyn fmt::Display| SignError::Signing(format!("encoding new key: {e}"));
    let (private_pem, public_pem) = match curve {
        Curve::P256 => {
            let secret = p256::SecretKey::random(&mut OsRng);
            let private = secret.to_pkcs8_pem(LineEnding::LF).map_err(|e| encode_err(&e))?;
            let public = secret.public_key().to_public_key_pem(LineEnding::LF);
            (private, public.map_err(|e| encode_err(&e))?)
        }
        Curve::P384 => {
            let secret = p384::SecretKey::random(&mut OsRng);
            let private = secret.to_pkcs8_pem(LineEnding::LF).map_err(|e| encode_err(&e))?;
            let public = secret.public_key().to_public_key_pem(LineEnding::LF);
            (private, public.map_err(|e| encode_err(&e))?)
        }
        Curve::P521 => {
            let secret = p521::SecretKey::random(&mut OsRng);
            let private = secret.to_pkcs8_pem(LineEnding::LF).map_err(|e| encode_err(&e))?;
            let public = secret.public_key().to_public_key_pem(LineEnding::LF);
            (private, public.map_err(|e| encode_err(&e))?)
        }
    };
    Ok(KeyPair { curve, private_pem, public_pem })
}

impl KeyPair {
    /// Writes `PREFIX.priv` (mode 0600) and `PREFIX.pub`, each created atomically; fails
    /// without writing anything if either exists.
    pub fn write(&self, prefix: &Path) -> Result<(PathBuf, PathBuf), SignError> {
        let private_path = with_suffix(prefix, ".priv");
        let public_path = with_suffix(prefix, ".pub");
        for path in [&private_path, &public_path] {
            if path.symlink_metadata().is_ok() {
                return Err(SignError::KeyFileExists { path: path.clone() });
            }
        }
        create_new(&private_path, self.private_pem.as_bytes(), 0o600)?;
        if let Err(err) = create_new(&public_path, self.public_pem.as_bytes(), 0o644) {
            let _ = std::fs::remove_file(&private_path);
            return Err(err);
        }
        Ok((private_path, public_path))
    }
}

/// [`crate::fsutil::create_new`], an existing file reported as [`SignError::KeyFileExists`].
fn create_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SignError> {
    crate::fsutil::create_new(path, bytes, mode).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => SignError::KeyFileExists { path: path.to_path_buf() },
        _ => SignError::io(path, source),
    })
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A parsed ECDSA signing key.
pub enum PrivateKey {
    /// P-256 key, signs SHA-256 digests (RFC 6979 deterministic nonces).
    P256(p256::ecdsa::SigningKey),
    /// P-384 key, signs SHA-384 digests (RFC 6979 deterministic nonces).
    P384(p384::ecdsa::SigningKey),
    /// P-521 key, signs SHA-512 digests (random nonces).
    P521(p521::ecdsa::SigningKey),
}

impl PrivateKey {
    /// Parses a SEC1 ("EC PRIVATE KEY") or PKCS#8 ("PRIVATE KEY") PEM on a supported curve.
    pub fn from_pem(pem: &str) -> Result<Self, SignError> {
        let invalid = |found: String| SignError::InvalidPrivateKey { found };
        match pem_label(pem) {
            Some("EC PRIVATE KEY") => Self::from_sec1_pem(pem)
                .ok_or_else(|| invalid("found an EC PRIVATE KEY that no supported curve accepts".into())),
            Some("PRIVATE KEY") => Self::from_pkcs8_pem(pem)
                .ok_or_else(|| invalid("found a PKCS#8 key that is not EC on a supported curve".into())),
            Some(other) => Err(invalid(format!("found a PEM block labelled {other:?}"))),
            None => Err(invalid("found no PEM block".into())),
        }
    }

    fn from_sec1_pem(pem: &str) -> Option<Self> {
        if let Ok(secret) = p256::SecretKey::from_sec1_pem(pem) {
            return Some(PrivateKey::P256(secret.into()));
        }
        if let Ok(secret) = p384::SecretKey::from_sec1_pem(pem) {
            return Some(PrivateKey::P384(secret.into()));
        }
        let secret = p521::SecretKey::from_sec1_pem(pem).ok()?;
        p521::ecdsa::SigningKey::from_bytes(&secret.to_bytes()).ok().map(PrivateKey::P521)
    }

    fn from_pkcs8_pem(pem: &str) -> Option<Self> {
        if let Ok(secret) = p256::SecretKey::from_pkcs8_pem(pem) {
            return Some(PrivateKey::P256(secret.into()));
        }
        if let Ok(secret) = p384::SecretKey::from_pkcs8_pem(pem) {
            return Some(PrivateKey::P384(secret.into()));
        }
        let secret = p521::SecretKey::from_pkcs8_pem(pem).ok()?;
        p521::ecdsa::SigningKey::from_bytes(&secret.to_bytes()).ok().map(PrivateKey::P521)
    }

    /// The curve of this key.
    pub fn curve(&self) -> Curve {
        match self {
            PrivateKey::P256(_) => Curve::P256,
            PrivateKey::P384(_) => Curve::P384,
            PrivateKey::P521(_) => Curve::P521,
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::P256(key) => PublicKey::P256(*key.verifying_key()),
            PrivateKey::P384(key) => PublicKey::P384(*key.verifying_key()),
            PrivateKey::P521(key) => PublicKey::P521(p521::ecdsa::VerifyingKey::from(key)),
        }
    }

    /// Signs `message` (hashed with the curve's hash) and returns the DER-encoded signature.
    pub fn sign_der(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let fail = |e: p256::ecdsa::Error| SignError::Signing(e.to_string());
        Ok(match self {
            PrivateKey::P256(key) => {
                let sig: p256::ecdsa::Signature = key.try_sign(message).map_err(fail)?;
                sig.to_der().as_bytes().to_vec()
            }
            PrivateKey::P384(key) => {
                let sig: p384::ecdsa::Signature = key.try_sign(message).map_err(fail)?;
                sig.to_der().as_bytes().to_vec()
            }
            PrivateKey::P521(key) => {
                let sig: p521::ecdsa::Signature = key.try_sign(message).map_err(fail)?;
                sig.to_der().as_bytes().to_vec()
            }
        })
    }
}

/// A parsed ECDSA verifying key.
#[derive(Clone)]
pub enum PublicKey {
    /// P-256 key, SHA-256.
    P256(p256::ecdsa::VerifyingKey),
    /// P-384 key, SHA-384.
    P384(p384::ecdsa::VerifyingKey),
    /// P-521 key, SHA-512.
    P521(p521::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// Parses a SubjectPublicKeyInfo ("PUBLIC KEY") PEM on a supported curve.
    pub fn from_pem(pem: &str) -> Result<Self, SignError> {
        let invalid = |found: String| SignError::InvalidPublicKey { found };
        match pem_label(pem) {
            Some("PUBLIC KEY") => {}
            Some(other) => return Err(invalid(format!("found a PEM block labelled {other:?}"))),
            None => return Err(invalid("found no PEM block".into())),
        }
        if let Ok(key) = p256::PublicKey::from_public_key_pem(pem) {
            return Ok(PublicKey::P256(key.into()));
        }
        if let Ok(key) = p384::PublicKey::from_public_key_pem(pem) {
            return Ok(PublicKey::P384(key.into()));
        }
        p521::PublicKey::from_public_key_pem(pem)
            .ok()
            .and_then(|key| p521::ecdsa::VerifyingKey::from_affine(*key.as_affine()).ok())
            .map(PublicKey::P521)
            .ok_or_else(|| invalid("found a key that is not EC on a supported curve".into()))
    }

    /// The curve of this key.
    pub fn curve(&self) -> Curve {
        match self {
            PublicKey::P256(_) => Curve::P256,
            PublicKey::P384(_) => Curve::P384,
            PublicKey::P521(_) => Curve::P521,
        }
    }

    /// The canonical SPKI PEM (64-column base64, LF, trailing newline), as OpenSSL writes it.
    pub fn to_pem(&self) -> String {
        let pem = match self {
            PublicKey::P256(key) => p256::PublicKey::from(key).to_public_key_pem(LineEnding::LF),
            PublicKey::P384(key) => p384::PublicKey::from(key).to_public_key_pem(LineEnding::LF),
            PublicKey::P521(key) => p521::PublicKey::from_affine(*key.as_affine())
                .expect("a verifying key is never the identity")
                .to_public_key_pem(LineEnding::LF),
        };
        pem.expect("SPKI encoding of a valid EC point cannot fail")
    }

    /// The bundle's key hint for this key: hex sha256 of its canonical PEM.
    pub fn hint(&self) -> String {
        public_key_hint(&self.to_pem())
    }

    /// Checks a DER-encoded ECDSA signature of `message`; on failure, whether the bytes were
    /// no signature or a signature that does not verify.
    pub fn verify_der(&self, message: &[u8], der: &[u8]) -> Result<(), SignatureError> {
        let bad_der = |source| SignatureError::NotDer { curve: self.curve(), source };
        let mismatch = |_| SignatureError::Mismatch;
        match self {
            PublicKey::P256(key) => {
                let sig = p256::ecdsa::Signature::from_der(der).map_err(bad_der)?;
                key.verify(message, &sig).map_err(mismatch)
            }
            PublicKey::P384(key) => {
                let sig = p384::ecdsa::Signature::from_der(der).map_err(bad_der)?;
                key.verify(message, &sig).map_err(mismatch)
            }
            PublicKey::P521(key) => {
                let sig = p521::ecdsa::Signature::from_der(der).map_err(bad_der)?;
                key.verify(message, &sig).map_err(mismatch)
            }
        }
    }
}

/// Hex sha256 of a public key's PEM text (trailing newline included): the bundle's key hint.
pub fn public_key_hint(public_pem: &str) -> String {
    hex::encode(Sha256::digest(public_pem.as_bytes()))
}

/// The label of the first PEM block ("EC PRIVATE KEY", "PUBLIC KEY", ...), if any.
fn pem_label(pem: &str) -> Option<&str> {
    let start = pem.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = &pem[start..];
    rest.find("-----").map(|end| &rest[..end])
}

/// Why a DER-encoded ECDSA signature was refused by a public key.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The bytes are not a DER ECDSA signature on the key's curve.
    #[error("signature is not a DER ECDSA signature for {curve}: {source}")]
    NotDer {
        /// The curve of the public key.
        curve: Curve,
        /// The ECDSA implementation's parse error.
        source: p256::ecdsa::Error,
    },
    /// The signature is well formed but was not made over the message by this key's pair.
    #[error("ECDSA signature does not verify with the given public key")]
    Mismatch,
}

/// A curve name that is none of P-256, P-384 and P-521 (`Curve`'s `FromStr`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown curve {found:?}; expected p256, p384 or p521")]
pub struct UnknownCurve {
    /// The name given, lowercased.
    pub found: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_pem_and_sign_on_every_curve() {
        for curve in [Curve::P256, Curve::P384, Curve::P521] {
            let pair = keygen(curve).unwrap();
            let private = PrivateKey::from_pem(&pair.private_pem).unwrap();
            let public = PublicKey::from_pem(&pair.public_pem).unwrap();
            assert_eq!(private.curve(), curve);
            assert_eq!(public.curve(), curve);
            assert_eq!(private.public_key().to_pem(), pair.public_pem);
            let sig = private.sign_der(b"message").unwrap();
            public.verify_der(b"message", &sig).unwrap();
            assert!(matches!(public.verify_der(b"messagE", &sig), Err(SignatureError::Mismatch)));
            let not_der = public.verify_der(b"message", b"\x30\x00").unwrap_err();
            assert!(matches!(not_der, SignatureError::NotDer { curve: c, .. } if c == curve), "{not_der}");
        }
    }

    #[test]
    fn curve_names_parse_case_insensitively_and_unknown_ones_are_named() {
        assert_eq!("P-384".parse::<Curve>(), Ok(Curve::P384));
        let err = "Ed25519".parse::<Curve>().unwrap_err();
        assert_eq!(err, UnknownCurve { found: "ed25519".to_string() });
        assert_eq!(err.to_string(), "unknown curve \"ed25519\"; expected p256, p384 or p521");
    }

    #[test]
    fn sec1_pem_is_accepted_like_openssl_ecparam_writes_it() {
        use p256::pkcs8::der::pem::LineEnding as Le;
        let secret = p384::SecretKey::random(&mut OsRng);
        let sec1 = secret.to_sec1_pem(Le::LF).unwrap();
        assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        let key = PrivateKey::from_pem(&sec1).unwrap();
        assert_eq!(key.curve(), Curve::P384);
    }

    #[test]
    fn public_key_given_as_private_key_is_refused_with_the_label_found() {
        let pair = keygen(Curve::P256).unwrap();
        let err = PrivateKey::from_pem(&pair.public_pem).err().unwrap().to_string();
        assert!(err.contains("\"PUBLIC KEY\""), "{err}");
        let err = PublicKey::from_pem(&pair.private_pem).err().unwrap().to_string();
        assert!(err.contains("\"PRIVATE KEY\""), "{err}");
    }
}
