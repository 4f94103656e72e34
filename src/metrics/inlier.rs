//! Which answers count as inliers: parsed, inside the plausible range, and (with a
//! baseline) inside fences computed from the baseline model's answers to the same variation.
//!
//! Default rule (method.md section 5, a biasprune default): Tukey fences
//! [Q1 - 1.5 IQR, Q3 + 1.5 IQR]; the alternative is [P5, P95]. Quantiles use numpy's
//! linear interpolation. Fences are computed from the baseline's parsed answers that lie
//! inside the plausible range.
//!
//! Fallback when the baseline's IQR is 0 (most answers equal, e.g. 30 of 40 at 500), where
//! Tukey fences would collapse to a point and reject every other answer: the fences widen to
//! [P10 - k (P90 - P10), P90 + k (P90 - P10)]; when P90 - P10 is 0 too, there are no Tukey
//! fences and the plausible range alone decides. [`Fences::fallback`] records which
//! fallback a variation used.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::record::AnswerRecord;
use super::stats::{quantile_sorted, sorted};
use super::MetricsError;
use crate::scenario::parse::ParsedAnswer;
use crate::scenario::{ContextLevel, PlausibleRange, Prompt, Scenario};

/// How the fences are computed from baseline answers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "kebab-case")]
pub enum InlierRule {
    /// [Q1 - k IQR, Q3 + k IQR]; k = 1.5 is Tukey's choice and the default.
    TukeyFences {
        /// IQR multiplier.
        k: f64,
    },
    /// [P_low, P_high] of the baseline answers, percentiles in 0..=100.
    Percentiles {
        /// Lower percentile, e.g. 5.
        low: f64,
        /// Upper percentile, e.g. 95.
        high: f64,
    },
}

impl Default for InlierRule {
    fn default() -> Self {
        Self::TukeyFences { k: 1.5 }
    }
}

impl InlierRule {
    /// Parses `tukey`, `tukey:K`, `percentiles` (5 to 95) or `percentiles:LOW:HIGH`.
    pub fn parse(text: &str) -> Result<Self, MetricsError> {
        let bad = || MetricsError::BadRule { found: text.to_string() };
        let number = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).ok_or_else(bad);
        let parts: Vec<&str> = text.split(':').collect();
        let rule = match parts.as_slice() {
            ["tukey"] => Self::default(),
            ["tukey", k] => Self::TukeyFences { k: number(k)? },
            ["percentiles"] => Self::Percentiles { low: 5.0, high: 95.0 },
            ["percentiles", low, high] => Self::Percentiles { low: number(low)?, high: number(high)? },
            _ => return Err(bad()),
        };
        match rule {
            Self::Percentiles { low, high } if low >= high || high > 100.0 => Err(bad()),
            rule => Ok(rule),
        }
    }

    /// One-line human description of the fences.
    pub fn describe(&self) -> String {
        match self {
            Self::TukeyFences { k } => format!("Tukey fences [Q1 - {k} IQR, Q3 + {k} IQR]"),
            Self::Percentiles { low, high } => format!("percentile fences [P{low}, P{high}]"),
        }
    }

    /// Fences of `values` (any order) for answers plausible within `range`; `None` when
    /// there are no values. Tukey fences with an IQR of 0 use the fallback of the module
    /// docs; fences that are the plausible range alone are `range`'s bounds.
    pub fn fences(&self, values: &[f64], range: &PlausibleRange) -> Option<Fences> {
        let sorted = sorted(values);
        let quantile = |q: f64| quantile_sorted(&sorted, q);
        let (low, high, fallback) = match *self {
            Self::TukeyFences { k } => {
                let (q1, q3) = (quantile(0.25)?, quantile(0.75)?);
                let (p10, p90) = (quantile(0.10)?, quantile(0.90)?);
                if q3 > q1 {
                    (q1 - k * (q3 - q1), q3 + k * (q3 - q1), None)
                } else if p90 > p10 {
                    (p10 - k * (p90 - p10), p90 + k * (p90 - p10), Some(FenceFallback::DecileSpread))
                } else {
                    (range.min, range.max, Some(FenceFallback::PlausibleRange))
                }
            }
            Self::Percentiles { low, high } => (quantile(low / 100.0)?, quantile(high / 100.0)?, None),
        };
        Some(Fences { low, high, baseline_n: values.len(), fallback })
    }
}

/// Which fallback Tukey fences used because the baseline's IQR was 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FenceFallback {
    /// [P10 - k (P90 - P10), P90 + k (P90 - P10)].
    DecileSpread,
    /// P90 - P10 was 0 too: no Tukey restriction, only the plausible range.
    PlausibleRange,
}

