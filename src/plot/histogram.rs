//! One variation's answer distributions of the two groups in several runs (e.g. before and
//! after pruning), side by side on the same x and y axes: the paper's figure 1 picture.
//! Each panel overlays the groups' histograms (share of the group's answers per bin) and
//! marks each group's mean with a vertical line.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{draw_error, padded, PlotError, PALETTE};
use crate::metrics::{mean, AnswerRecord, Population};
use crate::scenario::{Group, Scenario};

const PANEL: (u32, u32) = (560, 400);
const TITLE_HEIGHT: u32 = 34;
const BINS: usize = 24;

/// One run's records for [`answer_histograms_svg`]: its panel title and its answers.
#[derive(Debug, Clone, Copy)]
pub struct RecordsRun<'a> {
    /// Panel title, e.g. "baseline" or "pruned".
    pub label: &'a str,
    /// The run's records (other variations are ignored).
    pub records: &'a [AnswerRecord],
}

/// Draws `variation`'s answers of each run in `runs` as one panel per run, left to right,
/// all with the same bins and axes. `population` chooses the answers (inliers or every
/// parsed one), as in the summaries. Errors with [`PlotError::NoData`] when no run has an
/// answer of `variation` in that population.
pub fn answer_histograms_svg(
    scenario: &Scenario,
    runs: &[RecordsRun],
    variation: &str,
    population: Population,
) -> Result<String, PlotError> {
    let panels: Vec<[Vec<f64>; 2]> = runs
        .iter()
        .map(|run| [Group::Majority, Group::Minority].map(|g| values(run.records, variation, g, population)))
        .collect();
    let all: Vec<f64> = panels.iter().flatten().flatten().copied().collect();
    let (Some(low), Some(high)) = (all.iter().copied().reduce(f64::min), all.iter().copied().reduce(f64::max)) else {
        return Err(PlotError::NoData(format!(
            "no {} answers for variation `{variation}`",
            population_word(population)
        )));
    };
    let bins = Bins::new(low, high);
    let shares: Vec<[Vec<f64>; 2]> = panels.iter().map(|groups| groups.clone().map(|v| bins.shares(&v))).collect();
    let top = shares.iter().flatten().flatten().copied().fold(0.0, f64::max) * 1.3;
    let names = [&scenario.majority.id, &scenario.minority.id];
    let size = (PANEL.0 * runs.len().max(1) as u32, PANEL.1 + TITLE_HEIGHT);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let title = format!(
            "{} / {variation}: {} answers by group, same axes in every panel",
            scenario.id,
            population_word(population)
        );
        let root = root.titled(&title, ("sans-serif", 17)).map_err(draw_error)?;
        let areas = root.split_evenly((1, runs.len().max(1)));
        for ((area, run), (groups, group_shares)) in areas.iter().zip(runs).zip(panels.iter().zip(&shares)) {
            let panel = Panel { label: run.label, groups, shares: group_shares, names, bins: &bins, top };
            draw_panel(area, &panel, scenario.answer.as_str())?;
        }
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

fn population_word(population: Population) -> &'static str {
    match population {
        Population::Inliers => "inlier",
        Population::Parsed => "parsed",
    }
}

/// Parsed values of `group` in `variation`, restricted to inliers unless `population` says all.
fn values(records: &[AnswerRecord], variation: &str, group: Group, population: Population) -> Vec<f64> {
    records
        .iter()
        .filter(|r| r.variation == variation && r.group == group)
        .filter(|r| population == Population::Parsed || r.inlier)
        .filter_map(|r| r.value)
        .collect()
}

/// Equal-width bins over the data's span (padded a little so no value sits on an edge).
struct Bins {
    low: f64,
    width: f64,
}

impl Bins {
    fn new(low: f64, high: f64) -> Self {
        let (low, high) = padded(low, high, 0.02);
        Self { low, width: (high - low) / BINS as f64 }
    }

    fn edge(&self, index: usize) -> f64 {
        self.low + self.width * index as f64
    }

    /// Share of `values` in each bin (all zero for no values).
    fn shares(&self, values: &[f64]) -> Vec<f64> {
        let mut counts = vec![0usize; BINS];
        for v in values {
            let index = ((v - self.low) / self.width).floor().clamp(0.0, (BINS - 1) as f64) as usize;
            counts[index] += 1;
        }
        counts.into_iter().map(|c| if values.is_empty() { 0.0 } else { c as f64 / values.len() as f64 }).collect()
    }
}

/// What one run's panel shows.
struct Panel<'a> {
    label: &'a str,
    groups: &'a [Vec<f64>; 2],
    shares: &'a [Vec<f64>; 2],
    names: [&'a String; 2],
    bins: &'a Bins,
    top: f64,
}

fn draw_panel(area: &DrawingArea<SVGBackend, Shift>, panel: &Panel, x_desc: &str) -> Result<(), PlotError> {
    let caption = format!("{}: n = {} / {}", panel.label, panel.groups[0].len(), panel.groups[1].len());
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 15))
        .margin(10)
        .margin_right(18)
        .x_label_area_size(44)
        .y_label_area_size(58)
        .build_cartesian_2d(panel.bins.edge(0)..panel.bins.edge(BINS), 0.0..panel.top)
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(6)
        .x_label_formatter(&|x| tick(*x))
        .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
        .x_desc(x_desc)
        .y_desc("share of the group's answers")
        .draw()
        .map_err(draw_error)?;
    for (index, shares) in panel.shares.iter().enumerate() {
        let colour = PALETTE[index];
        let bars = shares.iter().enumerate().filter(|(_, s)| **s > 0.0).map(|(i, s)| {
            Rectangle::new([(panel.bins.edge(i), 0.0), (panel.bins.edge(i + 1), *s)], colour.mix(0.35).filled())
        });
        chart.draw_series(bars).map_err(draw_error)?;
        let outline = (0..BINS).flat_map(|i| [(panel.bins.edge(i), shares[i]), (panel.bins.edge(i + 1), shares[i])]);
        let label = match mean(&panel.groups[index]) {
            Some(m) => format!("{}: mean {}", panel.names[index], tick(m)),
            None => format!("{}: no answers", panel.names[index]),
        };
        chart
            .draw_series(std::iter::once(PathElement::new(outline.collect::<Vec<_>>(), colour.stroke_width(2))))
            .map_err(draw_error)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.mix(0.6).filled()));
        if let Some(m) = mean(&panel.groups[index]) {
            let line = PathElement::new(vec![(m, 0.0), (m, panel.top)], colour.stroke_width(3));
            chart.draw_series(std::iter::once(line)).map_err(draw_error)?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(draw_error)
}

/// Axis and legend number: whole numbers from 100 up, else up to 3 significant decimals.
fn tick(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}
