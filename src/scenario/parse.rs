//! Reading a number out of a model's free-text answer, per answer kind.
//!
//! Rules: numbers may carry `$`, thousands commas (`1,200`), decimals, a multiplier
//! (`k`, `thousand`, `m`, `million`, `b`, `bn`, `billion`) and a `%` or `percent`; a trailing
//! `.` ends a sentence; a `-` that cannot join a range is a minus sign.
//! No number: unparseable. One number, or several that agree: ok. Two numbers joined by `-`, `–`, `—`, `to`, or `between ... and`: a range, read as its
//! midpoint and flagged. Anything else with several numbers: ambiguous (no value).
//! For probabilities `45%` is read as 0.45; for percentages `45%` is 45 and `0.45` stays 0.45.
//! An answer that generation cut off at its token limit while writing a number is truncated
//! (no value): see `ends_inside_number` for the rule.

use serde::{Deserialize, Serialize};

use super::AnswerKind;

/// How a value was obtained from an answer, or why none was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParseStatus {
    /// One number (or several equal ones).
    Ok,
    /// A range "A to B": the value is its midpoint.
    RangeMidpoint,
    /// Several numbers that disagree and do not form a range: no value.
    Ambiguous,
    /// No number at all: no value.
    Unparseable,
    /// Generation stopped at its token limit while the answer was still writing a number
    /// (`... is $2`): what was read may be a prefix of the intended number, so no value.
    Truncated,
}

/// The outcome of parsing one answer; the raw text is always kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParsedAnswer {
    /// The model's answer exactly as generated.
    pub raw: String,
    /// The number read, on the answer kind's scale; `None` unless status is ok or range
    /// midpoint.
    pub value: Option<f64>,
    /// How the value was obtained.
    pub status: ParseStatus,
}

impl ParsedAnswer {
    /// Whether the answer yielded a value (ok or range midpoint).
    pub fn is_parsed(&self) -> bool {
        self.value.is_some()
    }
}

/// A number found in the text, with where it was and how it was written.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Found {
    base: f64,
    multiplier: f64,
    percent: bool,
    start: usize,
    end: usize,
}

/// Parses `raw` as an answer of kind `kind`.
pub fn parse_answer(raw: &str, kind: AnswerKind) -> ParsedAnswer {
    let chars: Vec<char> = raw.chars().collect();
    let found = find_numbers(&chars);
    let (value, status) = classify(&chars, &found, kind);
    ParsedAnswer { raw: raw.to_string(), value, status }
}

/// Parses a generated answer: like `parse_answer`, except that an answer whose generation
/// hit its token limit (`hit_limit`) and that `ends_inside_number` is `Truncated`, with no
/// value. An answer that ended with a stop token is never truncated.
pub fn parse_completion(raw: &str, kind: AnswerKind, hit_limit: bool) -> ParsedAnswer {
    if hit_limit && ends_inside_number(raw) {
        return ParsedAnswer { raw: raw.to_string(), value: None, status: ParseStatus::Truncated };
    }
    parse_answer(raw, kind)
}

/// Whether `text`, once trailing whitespace is trimmed, stops where a number could still go
/// on, so that a cut-off answer's last number may be a prefix of what the model meant:
/// - its last character is an ASCII digit (`is $2`, `$1,2`, `0.4`);
/// - it ends with `,` or `.` right after a digit (`$1,` before `200`, `0.` before `45`;
///   a full stop after a number, `$500.`, is therefore also taken as cut off);
/// - it ends with a range dash `-`, `–` or `—` after a digit, spaces allowed between
///   (`300-`, `300 –`): the range's upper bound is missing;
/// - it ends with `$`: the number had not started.
///
/// Anything else ends the number: a letter (`2k`, `45 percent`, `500 dollars and`), `%`, `)`,
/// `*`. A multiplier word cut short (`$1.5 mill`) is therefore read without it.
pub fn ends_inside_number(text: &str) -> bool {
    let text = text.trim_end();
    let Some(last) = text.chars().next_back() else {
        return false;
    };
    let before = &text[..text.len() - last.len_utf8()];
    let follows_digit = |before: &str| before.ends_with(|c: char| c.is_ascii_digit());
    match last {
        '0'..='9' | '$' => true,
        ',' | '.' => follows_digit(before),
        '-' | '–' | '—' => follows_digit(before.trim_end()),
        _ => false,
    }
}

fn classify(chars: &[char], found: &[Found], kind: AnswerKind) -> (Option<f64>, ParseStatus) {
    match found {
        [] => (None, ParseStatus::Unparseable),
        [one] => (Some(scaled(one, kind)), ParseStatus::Ok),
        [first, second] if is_range(chars, first, second) => {
            let first = inherit_units(first, second);
            (Some((scaled(&first, kind) + scaled(second, kind)) / 2.0), ParseStatus::RangeMidpoint)
        }
        [first, rest @ ..] => {
            let value = scaled(first, kind);
            if rest.iter().all(|other| agrees(value, scaled(other, kind))) {
                (Some(value), ParseStatus::Ok)
            } else {
                (None, ParseStatus::Ambiguous)
            }
        }
    }
}

