//! The bias audit (`biasprune audit`): every selected (scenario, variation, context) cell
//! evaluated with the cluster-aware statistics of `eval`, the name-permutation p-values
//! corrected for multiplicity (Holm and Benjamini-Hochberg), and the result written as
//! audit.json, audit.csv and a self-contained audit.html.
//!
//! Each cell is one resumable evaluation of one variation in OUT/cells/SCENARIO/VARIATION/
//! CONTEXT (run.json, records.jsonl, summary.json, exactly as `eval` writes them), so an
//! interrupted audit resumes cell by cell and chunk by chunk and gives the same bytes.

mod cell;
mod files;
mod heatmap;
mod names;
mod page;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::eval::{run_eval, CheckpointIdentity, ComputeIdentity, EvalError, EvalSpec, SUMMARY_FILE};
use crate::metrics::{Correction, InlierRule, SummarySettings};
use crate::model::{ChatSession, SamplingSettings};
use crate::progress::{NoProgress, Progress, Unit};
use crate::scenario::{ContextLevel, Scenario};

pub use cell::{AuditCell, Finding};
pub use files::{AUDIT_CSV, AUDIT_HTML, AUDIT_JSON, CELLS_DIR};
pub use names::{NameChoice, ScenarioNames};

/// The audit could not run or its outputs could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A cell's evaluation failed.
    #[error("cell {cell}: {source}")]
    Eval {
        /// The cell id (scenario/variation/context).
        cell: String,
        /// The evaluation's error.
        source: Box<EvalError>,
    },
    /// Nothing to audit: no selected scenario supports a selected context.
    #[error("no cell to audit: none of the scenarios {scenarios} supports the context(s) {contexts}")]
    NoCells {
        /// The selected scenarios, comma-separated.
        scenarios: String,
        /// The selected contexts, comma-separated.
        contexts: String,
    },
    /// The names could not be chosen.
    #[error("--names: {0}")]
    Names(String),
    /// The significance level is outside (0, 1).
    #[error("--alpha must lie strictly between 0 and 1, found {0}")]
    BadAlpha(f64),
    /// An operating-system error on a path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The page template failed to render.
    #[error("rendering audit.html failed: {0}")]
    Page(String),
}

/// What to audit and how.
#[derive(Debug, Clone)]
pub struct AuditSpec {
    /// The scenarios, each asking about the names chosen for it, sorted by id.
    pub scenarios: Vec<ScenarioNames>,
    /// Context levels, in the order low, high, numeric.
    pub contexts: Vec<ContextLevel>,
    /// Sampling settings of every cell.
    pub sampling: SamplingSettings,
    /// Inlier rule of every cell.
    pub inlier_rule: InlierRule,
    /// Statistics settings (bootstrap resamples, also the permutations of the name test).
    pub summary: SummarySettings,
    /// Family-wise (Holm) or false-discovery (BH) level at which a cell is flagged.
    pub alpha: f64,
    /// The correction that decides "disparity" or "none detected".
    pub correction: Correction,
    /// How the flagged cells' `biasprune prune` commands name the checkpoint and options.
    pub prune_command: PruneCommand,
}

/// The parts of a flagged cell's `biasprune prune` command that come from the audit's own
/// command line.
#[derive(Debug, Clone, Serialize)]
pub struct PruneCommand {
    /// The checkpoint as the audit was given it.
    pub checkpoint: String,
    /// Extra arguments every command carries (e.g. `--scenarios-dir DIR`, `--device cuda`).
    pub extra_args: Vec<String>,
}

/// One cell: a scenario's variation at a context level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellId {
    /// Scenario id.
    pub scenario: String,
    /// Variation id.
    pub variation: String,
    /// Context level.
    pub context: ContextLevel,
}

impl std::fmt::Display for CellId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.scenario, self.variation, self.context.as_str())
    }
}

impl CellId {
    /// The cell's evaluation directory under OUT.
    pub fn dir(&self, out: &Path) -> PathBuf {
        out.join(CELLS_DIR).join(&self.scenario).join(&self.variation).join(self.context.as_str())
    }
}

/// The finished audit: every cell, corrected, plus what was not applicable.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    /// The checkpoint audited: directory name and file digests.
    pub checkpoint: CheckpointIdentity,
    /// Where the model ran and in which dtype.
    pub compute: ComputeIdentity,
    /// Settings of the sampling, statistics and corrections.
    pub settings: AuditSettings,
    /// The names each scenario asked about.
    pub scenarios: Vec<ScenarioNames>,
    /// (scenario, context) pairs selected but not defined by the scenario, as "scenario/context".
    pub not_applicable: Vec<String>,
    /// Cells with a p-value (the family the corrections run over).
    pub tested: usize,
    /// Cells flagged "disparity" by the deciding correction.
    pub flagged: usize,
    /// Every cell in plan order: scenarios by id, variations in manifest order, contexts.
    pub cells: Vec<AuditCell>,
}

impl Audit {
    /// Cells by the deciding adjusted p (untested last), then raw p, then larger |SMD|,
    /// then plan order.
    pub fn ranked(&self) -> Vec<&AuditCell> {
        let key = |c: &AuditCell| {
            (c.adjusted(self.settings.correction).unwrap_or(f64::INFINITY), c.p_value.unwrap_or(f64::INFINITY))
        };
        let mut cells: Vec<(usize, &AuditCell)> = self.cells.iter().enumerate().collect();
        cells.sort_by(|(i, a), (j, b)| {
            let (ka, kb) = (key(a), key(b));
            ka.0.total_cmp(&kb.0)
                .then(ka.1.total_cmp(&kb.1))
                .then(b.smd.map_or(0.0, f64::abs).total_cmp(&a.smd.map_or(0.0, f64::abs)))
                .then(i.cmp(j))
        });
        cells.into_iter().map(|(_, c)| c).collect()
    }
}

