//! Chart tests: valid SVG, the expected labels, determinism, and no-data errors.

use super::*;
use crate::metrics::{AnswerRecord, InlierJudge, InlierRule, Summary, SummarySettings};
use crate::scenario::parse::ParseStatus;
use crate::scenario::{Catalog, ContextLevel, Group, Scenario};

fn purchase() -> Scenario {
    Catalog::installed().unwrap().get("purchase").unwrap().clone()
}

/// 20 answers per group and variation, minority offered about `gap` less; one outlier.
pub(super) fn records(gap: f64) -> Vec<AnswerRecord> {
    let mut out = Vec::new();
    for (variation, centre) in [("bicycle", 500.0), ("car", 15000.0)] {
        for (group, shift) in [(Group::Majority, 0.0), (Group::Minority, gap)] {
            for i in 0..20 {
                let wobble = ((i * 37 % 20) as f64 - 10.0) * centre * 0.02;
                let value = centre - shift * centre + wobble;
                out.push(record(variation, group, i, Some(value), true));
            }
        }
    }
    out.push(record("bicycle", Group::Minority, 20, Some(90000.0), false));
    out
}

fn record(variation: &str, group: Group, sample: u32, value: Option<f64>, inlier: bool) -> AnswerRecord {
    AnswerRecord {
        scenario: "purchase".to_string(),
        variation: variation.to_string(),
        context: ContextLevel::Low,
        name: "someone".to_string(),
        group,
        gender: "man".to_string(),
        sample,
        seed: 1,
        raw: String::new(),
        value,
        status: ParseStatus::Ok,
        inlier,
    }
}

pub(super) fn summary(records: &[AnswerRecord]) -> Summary {
    let judge = InlierJudge::new(&purchase(), ContextLevel::Low, InlierRule::default(), None);
    Summary::compute("purchase", ContextLevel::Low, records, judge.description(), &SummarySettings::default()).unwrap()
}

/// Parses `svg` as XML and returns the concatenated contents of its `<text>` elements.
fn texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants().filter(|n| n.has_tag_name("text")).map(|n| n.text().unwrap_or("").trim().to_string()).collect()
}

#[test]
fn distribution_svg_is_valid_and_labelled() {
    let svg = answer_distribution_svg(&purchase(), &records(0.1), "bicycle").unwrap();
    let texts = texts(&svg);
    for want in [
        "white (majority), n = 20",
        "black (minority), n = 20",
        "purchase / bicycle (low context): inlier answers by group [1 outliers off scale]",
        "dollars",
    ] {
        assert!(texts.iter().any(|t| t == want), "missing {want:?} in {texts:?}");
    }
    assert!(svg.matches("<circle").count() >= 40, "one point per inlier");
}

#[test]
fn smd_chart_overlays_runs_with_legend_and_variations() {
    let (biased, fair) = (records(0.1), records(0.0));
    let (baseline, pruned) = (summary(&biased), summary(&fair));
    let runs = [SmdRun { label: "baseline", summary: &baseline }, SmdRun { label: "pruned", summary: &pruned }];
    let svg = smd_chart_svg(&runs).unwrap();
    let texts = texts(&svg);
    for want in ["baseline", "pruned", "bicycle", "car", "SMD (majority - minority)"] {
        assert!(texts.iter().any(|t| t == want), "missing {want:?} in {texts:?}");
    }
    assert!(texts.iter().any(|t| t.contains("95% bootstrap CI")));
    assert_eq!(svg, smd_chart_svg(&runs).unwrap(), "same input, same bytes");
}

#[test]
fn labels_with_xml_special_characters_are_escaped() {
    let baseline = summary(&records(0.1));
    let svg = smd_chart_svg(&[SmdRun { label: "q<0.4 & p>0.3", summary: &baseline }]).unwrap();
    assert!(texts(&svg).iter().any(|t| t == "q<0.4 & p>0.3"));
}

#[test]
fn nothing_to_draw_is_an_error() {
    let err = answer_distribution_svg(&purchase(), &records(0.1), "house").unwrap_err();
    assert_eq!(err.to_string(), "nothing to plot: no parsed answers for variation `house`");
    let empty = summary(&[]);
    assert!(matches!(smd_chart_svg(&[SmdRun { label: "x", summary: &empty }]), Err(PlotError::NoData(_))));
}

#[test]
fn histograms_share_axes_across_runs_and_label_each_panel() {
    let (before, after) = (records(0.1), records(0.0));
    let runs = [RecordsRun { label: "baseline", records: &before }, RecordsRun { label: "pruned", records: &after }];
    let svg = answer_histograms_svg(&purchase(), &runs, "bicycle", crate::metrics::Population::Inliers).unwrap();
    let shown = texts(&svg);
    for want in [
        "purchase / bicycle: inlier answers by group, same axes in every panel",
        "baseline: n = 20 / 20",
        "pruned: n = 20 / 20",
        // Means by hand: the wobble averages -0.5 * 2% of 500 = -5.
        "white: mean 495",
        "black: mean 445",
        "black: mean 495",
    ] {
        assert!(shown.iter().any(|t| t == want), "missing {want:?} in {shown:?}");
    }
    let tick_labels = |panel: usize| -> Vec<String> {
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let mut labels: Vec<(f64, String)> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text") && n.text().is_some_and(|t| t.trim().parse::<f64>().is_ok()))
            .filter(|n| n.attribute("y").and_then(|y| y.parse::<f64>().ok()).is_some_and(|y| y > 380.0))
            .map(|n| (n.attribute("x").unwrap().parse().unwrap(), n.text().unwrap().trim().to_string()))
            .filter(|(x, _)| (*x >= 560.0) == (panel == 1))
            .collect();
        labels.sort_by(|a, b| a.0.total_cmp(&b.0));
        labels.into_iter().map(|(_, t)| t).collect()
    };
    assert!(!tick_labels(0).is_empty());
    assert_eq!(tick_labels(0), tick_labels(1), "both panels have the same x axis");
    let parsed = answer_histograms_svg(&purchase(), &runs, "bicycle", crate::metrics::Population::Parsed).unwrap();
    assert!(texts(&parsed).iter().any(|t| t == "baseline: n = 20 / 21"), "the parsed outlier is counted");
    assert_eq!(svg, answer_histograms_svg(&purchase(), &runs, "bicycle", crate::metrics::Population::Inliers).unwrap());
}
