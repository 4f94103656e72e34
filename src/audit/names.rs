//! The names an audit asks about: each scenario's own list, or the members of its groups in
//! another built-in list, optionally only the first N of each group (a quick audit).

use serde::Serialize;

use super::AuditError;
use crate::scenario::{installed_names, NameList, Person, Scenario};

/// Which names every scenario of the audit asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameChoice {
    /// A built-in name list id whose members of each scenario's groups replace the
    /// scenario's own names; `None` keeps each scenario's list.
    pub list: Option<String>,
    /// Keep only the first N names of each group (list order).
    pub per_group: Option<usize>,
}

/// A scenario as the audit asks it, with the names recorded for audit.json.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioNames {
    /// The scenario, its groups holding the chosen people.
    #[serde(skip)]
    pub scenario: Scenario,
    /// Scenario id.
    pub id: String,
    /// Id of the name list the people come from.
    pub names_list: String,
    /// Majority-group names asked about, in prompt order.
    pub majority: Vec<String>,
    /// Minority-group names asked about, in prompt order.
    pub minority: Vec<String>,
}

impl NameChoice {
    /// `scenario` asking about the chosen names.
    pub fn apply(&self, scenario: &Scenario) -> Result<ScenarioNames, AuditError> {
        let mut chosen = scenario.clone();
        if let Some(id) = &self.list {
            let list = load_list(id)?;
            chosen.majority.people = members(&list, &scenario.majority.id, &scenario.id)?;
            chosen.minority.people = members(&list, &scenario.minority.id, &scenario.id)?;
            chosen.names = list.id.clone();
        }
        if let Some(n) = self.per_group {
            if n < 2 {
                return Err(AuditError::Names(format!(
                    "--names-per-group must be at least 2 (the name test needs two names per group), found {n}"
                )));
            }
            chosen.majority.people.truncate(n);
            chosen.minority.people.truncate(n);
        }
        let names = |people: &[Person]| people.iter().map(|p| p.name.clone()).collect();
        Ok(ScenarioNames {
            id: chosen.id.clone(),
            names_list: chosen.names.clone(),
            majority: names(&chosen.majority.people),
            minority: names(&chosen.minority.people),
            scenario: chosen,
        })
    }
}

fn load_list(id: &str) -> Result<NameList, AuditError> {
    match installed_names(id) {
        Some(list) => list.map_err(|e| AuditError::Names(e.to_string())),
        None => Err(AuditError::Names(format!(
            "unknown name list {id:?}; expected own or a built-in list id (audit40, extended64)"
        ))),
    }
}

fn members(list: &NameList, group: &str, scenario: &str) -> Result<Vec<Person>, AuditError> {
    list.groups.get(group).map(|g| g.people.clone()).ok_or_else(|| {
        AuditError::Names(format!(
            "list {:?} has no group {group:?}, which scenario {scenario} compares (it has {})",
            list.id,
            list.groups.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Catalog;

    #[test]
    fn own_names_truncated_and_another_list() {
        let purchase = Catalog::installed().unwrap().get("purchase").unwrap().clone();
        let own = NameChoice { list: None, per_group: Some(3) }.apply(&purchase).unwrap();
        assert_eq!((own.majority.len(), own.minority.len(), own.names_list.as_str()), (3, 3, "audit40"));
        assert_eq!(own.majority[0], purchase.majority.people[0].name);
        let wide = NameChoice { list: Some("extended64".into()), per_group: None }.apply(&purchase).unwrap();
        assert_eq!((wide.majority.len(), wide.minority.len(), wide.names_list.as_str()), (32, 32, "extended64"));
        let err = NameChoice { list: Some("nosuch".into()), per_group: None }.apply(&purchase).unwrap_err();
        assert!(err.to_string().contains("\"nosuch\""), "{err}");
        let err = NameChoice { list: None, per_group: Some(1) }.apply(&purchase).unwrap_err();
        assert!(err.to_string().contains("found 1"), "{err}");
    }
}
