//! Checkpoints named by Hugging Face Hub id (`org/name[@revision]`): found in the local
//! Hugging Face cache, laid out as huggingface_hub lays it out, and downloaded with the
//! hf-hub crate when they are missing and the Hub may be reached.
//!
//! An argument is a Hub id only when it is not an existing path, has the form
//! `org/name[@revision]`, and `org` is not a local directory (so `models/typo` stays a path
//! and fails as one). The cache is `HF_HUB_CACHE`, else `HF_HOME/hub`, else
//! `XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`. With `HF_HUB_OFFLINE`
//! set (1, on, yes or true) nothing touches the network: a model missing from the cache is an
//! error that says where it was looked for.

mod cache;
mod download;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use cache::{find_snapshot, model_cache_dir};

/// The revision used when an id names none.
pub const DEFAULT_REVISION: &str = "main";

/// Longest repository name or organisation accepted in an id (the Hub allows 96).
const MAX_ID_PART: usize = 96;
/// Longest revision accepted after `@`.
const MAX_REVISION: usize = 255;

/// A Hub model reference as typed: `org/name` and an optional revision (branch, tag or
/// commit hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRef {
    /// The repository id, `org/name`.
    pub id: String,
    /// The revision after `@`, when one was given.
    pub revision: Option<String>,
}

impl HubRef {
    /// Parses `org/name[@revision]`, or returns None when `text` does not have that form:
    /// each part of the id starts with a letter or digit and holds only letters, digits,
    /// `-`, `_` and `.` (no `--` or `..`), and the revision holds only those and `/` (no `..`).
    pub fn parse(text: &str) -> Option<HubRef> {
        let (id, revision) = match text.split_once('@') {
            Some((id, revision)) => (id, Some(revision)),
            None => (text, None),
        };
        let (org, name) = id.split_once('/')?;
        if !valid_id_part(org) || !valid_id_part(name) {
            return None;
        }
        if let Some(revision) = revision {
            let allowed = |c: char| c.is_ascii_alphanumeric() || "-_./".contains(c);
            let well_formed = !revision.is_empty()
                && revision.len() <= MAX_REVISION
                && revision.chars().all(allowed)
                && !revision.contains("..")
                && !revision.starts_with('/')
                && !revision.ends_with('/');
            if !well_formed {
                return None;
            }
        }
        Some(HubRef { id: id.to_string(), revision: revision.map(str::to_string) })
    }

    /// The revision to resolve: the one given, or `main`.
    pub fn revision(&self) -> &str {
        self.revision.as_deref().unwrap_or(DEFAULT_REVISION)
    }
}

fn valid_id_part(part: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    part.len() <= MAX_ID_PART
        && part.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && part.chars().all(allowed)
        && !part.contains("--")
        && !part.contains("..")
}

/// Where a checkpoint named by Hub id came from: recorded in the manifest's base identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubModel {
    /// The repository id, `org/name`.
    pub id: String,
    /// The commit hash the revision resolved to (40 hex digits).
    pub revision: String,
}

/// A checkpoint argument resolved to a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedCheckpoint {
    /// The directory to open (a cache snapshot for a Hub id).
    pub dir: PathBuf,
    /// The Hub model and commit, when the argument was a Hub id.
    pub hub: Option<HubModel>,
}

/// Where and how to look for Hub models, read from the environment by [`HubSettings::from_env`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSettings {
    /// The hub cache directory (the folder holding `models--ORG--NAME`).
    pub cache: PathBuf,
    /// `HF_HUB_OFFLINE`: never use the network.
    pub offline: bool,
    /// `HF_TOKEN`, for gated and private models.
    pub token: Option<String>,
    /// `HF_ENDPOINT`, another Hub than huggingface.co (a mirror).
    pub endpoint: Option<String>,
    /// Draw hf-hub's download progress bars (on stderr).
    pub progress: bool,
}

