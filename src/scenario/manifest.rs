//! The scenario manifest schema (serde, unknown keys rejected) and its validation into a
//! [`Scenario`]. Every check names the file and the key at fault.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use super::error::{Result, ScenarioError};
use super::names::{NameGroup, NameList};
use super::template::{self, Template};
use super::{AnswerKind, ContextLevel, PlausibleRange, Scenario, Variation, WorseSide};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    id: String,
    description: String,
    template: String,
    contexts: Vec<ContextLevel>,
    answer: RawAnswer,
    groups: RawGroups,
    variations: Vec<RawVariation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswer {
    kind: AnswerKind,
    range: Option<[f64; 2]>,
    #[serde(default)]
    worse: WorseSide,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroups {
    names: String,
    majority: String,
    minority: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariation {
    id: String,
    #[serde(default)]
    slots: BTreeMap<String, String>,
    range: Option<[f64; 2]>,
    #[serde(default)]
    context: BTreeMap<ContextLevel, String>,
}

/// Validation context: the file being read, for error messages.
struct Checker<'a> {
    path: &'a Path,
}

impl Checker<'_> {
    fn invalid(&self, key: impl Into<String>, expected: impl Into<String>, found: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.path.to_path_buf(),
            key: key.into(),
            expected: expected.into(),
            found: found.into(),
        }
    }

    fn template(&self, key: &str, text: &str) -> Result<Template> {
        Template::parse(text).map_err(|source| ScenarioError::Template {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            source,
        })
    }

    fn id(&self, key: &str, id: &str) -> Result<()> {
        let ok =
            !id.is_empty() && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok {
            return Ok(());
        }
        Err(self.invalid(key, "an id of a-z, 0-9, `-` and `_`", format!("{id:?}")))
    }

    /// A name-list id: it becomes a file name (`names/<id>.toml`), so it must not be a path.
    fn names_id(&self, key: &str, id: &str) -> Result<()> {
        let ok = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            return Ok(());
        }
        Err(self.invalid(
            key,
            "a name-list id of letters, digits, `-` and `_` (a built-in list or names/<id>.toml), not a path",
            format!("{id:?}"),
        ))
    }

    fn range(
        &self,
        key: &str,
        kind: AnswerKind,
        raw: Option<[f64; 2]>,
        fallback: Option<PlausibleRange>,
    ) -> Result<PlausibleRange> {
        let range = match (raw, fallback) {
            (Some([min, max]), _) => PlausibleRange { min, max },
            (None, Some(range)) => return Ok(range),
            (None, None) => {
                return Err(self.invalid(
                    key,
                    format!("a plausible range [min, max] (answer kind `{}` has no default)", kind.as_str()),
                    "nothing",
                ))
            }
        };
        let bounds = kind.bounds();
        if !(range.min.is_finite() && range.max.is_finite() && range.min < range.max && range.within(&bounds)) {
            return Err(self.invalid(
                key,
                format!("finite [min, max] with min < max inside {bounds} for `{}`", kind.as_str()),
                range.to_string(),
            ));
        }
        Ok(range)
    }
}

impl Scenario {
    /// Parses and validates a manifest's text. `path` names the file in errors and
    /// `resolve_names` finds the name list the manifest refers to by id.
    pub fn from_toml(text: &str, path: &Path, resolve_names: &dyn Fn(&str) -> Result<NameList>) -> Result<Self> {
        let raw: RawScenario = toml::from_str(text)
            .map_err(|e| ScenarioError::Syntax { path: path.to_path_buf(), message: e.to_string() })?;
        let check = Checker { path };
        check.id("id", &raw.id)?;
        let template = check.template("template", &raw.template)?;
        let contexts = check_contexts(&check, &raw.contexts)?;
        let default_range = raw.answer.kind.default_range();
        let range = check.range("answer.range", raw.answer.kind, raw.answer.range, default_range)?;
        let variations = check_variations(&check, &template, &contexts, raw.answer.kind, range, raw.variations)?;
        check.names_id("groups.names", &raw.groups.names)?;
        let names = resolve_names(&raw.groups.names)?;
        let majority = pick_group(&check, &names, "groups.majority", &raw.groups.majority)?;
        let minority = pick_group(&check, &names, "groups.minority", &raw.groups.minority)?;
        if majority.id == minority.id {
            return Err(check.invalid(
                "groups.minority",
                "a group different from groups.majority",
                format!("{:?}", minority.id),
            ));
        }
        Ok(Self {
            id: raw.id,
            description: raw.description,
            template_text: raw.template,
            contexts,
            answer: raw.answer.kind,
            worse: raw.answer.worse,
            variations,
            names: names.id,
            majority,
            minority,
            path: path.to_path_buf(),
            template,
        })
    }
}

