//! Per-variation answer distributions of the two groups: a Tukey box plot of the inliers
//! and every parsed answer as a jittered point (outliers hollow and grey).

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{draw_category_labels, draw_error, padded, PlotError, PALETTE};
use crate::metrics::{quantile_sorted, AnswerRecord};
use crate::scenario::{Group, Scenario};

const SIZE: (u32, u32) = (640, 480);
const BOX_HALF_WIDTH: f64 = 0.18;
const GREY: RGBColor = RGBColor(150, 150, 150);

/// Draws `variation`'s answers in `records` (records of other variations are ignored) as an
/// SVG document: x = group (labelled with the scenario's group ids and counts), y = answer.
/// The view spans the inliers; parsed outliers beyond it are counted in the caption.
pub fn answer_distribution_svg(
    scenario: &Scenario,
    records: &[AnswerRecord],
    variation: &str,
) -> Result<String, PlotError> {
    let mine: Vec<&AnswerRecord> = records.iter().filter(|r| r.variation == variation).collect();
    let groups = [Group::Majority, Group::Minority].map(|g| GroupPoints::collect(&mine, g));
    let (low, high) =
        view(&groups).ok_or_else(|| PlotError::NoData(format!("no parsed answers for variation `{variation}`")))?;
    let hidden: usize = groups.iter().map(|g| g.outside(low, high)).sum();
    let labels = [
        format!("{} (majority), n = {}", scenario.majority.id, groups[0].inliers.len()),
        format!("{} (minority), n = {}", scenario.minority.id, groups[1].inliers.len()),
    ];
    let context = mine.first().map(|r| r.context.as_str()).unwrap_or("?");
    let mut caption = format!("{} / {variation} ({context} context): inlier answers by group", scenario.id);
    if hidden > 0 {
        caption.push_str(&format!(" [{hidden} outliers off scale]"));
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5f64..1.5f64, low..high)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(scenario.answer.as_str())
            .draw()
            .map_err(draw_error)?;
        draw_category_labels(&root, &chart, &labels, low)?;
        for (index, group) in groups.iter().enumerate() {
            draw_group(&mut chart, index as f64, group, PALETTE[index], (low, high))?;
        }
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

/// One group's parsed answers, split by inlier flag.
struct GroupPoints {
    inliers: Vec<f64>,
    outliers: Vec<f64>,
}

impl GroupPoints {
    fn collect(records: &[&AnswerRecord], group: Group) -> Self {
        let of = |inlier: bool| -> Vec<f64> {
            records.iter().filter(|r| r.group == group && r.inlier == inlier).filter_map(|r| r.value).collect()
        };
        Self { inliers: of(true), outliers: of(false) }
    }

    fn outside(&self, low: f64, high: f64) -> usize {
        self.outliers.iter().filter(|v| **v < low || **v > high).count()
    }
}

/// The y range: the inliers of both groups (or every parsed answer if there are no
/// inliers), padded by 8%.
fn view(groups: &[GroupPoints; 2]) -> Option<(f64, f64)> {
    let inliers: Vec<f64> = groups.iter().flat_map(|g| g.inliers.iter().copied()).collect();
    let values =
        if inliers.is_empty() { groups.iter().flat_map(|g| g.outliers.iter().copied()).collect() } else { inliers };
    let low = values.iter().copied().reduce(f64::min)?;
    let high = values.iter().copied().reduce(f64::max)?;
    Some(padded(low, high, 0.08))
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn draw_group(
    chart: &mut Chart,
    x: f64,
    group: &GroupPoints,
    colour: RGBColor,
    (low, high): (f64, f64),
) -> Result<(), PlotError> {
    let visible = |v: &&f64| **v >= low && **v <= high;
    let outliers = group.outliers.iter().filter(visible).enumerate();
    chart
        .draw_series(outliers.map(|(i, v)| Circle::new((x + jitter(i), *v), 3, GREY.stroke_width(1))))
        .map_err(draw_error)?;
    let inliers = group.inliers.iter().enumerate();
    chart
        .draw_series(inliers.map(|(i, v)| Circle::new((x + jitter(i), *v), 3, colour.mix(0.55).filled())))
        .map_err(draw_error)?;
    draw_box(chart, x, &group.inliers, colour)
}

/// Box from Q1 to Q3 with the median, whiskers to the most extreme values within
/// [Q1 - 1.5 IQR, Q3 + 1.5 IQR] (quantiles: linear interpolation, as in the metrics).
fn draw_box(chart: &mut Chart, x: f64, values: &[f64], colour: RGBColor) -> Result<(), PlotError> {
    let sorted = crate::metrics::sorted_values(values);
    let (Some(q1), Some(median), Some(q3)) =
        (quantile_sorted(&sorted, 0.25), quantile_sorted(&sorted, 0.5), quantile_sorted(&sorted, 0.75))
    else {
        return Ok(());
    };
    let (fence_low, fence_high) = (q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1));
    let whisker_low = sorted.iter().copied().find(|v| *v >= fence_low).unwrap_or(q1);
    let whisker_high = sorted.iter().rev().copied().find(|v| *v <= fence_high).unwrap_or(q3);
    let (left, right) = (x - BOX_HALF_WIDTH, x + BOX_HALF_WIDTH);
    let line = colour.stroke_width(2);
    let shapes = vec![
        PathElement::new(vec![(left, q1), (right, q1), (right, q3), (left, q3), (left, q1)], line),
        PathElement::new(vec![(left, median), (right, median)], colour.stroke_width(3)),
        PathElement::new(vec![(x, q3), (x, whisker_high)], line),
        PathElement::new(vec![(x, q1), (x, whisker_low)], line),
        PathElement::new(vec![(x - 0.08, whisker_high), (x + 0.08, whisker_high)], line),
        PathElement::new(vec![(x - 0.08, whisker_low), (x + 0.08, whisker_low)], line),
    ];
    chart.draw_series(shapes).map_err(draw_error)?;
    Ok(())
}

/// Deterministic horizontal offset of the `i`-th point (golden-ratio sequence in ±0.14).
fn jitter(i: usize) -> f64 {
    let fraction = (i as f64 * 0.618_033_988_749_895).fract();
    (fraction - 0.5) * 0.28
}
