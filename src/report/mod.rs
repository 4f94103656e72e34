//! The HTML report of a pruning run (`OUT/report.html`): one self-contained page with
//! inline CSS and inline SVG plots, no scripts and no external references, showing the
//! base, the use case, the settings, bias before and after, and where the pruned weights
//! sit. The same input always gives the same bytes.

mod html;
mod view;

use crate::analyze::Distribution;
use crate::manifest::{BaseIdentity, UseCase, Verdict};
use crate::metrics::{AnswerRecord, Summary};
use crate::scenario::Scenario;
use crate::sweep::SweepPoint;

/// Everything the report shows.
pub struct ReportInput<'a> {
    /// Page title, e.g. "SmolLM2-135M-Instruct, purchase (bicycle)".
    pub title: String,
    /// The base checkpoint: name, files and root digest.
    pub base: &'a BaseIdentity,
    /// The use case the mask serves.
    pub use_case: &'a UseCase,
    /// Method and hyperparameters (the manifest's `method`), shown as a key/value table.
    pub settings: &'a serde_json::Value,
    /// The evaluated scenario (names its groups, answer kind and template).
    pub scenario: &'a Scenario,
    /// Evaluation summary of the base model.
    pub baseline: &'a Summary,
    /// The base model's answer records.
    pub baseline_records: &'a [AnswerRecord],
    /// Evaluation summary of the pruned model.
    pub pruned: &'a Summary,
    /// The pruned model's answer records.
    pub pruned_records: &'a [AnswerRecord],
    /// Variations the mask was built for; the summaries' other variations are held out.
    pub target_variations: &'a [String],
    /// Pruned fraction per layer x component.
    pub distribution: &'a Distribution,
    /// Entries zeroed.
    pub pruned_entries: u64,
    /// Entries of all prunable matrices.
    pub total_entries: u64,
    /// The (p, q) sweep the setting was chosen from, if there was one.
    pub sweep: Option<SweepView<'a>>,
    /// Creation time as text (the caller passes it, so the page stays reproducible).
    pub generated: String,
    /// The outcome on the confirmation data, shown as a banner at the top of the page.
    pub verdict: Option<&'a Verdict>,
    /// The gate's reading of the calibration baseline, in words, when it showed no
    /// significant disparity on the targets and the job went on anyway
    /// (`--allow-no-disparity`): the banner then leads with "nothing to remove".
    pub nothing_to_remove: Option<String>,
}

/// A (p, q) sweep and the point chosen from it.
pub struct SweepView<'a> {
    /// Every evaluated grid point.
    pub points: &'a [SweepPoint],
    /// The p values of the grid, in order.
    pub p_grid: &'a [f64],
    /// The q values of the grid, in order.
    pub q_grid: &'a [f64],
    /// The chosen (p, q).
    pub chosen: (f64, f64),
    /// How the point was chosen, in words.
    pub rule: String,
}

/// The report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A target variation has no statistics in either summary.
    #[error("target variation `{variation}` is in neither the baseline nor the pruned summary (they have: {known})")]
    UnknownVariation {
        /// The target variation.
        variation: String,
        /// The variations the summaries have, comma-separated.
        known: String,
    },
    /// A summary is of another scenario than the one given.
    #[error("the {which} summary is of scenario `{found}`, expected `{expected}`")]
    ScenarioMismatch {
        /// "baseline" or "pruned".
        which: &'static str,
        /// The scenario given.
        expected: String,
        /// The summary's scenario.
        found: String,
    },
    /// A plot failed to draw (other than for lack of data, which the page states instead).
    #[error("drawing the {plot} failed: {reason}")]
    Plot {
        /// Which plot.
        plot: String,
        /// What failed.
        reason: String,
    },
    /// The page template failed to render.
    #[error("rendering the report template failed: {0}")]
    Template(String),
}

/// Renders the report as one HTML document.
pub fn render_html(input: &ReportInput) -> Result<String, ReportError> {
    check(input)?;
    let page = view::page(input)?;
    html::render(&page)
}

fn check(input: &ReportInput) -> Result<(), ReportError> {
    for (which, summary) in [("baseline", input.baseline), ("pruned", input.pruned)] {
        if summary.scenario != input.scenario.id {
            return Err(ReportError::ScenarioMismatch {
                which,
                expected: input.scenario.id.clone(),
                found: summary.scenario.clone(),
            });
        }
    }
    let known = view::variation_ids(input);
    if let Some(missing) = input.target_variations.iter().find(|v| !known.contains(*v)) {
        return Err(ReportError::UnknownVariation {
            variation: missing.clone(),
            known: known.into_iter().collect::<Vec<_>>().join(", "),
        });
    }
    Ok(())
}
