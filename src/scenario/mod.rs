//! Scenarios: the use case stated as data (question template, variations, context levels,
//! answer kind, name groups), loaded from TOML manifests, and the prompts they expand to.
//!
//! Manifests live in `manifests/scenarios/*.toml` (built into the binary) or in a user
//! directory; name lists in `manifests/names/*.toml`. See `manifests/README.md`.

mod answer;
mod catalog;
mod error;
mod manifest;
mod names;
pub mod parse;
mod split;
mod template;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use answer::{AnswerKind, PlausibleRange, WorseSide};
pub use catalog::{installed_names, Catalog, Origin};
pub use error::{Result, ScenarioError};
pub use names::{NameGroup, NameList, Person};
pub use split::NameSplit;
pub use template::{Template, TemplateError, UnfilledSlot};

/// How much the prompt tells about the object of the question (the audit's three levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContextLevel {
    /// No details beyond the question.
    Low,
    /// A qualitative description (e.g. "The bicycle is a 2021 Trek Verve 3 Disc.").
    High,
    /// A numeric anchor (e.g. "... with a Bicycle Blue Book value of $500.").
    Numeric,
}

impl ContextLevel {
    /// The manifest and command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::High => "high",
            Self::Numeric => "numeric",
        }
    }

    /// Parses the manifest spelling (`low`, `high`, `numeric`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "low" => Some(Self::Low),
            "high" => Some(Self::High),
            "numeric" => Some(Self::Numeric),
            _ => None,
        }
    }
}

/// Which side of the comparison a name belongs to. SMD is majority minus minority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// The reference group (White-associated names in the shipped scenarios).
    Majority,
    /// The compared group (Black-associated names in the shipped scenarios).
    Minority,
}

/// Command-line spelling: `minority`, `majority`, listed minority first. Written by hand
/// rather than derived because the derive lists variants in declaration order, and the
/// declaration order is the serialized order (`Ord`), majority first.
#[cfg(feature = "cli")]
impl clap::ValueEnum for Group {
    fn value_variants<'a>() -> &'a [Self] {
        &[Group::Minority, Group::Majority]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(match self {
            Group::Minority => clap::builder::PossibleValue::new("minority").help("Minority-name prompts"),
            Group::Majority => clap::builder::PossibleValue::new("majority").help("Majority-name prompts"),
        })
    }
}

impl std::fmt::Display for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Group::Majority => "majority",
            Group::Minority => "minority",
        })
    }
}

/// One variation of a scenario: the values of its slots and its context sentences.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variation {
    /// Id, unique within the scenario (e.g. "bicycle").
    pub id: String,
    /// Value of every template slot other than `name` and `context`.
    pub slots: BTreeMap<String, String>,
    /// Extra sentence per context level (may contain `{name}` and slots); absent = none.
    pub context: BTreeMap<ContextLevel, String>,
    /// Plausible answers for this variation (the scenario's range unless overridden).
    pub range: PlausibleRange,
    #[serde(skip)]
    context_templates: BTreeMap<ContextLevel, Template>,
}

/// A validated scenario manifest with its name groups resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// Scenario id, e.g. "purchase".
    pub id: String,
    /// One-line human description.
    pub description: String,
    /// The template text as written in the manifest.
    pub template_text: String,
    /// Context levels this scenario supports, in manifest order.
    pub contexts: Vec<ContextLevel>,
    /// Kind of answer asked for.
    pub answer: AnswerKind,
    /// Which end of the answer scale leaves the named person worse off (`[answer] worse`,
    /// default lower); not serialised when lower, so older definitions keep their digest.
    #[serde(skip_serializing_if = "WorseSide::is_lower")]
    pub worse: WorseSide,
    /// Variations in manifest order.
    pub variations: Vec<Variation>,
    /// Id of the name list the groups come from.
    pub names: String,
    /// Majority group (first in prompt order).
    pub majority: NameGroup,
    /// Minority group.
    pub minority: NameGroup,
    /// File the scenario was loaded from (built-in ones: `<built-in>/manifests/...`).
    pub path: PathBuf,
    #[serde(skip)]
    template: Template,
}

/// One prompt to send to the model, with the labels its answers are grouped by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// Variation id.
    pub variation: String,
    /// Context level.
    pub context: ContextLevel,
    /// Full name in the prompt.
    pub name: String,
    /// Majority or minority.
    pub group: Group,
    /// Gender label of the name.
    pub gender: String,
    /// The user-turn text, fully substituted.
    pub text: String,
}

impl Scenario {
    /// Expands the scenario into prompts for one context level and the chosen variations
    /// (`None`: all). Order: variations in manifest order, then majority before minority,
    /// then names in list order; the same inputs always give the same list.
    pub fn prompts(&self, context: ContextLevel, variations: Option<&[String]>) -> Result<Vec<Prompt>> {
        self.check_context(context)?;
        let selected = self.select_variations(variations)?;
        let mut prompts = Vec::new();
        for variation in selected {
            for (group, members) in [(Group::Majority, &self.majority), (Group::Minority, &self.minority)] {
                for person in &members.people {
                    prompts.push(Prompt {
                        variation: variation.id.clone(),
                        context,
                        name: person.name.clone(),
                        group,
                        gender: person.gender.clone(),
                        text: self.render(variation, context, &person.name)?,
                    });
                }
            }
        }
        Ok(prompts)
    }

    /// The variation with id `id`.
    pub fn variation(&self, id: &str) -> Result<&Variation> {
        self.variations.iter().find(|v| v.id == id).ok_or_else(|| ScenarioError::Unknown {
            scenario: self.id.clone(),
            what: "variation",
            id: id.to_string(),
            available: self.variations.iter().map(|v| v.id.as_str()).collect::<Vec<_>>().join(", "),
        })
    }

    fn check_context(&self, context: ContextLevel) -> Result<()> {
        if self.contexts.contains(&context) {
            return Ok(());
        }
        Err(ScenarioError::Unknown {
            scenario: self.id.clone(),
            what: "context level",
            id: context.as_str().to_string(),
            available: self.contexts.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "),
        })
    }

    fn select_variations(&self, wanted: Option<&[String]>) -> Result<Vec<&Variation>> {
        let Some(wanted) = wanted else {
            return Ok(self.variations.iter().collect());
        };
        for id in wanted {
            self.variation(id)?;
        }
        Ok(self.variations.iter().filter(|v| wanted.contains(&v.id)).collect())
    }

    /// Substitutes everything; load-time validation makes a missing slot impossible, but
    /// it is still reported rather than papered over.
    fn render(&self, variation: &Variation, context: ContextLevel, name: &str) -> Result<String> {
        let missing = |key: String| {
            move |unfilled: UnfilledSlot| ScenarioError::MissingSlot {
                path: self.path.clone(),
                key: key.clone(),
                slot: unfilled.slot,
            }
        };
        let mut values: BTreeMap<&str, &str> = variation.slots.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        values.insert(template::NAME, name);
        let sentence = match variation.context_templates.get(&context) {
            Some(sentence) => {
                let key = format!("variations.{}.context.{}", variation.id, context.as_str());
                format!("{} ", sentence.render(&values).map_err(missing(key))?)
            }
            None => String::new(),
        };
        values.insert(template::CONTEXT, &sentence);
        self.template.render(&values).map_err(missing("template".to_string()))
    }
}

#[cfg(test)]
mod tests;
