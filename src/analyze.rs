//! Where pruned weights sit: fractions per layer x component, per-layer shares, overlaps
//! between masks, and their SVG pictures (plotters, no fonts needed).

use plotters::coord::ranged1d::SegmentedCoord;
use plotters::coord::types::RangedCoordusize;
use plotters::prelude::*;
use plotters::style::text_anchor;
use serde::Serialize;

use crate::arch::{classify_tensor, Architecture, Component};
use crate::mask::{BitMask, TensorZeroing, ZeroPlan};
use crate::plot::{draw_error, PlotError};

/// How a mask's pruned entries spread over layers and components.
#[derive(Debug, Clone, Serialize)]
pub struct Distribution {
    /// Pruned entries per layer, per component (q, k, v, o, gate, up, down order).
    pub counts: Vec<[u64; 7]>,
    /// Pruned fraction of each layer's component matrix.
    pub fractions: Vec<[f64; 7]>,
    /// Share of all pruned entries that sit in each layer.
    pub layer_share: Vec<f64>,
    /// Pruned entries in all.
    pub total: u64,
}

/// Counts a resolved mask's entries per layer and component.
pub fn distribution(plan: &ZeroPlan, arch: &Architecture) -> Distribution {
    let mut counts = vec![[0u64; 7]; arch.num_layers];
    for (name, zeroing) in &plan.tensors {
        if let Some((layer, component)) = classify_tensor(name).filter(|(l, _)| *l < arch.num_layers) {
            counts[layer][component_index(component)] += zeroing.zeroed_count();
        }
    }
    let total: u64 = counts.iter().flatten().sum();
    let fractions = counts
        .iter()
        .map(|row| {
            let mut f = [0.0; 7];
            for (i, c) in Component::ALL.into_iter().enumerate() {
                f[i] = row[i] as f64 / arch.linear_params(c) as f64;
            }
            f
        })
        .collect();
    let layer_share =
        counts.iter().map(|row| if total == 0 { 0.0 } else { row.iter().sum::<u64>() as f64 / total as f64 }).collect();
    Distribution { counts, fractions, layer_share, total }
}

fn component_index(component: Component) -> usize {
    Component::ALL.iter().position(|&c| c == component).expect("listed")
}

/// Every entry a tensor's zeroing touches, as one bitmask.
pub fn materialize(zeroing: &TensorZeroing) -> BitMask {
    let mut bits = BitMask::new(zeroing.rows, zeroing.cols);
    let mut flags = vec![false; zeroing.cols];
    for r in 0..zeroing.rows {
        if zeroing.row_flags(r, &mut flags) > 0 {
            for (c, _) in flags.iter().enumerate().filter(|(_, &f)| f) {
                bits.set(r, c);
            }
        }
    }
    bits
}

/// |A ∩ B| / |A| for every ordered pair of resolved masks (1 on the diagonal; 0 when A is
/// empty).
pub fn overlap_matrix(plans: &[ZeroPlan]) -> Vec<Vec<f64>> {
    let materialized: Vec<std::collections::BTreeMap<&String, BitMask>> =
        plans.iter().map(|p| p.tensors.iter().map(|(n, z)| (n, materialize(z))).collect()).collect();
    let sizes: Vec<u64> = materialized.iter().map(|m| m.values().map(BitMask::count).sum()).collect();
    (0..plans.len())
        .map(|a| {
            (0..plans.len())
                .map(|b| {
                    if sizes[a] == 0 {
                        return 0.0;
                    }
                    let shared: u64 = materialized[a]
                        .iter()
                        .filter_map(|(name, x)| materialized[b].get(name).map(|y| and_count(x, y)))
                        .sum();
                    shared as f64 / sizes[a] as f64
                })
                .collect()
        })
        .collect()
}

fn and_count(a: &BitMask, b: &BitMask) -> u64 {
    a.as_bytes().iter().zip(b.as_bytes()).map(|(x, y)| (x & y).count_ones() as u64).sum()
}

/// `n` category slots; plotters' segmented ranges hold one slot more than the range.
fn segments(n: usize) -> SegmentedCoord<RangedCoordusize> {
    (0..n.saturating_sub(1)).into_segmented()
}

fn cell(x: usize, y: usize) -> [(SegmentValue<usize>, SegmentValue<usize>); 2] {
    [(SegmentValue::Exact(x), SegmentValue::Exact(y)), (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1))]
}

