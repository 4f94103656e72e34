//! What the page shows, as formatted text and SVG strings: the report input turned into
//! the template's context. Numbers are formatted here so the template only lays them out.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{ReportError, ReportInput, SweepView};
use crate::metrics::{GroupStats, Population, Summary, VariationSummary};
use crate::plot::{answer_histograms_svg, smd_chart_labelled_svg, PlotError, RecordsRun, SmdRun};

/// The template's whole context.
#[derive(Serialize)]
pub(super) struct Page {
    title: String,
    generated: String,
    tool: String,
    base_name: String,
    root_digest: String,
    base_files: usize,
    use_case: Vec<(String, String)>,
    template_text: String,
    settings: Vec<(String, String)>,
    headline: Vec<Headline>,
    population: &'static str,
    confidence: String,
    majority: String,
    minority: String,
    smd_chart: Figure,
    variations: Vec<VariationView>,
    heatmap: Figure,
    pruned_text: String,
    sweep: Option<SweepSection>,
    verdict: VerdictView,
}

/// The verdict banner: outcome first, then each target's paired change.
#[derive(Serialize)]
struct VerdictView {
    outcome: String,
    class: &'static str,
    headline: String,
    reason: Option<String>,
    released_anyway: bool,
    targets: Vec<(String, String)>,
}

/// One headline number before and after pruning.
#[derive(Serialize)]
struct Headline {
    label: String,
    before: String,
    after: String,
}

/// An SVG plot, or the reason there is none.
#[derive(Serialize)]
struct Figure {
    svg: Option<String>,
    note: String,
}

/// One variation's section.
#[derive(Serialize)]
struct VariationView {
    id: String,
    held_out: bool,
    histograms: Figure,
    rows: Vec<StatsRow>,
}

/// One statistic of one variation, baseline beside pruned (a tall table of three columns
/// fits a narrow window where one column per statistic would not).
#[derive(Serialize)]
struct StatsRow {
    label: String,
    baseline: String,
    pruned: String,
}

/// The statistics shown per variation and run, in table order.
const STATISTICS: usize = 12;

/// The sweep's plot, chosen point and table.
#[derive(Serialize)]
struct SweepSection {
    figure: Figure,
    chosen: String,
    rule: String,
    rows: Vec<SweepRow>,
}

#[derive(Serialize)]
struct SweepRow {
    chosen: bool,
    cells: Vec<String>,
}

/// Every variation either summary has, sorted by id.
pub(super) fn variation_ids(input: &ReportInput) -> BTreeSet<String> {
    input.baseline.variations.keys().chain(input.pruned.variations.keys()).cloned().collect()
}

/// Builds the page's context, drawing every plot.
pub(super) fn page(input: &ReportInput) -> Result<Page, ReportError> {
    let ids = variation_ids(input);
    let is_target = |id: &str| input.target_variations.iter().any(|t| t == id);
    let runs =
        [SmdRun { label: "baseline", summary: input.baseline }, SmdRun { label: "pruned", summary: input.pruned }];
    let smd_chart = figure("SMD chart", smd_chart_labelled_svg(&runs, &|id| variation_label(id, is_target(id))))?;
    let labels = statistic_labels(input);
    let variations = ids
        .iter()
        .map(|id| variation_view(input, id, !is_target(id), &labels))
        .collect::<Result<Vec<_>, ReportError>>()?;
    Ok(Page {
        title: input.title.clone(),
        generated: input.generated.clone(),
        tool: format!("{} {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")),
        base_name: input.base.name.clone(),
        root_digest: input.base.root_digest.clone(),
        base_files: input.base.files.len(),
        use_case: use_case_rows(input, &ids),
        template_text: input.scenario.template_text.clone(),
        settings: settings_rows(input.settings),
        headline: headline(input, &ids),
        population: population_text(input.baseline.settings.population),
        confidence: format!("{}%", input.baseline.settings.bootstrap.confidence * 100.0),
        majority: input.scenario.majority.id.clone(),
        minority: input.scenario.minority.id.clone(),
        smd_chart,
        variations,
        heatmap: heatmap(input)?,
        pruned_text: pruned_text(input.pruned_entries, input.total_entries),
        sweep: input.sweep.as_ref().map(sweep_section).transpose()?,
        verdict: verdict_view(input.verdict, input.nothing_to_remove.as_deref()),
    })
}

