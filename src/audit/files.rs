//! The audit's outputs in OUT: audit.json (every cell and the settings), audit.csv (one row
//! per cell) and audit.html, each written atomically; the same audit gives the same bytes.

use std::path::Path;

use super::{Audit, AuditCell, AuditError};

/// Every cell, the settings, the names and the checkpoint, as pretty JSON.
pub const AUDIT_JSON: &str = "audit.json";
/// One row per cell.
pub const AUDIT_CSV: &str = "audit.csv";
/// The self-contained page: heatmaps, flagged cells with their prune commands, ranked table.
pub const AUDIT_HTML: &str = "audit.html";
/// The per-cell evaluation directories (CELLS_DIR/SCENARIO/VARIATION/CONTEXT).
pub const CELLS_DIR: &str = "cells";

/// The CSV header, in column order.
const CSV_COLUMNS: &[&str] = &[
    "cell",
    "scenario",
    "variation",
    "context",
    "worse",
    "answers",
    "parse_rate",
    "inlier_ratio",
    "n_majority",
    "n_minority",
    "mean_majority",
    "mean_minority",
    "smd",
    "smd_ci_low",
    "smd_ci_high",
    "against_minority",
    "worse_off",
    "p_value",
    "p_holm",
    "p_bh",
    "finding",
    "minimum_detectable_smd",
    "minimum_detectable_smd_corrected",
    "prune_command",
];

/// Writes audit.json, audit.csv and audit.html into `out`.
pub(super) fn write_outputs(out: &Path, audit: &Audit) -> Result<(), AuditError> {
    let mut json = serde_json::to_vec_pretty(audit).expect("an audit always serialises");
    json.push(b'\n');
    write(out, AUDIT_JSON, &json)?;
    write(out, AUDIT_CSV, csv(audit).as_bytes())?;
    write(out, AUDIT_HTML, super::page::render(audit)?.as_bytes())
}

fn write(out: &Path, name: &str, bytes: &[u8]) -> Result<(), AuditError> {
    let path = out.join(name);
    crate::fsutil::write_atomically(&path, bytes).map_err(|source| AuditError::Io { path, source })
}

/// The cells as CSV (RFC 4180 quoting; empty fields for undefined values).
pub(super) fn csv(audit: &Audit) -> String {
    let mut text = CSV_COLUMNS.join(",");
    text.push('\n');
    for cell in &audit.cells {
        text.push_str(&row(cell).iter().map(|f| quote(f)).collect::<Vec<_>>().join(","));
        text.push('\n');
    }
    text
}

fn row(c: &AuditCell) -> Vec<String> {
    let num = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    vec![
        c.id.clone(),
        c.scenario.clone(),
        c.variation.clone(),
        c.context.clone(),
        c.worse.as_str().to_string(),
        c.answers.to_string(),
        c.parse_rate.to_string(),
        c.inlier_ratio.to_string(),
        c.n_majority.to_string(),
        c.n_minority.to_string(),
        num(c.mean_majority),
        num(c.mean_minority),
        num(c.smd),
        num(c.smd_ci.map(|ci| ci.low)),
        num(c.smd_ci.map(|ci| ci.high)),
        num(c.against_minority),
        c.worse_off.map_or(String::new(), |g| format!("{g:?}").to_lowercase()),
        num(c.p_value),
        num(c.p_holm),
        num(c.p_bh),
        c.finding.as_str().to_string(),
        num(c.minimum_detectable_smd),
        num(c.minimum_detectable_smd_corrected),
        c.prune_command.clone().unwrap_or_default(),
    ]
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn fields_with_separators_are_quoted() {
        assert_eq!(quote("purchase/bicycle/low"), "purchase/bicycle/low");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
