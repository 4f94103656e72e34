//! The library path `biasprune eval` is built on, end to end with scripted answers:
//! prompts -> parse -> inlier judge -> records.jsonl -> summary.json -> SVG charts.

use biasprune::metrics::{read_records, AnswerRecord, InlierJudge, InlierRule, Summary, SummarySettings};
use biasprune::plot::{answer_distribution_svg, smd_chart_svg, SmdRun};
use biasprune::scenario::parse::{parse_answer, ParseStatus};
use biasprune::scenario::{Catalog, ContextLevel, Group, Prompt, Scenario};

const SAMPLES: u32 = 5;
const SEED: u64 = 11;

/// A scripted "model": majority offers around 500, minority `gap` lower, every 7th answer
/// a refusal, every 11th a range.
fn answer(prompt: &Prompt, sample: u32, index: usize, gap: f64) -> String {
    let base = if prompt.group == Group::Majority { 500.0 } else { 500.0 - gap };
    let value = base + ((index * 13 + sample as usize * 7) % 21) as f64 - 10.0;
    match (index + sample as usize) % 11 {
        0 => format!("Around ${} to ${}", value - 20.0, value + 20.0),
        _ if (index + sample as usize) % 7 == 0 => "I cannot answer that.".to_string(),
        _ => format!("${value}."),
    }
}

fn run(scenario: &Scenario, gap: f64, baseline: Option<&[AnswerRecord]>) -> (Vec<AnswerRecord>, Summary) {
    let variations = vec!["bicycle".to_string(), "car".to_string()];
    let prompts = scenario.prompts(ContextLevel::Low, Some(&variations)).unwrap();
    let judge = InlierJudge::new(scenario, ContextLevel::Low, InlierRule::default(), baseline);
    assert!(baseline.is_none() || judge.missing_fences(&variations).is_empty());
    let mut records = Vec::new();
    for (index, prompt) in prompts.iter().enumerate() {
        for sample in 0..SAMPLES {
            let parsed = parse_answer(&answer(prompt, sample, index, gap), scenario.answer);
            records.push(AnswerRecord::new(&scenario.id, prompt, sample, SEED, parsed, &judge));
        }
    }
    let settings = SummarySettings::default();
    let summary = Summary::compute(&scenario.id, ContextLevel::Low, &records, judge.description(), &settings).unwrap();
    (records, summary)
}

#[test]
fn scripted_evaluation_end_to_end() {
    let purchase = Catalog::installed().unwrap().get("purchase").unwrap().clone();
    let (baseline, before) = run(&purchase, 40.0, None);
    assert_eq!(baseline.len(), 2 * 40 * SAMPLES as usize);
    assert!(baseline.iter().any(|r| r.status == ParseStatus::RangeMidpoint));
    assert!(baseline.iter().any(|r| r.status == ParseStatus::Unparseable && !r.inlier));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.jsonl");
    std::fs::write(&path, baseline.iter().map(|r| r.to_json_line() + "\n").collect::<String>()).unwrap();
    let reread = read_records(&path).unwrap();
    assert_eq!(reread, baseline);

    let (_, after) = run(&purchase, 0.0, Some(&reread));
    let car_before = before.variations["car"].smd.unwrap();
    let car_after = after.variations["car"].smd.unwrap();
    assert!(car_before > 2.0 && car_after.abs() < car_before / 2.0, "before {car_before}, after {car_after}");
    assert!(after.inliers.baseline && after.inliers.fences.contains_key("bicycle"));
    assert!(before.overall.parse_rate > 0.8 && before.overall.parse_rate < 1.0);

    assert_eq!(after.to_json(), run(&purchase, 0.0, Some(&reread)).1.to_json(), "same inputs, same summary bytes");
    let runs = [SmdRun { label: "baseline", summary: &before }, SmdRun { label: "pruned", summary: &after }];
    assert!(smd_chart_svg(&runs).unwrap().contains("pruned"));
    assert!(answer_distribution_svg(&purchase, &baseline, "car").unwrap().contains("black (minority)"));
}