/// The banner: the verdict's outcome, led by "nothing to remove" when the gate found no
/// significant disparity on the calibration data, or "not judged" when there is no verdict.
fn verdict_view(verdict: Option<&crate::manifest::Verdict>, nothing_to_remove: Option<&str>) -> VerdictView {
    let nothing = |reading: &str| {
        format!("the base showed no significant disparity on the calibration data ({reading}), so there was nothing to remove")
    };
    match (verdict, nothing_to_remove) {
        (Some(verdict), None) => judged_view(verdict),
        (Some(verdict), Some(reading)) => {
            let judged = judged_view(verdict);
            VerdictView {
                outcome: format!("nothing to remove (pruned anyway: {})", judged.outcome),
                class: "nothing",
                headline: format!(
                    "{}; the job went on as --allow-no-disparity asked, and pruning then gave the outcome {}: {}",
                    nothing(reading),
                    judged.outcome,
                    judged.headline
                ),
                ..judged
            }
        }
        (None, Some(reading)) => VerdictView {
            outcome: "nothing to remove".into(),
            class: "nothing",
            headline: format!("{}; no confirmation data was compared", nothing(reading)),
            reason: None,
            released_anyway: false,
            targets: Vec::new(),
        },
        (None, None) => VerdictView {
            outcome: "not judged".into(),
            class: "unjudged",
            headline: "this report carries no verdict: no confirmation data compared the base and the pruned model"
                .into(),
            reason: None,
            released_anyway: false,
            targets: Vec::new(),
        },
    }
}

fn judged_view(verdict: &crate::manifest::Verdict) -> VerdictView {
    use crate::manifest::Outcome;
    let targets = verdict
        .targets
        .iter()
        .map(|(id, d)| {
            let interval = |ci: Option<(f64, f64)>| {
                ci.map_or(String::new(), |(lo, hi)| format!(" [{}, {}]", number(lo), number(hi)))
            };
            let change = format!(
                "SMD {}{} \u{2192} {}; \u{0394}SMD {}{}: {}",
                optional(d.baseline, number),
                interval(d.baseline_ci),
                optional(d.pruned, number),
                optional(d.delta, number),
                interval(d.delta_ci),
                d.outcome
            );
            (id.clone(), change)
        })
        .collect();
    VerdictView {
        outcome: verdict.outcome.to_string(),
        class: match verdict.outcome {
            Outcome::Reduced => "reduced",
            Outcome::NotReduced => "not-reduced",
            Outcome::Harmed => "harmed",
        },
        headline: verdict.outcome.headline().to_string(),
        reason: Some(verdict.reason.clone()),
        released_anyway: verdict.released_anyway,
        targets,
    }
}

fn variation_label(id: &str, target: bool) -> String {
    if target {
        id.to_string()
    } else {
        format!("{id} (held out)")
    }
}

/// A drawn plot, or a note when there was nothing to draw; other failures are errors.
fn figure(plot: &str, result: Result<String, PlotError>) -> Result<Figure, ReportError> {
    match result {
        Ok(svg) => Ok(Figure { svg: Some(svg), note: String::new() }),
        Err(PlotError::NoData(why)) => Ok(Figure { svg: None, note: format!("No {plot}: {why}.") }),
        Err(PlotError::Draw(reason)) => Err(ReportError::Plot { plot: plot.to_string(), reason }),
    }
}

fn use_case_rows(input: &ReportInput, ids: &BTreeSet<String>) -> Vec<(String, String)> {
    let (targets, held_out): (Vec<&String>, Vec<&String>) =
        ids.iter().partition(|id| input.target_variations.contains(id));
    let join = |items: &[&String]| if items.is_empty() { "none".to_string() } else { join_ids(items) };
    let scenario = input.scenario;
    let group = |g: &crate::scenario::NameGroup| format!("{} ({} names)", g.id, g.people.len());
    vec![
        ("scenarios".into(), input.use_case.scenarios.join(", ")),
        ("evaluated scenario".into(), format!("{}: {}", scenario.id, scenario.description)),
        ("context level".into(), input.baseline.context.as_str().to_string()),
        ("target variations".into(), join(&targets)),
        ("held-out variations".into(), join(&held_out)),
        ("regime".into(), input.use_case.regime.clone()),
        ("direction".into(), input.use_case.direction.clone()),
        ("answer".into(), scenario.answer.as_str().to_string()),
        ("majority group".into(), group(&scenario.majority)),
        ("minority group".into(), group(&scenario.minority)),
        ("inliers".into(), input.baseline.inliers.description.clone()),
    ]
}

