//! Inputs that name what something else made: checkpoints (a directory or a Hugging Face Hub
//! id) and the outputs of other commands (an `eval`, `score` or `mask` directory, or the
//! file inside it), each resolved the same way for every command.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::eval::{RECORDS_FILE, RUN_FILE, SUMMARY_FILE};
use crate::hub::{resolve_checkpoint, HubSettings, ResolvedCheckpoint};
use crate::mask::MASK_JSON;
use crate::score::{SCORES_FILE, SIDECAR_FILE};

/// Resolves a checkpoint argument: a directory as it is, a Hub id `org/name[@revision]`
/// through the Hugging Face cache (downloading when online; see [`crate::hub`]).
/// `show_progress` draws the download bars.
pub fn checkpoint(arg: &Path, show_progress: bool) -> anyhow::Result<ResolvedCheckpoint> {
    let mut settings = HubSettings::from_env()?;
    settings.progress = show_progress && std::io::stderr().is_terminal();
    let resolved = resolve_checkpoint(arg, &settings)?;
    if let Some(hub) = &resolved.hub {
        log::info!("{} is {}@{} in {}", arg.display(), hub.id, hub.revision, resolved.dir.display());
    }
    Ok(resolved)
}

/// The directory a command writes and the files in it that name it just as well.
pub struct OutputKind {
    /// The command that writes it.
    command: &'static str,
    /// The file the reading option wants.
    main: &'static str,
    /// Every file whose path stands for the whole directory.
    files: &'static [&'static str],
}

/// `eval --out`: records.jsonl (the answers), summary.json, run.json.
pub const EVAL_OUTPUT: OutputKind =
    OutputKind { command: "eval", main: RECORDS_FILE, files: &[RECORDS_FILE, SUMMARY_FILE, RUN_FILE] };
/// `score --out`: scores.safetensors and its scores.json sidecar.
pub const SCORE_OUTPUT: OutputKind =
    OutputKind { command: "score", main: SIDECAR_FILE, files: &[SIDECAR_FILE, SCORES_FILE] };
/// `mask --out`: mask.json (and pruning-mask.safetensors, which mask.json names).
pub const MASK_OUTPUT: OutputKind = OutputKind { command: "mask", main: MASK_JSON, files: &[MASK_JSON] };

impl OutputKind {
    /// The output directory `arg` names: `arg` itself when it is a directory, its parent when
    /// it is one of the files the command writes.
    pub fn dir(&self, arg: &Path) -> anyhow::Result<PathBuf> {
        let meta = std::fs::metadata(arg).with_context(|| format!("{}: cannot read it", arg.display()))?;
        if meta.is_dir() {
            return Ok(arg.to_path_buf());
        }
        let named = arg.file_name().and_then(|n| n.to_str()).is_some_and(|n| self.files.contains(&n));
        if !named {
            bail!(
                "{}: expected a `{}` output directory or one of its files ({}), found another file",
                arg.display(),
                self.command,
                self.files.join(", ")
            );
        }
        Ok(match arg.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        })
    }

    /// The main file `arg` names: the file in the directory, or `arg` when it is that file.
    pub fn file(&self, arg: &Path) -> anyhow::Result<PathBuf> {
        let dir = self.dir(arg)?;
        let file = dir.join(self.main);
        if !file.is_file() {
            bail!("{}: expected the `{}` output file {}, found none", dir.display(), self.command, self.main);
        }
        Ok(file)
    }

    /// [`OutputKind::dir`] of every argument.
    pub fn dirs(&self, args: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
        args.iter().map(|arg| self.dir(arg)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_and_any_of_its_files_name_the_same_output() {
        let dir = tempfile::tempdir().unwrap();
        for name in [RECORDS_FILE, SUMMARY_FILE, RUN_FILE] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let records = dir.path().join(RECORDS_FILE);
        assert_eq!(EVAL_OUTPUT.file(dir.path()).unwrap(), records);
        assert_eq!(EVAL_OUTPUT.file(&dir.path().join(SUMMARY_FILE)).unwrap(), records);
        assert_eq!(EVAL_OUTPUT.dir(&records).unwrap(), dir.path());
        let err = SCORE_OUTPUT.file(dir.path()).unwrap_err().to_string();
        assert!(err.contains("expected the `score` output file scores.json, found none"), "{err}");
        let err = MASK_OUTPUT.dir(&records).unwrap_err().to_string();
        assert!(err.contains("expected a `mask` output directory or one of its files (mask.json)"), "{err}");
        let err = EVAL_OUTPUT.dir(&dir.path().join("missing")).unwrap_err().to_string();
        assert!(err.contains("cannot read it"), "{err}");
    }
}
