//! audit.html: the audit turned into the page template's context (numbers formatted here)
//! and rendered with HTML auto-escaping; only the heatmap SVGs, which escape their own
//! text, are inserted as markup.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use super::heatmap::heatmap_svg;
use super::{Audit, AuditCell, AuditError, Finding};
use crate::metrics::Correction;
use crate::scenario::ContextLevel;

const TEMPLATE: &str = include_str!("page.html");

/// The template's whole context.
#[derive(Serialize)]
struct Page {
    title: String,
    tool: String,
    checkpoint: String,
    checkpoint_files: usize,
    compute: String,
    cells: usize,
    tested: usize,
    flagged: usize,
    correction: &'static str,
    correction_text: String,
    alpha: String,
    corrected_alpha: String,
    smallest_p_warning: Option<String>,
    panels: Vec<Panel>,
    flagged_cells: Vec<Flagged>,
    rows: Vec<Row>,
    not_applicable: String,
    settings: Vec<(String, String)>,
}

#[derive(Serialize)]
struct Panel {
    svg: String,
    caption: String,
}

#[derive(Serialize)]
struct Flagged {
    id: String,
    against: String,
    ci: String,
    p: String,
    p_adjusted: String,
    worse_off: String,
    worse: &'static str,
    command: String,
}

#[derive(Serialize)]
struct Row {
    rank: usize,
    id: String,
    worse: &'static str,
    answers: usize,
    n: String,
    smd: String,
    against: String,
    p: String,
    p_holm: String,
    p_bh: String,
    finding: String,
    disparity: bool,
    mdes: String,
    parse_rate: String,
    inlier_ratio: String,
}

/// Renders audit.html.
pub(super) fn render(audit: &Audit) -> Result<String, AuditError> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let error = |e: minijinja::Error| AuditError::Page(format!("{e:#}"));
    env.add_template("audit.html", TEMPLATE).map_err(error)?;
    env.get_template("audit.html").map_err(error)?.render(page(audit)).map_err(error)
}

fn page(audit: &Audit) -> Page {
    let s = &audit.settings;
    let corrected_alpha = s.alpha / audit.tested.max(1) as f64;
    let smallest_p_warning = (s.smallest_possible_p > corrected_alpha).then(|| {
        format!(
            "with {} permutations the name test cannot give p below {}, above the corrected level {}; rerun with a larger --bootstrap to let a single cell be flagged",
            s.summary.bootstrap.resamples,
            sci(s.smallest_possible_p),
            sci(corrected_alpha)
        )
    });
    Page {
        title: format!("Bias audit of {}", audit.checkpoint.name),
        tool: format!("biasprune {}", env!("CARGO_PKG_VERSION")),
        checkpoint: audit.checkpoint.name.clone(),
        checkpoint_files: audit.checkpoint.files.len(),
        compute: format!("{} ({})", audit.compute.device, audit.compute.dtype),
        cells: audit.cells.len(),
        tested: audit.tested,
        flagged: audit.flagged,
        correction: correction_name(s.correction),
        correction_text: correction_text(s.correction, s.alpha),
        alpha: s.alpha.to_string(),
        corrected_alpha: sci(corrected_alpha),
        smallest_p_warning,
        panels: panels(audit),
        flagged_cells: audit
            .cells
            .iter()
            .filter(|c| c.finding == Finding::Disparity)
            .map(|c| flagged(c, s.correction))
            .collect(),
        rows: audit.ranked().into_iter().enumerate().map(|(i, c)| row(i + 1, c)).collect(),
        not_applicable: audit.not_applicable.join(", "),
        settings: settings(audit),
    }
}

fn correction_name(correction: Correction) -> &'static str {
    match correction {
        Correction::Holm => "Holm",
        Correction::BenjaminiHochberg => "Benjamini-Hochberg",
    }
}

fn correction_text(correction: Correction, alpha: f64) -> String {
    match correction {
        Correction::Holm => format!("A cell shows a disparity when its Holm-adjusted p is at most {alpha}: the chance that any flagged cell is a false alarm is at most {alpha} (family-wise error rate over all tested cells). The Benjamini-Hochberg column controls the expected share of false alarms among the flagged cells instead, and flags at least as many."),
        Correction::BenjaminiHochberg => format!("A cell shows a disparity when its Benjamini-Hochberg-adjusted p is at most {alpha}: on average at most {alpha} of the flagged cells are false alarms (false discovery rate over all tested cells). The Holm column bounds the chance of any false alarm instead."),
    }
}

