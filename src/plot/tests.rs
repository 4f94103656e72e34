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
