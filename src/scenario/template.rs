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

/// A template split into literal text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

impl Template {
    /// Parses `text`; the error says what is wrong with which brace or placeholder.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(format!("a `}}` without `{{` at byte {}", text.len() - rest.len() + open));
            }
            if open > 0 {
                segments.push(Segment::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find(['{', '}'])
                .filter(|&i| after[i..].starts_with('}'))
                .ok_or_else(|| format!("a `{{` without `}}` after `{}`", &text[..text.len() - rest.len() + open]))?;
            let name = &after[..close];
            if !is_placeholder_name(name) {
                return Err(format!("placeholder `{{{name}}}` (names use a-z, 0-9, `_` and `-`)"));
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

    /// Substitutes every placeholder from `values`; `None` names the first one missing.
    pub fn render(&self, values: &BTreeMap<&str, &str>) -> Result<String, String> {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Slot(name) => out.push_str(values.get(name.as_str()).ok_or_else(|| name.clone())?),
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
        assert_eq!(template.render(&BTreeMap::new()), Err("item".to_string()));
    }

    #[test]
    fn rejects_unbalanced_and_malformed_braces() {
        assert!(Template::parse("a {item b").unwrap_err().contains("without `}`"));
        assert!(Template::parse("a item} b").unwrap_err().contains("without `{`"));
        assert!(Template::parse("a {It em} b").unwrap_err().contains("placeholder `{It em}`"));
        assert!(Template::parse("a {} b").unwrap_err().contains("placeholder `{}`"));
        assert!(Template::parse("a {x{y}} b").unwrap_err().contains("without `}`"));
    }
}