impl HubSettings {
    /// The settings huggingface_hub would use: cache from `HF_HUB_CACHE`, `HF_HOME`,
    /// `XDG_CACHE_HOME` or `HOME`; `HF_HUB_OFFLINE`; `HF_TOKEN`; `HF_ENDPOINT`. Progress bars
    /// are off.
    pub fn from_env() -> Result<HubSettings, HubError> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let cache = var("HF_HUB_CACHE")
            .or_else(|| var("HF_HOME").map(|home| home.join("hub")))
            .or_else(|| var("XDG_CACHE_HOME").map(|cache| cache.join("huggingface/hub")))
            .or_else(|| var("HOME").map(|home| home.join(".cache/huggingface/hub")))
            .ok_or(HubError::NoCacheDir)?;
        let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| is_truthy(&v));
        let token = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty());
        let endpoint = std::env::var("HF_ENDPOINT").ok().filter(|e| !e.is_empty());
        Ok(HubSettings { cache, offline, token, endpoint, progress: false })
    }
}

/// huggingface_hub's reading of a boolean environment variable.
fn is_truthy(value: &str) -> bool {
    ["1", "on", "yes", "true"].contains(&value.trim().to_ascii_lowercase().as_str())
}

/// The Hub reference `arg` stands for, or None when it is a path: it exists, does not have
/// the form `org/name[@revision]`, or its first component is a local directory.
pub fn hub_reference(arg: &Path) -> Option<HubRef> {
    if arg.symlink_metadata().is_ok() {
        return None;
    }
    let reference = HubRef::parse(arg.to_str()?)?;
    let org = reference.id.split('/').next().unwrap_or_default();
    (!Path::new(org).is_dir()).then_some(reference)
}

/// Resolves a checkpoint argument: a path is returned as it is; a Hub id is looked up in the
/// cache (a commit hash found there is used without asking the Hub) and, unless offline,
/// fetched with hf-hub (a branch or tag is asked of the Hub, so it follows new commits; when
/// the Hub cannot be reached, a cached snapshot is used with a warning).
pub fn resolve_checkpoint(arg: &Path, settings: &HubSettings) -> Result<ResolvedCheckpoint, HubError> {
    let Some(reference) = hub_reference(arg) else {
        return Ok(ResolvedCheckpoint { dir: arg.to_path_buf(), hub: None });
    };
    let cached = find_snapshot(&settings.cache, &reference)?;
    let immutable = is_commit_hash(reference.revision());
    let (dir, commit) = match cached {
        Some(found) if settings.offline || immutable => found,
        None if settings.offline => {
            return Err(HubError::NotCached {
                id: reference.id.clone(),
                revision: reference.revision().to_string(),
                model_dir: model_cache_dir(&settings.cache, &reference.id),
            })
        }
        cached => match download::fetch(&reference, settings) {
            Ok(found) => found,
            Err(err) => match cached {
                Some(found) => {
                    log::warn!("{err}; using the cached snapshot {}", found.0.display());
                    found
                }
                None => return Err(err),
            },
        },
    };
    Ok(ResolvedCheckpoint { dir, hub: Some(HubModel { id: reference.id, revision: commit }) })
}

/// Whether `text` is a full commit hash (40 lowercase hex digits).
pub fn is_commit_hash(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Why a Hub id could not be resolved to a checkpoint directory.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// None of HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME and HOME is set.
    #[error("cannot locate the Hugging Face cache: expected HF_HUB_CACHE, HF_HOME or HOME to be set, found none")]
    NoCacheDir,
    /// Offline, and the model (or that revision) is not in the cache.
    #[error(
        "{id}@{revision}: not in the Hugging Face cache (expected {}/refs/{revision} naming a commit, and that \
         commit's folder under snapshots/); HF_HUB_OFFLINE is set, so nothing was downloaded: unset it, or fetch \
         the model first (`hf download {id}`)",
        model_dir.display()
    )]
    NotCached {
        /// The repository id.
        id: String,
        /// The revision looked for.
        revision: String,
        /// The model's folder in the cache.
        model_dir: PathBuf,
    },
    /// A `refs/` file that does not hold a commit hash.
    #[error("{}: expected a 40-hex-digit commit hash, found {found:?}", path.display())]
    BadRef {
        /// The refs file.
        path: PathBuf,
        /// What it holds (trimmed, at most 80 characters).
        found: String,
    },
    /// Reading the cache failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The Hub could not be asked, or a file could not be downloaded.
    #[error("{id}@{revision}: downloading from the Hugging Face Hub failed: {reason}")]
    Download {
        /// The repository id.
        id: String,
        /// The revision asked for.
        revision: String,
        /// hf-hub's error.
        reason: String,
    },
}

#[cfg(test)]
mod tests;
