//! SMD per variation with its bootstrap CI, one colour per run (e.g. baseline vs pruned).

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{draw_category_labels, draw_error, padded, PlotError, PALETTE};
use crate::metrics::{ConfidenceInterval, Summary};

const HEIGHT: u32 = 480;
const SPREAD: f64 = 0.5;

/// One run to draw: its legend label and its summary.
#[derive(Debug, Clone, Copy)]
pub struct SmdRun<'a> {
    /// Legend label, e.g. "baseline" or "pruned q=0.40 p=0.35".
    pub label: &'a str,
    /// The run's summary.
    pub summary: &'a Summary,
}

/// Draws an SVG with one column per variation (the union over runs, sorted by id); each
/// run is a dot at its SMD with an error bar from the CI's low to high bound, offset
/// side by side, plus a zero line. Variations without an SMD in a run are left out for it.
pub fn smd_chart_svg(runs: &[SmdRun]) -> Result<String, PlotError> {
    smd_chart_labelled_svg(runs, &|id| id.to_string())
}

/// [`smd_chart_svg`] with each variation's column labelled `label(id)`, e.g. to mark
/// held-out variations.
pub fn smd_chart_labelled_svg(runs: &[SmdRun], label: &dyn Fn(&str) -> String) -> Result<String, PlotError> {
    let variations = variation_ids(runs);
    let labels: Vec<String> = variations.iter().map(|id| label(id)).collect();
    let (low, high) =
        y_span(runs).ok_or_else(|| PlotError::NoData("no run has an SMD for any variation".to_string()))?;
    let width = (160 * variations.len() as u32 + 200).max(640);
    let caption = caption(runs);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..variations.len() as f64 - 0.5, low..high)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc("SMD (majority - minority)")
            .draw()
            .map_err(draw_error)?;
        draw_category_labels(&root, &chart, &labels, low)?;
        let zero = vec![(-0.5, 0.0), (variations.len() as f64 - 0.5, 0.0)];
        chart.draw_series(std::iter::once(PathElement::new(zero, BLACK.mix(0.6)))).map_err(draw_error)?;
        for (index, run) in runs.iter().enumerate() {
            draw_run(&mut chart, run, index, runs.len(), &variations)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

/// One run's mark in one variation's column.
struct Point {
    x: f64,
    smd: f64,
    ci: Option<ConfidenceInterval>,
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn draw_run(
    chart: &mut Chart,
    run: &SmdRun,
    index: usize,
    count: usize,
    variations: &[String],
) -> Result<(), PlotError> {
    let colour = PALETTE[index % PALETTE.len()];
    let offset = if count > 1 { (index as f64 / (count - 1) as f64 - 0.5) * SPREAD } else { 0.0 };
    let points: Vec<Point> = variations
        .iter()
        .enumerate()
        .filter_map(|(i, id)| {
            let v = run.summary.variations.get(id)?;
            Some(Point { x: i as f64 + offset, smd: v.smd?, ci: v.smd_ci })
        })
        .collect();
    let bars = points
        .iter()
        .filter_map(|p| p.ci.map(|ci| ErrorBar::new_vertical(p.x, ci.low, p.smd, ci.high, colour.stroke_width(2), 10)));
    chart.draw_series(bars).map_err(draw_error)?;
    chart
        .draw_series(points.iter().map(|p| Circle::new((p.x, p.smd), 5, colour.filled())))
        .map_err(draw_error)?
        .label(run.label.to_string())
        .legend(move |(x, y)| Circle::new((x + 10, y), 5, colour.filled()));
    Ok(())
}

fn variation_ids(runs: &[SmdRun]) -> Vec<String> {
    let ids: std::collections::BTreeSet<&String> = runs.iter().flat_map(|r| r.summary.variations.keys()).collect();
    ids.into_iter().cloned().collect()
}

/// Span of all SMDs, CI bounds and 0, padded by 10%.
fn y_span(runs: &[SmdRun]) -> Option<(f64, f64)> {
    let mut values = vec![0.0];
    let mut any = false;
    for v in runs.iter().flat_map(|r| r.summary.variations.values()) {
        if let Some(smd) = v.smd {
            any = true;
            values.push(smd);
            values.extend(v.smd_ci.iter().flat_map(|ci| [ci.low, ci.high]));
        }
    }
    let low = values.iter().copied().reduce(f64::min)?;
    let high = values.iter().copied().reduce(f64::max)?;
    any.then(|| padded(low, high, 0.1))
}

fn caption(runs: &[SmdRun]) -> String {
    let Some(first) = runs.first() else {
        return "SMD per variation".to_string();
    };
    let level = first.summary.settings.bootstrap.confidence * 100.0;
    format!(
        "{} ({} context): SMD per variation, {level}% bootstrap CI",
        first.summary.scenario,
        first.summary.context.as_str()
    )
}
