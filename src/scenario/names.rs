//! Name lists: groups of full names with a gender label, loaded from `manifests/names/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{Result, ScenarioError};

/// One person a prompt can be about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// Full name as it appears in the prompt, e.g. "Jamal Washington".
    pub name: String,
    /// Gender label kept for breakdowns, e.g. "man" or "woman".
    pub gender: String,
}

/// A named group of people, e.g. the White-associated names of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameGroup {
    /// Group id inside its list, e.g. "white".
    pub id: String,
    /// Human description of the group.
    pub description: String,
    /// Members in file order (prompt order follows it).
    pub people: Vec<Person>,
}

/// A names file: an id, a description and its groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameList {
    /// List id, referred to by scenarios' `groups.names`.
    pub id: String,
    /// Human description of the list.
    pub description: String,
    /// Groups by id.
    pub groups: BTreeMap<String, NameGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNameList {
    id: String,
    description: String,
    groups: BTreeMap<String, RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    description: String,
    names: Vec<Person>,
}

impl NameList {
    /// Parses and validates a names file's text; `path` is used in error messages only.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self> {
        let raw: RawNameList = toml::from_str(text)
            .map_err(|e| ScenarioError::Syntax { path: path.to_path_buf(), message: e.to_string() })?;
        let mut seen = BTreeSet::new();
        let mut groups = BTreeMap::new();
        for (id, group) in raw.groups {
            let key = format!("groups.{id}.names");
            if group.names.is_empty() {
                return Err(ScenarioError::EmptyGroup { path: path.to_path_buf(), key });
            }
            for (index, person) in group.names.iter().enumerate() {
                check_person(person, path, &format!("{key}[{index}]"), &mut seen)?;
            }
            let people = group.names;
            groups.insert(id.clone(), NameGroup { id, description: group.description, people });
        }
        Ok(Self { id: raw.id, description: raw.description, groups })
    }

    /// Reads and validates a names file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::fsutil::read_capped_text(path, crate::fsutil::MAX_TOML_BYTES, crate::fsutil::Links::Follow)
            .map_err(|source| ScenarioError::Io { path: path.to_path_buf(), source })?;
        Self::from_toml(&text, path)
    }
}

fn check_person(person: &Person, path: &Path, key: &str, seen: &mut BTreeSet<String>) -> Result<()> {
    let invalid = |field: &str, found: &str| ScenarioError::Invalid {
        path: path.to_path_buf(),
        key: format!("{key}.{field}"),
        expected: "a non-empty string without leading or trailing spaces".to_string(),
        found: format!("{found:?}"),
    };
    if person.name.trim().is_empty() || person.name.trim() != person.name {
        return Err(invalid("name", &person.name));
    }
    if person.gender.trim().is_empty() || person.gender.trim() != person.gender {
        return Err(invalid("gender", &person.gender));
    }
    if !seen.insert(person.name.clone()) {
        return Err(ScenarioError::Duplicate {
            path: path.to_path_buf(),
            key: key.to_string(),
            what: "name",
            id: person.name.clone(),
        });
    }
    Ok(())
}