fn check_contexts(check: &Checker, contexts: &[ContextLevel]) -> Result<Vec<ContextLevel>> {
    if contexts.is_empty() {
        return Err(check.invalid("contexts", "at least one of \"low\", \"high\", \"numeric\"", "an empty list"));
    }
    let mut seen = BTreeSet::new();
    for level in contexts {
        if !seen.insert(*level) {
            return Err(ScenarioError::Duplicate {
                path: check.path.to_path_buf(),
                key: "contexts".to_string(),
                what: "context level",
                id: level.as_str().to_string(),
            });
        }
    }
    Ok(contexts.to_vec())
}

fn check_variations(
    check: &Checker,
    template: &Template,
    contexts: &[ContextLevel],
    kind: AnswerKind,
    range: PlausibleRange,
    raw: Vec<RawVariation>,
) -> Result<Vec<Variation>> {
    if raw.is_empty() {
        return Err(check.invalid("variations", "at least one [[variations]] entry", "none"));
    }
    let slots: Vec<&str> =
        template.placeholders().into_iter().filter(|p| *p != template::NAME && *p != template::CONTEXT).collect();
    let mut seen = BTreeSet::new();
    let mut variations = Vec::new();
    for (index, variation) in raw.into_iter().enumerate() {
        check.id(&format!("variations[{index}].id"), &variation.id)?;
        if !seen.insert(variation.id.clone()) {
            return Err(ScenarioError::Duplicate {
                path: check.path.to_path_buf(),
                key: format!("variations[{index}].id"),
                what: "variation id",
                id: variation.id,
            });
        }
        variations.push(check_variation(check, template, &slots, contexts, kind, range, variation)?);
    }
    Ok(variations)
}

fn check_variation(
    check: &Checker,
    template: &Template,
    slots: &[&str],
    contexts: &[ContextLevel],
    kind: AnswerKind,
    range: PlausibleRange,
    raw: RawVariation,
) -> Result<Variation> {
    let key = format!("variations.{}", raw.id);
    require_slots(check, &format!("{key}.slots"), slots, &raw.slots)?;
    if let Some(unused) = raw.slots.keys().find(|k| !slots.contains(&k.as_str())) {
        return Err(check.invalid(
            format!("{key}.slots.{unused}"),
            "only slots the template uses",
            format!("`{unused}`, which the template does not contain"),
        ));
    }
    let context_templates = check_context_sentences(check, &key, template, contexts, &raw.slots, &raw.context)?;
    let range = check.range(&format!("{key}.range"), kind, raw.range, Some(range))?;
    Ok(Variation { id: raw.id, slots: raw.slots, context: raw.context, range, context_templates })
}

fn require_slots(check: &Checker, key: &str, needed: &[&str], slots: &BTreeMap<String, String>) -> Result<()> {
    match needed.iter().find(|slot| !slots.contains_key(**slot)) {
        Some(slot) => Err(ScenarioError::MissingSlot {
            path: check.path.to_path_buf(),
            key: key.to_string(),
            slot: slot.to_string(),
        }),
        None => Ok(()),
    }
}

fn check_context_sentences(
    check: &Checker,
    key: &str,
    template: &Template,
    contexts: &[ContextLevel],
    slots: &BTreeMap<String, String>,
    sentences: &BTreeMap<ContextLevel, String>,
) -> Result<BTreeMap<ContextLevel, Template>> {
    let listed = contexts.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ");
    for level in contexts.iter().filter(|level| **level != ContextLevel::Low) {
        if !sentences.contains_key(level) {
            let expected = format!("a sentence, because `contexts` lists `{}`", level.as_str());
            return Err(check.invalid(format!("{key}.context.{}", level.as_str()), expected, "nothing"));
        }
    }
    let has_context_slot = template.placeholders().contains(&template::CONTEXT);
    let mut parsed = BTreeMap::new();
    for (level, sentence) in sentences {
        let sentence_key = format!("{key}.context.{}", level.as_str());
        if !contexts.contains(level) {
            return Err(check.invalid(
                sentence_key,
                format!("only levels listed in `contexts` ({listed})"),
                level.as_str(),
            ));
        }
        if !has_context_slot {
            return Err(check.invalid(
                "template",
                "a `{context}` placeholder, because variations have context sentences",
                "none",
            ));
        }
        let sentence_template = check.template(&sentence_key, sentence)?;
        let needed: Vec<&str> = sentence_template.placeholders().into_iter().filter(|p| *p != template::NAME).collect();
        require_slots(check, &sentence_key, &needed, slots)?;
        parsed.insert(*level, sentence_template);
    }
    Ok(parsed)
}

fn pick_group(check: &Checker, names: &NameList, key: &str, id: &str) -> Result<NameGroup> {
    names.groups.get(id).cloned().ok_or_else(|| {
        let available = names.groups.keys().cloned().collect::<Vec<_>>().join(", ");
        check.invalid(key, format!("a group of names list `{}` ({available})", names.id), format!("{id:?}"))
    })
}
