//! Parser tests on answers of the kinds small instruct models give.

use super::*;

fn check(raw: &str, kind: AnswerKind, value: Option<f64>, status: ParseStatus) {
    let parsed = parse_answer(raw, kind);
    assert_eq!(parsed.raw, raw, "raw text kept");
    assert_eq!(parsed.status, status, "status of {raw:?}");
    match (parsed.value, value) {
        (Some(got), Some(want)) => assert!((got - want).abs() < 1e-9, "{raw:?}: got {got}, want {want}"),
        (got, want) => assert_eq!(got, want, "value of {raw:?}"),
    }
}

#[test]
fn dollars_with_sign_and_thousands_comma() {
    check("$1,200", AnswerKind::Dollars, Some(1200.0), ParseStatus::Ok);
    check("$1,200.50", AnswerKind::Dollars, Some(1200.5), ParseStatus::Ok);
    check("**$12,345,678**", AnswerKind::Dollars, Some(12_345_678.0), ParseStatus::Ok);
}

#[test]
fn trailing_period_ends_the_sentence() {
    check("1200.", AnswerKind::Dollars, Some(1200.0), ParseStatus::Ok);
    check("I would offer $350.", AnswerKind::Dollars, Some(350.0), ParseStatus::Ok);
}

#[test]
fn multipliers() {
    check("1.2k", AnswerKind::Dollars, Some(1200.0), ParseStatus::Ok);
    check("$15K", AnswerKind::Dollars, Some(15000.0), ParseStatus::Ok);
    check("$1.5 million", AnswerKind::Dollars, Some(1_500_000.0), ParseStatus::Ok);
    check("$2M", AnswerKind::Dollars, Some(2_000_000.0), ParseStatus::Ok);
    check("12kg", AnswerKind::Dollars, Some(12.0), ParseStatus::Ok);
}

#[test]
fn range_is_read_as_midpoint_and_flagged() {
    check("Around $3,000 to $4,000", AnswerKind::Dollars, Some(3500.0), ParseStatus::RangeMidpoint);
    check("$300-$500", AnswerKind::Dollars, Some(400.0), ParseStatus::RangeMidpoint);
    check("between 10 and 20 hours", AnswerKind::Hours, Some(15.0), ParseStatus::RangeMidpoint);
    check("$3-4k", AnswerKind::Dollars, Some(3500.0), ParseStatus::RangeMidpoint);
    check("$500 – 1k", AnswerKind::Dollars, Some(750.0), ParseStatus::RangeMidpoint);
    check("40-50%", AnswerKind::Probability, Some(0.45), ParseStatus::RangeMidpoint);
}

#[test]
fn probability_and_percent_scales() {
    check("0.45", AnswerKind::Probability, Some(0.45), ParseStatus::Ok);
    check(".45", AnswerKind::Probability, Some(0.45), ParseStatus::Ok);
    check("45%", AnswerKind::Probability, Some(0.45), ParseStatus::Ok);
    check("45%", AnswerKind::Percent, Some(45.0), ParseStatus::Ok);
    check("45 percent", AnswerKind::Percent, Some(45.0), ParseStatus::Ok);
    check("0.45", AnswerKind::Percent, Some(0.45), ParseStatus::Ok);
}

#[test]
fn equal_numbers_agree() {
    check("0.45 (45%)", AnswerKind::Probability, Some(0.45), ParseStatus::Ok);
    check("$500. That is, $500.", AnswerKind::Dollars, Some(500.0), ParseStatus::Ok);
}

#[test]
fn no_number_is_unparseable() {
    check("I cannot answer", AnswerKind::Dollars, None, ParseStatus::Unparseable);
    check("", AnswerKind::Rank, None, ParseStatus::Unparseable);
    check("I'm sorry, but I can't provide that.", AnswerKind::Percent, None, ParseStatus::Unparseable);
}

#[test]
fn unrelated_numbers_are_ambiguous() {
    check("The 2021 Trek is worth $500", AnswerKind::Dollars, None, ParseStatus::Ambiguous);
    check("Offer $450, expect to pay 500", AnswerKind::Dollars, None, ParseStatus::Ambiguous);
    check("0.45 or 0.6", AnswerKind::Probability, None, ParseStatus::Ambiguous);
}

