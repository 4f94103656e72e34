//! Listing a checkpoint's files and refusing names that could escape its directory.

use std::path::{Component, Path, PathBuf};

use super::CheckpointError;

/// Resolves `name` (relative, `/`-separated) inside `dir`, refusing absolute names, `..`
/// components and any path that resolves outside `dir`: the whole path is canonicalized (so
/// a symbolic link in any component, a linked directory included, is followed) and must stay
/// beneath the canonical `dir`, or, when `dir` is a Hugging Face cache snapshot, beneath that
/// model's `blobs/` folder (see [`hub_blobs_of`]). A path that does not exist yet is checked
/// through its nearest existing ancestor.
pub fn resolve_inside(dir: &Path, name: &str) -> Result<PathBuf, CheckpointError> {
    let unsafe_path = |reason: &str| CheckpointError::UnsafePath {
        dir: dir.to_path_buf(),
        name: name.to_string(),
        reason: reason.to_string(),
    };
    let relative = Path::new(name);
    if name.is_empty() || relative.is_absolute() || name.starts_with('/') {
        return Err(unsafe_path("expected a relative file name"));
    }
    if relative.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(unsafe_path("must not contain '..' or '.' components"));
    }
    let path = dir.join(relative);
    let Some(existing) = path.ancestors().find(|p| p.symlink_metadata().is_ok()) else {
        return Ok(path);
    };
    let root = dir.canonicalize().map_err(|source| CheckpointError::io(dir, source))?;
    let target = existing.canonicalize().map_err(|source| CheckpointError::io(existing, source))?;
    let in_blobs = hub_blobs_of(&root).is_some_and(|blobs| target.starts_with(blobs));
    if !target.starts_with(&root) && !in_blobs {
        return Err(unsafe_path(&format!(
            "resolves through a symbolic link to {}, which leads outside the checkpoint directory (copy it with \
             `cp -rL` first)",
            target.display()
        )));
    }
    Ok(path)
}

/// The `blobs/` folder a Hugging Face cache snapshot may link into, when canonical `root` is
/// one: `<cache>/models--ORG--NAME/snapshots/<commit>`, beside `<cache>/models--ORG--NAME/blobs`.
///
/// huggingface_hub (and the hf-hub crate) lay a snapshot out as symbolic links
/// `snapshots/<commit>/FILE -> ../../blobs/<digest>`, so a snapshot's files all lead outside
/// its directory. Those links are allowed, but only into the same model's `blobs/`: a link
/// to another model's cache, to the snapshot's siblings or anywhere else is still refused.
/// The snapshot is recognised by its layout alone, so naming it by path (rather than by Hub
/// id) works the same.
pub fn hub_blobs_of(root: &Path) -> Option<PathBuf> {
    let snapshots = root.parent()?;
    let model = snapshots.parent()?;
    let is_model_cache = model.file_name()?.to_str()?.starts_with("models--");
    (snapshots.file_name()? == "snapshots" && is_model_cache).then(|| model.join("blobs"))
}

/// Every file under `dir` as a sorted list of relative `/`-separated paths; symbolic links
/// must resolve where [`resolve_inside`] allows (inside `dir`, or a Hugging Face snapshot's
/// blobs) and are listed as files; anything else but files and directories is refused.
pub fn list_regular_files(dir: &Path) -> Result<Vec<String>, CheckpointError> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(root: &Path, current: &Path, out: &mut Vec<String>) -> Result<(), CheckpointError> {
    let entries = std::fs::read_dir(current).map_err(|source| CheckpointError::io(current, source))?;
    for entry in entries {
        let entry = entry.map_err(|source| CheckpointError::io(current, source))?;
        let path = entry.path();
        let relative = relative_name(root, &path)?;
        let file_type = entry.file_type().map_err(|source| CheckpointError::io(&path, source))?;
        if file_type.is_symlink() {
            let resolved = resolve_inside(root, &relative)?;
            if resolved.is_dir() {
                return Err(CheckpointError::UnsafePath {
                    dir: root.to_path_buf(),
                    name: relative,
                    reason: "symbolic links to directories are not supported".into(),
                });
            }
            out.push(relative);
        } else if file_type.is_dir() {
            walk(root, &path, out)?;
        } else if file_type.is_file() {
            out.push(relative);
        } else {
            return Err(CheckpointError::UnsafePath {
                dir: root.to_path_buf(),
                name: relative,
                reason: "not a regular file or directory".into(),
            });
        }
    }
    Ok(())
}

fn relative_name(root: &Path, path: &Path) -> Result<String, CheckpointError> {
    let relative = path.strip_prefix(root).expect("walk stays under root");
    let parts: Option<Vec<&str>> = relative.components().map(|c| c.as_os_str().to_str()).collect();
    parts.map(|p| p.join("/")).ok_or_else(|| CheckpointError::UnsafePath {
        dir: root.to_path_buf(),
        name: relative.to_string_lossy().into_owned(),
        reason: "file name is not valid UTF-8".into(),
    })
}