fn segment_label(value: &SegmentValue<usize>, name: impl Fn(usize) -> Option<String>) -> String {
    match value {
        SegmentValue::CenterOf(i) => name(*i).unwrap_or_default(),
        _ => String::new(),
    }
}

fn heat_color(value: f64, max: f64) -> RGBColor {
    let t = if max > 0.0 { (value / max).clamp(0.0, 1.0) } else { 0.0 };
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(lerp(247.0, 165.0), lerp(251.0, 15.0), lerp(255.0, 21.0))
}

/// SVG of the pruned-fraction heatmap (layers x components) beside the per-layer share;
/// [`PlotError::Draw`] when plotters fails.
pub fn heatmap_svg(dist: &Distribution, title: &str) -> Result<String, PlotError> {
    let layers = dist.fractions.len();
    let height = (120 + 14 * layers).max(320) as u32;
    let max = dist.fractions.iter().flatten().copied().fold(0.0, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let root = root.titled(title, ("sans-serif", 18)).map_err(draw_error)?;
        let (left, right) = root.split_horizontally(480);
        let mut chart = ChartBuilder::on(&left)
            .caption(format!("pruned fraction per matrix (max {:.3}%)", max * 100.0), ("sans-serif", 13))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(40)
            .build_cartesian_2d(segments(7), segments(layers))
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(7)
            .x_label_formatter(&|x| segment_label(x, |i| Component::ALL.get(i).map(|c| c.as_str().to_string())))
            .y_desc("layer")
            .y_labels(layers.min(16))
            .y_label_formatter(&|y| segment_label(y, |i| Some(i.to_string())))
            .draw()
            .map_err(draw_error)?;
        chart
            .draw_series(dist.fractions.iter().enumerate().flat_map(|(layer, row)| {
                row.iter().enumerate().map(move |(c, &f)| Rectangle::new(cell(c, layer), heat_color(f, max).filled()))
            }))
            .map_err(draw_error)?;
        let share_max = dist.layer_share.iter().copied().fold(0.0, f64::max).max(1e-9);
        let mut bars = ChartBuilder::on(&right)
            .caption("share of pruned entries per layer", ("sans-serif", 13))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(40)
            .build_cartesian_2d(0.0..share_max * 1.1, segments(layers))
            .map_err(draw_error)?;
        bars.configure_mesh()
            .disable_mesh()
            .x_labels(4)
            .x_label_formatter(&|x| format!("{:.0}%", x * 100.0))
            .y_labels(layers.min(16))
            .y_label_formatter(&|y| segment_label(y, |i| Some(i.to_string())))
            .draw()
            .map_err(draw_error)?;
        bars.draw_series(dist.layer_share.iter().enumerate().map(|(layer, &s)| {
            Rectangle::new(
                [(0.0, SegmentValue::Exact(layer)), (s, SegmentValue::Exact(layer + 1))],
                RGBColor(70, 110, 170).filled(),
            )
        }))
        .map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

/// SVG of an overlap matrix, each cell labelled with its value; [`PlotError::Draw`] when
/// plotters fails.
pub fn overlap_svg(names: &[String], matrix: &[Vec<f64>]) -> Result<String, PlotError> {
    let n = names.len();
    let size = (160 + 60 * n).max(300) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (size + 100, size)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("overlap |A ∩ B| / |A| (row A, column B)", ("sans-serif", 15))
            .margin(10)
            .x_label_area_size(60)
            .y_label_area_size(140)
            .build_cartesian_2d(segments(n), segments(n))
            .map_err(draw_error)?;
        let label = |i: &SegmentValue<usize>| segment_label(i, |i| names.get(i).cloned());
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(n)
            .y_labels(n)
            .x_label_formatter(&label)
            .y_label_formatter(&label)
            .draw()
            .map_err(draw_error)?;
        chart
            .draw_series(matrix.iter().enumerate().flat_map(|(a, row)| {
                row.iter().enumerate().map(move |(b, &v)| Rectangle::new(cell(b, a), heat_color(v, 1.0).filled()))
            }))
            .map_err(draw_error)?;
        chart
            .draw_series(matrix.iter().enumerate().flat_map(|(a, row)| {
                row.iter().enumerate().map(move |(b, &v)| {
                    let centred = TextStyle::from(("sans-serif", 14))
                        .pos(text_anchor::Pos::new(text_anchor::HPos::Center, text_anchor::VPos::Center));
                    Text::new(format!("{v:.2}"), (SegmentValue::CenterOf(b), SegmentValue::CenterOf(a)), centred)
                })
            }))
            .map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}
