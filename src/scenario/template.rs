//! Prompt templates: `{placeholder}` parsing and substitution.
//!
//! A template is literal text with placeholders `{name}`, `{context}` and any number of
//! variation slots such as `{item}`. Placeholder names use `a-z`, `0-9`, `_` and `-`;
//! braces are not allowed anywhere else, so a typo cannot pass silently.

use std::collections::BTreeMap;

/// Placeholder replaced by the person's full name.
pub const NAME: &str = "name";
/// Placeholder replaced by the context sentence (plus one space) or by nothing.
pub const CONTEXT: &str = "context";

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Text copied as is.
    Text(String),
    /// A placeholder, by name without braces.
    Slot(String),
}

/// Why template text does not parse; each message names the brace or placeholder at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A closing brace with no opening brace before it.
    #[error("a `}}` without `{{` at byte {byte}")]
    UnopenedBrace {
        /// Byte offset of the `}` in the template.
        byte: usize,
    },
    /// An opening brace that is not closed before the next brace or the end.
    #[error("a `{{` without `}}` after `{before}`")]
    UnclosedBrace {
        /// The template text before the `{`.
        before: String,
    },
    /// A placeholder name outside `a-z`, `0-9`, `_` and `-` (or empty).
    #[error("placeholder `{{{name}}}` (names use a-z, 0-9, `_` and `-`)")]
    BadName {
        /// The text between the braces.
        name: String,
    },
}

/// A placeholder that `Template::render` was given no value for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("placeholder `{{{slot}}}` has no value")]
pub struct UnfilledSlot {
    /// The placeholder name, without braces.
    pub slot: String,
}

/// A template split into literal text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

impl Template {
    /// Parses `text`; the error says what is wrong with which brace or placeholder.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(TemplateError::UnopenedBrace { byte: text.len() - rest.len() + open });
            }
            if open > 0 {
                segments.push(Segment::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after.find(['{', '}']).filter(|&i| after[i..].starts_with('}')).ok_or_else(|| {
                TemplateError::UnclosedBrace { before: text[..text.len() - rest.len() + open].to_string() }
            })?;
            let name = &after[..close];
            if !is_placeholder_name(name) {
                return Err(TemplateError::BadName { name: name.to_string() });
            }
            segments.push(Segment::Slot(name.to_string()));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_string()));
        }
        Ok(Self { segments })
    }

    /// Placeholder names in order of first appearance, without duplicates.
    pub fn placeholders(&self) -> Vec<&str> {
        let mut seen = Vec::new();
        for segment in &self.segments {
            if let Segment::Slot(name) = segment {
                if !seen.contains(&name.as_str()) {
                    seen.push(name.as_str());
                }
            }
        }
        seen
    }

    /// Substitutes every placeholder from `values`; the error names the first one missing.
    pub fn render(&self, values: &BTreeMap<&str, &str>) -> Result<String, UnfilledSlot> {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Slot(name) => {
                    out.push_str(values.get(name.as_str()).ok_or_else(|| UnfilledSlot { slot: name.clone() })?)
                }
            }
        }
        Ok(out)
    }
}

fn is_placeholder_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_and_placeholders_in_order() {
        let template = Template::parse("Buy a {item} from {name}. {context}Offer? {name}").unwrap();
        assert_eq!(template.placeholders(), vec!["item", "name", "context"]);
        let values = BTreeMap::from([("item", "car"), ("name", "Ann Lee"), ("context", "")]);
        assert_eq!(template.render(&values).unwrap(), "Buy a car from Ann Lee. Offer? Ann Lee");
    }

    #[test]
    fn render_names_the_missing_placeholder() {
        let template = Template::parse("a {item} b").unwrap();
        assert_eq!(template.render(&BTreeMap::new()), Err(UnfilledSlot { slot: "item".to_string() }));
    }

    #[test]
    fn rejects_unbalanced_and_malformed_braces() {
        let err = |text: &str| Template::parse(text).unwrap_err();
        assert_eq!(err("a {item b"), TemplateError::UnclosedBrace { before: "a ".to_string() });
        assert_eq!(err("a item} b"), TemplateError::UnopenedBrace { byte: 6 });
        assert_eq!(err("a {It em} b"), TemplateError::BadName { name: "It em".to_string() });
        assert_eq!(err("a {} b"), TemplateError::BadName { name: String::new() });
        assert_eq!(err("a {x{y}} b"), TemplateError::UnclosedBrace { before: "a ".to_string() });
    }

    #[test]
    fn messages_name_the_brace_or_placeholder_at_fault() {
        assert_eq!(TemplateError::UnclosedBrace { before: "a ".into() }.to_string(), "a `{` without `}` after `a `");
        assert_eq!(TemplateError::UnopenedBrace { byte: 6 }.to_string(), "a `}` without `{` at byte 6");
        assert_eq!(
            TemplateError::BadName { name: "It em".into() }.to_string(),
            "placeholder `{It em}` (names use a-z, 0-9, `_` and `-`)"
        );
    }
}
