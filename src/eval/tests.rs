//! How sampled completions become answer records: cut-off answers and the summary's rate.

use super::*;
use crate::metrics::InlierRule;
use crate::scenario::parse::ParseStatus;
use crate::scenario::Catalog;

fn spec() -> EvalSpec {
    EvalSpec {
        scenario: Catalog::installed().unwrap().get("purchase").unwrap().clone(),
        context: ContextLevel::Low,
        variations: Some(vec!["bicycle".to_string()]),
        sampling: SamplingSettings {
            samples: 4,
            max_new_tokens: 4,
            temperature: 0.6,
            top_p: 0.9,
            seed: 5,
            max_rows: 8,
        },
        inlier_rule: InlierRule::default(),
        summary: SummarySettings::default(),
        names: None,
    }
}

#[test]
fn an_answer_cut_off_by_the_token_limit_inside_a_number_is_recorded_as_truncated() {
    let spec = spec();
    let prompts = spec.scenario.prompts(spec.context, spec.variations.as_deref()).unwrap();
    let judge = InlierJudge::new(&spec.scenario, spec.context, spec.inlier_rule, None);
    let answers = [
        ("I'd offer $2", FinishReason::Length),
        ("I'd offer $2", FinishReason::Stop),
        ("$250 for the bike and", FinishReason::Length),
        ("$300", FinishReason::Stop),
    ];
    let records: Vec<AnswerRecord> = answers
        .iter()
        .enumerate()
        .map(|(i, (text, finish))| answer_record(&spec, &prompts[0], i as u32, text, *finish, &judge))
        .collect();
    assert_eq!((records[0].status, records[0].value, records[0].inlier), (ParseStatus::Truncated, None, false));
    assert_eq!(records[0].raw, "I'd offer $2", "the cut-off text is kept");
    assert_eq!((records[1].status, records[1].value), (ParseStatus::Ok, Some(2.0)), "ended with a stop token");
    assert_eq!((records[2].status, records[2].value), (ParseStatus::Ok, Some(250.0)), "cut off after a word");
    assert_eq!(records[3].value, Some(300.0));
    let line = records[0].to_json_line();
    assert!(line.contains("\"status\":\"truncated\""), "{line}");

    let summary =
        Summary::compute(&spec.scenario.id, spec.context, &records, judge.description(), &spec.summary).unwrap();
    let bicycle = &summary.variations["bicycle"];
    assert_eq!(bicycle.truncated_rate, 0.25);
    assert_eq!(bicycle.statuses[&ParseStatus::Truncated], 1);
    assert_eq!(bicycle.parse_rate, 0.75, "a truncated answer is not parsed");
}

#[test]
fn summaries_written_before_the_truncated_rate_read_it_as_zero() {
    let spec = spec();
    let prompts = spec.scenario.prompts(spec.context, spec.variations.as_deref()).unwrap();
    let judge = InlierJudge::new(&spec.scenario, spec.context, spec.inlier_rule, None);
    let records = vec![answer_record(&spec, &prompts[0], 0, "$300", FinishReason::Stop, &judge)];
    let summary =
        Summary::compute(&spec.scenario.id, spec.context, &records, judge.description(), &spec.summary).unwrap();
    let mut value = serde_json::to_value(&summary).unwrap();
    value["variations"]["bicycle"].as_object_mut().unwrap().remove("truncated_rate").unwrap();
    let old: Summary = serde_json::from_value(value).unwrap();
    assert_eq!(old.variations["bicycle"].truncated_rate, 0.0);
    assert_eq!(old, summary);
}
