//! Why manifest bytes could not be read as a manifest this build understands.

/// Manifest bytes that are not a manifest this build reads.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The bytes are not JSON of the manifest's shape (unknown or missing field, wrong type).
    #[error("{0}")]
    Json(#[source] serde_json::Error),
    /// The manifest is of a format version this build cannot read.
    #[error("format_version {found} is not supported (this build reads {readable:?})")]
    UnsupportedVersion {
        /// The version the manifest states.
        found: u32,
        /// The versions this build reads.
        readable: &'static [u32],
    },
}