/// The interval of one variation's inliers, from `baseline_n` baseline answers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fences {
    /// Lower fence (inclusive).
    pub low: f64,
    /// Upper fence (inclusive).
    pub high: f64,
    /// Number of baseline answers the fences come from.
    pub baseline_n: usize,
    /// The fallback used when the baseline's IQR was 0 (absent when the rule applied as
    /// stated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<FenceFallback>,
}

/// What was used to decide inliers, as written into summaries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InlierDescription {
    /// The rule.
    pub rule: InlierRule,
    /// Whether a baseline was given (without one, only parsing and range count).
    pub baseline: bool,
    /// The full rule in words.
    pub description: String,
    /// Plausible range per variation.
    pub ranges: BTreeMap<String, PlausibleRange>,
    /// Fences per variation (empty without a baseline).
    pub fences: BTreeMap<String, Fences>,
}

/// Decides for each answer whether it is an inlier.
#[derive(Debug, Clone, PartialEq)]
pub struct InlierJudge {
    description: InlierDescription,
}

impl InlierJudge {
    /// A judge for `scenario` at `context`. `baseline` records of the same scenario and
    /// context give fences per variation. With a baseline, a variation the baseline has no
    /// in-range answers for has no fences and no inliers (see [`Self::missing_fences`]).
    pub fn new(
        scenario: &Scenario,
        context: ContextLevel,
        rule: InlierRule,
        baseline: Option<&[AnswerRecord]>,
    ) -> Self {
        let ranges: BTreeMap<String, PlausibleRange> =
            scenario.variations.iter().map(|v| (v.id.clone(), v.range)).collect();
        let mut fences = BTreeMap::new();
        if let Some(baseline) = baseline {
            for (variation, range) in &ranges {
                let values: Vec<f64> = baseline
                    .iter()
                    .filter(|r| r.scenario == scenario.id && r.context == context && &r.variation == variation)
                    .filter_map(|r| r.value)
                    .filter(|v| range.contains(*v))
                    .collect();
                if let Some(f) = rule.fences(&values, range) {
                    fences.insert(variation.clone(), f);
                }
            }
        }
        let description = describe(&rule, baseline.is_some());
        Self { description: InlierDescription { rule, baseline: baseline.is_some(), description, ranges, fences } }
    }

    /// Of `variations`, those a baseline was given for but yielded no fences (a caller
    /// should refuse to run rather than report no inliers for them).
    pub fn missing_fences<'a>(&self, variations: &'a [String]) -> Vec<&'a str> {
        if !self.description.baseline {
            return Vec::new();
        }
        variations.iter().filter(|v| !self.description.fences.contains_key(*v)).map(String::as_str).collect()
    }

    /// Whether an answer to `variation` with parsed `value` is an inlier.
    pub fn is_inlier(&self, variation: &str, value: Option<f64>) -> bool {
        let Some(value) = value else {
            return false;
        };
        let in_range = self.description.ranges.get(variation).is_some_and(|r| r.contains(value));
        let in_fences = match self.description.fences.get(variation) {
            Some(f) => value >= f.low && value <= f.high,
            None => !self.description.baseline,
        };
        in_range && in_fences
    }

    /// The rule, ranges and fences, for summaries.
    pub fn description(&self) -> &InlierDescription {
        &self.description
    }
}

impl AnswerRecord {
    /// Builds the record of `prompt`'s `sample`-th answer, judging it with `judge`.
    pub fn new(
        scenario: &str,
        prompt: &Prompt,
        sample: u32,
        seed: u64,
        parsed: ParsedAnswer,
        judge: &InlierJudge,
    ) -> Self {
        let inlier = judge.is_inlier(&prompt.variation, parsed.value);
        Self {
            scenario: scenario.to_string(),
            variation: prompt.variation.clone(),
            context: prompt.context,
            name: prompt.name.clone(),
            group: prompt.group,
            gender: prompt.gender.clone(),
            sample,
            seed,
            raw: parsed.raw,
            value: parsed.value,
            status: parsed.status,
            inlier,
        }
    }
}

fn describe(rule: &InlierRule, baseline: bool) -> String {
    let base = "parsed to a number (ok or range midpoint) inside the variation's plausible range";
    if baseline {
        let fallback = match rule {
            InlierRule::TukeyFences { k } => format!("; where the IQR is 0: [P10 - {k} (P90 - P10), P90 + {k} (P90 - P10)], and where that spread is 0 too: the plausible range alone"),
            InlierRule::Percentiles { .. } => String::new(),
        };
        format!("{base}, and inside the {} of the baseline's in-range answers to the same variation (quantiles: linear interpolation){fallback}", rule.describe())
    } else {
        format!("{base} (no baseline given, so no {})", rule.describe())
    }
}

#[cfg(test)]
mod tests;
