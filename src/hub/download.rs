//! Downloading a model snapshot into the Hugging Face cache with the hf-hub crate (blocking
//! client): the files a checkpoint needs, each written as a blob with a snapshot link.

use std::path::PathBuf;

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Cache, Repo, RepoType};

use super::{is_commit_hash, model_cache_dir, HubError, HubRef, HubSettings};

/// Top-level file kinds a checkpoint uses (weights, index, config, tokenizer, chat template,
/// card and licence); other formats (.bin, .onnx, .gguf) and subfolders are not fetched.
fn wanted(file: &str) -> bool {
    let safe = !file.contains('/') && !file.starts_with('.') && !file.contains("..");
    let kind = [".json", ".safetensors", ".txt", ".model", ".jinja", ".md"].iter().any(|ext| file.ends_with(ext))
        || file.starts_with("LICENSE");
    safe && kind
}

/// Asks the Hub which commit `reference` names and which files it has, downloads those the
/// cache lacks, and returns the snapshot folder and the commit hash.
pub(super) fn fetch(reference: &HubRef, settings: &HubSettings) -> Result<(PathBuf, String), HubError> {
    let fail = |reason: String| HubError::Download {
        id: reference.id.clone(),
        revision: reference.revision().to_string(),
        reason,
    };
    let mut builder = ApiBuilder::from_cache(Cache::new(settings.cache.clone()))
        .with_progress(settings.progress)
        .with_token(settings.token.clone());
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint.clone());
    }
    let api = builder.build().map_err(|e| fail(e.to_string()))?;
    let repo = api.repo(Repo::with_revision(reference.id.clone(), RepoType::Model, reference.revision().to_string()));
    let info = repo.info().map_err(|e| fail(e.to_string()))?;
    if !is_commit_hash(&info.sha) {
        return Err(fail(format!("expected a 40-hex-digit commit hash from the Hub, found {:?}", info.sha)));
    }
    let snapshot = model_cache_dir(&settings.cache, &reference.id).join("snapshots").join(&info.sha);
    for file in info.siblings.iter().map(|s| s.rfilename.as_str()).filter(|f| wanted(f)) {
        if snapshot.join(file).symlink_metadata().is_err() {
            repo.download(file).map_err(|e| fail(format!("{file}: {e}")))?;
        }
    }
    if !snapshot.is_dir() {
        return Err(fail(format!(
            "the revision moved past commit {} during the download; run the command again",
            info.sha
        )));
    }
    Ok((snapshot, info.sha))
}

#[cfg(test)]
mod tests {
    use super::wanted;

    #[test]
    fn only_top_level_checkpoint_files_are_fetched() {
        for file in ["config.json", "model-00001-of-00002.safetensors", "tokenizer.model", "README.md", "LICENSE.txt"] {
            assert!(wanted(file), "{file}");
        }
        for file in ["pytorch_model.bin", "onnx/model.json", "../x.json", ".gitattributes", "model.gguf"] {
            assert!(!wanted(file), "{file}");
        }
    }
}
