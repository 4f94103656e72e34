//! The (p, q) sweep: for each grid point build the mask, apply it in memory, evaluate, and
//! tabulate mean |SMD| and inlier ratio so a deployer can pick the point.

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::text_anchor;
use serde::Serialize;

use crate::arch::Architecture;
use crate::checkpoint::Checkpoint;
use crate::eval::{run_eval, CheckpointIdentity, EvalError, EvalSpec};
use crate::mask::{build_regime_mask, load_masked, save_mask, DifferenceParams, MaskedLoadError, Regime, RegimeError};
use crate::metrics::AnswerRecord;
use crate::model::LoadOptions;
use crate::plot::{draw_error, PlotError};
use crate::progress::Progress;
use crate::score::ScoreSet;

/// A sweep could not run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A mask could not be built.
    #[error(transparent)]
    Regime(#[from] RegimeError),
    /// A point's mask could not be applied in memory (read, resolved, or the model loaded).
    #[error(transparent)]
    Masked(#[from] MaskedLoadError),
    /// Evaluation failed.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// Writing a mask, table or plot failed.
    #[error("{}: {reason}", path.display())]
    Output {
        /// The path.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// One grid point's outcome.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SweepPoint {
    /// Fraction of the protected group's top entries spared.
    pub p: f64,
    /// Fraction of the pruned group's top entries selected.
    pub q: f64,
    /// Entries the mask zeroes.
    pub pruned_entries: u64,
    /// Mean |SMD| over the evaluated variations.
    pub mean_abs_smd: Option<f64>,
    /// Overall inlier ratio.
    pub inlier_ratio: f64,
    /// Overall parse rate.
    pub parse_rate: f64,
    /// Directory holding the point's mask and evaluation.
    pub dir: PathBuf,
}

/// What the sweep needs besides the grid.
pub struct SweepInputs<'a> {
    /// The base checkpoint.
    pub ckpt: &'a Checkpoint,
    /// Its identity for the evaluation records.
    pub identity: CheckpointIdentity,
    /// Minority score sets.
    pub minority: &'a [ScoreSet],
    /// Majority score sets.
    pub majority: &'a [ScoreSet],
    /// Regime of the masks.
    pub regime: Regime,
    /// Keep entries selected by at least this many pair masks (default: all).
    pub min_count: Option<usize>,
    /// Mask parameters other than p and q.
    pub params: DifferenceParams,
    /// The evaluation of every point.
    pub eval: EvalSpec,
    /// Device and dtype the pruned models run in.
    pub load: LoadOptions,
    /// Baseline records fencing inliers, with their sha256.
    pub baseline: Option<(&'a [AnswerRecord], String)>,
}

/// Runs every (p, q) of the grid into `out/p{p}-q{q}/` (mask/ and eval/); resumable like
/// `eval`, since each point's evaluation is.
pub fn run_sweep(
    inputs: &SweepInputs<'_>,
    p_grid: &[f64],
    q_grid: &[f64],
    out: &Path,
    progress: &dyn Progress,
) -> Result<Vec<SweepPoint>, SweepError> {
    let arch = Architecture::of_checkpoint(inputs.ckpt).map_err(|e| output_error(inputs.ckpt.dir(), e))?;
    let mut points = Vec::new();
    for &q in q_grid {
        for &p in p_grid {
            let dir = out.join(format!("p{p}-q{q}"));
            let params = DifferenceParams { p, q, ..inputs.params.clone() };
            let mask =
                build_regime_mask(inputs.minority, inputs.majority, &arch, &params, &inputs.regime, inputs.min_count)?;
            save_mask(&dir.join("mask"), &mask).map_err(|e| output_error(&dir, e))?;
            let masked = load_masked(inputs.ckpt, &dir.join("mask"), inputs.load.clone())?;
            let mut identity = inputs.identity.clone();
            identity.masks_applied.push(masked.mask_sha256);
            let baseline = inputs.baseline.as_ref().map(|(r, d)| (*r, d.clone()));
            let output = run_eval(&masked.session, &inputs.eval, identity, baseline, &dir.join("eval"), progress)?;
            points.push(SweepPoint {
                p,
                q,
                pruned_entries: masked.zeroed_entries,
                mean_abs_smd: output.summary.overall.mean_abs_smd,
                inlier_ratio: output.summary.overall.inlier_ratio,
                parse_rate: output.summary.overall.parse_rate,
                dir,
            });
        }
    }
    Ok(points)
}

fn output_error(path: &Path, e: impl std::fmt::Display) -> SweepError {
    SweepError::Output { path: path.to_path_buf(), reason: e.to_string() }
}

/// The grid as a text table.
pub fn sweep_table(points: &[SweepPoint]) -> String {
    let mut text =
        format!("{:>6} {:>6} {:>14} {:>12} {:>8} {:>8}\n", "p", "q", "pruned", "mean |SMD|", "inliers", "parsed");
    for pt in points {
        let smd = pt.mean_abs_smd.map_or("n/a".to_string(), |v| format!("{v:.3}"));
        text.push_str(&format!(
            "{:>6} {:>6} {:>14} {:>12} {:>7.1}% {:>7.1}%\n",
            pt.p,
            pt.q,
            pt.pruned_entries,
            smd,
            pt.inlier_ratio * 100.0,
            pt.parse_rate * 100.0
        ));
    }
    text
}

/// SVG of mean |SMD| and inlier ratio over the (p, q) grid, one annotated cell per point;
/// [`PlotError::Draw`] when plotters fails.
pub fn sweep_svg(points: &[SweepPoint], p_grid: &[f64], q_grid: &[f64]) -> Result<String, PlotError> {
    sweep_marked_svg(points, p_grid, q_grid, None)
}

/// [`sweep_svg`] with the `chosen` (p, q) cell outlined in both grids.
pub fn sweep_marked_svg(
    points: &[SweepPoint],
    p_grid: &[f64],
    q_grid: &[f64],
    chosen: Option<(f64, f64)>,
) -> Result<String, PlotError> {
    let mut svg = String::new();
    let (w, h) = (420 + 90 * p_grid.len() as u32, 160 + 60 * q_grid.len() as u32);
    {
        let root = SVGBackend::with_string(&mut svg, (w * 2, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let (left, right) = root.split_horizontally(w);
        let max_smd = points.iter().filter_map(|p| p.mean_abs_smd).fold(0.0, f64::max).max(1e-9);
        let grid = Grid { points, p_grid, q_grid, chosen };
        draw_grid(&left, "mean |SMD| (lower is less disparity)", &grid, |pt| {
            pt.mean_abs_smd.map(|v| (v / max_smd, format!("{v:.3}")))
        })?;
        draw_grid(&right, "inlier ratio (higher is less damage)", &grid, |pt| {
            Some((1.0 - pt.inlier_ratio, format!("{:.1}%", pt.inlier_ratio * 100.0)))
        })?;
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

type Cell = Option<(f64, String)>;

/// The points of a sweep on their grid, with the chosen (p, q) if any.
struct Grid<'a> {
    points: &'a [SweepPoint],
    p_grid: &'a [f64],
    q_grid: &'a [f64],
    chosen: Option<(f64, f64)>,
}

fn draw_grid<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    grid: &Grid,
    cell: impl Fn(&SweepPoint) -> Cell,
) -> Result<(), PlotError> {
    let Grid { points, p_grid, q_grid, chosen } = *grid;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..p_grid.len() as f64, 0f64..q_grid.len() as f64)
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("p (protected fraction)")
        .y_desc("q (pruned fraction)")
        .x_labels(p_grid.len() * 2 + 1)
        .y_labels(q_grid.len() * 2 + 1)
        .x_label_formatter(&|x| label_at(*x, p_grid))
        .y_label_formatter(&|y| label_at(*y, q_grid))
        .draw()
        .map_err(draw_error)?;
    for pt in points {
        let (Some(i), Some(j)) = (position(p_grid, pt.p), position(q_grid, pt.q)) else { continue };
        let (shade, text) = cell(pt).unwrap_or((0.0, "n/a".into()));
        let t = shade.clamp(0.0, 1.0);
        let color = RGBColor((247.0 - 82.0 * t) as u8, (251.0 - 236.0 * t) as u8, (255.0 - 234.0 * t) as u8);
        let (x, y) = (i as f64, j as f64);
        chart.draw_series([Rectangle::new([(x, y), (x + 1.0, y + 1.0)], color.filled())]).map_err(draw_error)?;
        let style = TextStyle::from(("sans-serif", 14))
            .pos(text_anchor::Pos::new(text_anchor::HPos::Center, text_anchor::VPos::Center));
        chart.draw_series([Text::new(text, (x + 0.5, y + 0.5), style)]).map_err(draw_error)?;
    }
    if let Some((Some(i), Some(j))) = chosen.map(|(p, q)| (position(p_grid, p), position(q_grid, q))) {
        let (x, y) = (i as f64, j as f64);
        let (x0, y0, x1, y1) = (x + 0.03, y + 0.03, x + 0.97, y + 0.97);
        let corners = vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)];
        let frame = PathElement::new(corners, BLACK.stroke_width(3));
        chart.draw_series([frame]).map_err(draw_error)?;
    }
    Ok(())
}

fn position(grid: &[f64], value: f64) -> Option<usize> {
    grid.iter().position(|&g| g == value)
}

fn label_at(coordinate: f64, grid: &[f64]) -> String {
    let centre = coordinate - 0.5;
    if (centre - centre.round()).abs() < 1e-9 && centre >= 0.0 {
        grid.get(centre.round() as usize).map(|v| v.to_string()).unwrap_or_default()
    } else {
        String::new()
    }
}