fn scaled(number: &Found, kind: AnswerKind) -> f64 {
    let value = number.base * number.multiplier;
    if number.percent && kind == AnswerKind::Probability {
        value / 100.0
    } else {
        value
    }
}

fn agrees(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// "3-4k" and "40-50%": the first bound takes the second's multiplier and percent sign
/// when it has none and is no larger than the second bound's digits.
fn inherit_units(first: &Found, second: &Found) -> Found {
    let mut first = *first;
    if first.multiplier == 1.0 && first.base <= second.base {
        first.multiplier = second.multiplier;
    }
    first.percent |= second.percent;
    first
}

fn is_range(chars: &[char], first: &Found, second: &Found) -> bool {
    let between: String = chars[first.end..second.start].iter().filter(|c| **c != '$').collect();
    let between = between.trim().to_lowercase();
    if matches!(between.as_str(), "-" | "–" | "—" | "to" | "~") {
        return true;
    }
    let before: String = chars[..first.start].iter().collect();
    between == "and" && before.to_lowercase().trim_end().trim_end_matches('$').trim_end().ends_with("between")
}

fn find_numbers(chars: &[char]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts_number =
            chars[i].is_ascii_digit() || (chars[i] == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        if starts_number {
            let mut number = read_number(chars, i);
            i = number.end;
            if is_minus_sign(chars, number.start, found.last()) {
                number.base = -number.base;
                number.start -= 1;
            }
            if (number.base * number.multiplier).is_finite() {
                found.push(number);
            }
        } else {
            i += 1;
        }
    }
    found
}

/// A `-` right before the digits is a minus sign when it starts the text or follows a space
/// or `(`, and no number precedes it with only spaces between (then it joins a range).
fn is_minus_sign(chars: &[char], start: usize, previous: Option<&Found>) -> bool {
    let Some(dash) = start.checked_sub(1) else {
        return false;
    };
    if chars[dash] != '-' {
        return false;
    }
    let opens = dash == 0 || chars[dash - 1].is_whitespace() || chars[dash - 1] == '(';
    let joins_previous = previous.is_some_and(|p| p.end > dash || chars[p.end..dash].iter().all(|c| c.is_whitespace()));
    opens && !joins_previous
}

fn read_number(chars: &[char], start: usize) -> Found {
    let mut end = skip_digits(chars, start);
    while chars.get(end) == Some(&',') && is_thousands_group(chars, end + 1) {
        end += 4;
    }
    if chars.get(end) == Some(&'.') && chars.get(end + 1).is_some_and(char::is_ascii_digit) {
        end = skip_digits(chars, end + 1);
    }
    let digits: String = chars[start..end].iter().filter(|c| **c != ',').collect();
    let base = digits.parse::<f64>().unwrap_or(f64::NAN);
    let (multiplier, end) = read_multiplier(chars, end);
    let (percent, end) = read_percent(chars, end);
    Found { base, multiplier, percent, start, end }
}

fn skip_digits(chars: &[char], mut at: usize) -> usize {
    while chars.get(at).is_some_and(char::is_ascii_digit) {
        at += 1;
    }
    at
}

fn is_thousands_group(chars: &[char], at: usize) -> bool {
    (at..at + 3).all(|j| chars.get(j).is_some_and(char::is_ascii_digit))
        && !chars.get(at + 3).is_some_and(char::is_ascii_digit)
}

/// Reads `k`, `m`, `b`, `bn` right after the digits, or a word after one space.
fn read_multiplier(chars: &[char], at: usize) -> (f64, usize) {
    const SHORT: &[(&str, f64)] = &[("bn", 1e9), ("k", 1e3), ("m", 1e6), ("b", 1e9)];
    const WORDS: &[(&str, f64)] = &[("thousand", 1e3), ("million", 1e6), ("billion", 1e9)];
    for (suffix, factor) in SHORT {
        if let Some(end) = word_at(chars, at, suffix) {
            return (*factor, end);
        }
    }
    let after_space = if chars.get(at) == Some(&' ') { at + 1 } else { at };
    for (word, factor) in WORDS {
        if let Some(end) = word_at(chars, after_space, word) {
            return (*factor, end);
        }
    }
    (1.0, at)
}

fn read_percent(chars: &[char], at: usize) -> (bool, usize) {
    let after_space = if chars.get(at) == Some(&' ') { at + 1 } else { at };
    if chars.get(after_space) == Some(&'%') {
        return (true, after_space + 1);
    }
    match word_at(chars, after_space, "percent") {
        Some(end) => (true, end),
        None => (false, at),
    }
}

/// If `word` (lowercase) is at `at`, case-insensitively, and not followed by a letter,
/// the index after it.
fn word_at(chars: &[char], at: usize, word: &str) -> Option<usize> {
    let len = word.chars().count();
    let candidate = chars.get(at..at + len)?;
    let matches = candidate.iter().zip(word.chars()).all(|(c, w)| c.to_ascii_lowercase() == w);
    let ends_word = !chars.get(at + len).is_some_and(|c| c.is_alphabetic());
    (matches && ends_word).then_some(at + len)
}

#[cfg(test)]
mod tests;
