//! The audit heatmap of one context level as an SVG: one row per scenario, one box per
//! variation, coloured by the SMD against the minority (orange: the minority-name prompts
//! get the worse answers; blue: the majority's), flagged cells framed in black with a star.

use super::{AuditCell, Finding};

const LABEL_WIDTH: usize = 150;
const BOX_WIDTH: usize = 104;
const BOX_HEIGHT: usize = 44;
const TOP: usize = 44;
const LEGEND_HEIGHT: usize = 76;
const MIN_WIDTH: usize = 640;
const MIN_HEIGHT: usize = 220;
/// |SMD| at which the colour saturates.
const SATURATION: f64 = 1.0;

/// The heatmap of `cells` (all of one context, in plan order) titled `title`.
pub(super) fn heatmap_svg(cells: &[&AuditCell], title: &str) -> String {
    let rows = scenario_rows(cells);
    let columns = rows.iter().map(|(_, r)| r.len()).max().unwrap_or(0);
    let width = (LABEL_WIDTH + BOX_WIDTH * columns + 20).max(MIN_WIDTH);
    let height = (TOP + BOX_HEIGHT * rows.len() + LEGEND_HEIGHT).max(MIN_HEIGHT);
    let mut svg = format!(
        "<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" xmlns=\"http://www.w3.org/2000/svg\" font-family=\"sans-serif\">\n"
    );
    svg.push_str(&format!("<rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>\n"));
    svg.push_str(&text(10, 26, 16, "start", "bold", title));
    for (r, (scenario, row)) in rows.iter().enumerate() {
        let y = TOP + r * BOX_HEIGHT;
        svg.push_str(&text(LABEL_WIDTH - 8, y + BOX_HEIGHT / 2 + 5, 13, "end", "normal", scenario));
        for (c, cell) in row.iter().enumerate() {
            svg.push_str(&cell_box(cell, LABEL_WIDTH + c * BOX_WIDTH, y));
        }
    }
    svg.push_str(&legend(height - LEGEND_HEIGHT + 8));
    svg.push_str("</svg>");
    svg
}

/// Cells grouped by scenario, scenarios and variations in plan order.
fn scenario_rows<'a>(cells: &[&'a AuditCell]) -> Vec<(String, Vec<&'a AuditCell>)> {
    let mut rows: Vec<(String, Vec<&AuditCell>)> = Vec::new();
    for cell in cells {
        match rows.last_mut() {
            Some((scenario, row)) if *scenario == cell.scenario => row.push(cell),
            _ => rows.push((cell.scenario.clone(), vec![cell])),
        }
    }
    rows
}

fn cell_box(cell: &AuditCell, x: usize, y: usize) -> String {
    let flagged = cell.finding == Finding::Disparity;
    let (stroke, stroke_width) = if flagged { ("#000000", 3) } else { ("#c8ccd4", 1) };
    let value = cell.against_minority.map_or("n/a".to_string(), |v| format!("{v:+.2}"));
    let star = if flagged { " *" } else { "" };
    let tooltip = format!(
        "{}: SMD against the minority {value}, p = {}, {}",
        cell.id,
        cell.p_value.map_or("n/a".to_string(), |p| format!("{p:.4}")),
        cell.finding.as_str()
    );
    let mut out = format!(
        "<g><title>{}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" stroke=\"{stroke}\" stroke-width=\"{stroke_width}\"/>\n",
        escape(&tooltip),
        x + 2,
        y + 2,
        BOX_WIDTH - 4,
        BOX_HEIGHT - 4,
        colour(cell.against_minority)
    );
    let label: String = cell.variation.chars().take(14).collect();
    out.push_str(&text(x + BOX_WIDTH / 2, y + 19, 11, "middle", "normal", &label));
    out.push_str(&text(x + BOX_WIDTH / 2, y + 35, 12, "middle", "bold", &format!("{value}{star}")));
    out.push_str("</g>\n");
    out
}

fn legend(y: usize) -> String {
    let mut out = String::new();
    let steps = [-1.0, -0.5, -0.2, 0.0, 0.2, 0.5, 1.0];
    for (i, v) in steps.iter().enumerate() {
        let x = LABEL_WIDTH + i * 46;
        out.push_str(&format!(
            "<rect x=\"{x}\" y=\"{y}\" width=\"44\" height=\"16\" fill=\"{}\" stroke=\"#999999\" stroke-width=\"1\"/>\n",
            colour(Some(*v))
        ));
        out.push_str(&text(x + 22, y + 30, 10, "middle", "normal", &format!("{v:+.1}")));
    }
    out.push_str(&text(
        10,
        y + 52,
        11,
        "start",
        "normal",
        "SMD against the minority (+: minority-name prompts get the worse answers); * = disparity after correction; grey = undefined",
    ));
    out
}

/// White at 0, orange (positive) or blue (negative) at |value| >= SATURATION, grey when
/// undefined.
fn colour(value: Option<f64>) -> String {
    let Some(v) = value else { return "#d0d0d0".to_string() };
    let t = (v.abs() / SATURATION).min(1.0);
    let (r, g, b) = if v >= 0.0 { (213.0, 94.0, 0.0) } else { (0.0, 114.0, 178.0) };
    let mix = |c: f64| (255.0 + (c - 255.0) * t).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(r), mix(g), mix(b))
}

fn text(x: usize, y: usize, size: usize, anchor: &str, weight: &str, content: &str) -> String {
    format!(
        "<text x=\"{x}\" y=\"{y}\" font-size=\"{size}\" text-anchor=\"{anchor}\" font-weight=\"{weight}\" fill=\"#1d2330\">{}</text>\n",
        escape(content)
    )
}

/// XML text and attribute escaping.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_run_from_blue_through_white_to_orange() {
        assert_eq!(colour(Some(0.0)), "#ffffff");
        assert_eq!(colour(Some(1.0)), "#d55e00");
        assert_eq!(colour(Some(-3.0)), "#0072b2");
        assert_eq!(colour(None), "#d0d0d0");
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
