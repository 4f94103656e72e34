//! The stage runner: counts a job's stages, tells the progress display which one runs, logs
//! each one and keeps its record.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::progress::Progress;

/// How a stage ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum StageStatus {
    /// Computed in this run.
    Ran,
    /// Found complete in the work directory; nothing recomputed.
    Reused,
    /// Continued from a partial result (chunks of answers found complete).
    Resumed {
        /// Units found complete.
        done: usize,
        /// Units in all.
        total: usize,
    },
}

/// One stage's record, for logs and `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct StageRecord {
    /// What the stage did.
    pub name: String,
    /// How it ended.
    #[serde(flatten)]
    pub status: StageStatus,
    /// Wall time in this run.
    pub seconds: f64,
    /// Its work subdirectory, when it has one.
    pub dir: Option<PathBuf>,
}

/// Counts the stages, tells the progress display which one runs, and logs each one.
pub struct Stages<'a> {
    progress: &'a dyn Progress,
    planned: usize,
    current: Option<(String, Instant)>,
    pub(super) records: Vec<StageRecord>,
}

impl<'a> Stages<'a> {
    pub(super) fn new(progress: &'a dyn Progress, planned: usize) -> Self {
        Stages { progress, planned, current: None, records: Vec::new() }
    }

    /// Starts the next stage.
    pub fn begin(&mut self, name: &str) {
        let index = self.records.len() + 1;
        log::info!("stage {index}/{}: {name}", self.planned);
        self.progress.stage(index, self.planned, name);
        self.current = Some((name.to_string(), Instant::now()));
    }

    /// Ends the current stage: `ran` false means its result was found complete.
    pub fn end(&mut self, ran: bool, dir: &Path) {
        self.finish(if ran { StageStatus::Ran } else { StageStatus::Reused }, Some(dir));
    }

    /// Ends a stage that continues partial results.
    pub fn end_resumable(&mut self, done: usize, total: usize, dir: &Path) {
        let status = if done == 0 { StageStatus::Ran } else { StageStatus::Resumed { done, total } };
        self.finish(status, Some(dir));
    }

    /// Ends a stage that has no work subdirectory.
    pub fn end_plain(&mut self) {
        self.finish(StageStatus::Ran, None);
    }

    /// The sink for the current stage's own counts.
    pub fn progress(&self) -> &'a dyn Progress {
        self.progress
    }

    fn finish(&mut self, status: StageStatus, dir: Option<&Path>) {
        let (name, started) = self.current.take().expect("a stage was begun");
        let seconds = started.elapsed().as_secs_f64();
        match &status {
            StageStatus::Reused => {
                log::info!("{name}: reused {}", dir.map_or(String::new(), |d| d.display().to_string()))
            }
            StageStatus::Resumed { done, total } => {
                log::info!("{name}: resumed ({done} of {total} chunks were complete), {seconds:.1} s")
            }
            StageStatus::Ran => log::info!("{name}: done in {seconds:.1} s"),
        }
        self.records.push(StageRecord { name, status, seconds, dir: dir.map(Path::to_path_buf) });
    }
}
