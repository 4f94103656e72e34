//! SVG charts of evaluation results, drawn with plotters' SVG backend (no font files are
//! needed: the SVG holds `<text>` elements and the viewer renders them).
//!
//! - [`answer_distribution_svg`]: one variation's answers per group (box plot + points).
//! - [`smd_chart_svg`]: SMD per variation with bootstrap CIs, several runs overlaid.
//! - [`answer_histograms_svg`]: one variation's answers per group, one panel per run
//!   (before and after pruning) on shared axes.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

mod distribution;
mod histogram;
mod smd_chart;

pub use distribution::answer_distribution_svg;
pub use histogram::{answer_histograms_svg, RecordsRun};
pub use smd_chart::{smd_chart_labelled_svg, smd_chart_svg, SmdRun};

/// Errors of drawing a chart.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// There is nothing to draw.
    #[error("nothing to plot: {0}")]
    NoData(String),
    /// plotters failed while drawing.
    #[error("drawing failed: {0}")]
    Draw(String),
}

/// Converts any plotters drawing error into [`PlotError::Draw`].
pub(crate) fn draw_error<E: std::fmt::Display>(err: E) -> PlotError {
    PlotError::Draw(err.to_string())
}

/// Colours of successive groups or runs, colour-blind friendly (Okabe-Ito).
const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
];

/// `[low, high]` widened by `fraction` of its span on both sides (1 unit if it is empty).
fn padded(low: f64, high: f64, fraction: f64) -> (f64, f64) {
    let span = if high > low { high - low } else { low.abs().max(1.0) };
    (low - fraction * span, high + fraction * span)
}

/// Writes `labels[i]` centred under x = i of `chart`'s bottom edge (at y = `bottom`): a
/// category axis, which plotters' numeric axes do not offer.
fn draw_category_labels<'a>(
    root: &DrawingArea<SVGBackend<'a>, Shift>,
    chart: &ChartContext<'_, SVGBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    labels: &[String],
    bottom: f64,
) -> Result<(), PlotError> {
    let style = TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (index, label) in labels.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(index as f64, bottom));
        root.draw(&Text::new(label.as_str(), (x, y + 8), style.clone())).map_err(draw_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