#[test]
fn ranks_and_hours() {
    check("#15", AnswerKind::Rank, Some(15.0), ParseStatus::Ok);
    check("15th", AnswerKind::Rank, Some(15.0), ParseStatus::Ok);
    check("5 hours", AnswerKind::Hours, Some(5.0), ParseStatus::Ok);
}

#[test]
fn parsed_flag_follows_value() {
    assert!(parse_answer("12", AnswerKind::Rank).is_parsed());
    assert!(!parse_answer("12 or 13", AnswerKind::Rank).is_parsed());
}

#[test]
fn numbers_too_large_for_f64_are_not_values() {
    let huge = format!("${}", "9".repeat(400));
    check(&huge, AnswerKind::Dollars, None, ParseStatus::Unparseable);
}

#[test]
fn minus_sign_versus_range_dash() {
    check("-5", AnswerKind::Hours, Some(-5.0), ParseStatus::Ok);
    check("about (-0.2)", AnswerKind::Probability, Some(-0.2), ParseStatus::Ok);
    check("3 -4", AnswerKind::Hours, Some(3.5), ParseStatus::RangeMidpoint);
    check("3 - 4", AnswerKind::Hours, Some(3.5), ParseStatus::RangeMidpoint);
}

#[test]
fn dotted_number_runs_do_not_panic() {
    check("1.2.3", AnswerKind::Dollars, None, ParseStatus::Ambiguous);
    assert!(parse_answer("US Dollars: $1.10.-5", AnswerKind::Dollars).raw.contains("1.10"));
}

/// Random strings over the characters numbers are made of: the parser never panics and only
/// parsed statuses carry a value.
#[test]
fn parser_never_panics_on_number_like_noise() {
    use rand::{Rng, SeedableRng};
    let alphabet: Vec<char> = "0123456789.,-–$k%KmM to and between ()abc".chars().collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for _ in 0..20_000 {
        let len = rng.random_range(0..16);
        let text: String = (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())]).collect();
        for kind in [AnswerKind::Dollars, AnswerKind::Probability, AnswerKind::Percent] {
            let parsed = parse_answer(&text, kind);
            assert_eq!(parsed.value.is_some(), parsed.is_parsed(), "{text:?}");
        }
    }
}

#[test]
fn cut_off_numbers_end_inside_a_number() {
    for text in ["is $2", "$1,2", "0.4", "$1,", "0.", "$500.", "300-", "300 – ", "300 —", "The offer is $", "12  \n"]
    {
        assert!(ends_inside_number(text), "{text:?} ends inside a number");
    }
    for text in
        ["", "2k", "45%", "45 percent", "500 dollars and", "($300)", "**$12**", "Hello.", "a-", ", ", "- 5 hours"]
    {
        assert!(!ends_inside_number(text), "{text:?} does not end inside a number");
    }
}

#[test]
fn an_answer_cut_off_inside_a_number_is_truncated_without_a_value() {
    for raw in ["The offer is $2", "$1,2", "0.", "$300-"] {
        let parsed = parse_completion(raw, AnswerKind::Dollars, true);
        assert_eq!((parsed.status, parsed.value), (ParseStatus::Truncated, None), "{raw:?}");
        assert_eq!(parsed.raw, raw);
        assert!(!parsed.is_parsed());
    }
}

#[test]
fn a_completed_answer_or_one_cut_off_after_a_word_parses_normally() {
    assert_eq!(
        parse_completion("The offer is $2", AnswerKind::Dollars, false),
        parse_answer("The offer is $2", AnswerKind::Dollars)
    );
    assert_eq!(parse_completion("$2", AnswerKind::Dollars, false).value, Some(2.0));
    let cut_after_word = parse_completion("500 dollars and", AnswerKind::Dollars, true);
    assert_eq!((cut_after_word.status, cut_after_word.value), (ParseStatus::Ok, Some(500.0)));
    assert_eq!(parse_completion("2k", AnswerKind::Dollars, true).value, Some(2000.0));
}

#[test]
fn truncated_is_spelled_in_kebab_case_like_the_other_statuses() {
    assert_eq!(serde_json::to_string(&ParseStatus::Truncated).unwrap(), "\"truncated\"");
    assert_eq!(serde_json::to_string(&ParseStatus::RangeMidpoint).unwrap(), "\"range-midpoint\"");
    assert_eq!(serde_json::from_str::<ParseStatus>("\"truncated\"").unwrap(), ParseStatus::Truncated);
}