fn panels(audit: &Audit) -> Vec<Panel> {
    [ContextLevel::Low, ContextLevel::High, ContextLevel::Numeric]
        .into_iter()
        .filter_map(|context| {
            let cells: Vec<&AuditCell> = audit.cells.iter().filter(|c| c.context == context.as_str()).collect();
            (!cells.is_empty()).then(|| Panel {
                svg: heatmap_svg(&cells, &format!("{} context", context.as_str())),
                caption: format!("{} context: SMD against the minority per scenario (rows) and variation (boxes); starred, black-framed boxes show a disparity after correction.", context.as_str()),
            })
        })
        .collect()
}

fn flagged(c: &AuditCell, correction: Correction) -> Flagged {
    let adjusted = c.adjusted(correction);
    Flagged {
        id: c.id.clone(),
        against: signed(c.against_minority),
        ci: match (c.smd, c.smd_ci) {
            (Some(smd), Some(ci)) => format!("SMD {smd:+.3}, 95% CI [{:+.3}, {:+.3}]", ci.low, ci.high),
            (Some(smd), None) => format!("SMD {smd:+.3}, no CI"),
            (None, _) => "SMD undefined".into(),
        },
        p: p(c.p_value),
        p_adjusted: p(adjusted),
        worse_off: c.worse_off.map_or("neither".into(), |g| format!("{g:?}").to_lowercase()),
        worse: c.worse.as_str(),
        command: c.prune_command.clone().unwrap_or_default(),
    }
}

fn row(rank: usize, c: &AuditCell) -> Row {
    let finding = match c.finding {
        Finding::NoneDetected => format!(
            "none detected (|SMD| \u{2265} {} would show)",
            c.minimum_detectable_smd_corrected.map_or("n/a".into(), |m| format!("{m:.2}"))
        ),
        other => other.as_str().to_string(),
    };
    Row {
        rank,
        id: c.id.clone(),
        worse: c.worse.as_str(),
        answers: c.answers,
        n: format!("{} / {}", c.n_majority, c.n_minority),
        smd: match (c.smd, c.smd_ci) {
            (Some(s), Some(ci)) => format!("{s:+.3} [{:+.3}, {:+.3}]", ci.low, ci.high),
            (Some(s), None) => format!("{s:+.3}"),
            (None, _) => "undefined".into(),
        },
        against: signed(c.against_minority),
        p: p(c.p_value),
        p_holm: p(c.p_holm),
        p_bh: p(c.p_bh),
        finding,
        disparity: c.finding == Finding::Disparity,
        mdes: match (c.minimum_detectable_smd_corrected, c.minimum_detectable_smd) {
            (Some(a), Some(b)) => format!("{a:.2} / {b:.2}"),
            _ => "n/a".into(),
        },
        parse_rate: format!("{:.1}%", c.parse_rate * 100.0),
        inlier_ratio: format!("{:.1}%", c.inlier_ratio * 100.0),
    }
}

fn settings(audit: &Audit) -> Vec<(String, String)> {
    let s = &audit.settings;
    let mut out = vec![
        ("samples per prompt".to_string(), s.samples.to_string()),
        ("seed".to_string(), s.seed.to_string()),
        ("temperature / top-p".to_string(), format!("{} / {}", s.temperature, s.top_p)),
        ("longest answer (tokens)".to_string(), s.max_new_tokens.to_string()),
        ("inlier rule".to_string(), s.inlier_rule.describe()),
        ("bootstrap resamples = name-test permutations".to_string(), s.summary.bootstrap.resamples.to_string()),
        ("smallest possible p (Monte Carlo)".to_string(), sci(s.smallest_possible_p)),
        ("deciding correction".to_string(), format!("{} at alpha = {}", correction_name(s.correction), s.alpha)),
    ];
    for names in &audit.scenarios {
        out.push((
            format!("names of {}", names.id),
            format!(
                "{} ({} majority, {} minority): {} | {}",
                names.names_list,
                names.majority.len(),
                names.minority.len(),
                names.majority.join(", "),
                names.minority.join(", ")
            ),
        ));
    }
    out
}

fn signed(value: Option<f64>) -> String {
    value.map_or("n/a".into(), |v| format!("{v:+.3}"))
}

fn p(value: Option<f64>) -> String {
    value.map_or("n/a".into(), |v| if v < 0.001 { sci(v) } else { format!("{v:.4}") })
}

fn sci(value: f64) -> String {
    format!("{value:.2e}")
}