/// The settings recorded in audit.json.
#[derive(Debug, Clone, Serialize)]
pub struct AuditSettings {
    /// Sampling settings of every cell.
    pub samples: usize,
    /// Longest answer in tokens.
    pub max_new_tokens: usize,
    /// Sampling temperature.
    pub temperature: f32,
    /// Nucleus mass.
    pub top_p: f32,
    /// Seed of the sampling streams and the bootstrap.
    pub seed: u64,
    /// Inlier rule.
    pub inlier_rule: InlierRule,
    /// Statistics settings.
    pub summary: SummarySettings,
    /// The level a cell's adjusted p must reach to be flagged.
    pub alpha: f64,
    /// The correction that decides (both adjusted p-values are reported).
    pub correction: Correction,
    /// The smallest p-value the name-permutation test can give with these settings
    /// (1 / (1 + permutations) when Monte Carlo); a cell cannot be flagged when alpha/m is
    /// below it.
    pub smallest_possible_p: f64,
}

/// The cells of `spec` in plan order (scenarios as given, variations in manifest order,
/// contexts low, high, numeric), and the (scenario, context) pairs it skips because the
/// scenario does not define that context, as "scenario/context".
pub fn plan_cells(spec: &AuditSpec) -> (Vec<CellId>, Vec<String>) {
    let mut cells = Vec::new();
    let mut skipped = Vec::new();
    for scenario in spec.scenarios.iter().map(|s| &s.scenario) {
        let (defined, missing): (Vec<ContextLevel>, Vec<ContextLevel>) =
            spec.contexts.iter().partition(|c| scenario.contexts.contains(c));
        skipped.extend(missing.iter().map(|c| format!("{}/{}", scenario.id, c.as_str())));
        for variation in &scenario.variations {
            for &context in &defined {
                cells.push(CellId { scenario: scenario.id.clone(), variation: variation.id.clone(), context });
            }
        }
    }
    (cells, skipped)
}

/// Runs (or resumes) the audit into `out` and writes audit.json, audit.csv and audit.html.
pub fn run_audit(
    session: &ChatSession,
    spec: &AuditSpec,
    checkpoint: CheckpointIdentity,
    out: &Path,
    progress: &dyn Progress,
) -> Result<Audit, AuditError> {
    if !(spec.alpha > 0.0 && spec.alpha < 1.0) {
        return Err(AuditError::BadAlpha(spec.alpha));
    }
    let (cells, not_applicable) = plan_cells(spec);
    if cells.is_empty() {
        let ids: Vec<&str> = spec.scenarios.iter().map(|s| s.scenario.id.as_str()).collect();
        let contexts: Vec<&str> = spec.contexts.iter().map(|c| c.as_str()).collect();
        return Err(AuditError::NoCells { scenarios: ids.join(", "), contexts: contexts.join(", ") });
    }
    let remaining: u64 =
        cells.iter().filter(|c| !c.dir(out).join(SUMMARY_FILE).exists()).map(|c| answers(spec, c)).sum();
    progress.start("auditing cells", remaining, Unit::Items);
    let forward = Forward(progress);
    let mut measured = Vec::with_capacity(cells.len());
    for (index, cell) in cells.iter().enumerate() {
        progress.stage(index + 1, cells.len(), &cell.to_string());
        let done = cell.dir(out).join(SUMMARY_FILE).exists();
        let sink: &dyn Progress = if done { &NoProgress } else { &forward };
        measured.push(evaluate_cell(session, spec, &checkpoint, cell, out, sink)?);
    }
    progress.finish();
    let audit =
        cell::assemble(spec, checkpoint, ComputeIdentity::of(session.model().options()), measured, not_applicable);
    files::write_outputs(out, &audit)?;
    Ok(audit)
}

/// Answers one cell asks for: names of both groups times samples.
fn answers(spec: &AuditSpec, cell: &CellId) -> u64 {
    let scenario = spec.scenarios.iter().find(|s| s.scenario.id == cell.scenario).map(|s| &s.scenario);
    let names = scenario.map_or(0, |s| s.majority.people.len() + s.minority.people.len());
    (names * spec.sampling.samples) as u64
}

fn evaluate_cell(
    session: &ChatSession,
    spec: &AuditSpec,
    checkpoint: &CheckpointIdentity,
    cell: &CellId,
    out: &Path,
    progress: &dyn Progress,
) -> Result<cell::Measured, AuditError> {
    let scenario: &Scenario =
        &spec.scenarios.iter().find(|s| s.scenario.id == cell.scenario).expect("cells come from the spec").scenario;
    let eval = EvalSpec {
        scenario: scenario.clone(),
        context: cell.context,
        variations: Some(vec![cell.variation.clone()]),
        sampling: spec.sampling,
        inlier_rule: spec.inlier_rule,
        summary: spec.summary,
        names: None,
    };
    let output = run_eval(session, &eval, checkpoint.clone(), None, &cell.dir(out), progress)
        .map_err(|source| AuditError::Eval { cell: cell.to_string(), source: Box::new(source) })?;
    let summary = output.summary.variations.get(&cell.variation).cloned();
    Ok(cell::Measured { id: cell.clone(), worse: scenario.worse, summary })
}

/// Passes a cell's answer counts on to the audit's one bar, ignoring the cell's own phases.
struct Forward<'a>(&'a dyn Progress);

impl Progress for Forward<'_> {
    fn start(&self, _label: &str, _total: u64, _unit: Unit) {}
    fn advance(&self, delta: u64) {
        self.0.advance(delta);
    }
    fn finish(&self) {}
}

#[cfg(test)]
mod tests;
