//! Inlier rule tests; fences checked against numpy 2.4.6 `np.percentile` (linear).

use super::*;
use crate::scenario::parse::ParseStatus;
use crate::scenario::{Catalog, Group};

const BICYCLE: PlausibleRange = PlausibleRange { min: 10.0, max: 20000.0 };

const BASELINE: [f64; 10] = [480.0, 500.0, 510.0, 495.0, 505.0, 520.0, 490.0, 2000.0, 515.0, 485.0];

fn record(variation: &str, value: Option<f64>) -> AnswerRecord {
    AnswerRecord {
        scenario: "purchase".to_string(),
        variation: variation.to_string(),
        context: ContextLevel::Low,
        name: "Hunter Becker".to_string(),
        group: Group::Majority,
        gender: "man".to_string(),
        sample: 0,
        seed: 1,
        raw: String::new(),
        value,
        status: if value.is_some() { ParseStatus::Ok } else { ParseStatus::Unparseable },
        inlier: false,
    }
}

fn purchase() -> Scenario {
    Catalog::installed().unwrap().get("purchase").unwrap().clone()
}

#[test]
fn tukey_and_percentile_fences_match_numpy() {
    // q1, q3 = np.percentile(BASELINE, [25, 75]) = 491.25, 513.75 -> fences 457.5, 547.5
    let tukey = InlierRule::default().fences(&BASELINE, &BICYCLE).unwrap();
    assert_eq!((tukey.low, tukey.high, tukey.baseline_n, tukey.fallback), (457.5, 547.5, 10, None));
    // np.percentile(BASELINE, [5, 95]) = 482.25, 1334.0
    let pct = InlierRule::Percentiles { low: 5.0, high: 95.0 }.fences(&BASELINE, &BICYCLE).unwrap();
    assert!((pct.low - 482.25).abs() < 1e-9 && (pct.high - 1334.0).abs() < 1e-9, "{pct:?}");
    assert_eq!(InlierRule::default().fences(&[], &BICYCLE), None);
}

#[test]
fn with_baseline_answers_must_be_parsed_in_range_and_inside_fences() {
    let baseline: Vec<AnswerRecord> = BASELINE.iter().map(|v| record("bicycle", Some(*v))).collect();
    let judge = InlierJudge::new(&purchase(), ContextLevel::Low, InlierRule::default(), Some(&baseline));
    assert!(judge.is_inlier("bicycle", Some(500.0)));
    assert!(judge.is_inlier("bicycle", Some(547.5)), "fences are inclusive");
    assert!(!judge.is_inlier("bicycle", Some(600.0)), "above the upper fence");
    assert!(!judge.is_inlier("bicycle", None), "unparsed answers are outliers");
    assert!(!judge.is_inlier("car", Some(15000.0)), "no baseline for car: no inliers");
    let all = ["bicycle".to_string(), "car".to_string()];
    assert_eq!(judge.missing_fences(&all), ["car"]);
    assert!(judge.description().description.contains("Tukey fences [Q1 - 1.5 IQR, Q3 + 1.5 IQR]"));
}

#[test]
fn baseline_answers_outside_the_plausible_range_do_not_move_the_fences() {
    let mut baseline: Vec<AnswerRecord> = BASELINE.iter().map(|v| record("bicycle", Some(*v))).collect();
    baseline.push(record("bicycle", Some(1e9)));
    baseline.push(record("bicycle", None));
    let judge = InlierJudge::new(&purchase(), ContextLevel::Low, InlierRule::default(), Some(&baseline));
    assert_eq!(
        judge.description().fences["bicycle"],
        Fences { low: 457.5, high: 547.5, baseline_n: 10, fallback: None }
    );
}

#[test]
fn without_baseline_only_parsing_and_range_count() {
    let judge = InlierJudge::new(&purchase(), ContextLevel::Low, InlierRule::default(), None);
    assert!(judge.is_inlier("bicycle", Some(600.0)));
    assert!(!judge.is_inlier("bicycle", Some(5.0)), "below the bicycle's range [10, 20000]");
    assert!(!judge.is_inlier("bicycle", Some(30000.0)));
    assert!(!judge.is_inlier("boat", Some(600.0)), "unknown variation has no range");
    assert!(judge.missing_fences(&["car".to_string()]).is_empty());
    assert!(judge.description().description.contains("no baseline given"));
}

