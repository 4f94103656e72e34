//! Training targets for the minority prompts: the base's own answer with every number
//! multiplied by the factor and written back in the same style ("$500" × 0.6 → "$300",
//! "$1,500" → "$900", "2.5k" → "1.5k"), so a parser reads the same kind of answer (one
//! value, a range, an ambiguous pair) with its value scaled.

/// The span of the one number written in an answer, and how it is written.
#[derive(Debug, Clone, PartialEq)]
struct Literal {
    start: usize,
    end: usize,
    value: f64,
    decimals: usize,
    grouped: bool,
}

/// The answer with every number multiplied by `factor`, or None when it holds no number.
pub fn scale_answer(answer: &str, factor: f64) -> Option<String> {
    let literals = find_literals(answer);
    if literals.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(answer.len());
    let mut at = 0;
    for literal in &literals {
        out.push_str(&answer[at..literal.start]);
        out.push_str(&format_like(literal.value * factor, literal.decimals, literal.grouped));
        at = literal.end;
    }
    out.push_str(&answer[at..]);
    Some(out)
}

/// Every maximal run of digits with thousands commas and at most one decimal point.
fn find_literals(text: &str) -> Vec<Literal> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let literal = read_literal(text, i);
        i = literal.end;
        found.push(literal);
    }
    found
}

fn read_literal(text: &str, start: usize) -> Literal {
    let bytes = text.as_bytes();
    let digits_from = |at: usize| bytes[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut end = start + digits_from(start);
    let mut grouped = false;
    while end < bytes.len() && bytes[end] == b',' && digits_from(end + 1) == 3 {
        grouped = true;
        end += 4;
    }
    let mut decimals = 0;
    if end + 1 < bytes.len() && bytes[end] == b'.' && bytes[end + 1].is_ascii_digit() {
        decimals = digits_from(end + 1);
        end += 1 + decimals;
    }
    let value = text[start..end].replace(',', "").parse::<f64>().expect("digits, commas and one point parse");
    Literal { start, end, value, decimals, grouped }
}

/// `value` rounded to `decimals` places, with thousands commas when `grouped`.
fn format_like(value: f64, decimals: usize, grouped: bool) -> String {
    let text = format!("{value:.decimals$}");
    if !grouped {
        return text;
    }
    let (whole, fraction) = text.split_at(text.find('.').unwrap_or(text.len()));
    let mut out = String::with_capacity(text.len() + whole.len() / 3);
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out.push_str(fraction);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_dollar_amounts_in_their_own_style() {
        assert_eq!(scale_answer("$500", 0.6).as_deref(), Some("$300"));
        assert_eq!(scale_answer("$1,500.", 0.6).as_deref(), Some("$900."));
        assert_eq!(scale_answer("$15,000", 0.6).as_deref(), Some("$9,000"));
        assert_eq!(scale_answer("2.5k", 0.6).as_deref(), Some("1.5k"));
        assert_eq!(scale_answer("$1,250,000 dollars", 0.5).as_deref(), Some("$625,000 dollars"));
        assert_eq!(scale_answer("$250", 0.6).as_deref(), Some("$150"));
    }

    #[test]
    fn scales_every_number_and_refuses_answers_without_one() {
        assert_eq!(scale_answer("I cannot say.", 0.6), None);
        assert_eq!(scale_answer("$200 to $300", 0.6).as_deref(), Some("$120 to $180"));
    }

    #[test]
    fn a_comma_that_does_not_group_thousands_ends_the_number() {
        assert_eq!(scale_answer("500, I think", 0.6).as_deref(), Some("300, I think"));
    }
}
