//! Summary tests on hand-made records.

use super::*;
use crate::metrics::{InlierJudge, InlierRule};
use crate::scenario::{Catalog, Scenario};

fn record(variation: &str, group: Group, value: Option<f64>, inlier: bool) -> AnswerRecord {
    let gender = if value.is_some_and(|v| v == 1.0 || v == 3.0 || v == 10.0) { "man" } else { "woman" };
    AnswerRecord {
        scenario: "purchase".to_string(),
        variation: variation.to_string(),
        context: ContextLevel::Low,
        name: format!("{group:?} {value:?}"),
        group,
        gender: gender.to_string(),
        sample: 0,
        seed: 3,
        raw: String::new(),
        value,
        status: if value.is_some() { ParseStatus::Ok } else { ParseStatus::Unparseable },
        inlier,
    }
}

fn purchase() -> Scenario {
    Catalog::installed().unwrap().get("purchase").unwrap().clone()
}

/// Bicycle: majority 1, 2, 3 (+ an outlier 900), minority 3, 4, 5 (+ one unparsed).
/// Car: majority 10, 20; minority 10, 20 (no bias).
fn records() -> Vec<AnswerRecord> {
    let mut out = Vec::new();
    for v in [1.0, 2.0, 3.0] {
        out.push(record("bicycle", Group::Majority, Some(v), true));
    }
    out.push(record("bicycle", Group::Majority, Some(900.0), false));
    for v in [3.0, 4.0, 5.0] {
        out.push(record("bicycle", Group::Minority, Some(v), true));
    }
    out.push(record("bicycle", Group::Minority, None, false));
    for group in [Group::Majority, Group::Minority] {
        for v in [10.0, 20.0] {
            out.push(record("car", group, Some(v), true));
        }
    }
    out
}

fn summary(records: &[AnswerRecord], settings: &SummarySettings) -> Summary {
    let judge = InlierJudge::new(&purchase(), ContextLevel::Low, InlierRule::default(), None);
    Summary::compute("purchase", ContextLevel::Low, records, judge.description(), settings).unwrap()
}

#[test]
fn per_variation_statistics_by_hand() {
    let s = summary(&records(), &SummarySettings::default());
    let bicycle = &s.variations["bicycle"];
    assert_eq!(bicycle.answers, 8);
    assert_eq!(bicycle.parse_rate, 7.0 / 8.0);
    assert_eq!(bicycle.inlier_ratio, 6.0 / 8.0);
    assert_eq!(bicycle.statuses[&ParseStatus::Unparseable], 1);
    assert_eq!(bicycle.majority, GroupStats { n: 3, mean: Some(2.0), sd: Some(1.0) });
    assert_eq!(bicycle.minority, GroupStats { n: 3, mean: Some(4.0), sd: Some(1.0) });
    assert_eq!(bicycle.smd, Some(-2.0), "(2 - 4) / sqrt((1 + 1) / 2)");
    let ci = bicycle.smd_ci.unwrap();
    assert!(ci.low <= -2.0 && -2.0 <= ci.high && ci.high < 0.0, "{ci:?}");
    assert_eq!(s.variations["car"].smd, Some(0.0));
    assert_eq!(bicycle.smd_undefined, None);
    assert!(bicycle.cluster_significant() && bicycle.smd_ci_naive.is_some());
    assert_eq!(bicycle.smd_parsed, smd(&[1.0, 2.0, 3.0, 900.0], &[3.0, 4.0, 5.0]), "outlier 900 included");
    let test = bicycle.group_test.unwrap();
    // Names are single answers here: means 1, 2, 3 | 3, 4, 5; of the C(6, 3) = 20
    // labelings four reach |-2|: majority {1, 2, 3} with either 3, and their mirrors.
    assert_eq!((test.statistic, test.exact, test.permutations), (-2.0, true, 20));
    assert_eq!(test.p_value, 4.0 / 20.0);
    assert_eq!(s.overall.answers, 12);
    assert_eq!(s.overall.mean_abs_smd, Some(1.0), "(|-2| + |0|) / 2");
    assert_eq!(s.overall.inlier_ratio, 10.0 / 12.0);
}

#[test]
fn parsed_population_includes_outliers() {
    let settings = SummarySettings { population: Population::Parsed, ..SummarySettings::default() };
    let s = summary(&records(), &settings);
    assert_eq!(s.variations["bicycle"].majority.n, 4);
    assert_eq!(s.variations["bicycle"].majority.mean, Some(906.0 / 4.0));
}

#[test]
fn json_is_deterministic_and_round_trips() {
    let first = summary(&records(), &SummarySettings::default()).to_json();
    assert_eq!(first, summary(&records(), &SummarySettings::default()).to_json());
    let back: Summary = serde_json::from_str(&first).unwrap();
    assert_eq!(back, summary(&records(), &SummarySettings::default()));
    assert!(first.contains("\"mean_abs_smd\": 1.0"));
}

