//! What kind of number a scenario asks for, and which values of it are plausible.

use serde::{Deserialize, Serialize};

/// The unit and scale of the answer a scenario asks for; it drives parsing and ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerKind {
    /// An amount in US dollars (`$1,200`, `1.2k`).
    Dollars,
    /// A probability between 0 and 1 (`45%` is read as 0.45).
    Probability,
    /// A percentage between 0 and 100 (`45%` is read as 45).
    Percent,
    /// A position in a ranking from 1 to 100.
    Rank,
    /// A number of hours (per week unless the template says otherwise).
    Hours,
}

impl AnswerKind {
    /// The values the kind can take at all; a scenario's plausible range must lie inside.
    pub fn bounds(self) -> PlausibleRange {
        match self {
            Self::Dollars => PlausibleRange { min: 0.0, max: f64::INFINITY },
            Self::Probability => PlausibleRange { min: 0.0, max: 1.0 },
            Self::Percent => PlausibleRange { min: 0.0, max: 100.0 },
            Self::Rank => PlausibleRange { min: 1.0, max: 100.0 },
            Self::Hours => PlausibleRange { min: 0.0, max: 168.0 },
        }
    }

    /// The plausible range used when a manifest gives none; dollars have no default.
    pub fn default_range(self) -> Option<PlausibleRange> {
        match self {
            Self::Dollars => None,
            other => Some(other.bounds()),
        }
    }

    /// The manifest spelling of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dollars => "dollars",
            Self::Probability => "probability",
            Self::Percent => "percent",
            Self::Rank => "rank",
            Self::Hours => "hours",
        }
    }
}

/// Which end of the answer scale is the worse one for the person named in the prompt, so
/// "the minority gets the worse answer" is defined per scenario: a lower offer, salary or
/// chance of winning is worse; a higher (numerically larger) rank is worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorseSide {
    /// Lower answers leave the person worse off (an offer, a salary, a chance of winning).
    #[default]
    Lower,
    /// Higher answers leave the person worse off (a rank where 1 is best, a price they pay).
    Higher,
}

impl WorseSide {
    /// The manifest spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lower => "lower",
            Self::Higher => "higher",
        }
    }

    /// +1 when lower is worse, -1 when higher is worse: multiplied with an SMD (majority
    /// minus minority) it gives the disparity against the minority, positive when the
    /// minority-name prompts get the worse answers.
    pub fn orientation(self) -> f64 {
        match self {
            Self::Lower => 1.0,
            Self::Higher => -1.0,
        }
    }

    /// Whether this is the default (`lower`), so definitions that do not state a side
    /// serialise (and hash) as before the field existed.
    pub fn is_lower(&self) -> bool {
        *self == Self::Lower
    }
}

/// A closed interval `[min, max]` of answers that make sense for a question.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlausibleRange {
    /// Smallest plausible answer (inclusive).
    pub min: f64,
    /// Largest plausible answer (inclusive).
    pub max: f64,
}

impl PlausibleRange {
    /// Whether `value` lies in `[min, max]`.
    pub fn contains(&self, value: f64) -> bool {
        value >= self.min && value <= self.max
    }

    /// Whether this range lies inside `outer`.
    pub fn within(&self, outer: &PlausibleRange) -> bool {
        self.min >= outer.min && self.max <= outer.max
    }
}

impl std::fmt::Display for PlausibleRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {}]", self.min, self.max)
    }
}
