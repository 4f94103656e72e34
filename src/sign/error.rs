//! The error types of signing and of unusable verification input, of a signature that does
//! not verify, and of an unknown curve name.

use std::path::{Path, PathBuf};

/// Why signing (or reading the inputs of verification) failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// Reading or writing a file or directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The directory to sign or verify is not a directory.
    #[error("{path}: expected a directory")]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// Listing or hashing the directory's files failed (a link or special file among them,
    /// an unreadable file).
    #[error(transparent)]
    Digest(#[from] crate::fsutil::digest::DigestError),
    /// A base checkpoint's files could not be listed under the checkpoint rules.
    #[error(transparent)]
    Checkpoint(Box<crate::checkpoint::CheckpointError>),
    /// File names must be UTF-8 to be listed in the statement.
    #[error("{path}: file name is not valid UTF-8")]
    NonUtf8Path {
        /// The entry found.
        path: PathBuf,
    },
    /// A PEM private key that none of P-256, P-384, P-521 (SEC1 or PKCS#8) accepts.
    #[error("private key: expected an ECDSA P-256, P-384 or P-521 key in PEM (\"EC PRIVATE KEY\" or \"PRIVATE KEY\"), {found}")]
    InvalidPrivateKey {
        /// What was found instead.
        found: String,
    },
    /// A PEM public key that is not an EC SubjectPublicKeyInfo on a supported curve.
    #[error(
        "public key: expected an ECDSA P-256, P-384 or P-521 \"PUBLIC KEY\" (SubjectPublicKeyInfo) in PEM, {found}"
    )]
    InvalidPublicKey {
        /// What was found instead.
        found: String,
    },
    /// `keygen` never overwrites an existing key file.
    #[error("{path}: already exists; refusing to overwrite a key file")]
    KeyFileExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A precomputed digest names a file that is not in the directory.
    #[error("precomputed digest for {file}: the file is not in the directory (stale digest map)")]
    StaleDigestMissingFile {
        /// The file named by the map.
        file: String,
    },
    /// A precomputed digest was recorded for a file of another size.
    #[error("precomputed digest for {file}: recorded for {expected} bytes, the file has {found} (stale digest map)")]
    StaleDigestSize {
        /// The file named by the map.
        file: String,
        /// Size recorded with the digest.
        expected: u64,
        /// Size on disk.
        found: u64,
    },
    /// The ECDSA implementation refused to sign.
    #[error("ECDSA signing failed: {0}")]
    Signing(String),
    /// Serialising the statement or bundle failed.
    #[error("JSON serialisation failed: {0}")]
    Json(serde_json::Error),
}

impl SignError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        SignError::Io { path: path.to_path_buf(), source }
    }
}