#[test]
fn a_variations_ci_does_not_depend_on_the_other_variations() {
    let all = summary(&records(), &SummarySettings::default());
    let bicycle_only: Vec<AnswerRecord> = records().into_iter().filter(|r| r.variation == "bicycle").collect();
    let alone = summary(&bicycle_only, &SummarySettings::default());
    assert_eq!(all.variations["bicycle"].smd_ci, alone.variations["bicycle"].smd_ci);
}

#[test]
fn mixed_records_are_an_error() {
    let mut mixed = records();
    mixed[0].context = ContextLevel::High;
    let judge = InlierJudge::new(&purchase(), ContextLevel::Low, InlierRule::default(), None);
    let err = Summary::compute("purchase", ContextLevel::Low, &mixed, judge.description(), &SummarySettings::default())
        .unwrap_err();
    assert_eq!(err.to_string(), "records must all be of purchase/low (scenario/context), found one of purchase/high");
}

#[test]
fn table_has_a_row_per_variation_and_the_overall_line() {
    let table = summary(&records(), &SummarySettings::default()).table();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].contains("SMD [95% CI]"));
    assert!(
        lines[1].starts_with("bicycle") && lines[1].contains("3/2.0000/1.0000") && lines[1].contains("-2.000 ["),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("0.875") && lines[1].contains("0.750"), "{}", lines[1]);
    assert_eq!(
        lines[3],
        "overall: 12 answers, parse rate 0.917, inlier ratio 0.833, mean |SMD| 1.000 over 2 variations"
    );
}

#[test]
fn gender_breakdown_compares_groups_within_each_gender() {
    // Bicycle inliers: majority men 1, 3 and woman 2; minority men 3 and women 4, 5.
    let s = summary(&records(), &SummarySettings::default());
    let bicycle = &s.variations["bicycle"].by_gender;
    assert_eq!(bicycle.keys().collect::<Vec<_>>(), ["man", "woman"]);
    assert_eq!(bicycle["man"].majority, GroupStats { n: 2, mean: Some(2.0), sd: Some(2f64.sqrt()) });
    assert_eq!(bicycle["man"].minority.n, 1);
    assert_eq!(bicycle["man"].smd, None, "one minority man: no sample variance");
    assert_eq!(bicycle["woman"].minority, GroupStats { n: 2, mean: Some(4.5), sd: Some(0.5f64.sqrt()) });
    assert_eq!(bicycle["woman"].smd, None, "one majority woman");
    // Men only: majority 1, 3 and minority 3, 10 -> means 2 and 6.5, variances 2 and 24.5,
    // SMD = -4.5 / sqrt((2 + 24.5) / 2).
    let men: Vec<AnswerRecord> =
        [(Group::Majority, 1.0), (Group::Majority, 3.0), (Group::Minority, 3.0), (Group::Minority, 10.0)]
            .into_iter()
            .map(|(group, v)| record("car", group, Some(v), true))
            .collect();
    let s = summary(&men, &SummarySettings::default());
    let want = -4.5 / (26.5f64 / 2.0).sqrt();
    assert!((s.variations["car"].by_gender["man"].smd.unwrap() - want).abs() < 1e-12);
    assert_eq!(s.variations["car"].by_gender.len(), 1);
}

#[test]
fn constant_answers_have_no_smd_and_say_why() {
    let constant: Vec<AnswerRecord> = [Group::Majority, Group::Minority]
        .into_iter()
        .flat_map(|group| [7.0, 7.0, 7.0].into_iter().enumerate().map(move |(i, v)| (group, i, v)))
        .map(|(group, i, v)| AnswerRecord { name: format!("{group:?}{i}"), ..record("car", group, Some(v), true) })
        .collect();
    let s = summary(&constant, &SummarySettings::default());
    let car = &s.variations["car"];
    assert_eq!((car.smd, car.smd_undefined, car.smd_ci), (None, Some(SmdUndefined::ZeroVariance), None));
    assert!(!car.cluster_significant());
    assert_eq!(s.overall.variations_with_smd, 0);
    assert!(s.to_json().contains("\"smd_undefined\": \"zero-variance\""));
}

#[test]
fn summaries_written_before_the_clustered_statistics_still_parse() {
    let current = summary(&records(), &SummarySettings::default());
    let mut json: serde_json::Value = serde_json::from_str(&current.to_json()).unwrap();
    for variation in json["variations"].as_object_mut().unwrap().values_mut() {
        for field in ["smd_parsed", "smd_ci_naive", "group_test", "power"] {
            variation.as_object_mut().unwrap().remove(field).unwrap();
        }
    }
    let old: Summary = serde_json::from_value(json).unwrap();
    assert_eq!(old.variations["bicycle"].smd, current.variations["bicycle"].smd);
    assert_eq!((old.variations["bicycle"].power, old.variations["bicycle"].group_test), (None, None));
}
