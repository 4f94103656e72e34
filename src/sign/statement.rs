//! The in-toto Statement v1 that model signatures sign, its root digest, and DSSE PAE.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fsutil::digest::FileDigest;

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of a model-signing statement.
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";

/// An in-toto statement as the reference tool writes and reads it (extra fields ignored).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Statement {
    /// Must be `STATEMENT_TYPE`.
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// One subject: the model directory's name and root digest.
    pub subject: Vec<Subject>,
    /// Must be `PREDICATE_TYPE`.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// How the files were serialised and their digests.
    pub predicate: Predicate,
}

/// The signed model as a whole.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Subject {
    /// Name of the model directory.
    pub name: String,
    /// Algorithm name to hex digest; `sha256` holds the root digest.
    pub digest: BTreeMap<String, String>,
}

/// The model-signing predicate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Predicate {
    /// Serialisation parameters the verifier re-hashes with.
    pub serialization: Serialization,
    /// One entry per signed file.
    pub resources: Vec<Resource>,
}

/// How the directory was turned into resources.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Serialization {
    /// `files`: one digest per file.
    pub method: String,
    /// `sha256`.
    pub hash_type: String,
    /// Always false here: links are refused.
    pub allow_symlinks: bool,
    /// Relative paths left out of the signature.
    #[serde(default)]
    pub ignore_paths: Vec<String>,
}

/// One signed file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Resource {
    /// Relative POSIX path.
    pub name: String,
    /// `sha256`.
    pub algorithm: String,
    /// Hex digest of the file.
    pub digest: String,
}

impl Statement {
    /// Builds the statement for directory `name` with resources sorted by path.
    pub fn for_directory(name: &str, digests: &BTreeMap<String, FileDigest>, ignore_paths: &[String]) -> Self {
        let root = root_digest(digests.values().map(|d| &d.sha256));
        Statement {
            statement_type: STATEMENT_TYPE.to_string(),
            subject: vec![Subject {
                name: name.to_string(),
                digest: BTreeMap::from([("sha256".to_string(), hex::encode(root))]),
            }],
            predicate_type: PREDICATE_TYPE.to_string(),
            predicate: Predicate {
                serialization: Serialization {
                    method: "files".to_string(),
                    hash_type: "sha256".to_string(),
                    allow_symlinks: false,
                    ignore_paths: ignore_paths.to_vec(),
                },
                resources: digests
                    .iter()
                    .map(|(path, digest)| Resource {
                        name: path.clone(),
                        algorithm: "sha256".to_string(),
                        digest: hex::encode(digest.sha256),
                    })
                    .collect(),
            },
        }
    }

    /// The first subject's sha256 root digest (hex), or "" when absent.
    pub fn subject_digest(&self) -> &str {
        self.subject.first().and_then(|s| s.digest.get("sha256")).map_or("", String::as_str)
    }
}

/// Root digest: sha256 over the concatenated raw 32-byte file digests, in listed order.
pub fn root_digest<'a>(digests: impl IntoIterator<Item = &'a [u8; 32]>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for digest in digests {
        hasher.update(digest);
    }
    hasher.finalize().into()
}

/// DSSE pre-authentication encoding: `"DSSEv1" SP len(type) SP type SP len(body) SP body`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_specification_example() {
        // Example from the DSSE protocol document (secure-systems-lab/dsse, protocol.md).
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn root_digest_hashes_raw_digests_in_listed_order() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        let mut concat = a.to_vec();
        concat.extend_from_slice(&b);
        assert_eq!(root_digest([&a, &b]), <[u8; 32]>::from(Sha256::digest(&concat)));
        assert_ne!(root_digest([&a, &b]), root_digest([&b, &a]));
    }

    #[test]
    fn root_digest_of_the_reference_tools_statement_is_reproduced() {
        // Resources of a statement written by `model_signing sign key` 1.1.1 (3 files).
        let resources = [
            "883c6bd0fea45b9e8607e1a6488a84a0a669bb8c38c4096d009a86637b3720b1",
            "ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356",
            "c962de9ad2cd35a8e7f986a4c57b0ec9262e00cec65a82c91579d00b29a887e1",
        ];
        let raw: Vec<[u8; 32]> = resources.iter().map(|h| hex::decode(h).unwrap().try_into().unwrap()).collect();
        assert_eq!(hex::encode(root_digest(&raw)), "712d4813b73dbf14d5ab1f54132f250aa7430548dfac2cca341ffbbff2f71e17");
    }
}