fn join_ids(items: &[&String]) -> String {
    items.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// The settings as (dotted key, value) rows; objects nest with '.', arrays of scalars are
/// joined with ", ", other arrays are indexed.
fn settings_rows(value: &serde_json::Value) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    flatten("", value, &mut rows);
    rows
}

fn flatten(key: &str, value: &serde_json::Value, rows: &mut Vec<(String, String)>) {
    use serde_json::Value;
    let child = |name: &str| if key.is_empty() { name.to_string() } else { format!("{key}.{name}") };
    match value {
        Value::Object(map) => map.iter().for_each(|(name, v)| flatten(&child(name), v, rows)),
        Value::Array(items) if items.iter().all(|v| !v.is_object() && !v.is_array()) => {
            rows.push((key.to_string(), items.iter().map(scalar).collect::<Vec<_>>().join(", ")))
        }
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| flatten(&format!("{key}[{i}]"), v, rows)),
        scalar_value => {
            rows.push((if key.is_empty() { "method".into() } else { key.to_string() }, scalar(scalar_value)))
        }
    }
}

fn scalar(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn headline(input: &ReportInput, ids: &BTreeSet<String>) -> Vec<Headline> {
    let (targets, held_out): (Vec<&String>, Vec<&String>) =
        ids.iter().partition(|id| input.target_variations.contains(id));
    let mut rows = vec![mean_abs_smd_row("mean |SMD|, target variations", input, &targets)];
    if !held_out.is_empty() {
        rows.push(mean_abs_smd_row("mean |SMD|, held-out variations", input, &held_out));
    }
    let (before, after) = (&input.baseline.overall, &input.pruned.overall);
    rows.push(Headline {
        label: "inlier ratio".into(),
        before: percent(before.inlier_ratio),
        after: percent(after.inlier_ratio),
    });
    rows.push(Headline {
        label: "parse rate".into(),
        before: percent(before.parse_rate),
        after: percent(after.parse_rate),
    });
    rows
}

fn mean_abs_smd_row(label: &str, input: &ReportInput, ids: &[&String]) -> Headline {
    Headline {
        label: label.to_string(),
        before: optional(mean_abs_smd(input.baseline, ids), |v| format!("{v:.3}")),
        after: optional(mean_abs_smd(input.pruned, ids), |v| format!("{v:.3}")),
    }
}

/// Mean |SMD| of `summary` over those of `ids` that have an SMD in it.
fn mean_abs_smd(summary: &Summary, ids: &[&String]) -> Option<f64> {
    let values: Vec<f64> = ids.iter().filter_map(|id| summary.variations.get(*id)?.smd).map(f64::abs).collect();
    crate::metrics::mean(&values)
}

fn variation_view(
    input: &ReportInput,
    id: &str,
    held_out: bool,
    labels: &[String; STATISTICS],
) -> Result<VariationView, ReportError> {
    let runs = [
        RecordsRun { label: "baseline", records: input.baseline_records },
        RecordsRun { label: "pruned", records: input.pruned_records },
    ];
    let drawn = answer_histograms_svg(input.scenario, &runs, id, input.baseline.settings.population);
    let baseline = statistics(input.baseline.variations.get(id));
    let pruned = statistics(input.pruned.variations.get(id));
    let rows = labels
        .iter()
        .zip(baseline.into_iter().zip(pruned))
        .map(|(label, (baseline, pruned))| StatsRow { label: label.clone(), baseline, pruned })
        .collect();
    Ok(VariationView { id: id.to_string(), held_out, histograms: figure(&format!("{id} histograms"), drawn)?, rows })
}

/// The names of the statistics [`statistics`] gives, in its order.
fn statistic_labels(input: &ReportInput) -> [String; STATISTICS] {
    let (majority, minority) = (&input.scenario.majority.id, &input.scenario.minority.id);
    let confidence = format!("{}%", input.baseline.settings.bootstrap.confidence * 100.0);
    [
        "answers".into(),
        format!("n {majority}"),
        format!("n {minority}"),
        format!("mean {majority}"),
        format!("mean {minority}"),
        format!("SMD [{confidence} cluster CI]"),
        "SMD, all parsed".into(),
        "name-permutation p".into(),
        "smallest detectable |SMD|".into(),
        "inlier ratio".into(),
        "parse rate".into(),
        "truncated".into(),
    ]
}

/// One run's statistics of one variation, formatted, in [`statistic_labels`]' order.
fn statistics(v: Option<&VariationSummary>) -> [String; STATISTICS] {
    let n = |g: Option<&GroupStats>| optional(g, |g| g.n.to_string());
    let m = |g: Option<&GroupStats>| optional(g.and_then(|g| g.mean), number);
    let smd = match v.and_then(|v| v.smd.map(|s| (s, v.smd_ci))) {
        Some((s, Some(ci))) => format!("{s:+.3} [{:+.3}, {:+.3}]", ci.low, ci.high),
        Some((s, None)) => format!("{s:+.3}"),
        None => match v.and_then(|v| v.smd_undefined.as_ref()) {
            Some(reason) => format!("undefined: {reason}"),
            None => "n/a".to_string(),
        },
    };
    [
        optional(v, |v| v.answers.to_string()),
        n(v.map(|v| &v.majority)),
        n(v.map(|v| &v.minority)),
        m(v.map(|v| &v.majority)),
        m(v.map(|v| &v.minority)),
        smd,
        optional(v.and_then(|v| v.smd_parsed), |s| format!("{s:+.3}")),
        optional(v.and_then(|v| v.group_test.as_ref()), |t| format!("{:.3}", t.p_value)),
        optional(v.and_then(|v| v.power.as_ref()), |p| format!("{:.2}", p.minimum_detectable_smd)),
        optional(v, |v| percent(v.inlier_ratio)),
        optional(v, |v| percent(v.parse_rate)),
        optional(v, |v| percent(v.truncated_rate)),
    ]
}

fn heatmap(input: &ReportInput) -> Result<Figure, ReportError> {
    if input.distribution.fractions.is_empty() {
        return Ok(Figure { svg: None, note: "No heatmap: the mask's distribution has no layers.".into() });
    }
    figure("heatmap", crate::analyze::heatmap_svg(input.distribution, "pruned weights: layers x components"))
}

fn pruned_text(pruned: u64, total: u64) -> String {
    if total == 0 {
        return format!("{} entries", grouped(pruned));
    }
    format!("{} of {} entries ({:.3}%)", grouped(pruned), grouped(total), pruned as f64 / total as f64 * 100.0)
}

/// `count` with thousands separated by commas, e.g. 1,480,205.
fn grouped(count: u64) -> String {
    let digits = count.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn sweep_section(sweep: &SweepView) -> Result<SweepSection, ReportError> {
    let (p, q) = sweep.chosen;
    let figure = if sweep.points.is_empty() {
        Figure { svg: None, note: "No sweep plot: the sweep has no points.".into() }
    } else {
        let svg = crate::sweep::sweep_marked_svg(sweep.points, sweep.p_grid, sweep.q_grid, Some(sweep.chosen));
        figure("sweep plot", svg)?
    };
    let rows = sweep
        .points
        .iter()
        .map(|pt| SweepRow {
            chosen: (pt.p, pt.q) == sweep.chosen,
            cells: vec![
                pt.p.to_string(),
                pt.q.to_string(),
                grouped(pt.pruned_entries),
                optional(pt.mean_abs_smd, |v| format!("{v:.3}")),
                percent(pt.inlier_ratio),
                percent(pt.parse_rate),
            ],
        })
        .collect();
    Ok(SweepSection { figure, chosen: format!("p = {p}, q = {q}"), rule: sweep.rule.clone(), rows })
}

fn population_text(population: Population) -> &'static str {
    match population {
        Population::Inliers => "inlier answers",
        Population::Parsed => "parsed answers",
    }
}

fn optional<T>(value: Option<T>, show: impl Fn(T) -> String) -> String {
    value.map_or_else(|| "n/a".to_string(), show)
}

fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// A group mean: two decimals below 1000, whole numbers from there on.
fn number(value: f64) -> String {
    if value.abs() >= 1000.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}