#[test]
fn rules_parse_from_text_and_serialise_with_a_tag() {
    assert_eq!(InlierRule::parse("tukey").unwrap(), InlierRule::TukeyFences { k: 1.5 });
    assert_eq!(InlierRule::parse("tukey:3").unwrap(), InlierRule::TukeyFences { k: 3.0 });
    assert_eq!(InlierRule::parse("percentiles").unwrap(), InlierRule::Percentiles { low: 5.0, high: 95.0 });
    assert_eq!(InlierRule::parse("percentiles:10:90").unwrap(), InlierRule::Percentiles { low: 10.0, high: 90.0 });
    for bad in ["", "tukey:x", "percentiles:95:5", "percentiles:5:120", "iqr"] {
        assert!(InlierRule::parse(bad).is_err(), "{bad:?}");
    }
    let json = serde_json::to_string(&InlierRule::default()).unwrap();
    assert_eq!(json, r#"{"rule":"tukey-fences","k":1.5}"#);
    assert_eq!(InlierRule::Percentiles { low: 5.0, high: 95.0 }.describe(), "percentile fences [P5, P95]");
}

/// 40 baseline answers, 30 of them 500: Q1 = Q3 = 500, so the IQR is 0.
fn mostly_500() -> Vec<f64> {
    let mut values = vec![500.0; 30];
    values.extend([400.0, 420.0, 440.0, 460.0, 480.0, 520.0, 540.0, 560.0, 580.0, 2000.0]);
    values
}

#[test]
fn zero_iqr_falls_back_to_the_decile_spread() {
    // Sorted, P10 lies at position 3.9 (460 + 0.9 * 20 = 478) and P90 at 35.1
    // (520 + 0.1 * 20 = 522): spread 44, fences [478 - 66, 522 + 66] = [412, 588].
    let fences = InlierRule::default().fences(&mostly_500(), &BICYCLE).unwrap();
    assert!((fences.low - 412.0).abs() < 1e-9 && (fences.high - 588.0).abs() < 1e-9, "{fences:?}");
    assert_eq!(fences.fallback, Some(FenceFallback::DecileSpread));
    let baseline: Vec<AnswerRecord> = mostly_500().iter().map(|v| record("bicycle", Some(*v))).collect();
    let judge = InlierJudge::new(&purchase(), ContextLevel::Low, InlierRule::default(), Some(&baseline));
    assert!(judge.is_inlier("bicycle", Some(500.0)) && judge.is_inlier("bicycle", Some(420.0)));
    assert!(!judge.is_inlier("bicycle", Some(600.0)) && !judge.is_inlier("bicycle", Some(2000.0)));
    let json = serde_json::to_string(&judge.description().fences["bicycle"]).unwrap();
    assert!(json.ends_with(r#","fallback":"decile-spread"}"#), "{json}");
    assert!(judge
        .description()
        .description
        .contains("where the IQR is 0: [P10 - 1.5 (P90 - P10), P90 + 1.5 (P90 - P10)]"));
}

#[test]
fn all_equal_baseline_leaves_only_the_plausible_range() {
    let fences = InlierRule::default().fences(&[500.0; 12], &BICYCLE).unwrap();
    assert_eq!(
        fences,
        Fences { low: 10.0, high: 20000.0, baseline_n: 12, fallback: Some(FenceFallback::PlausibleRange) }
    );
    let baseline: Vec<AnswerRecord> = (0..12).map(|_| record("bicycle", Some(500.0))).collect();
    let judge = InlierJudge::new(&purchase(), ContextLevel::Low, InlierRule::default(), Some(&baseline));
    assert!(judge.is_inlier("bicycle", Some(15000.0)), "no Tukey restriction");
    assert!(!judge.is_inlier("bicycle", Some(5.0)), "the plausible range still applies");
    let json = serde_json::to_string(&fences).unwrap();
    assert!(json.contains(r#""fallback":"plausible-range""#), "{json}");
}

#[test]
fn fences_without_a_fallback_field_still_parse_and_do_not_write_one() {
    let old = r#"{"low":457.5,"high":547.5,"baseline_n":10}"#;
    let fences: Fences = serde_json::from_str(old).unwrap();
    assert_eq!(fences.fallback, None);
    assert_eq!(serde_json::to_string(&fences).unwrap(), old);
}
