//! Held-out names: members of a scenario's groups in another name list that the scenario's
//! own list lacks, so a release's evidence can come from names that neither built nor
//! chose the mask.

use serde::{Deserialize, Serialize};

use super::catalog::installed_names;
use super::error::{Result, ScenarioError};
use super::names::{NameList, Person};
use super::Scenario;

/// The name list the built-in `auto` split draws held-out names from, per scenario list:
/// the bias paper's 64 names extend the audit's 40 with 12 more per group.
const AUTO_HOLDOUT: &[(&str, &str)] = &[("audit40", "extended64")];

/// The people of each group that a scenario's prompts use instead of its own list's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameSplit {
    /// Id of the list the names come from.
    pub list: String,
    /// Id of the scenario's own list, whose names were excluded.
    pub excluding: String,
    /// Majority-group names, in the list's order.
    pub majority: Vec<Person>,
    /// Minority-group names, in the list's order.
    pub minority: Vec<Person>,
}

impl NameSplit {
    /// Every name of the split, majority first.
    pub fn names(&self) -> Vec<String> {
        self.majority.iter().chain(&self.minority).map(|p| p.name.clone()).collect()
    }
}

/// How a command chooses held-out names: `none`, `auto` (the scenario's built-in extension
/// list, see [`Scenario::auto_holdout_list`]) or the id of a built-in name list.
pub const HOLDOUT_CHOICES: &str = "auto, none or a built-in name list id";

impl Scenario {
    /// The held-out names `choice` ([`HOLDOUT_CHOICES`]) gives this scenario; None for
    /// `none`, and for `auto` when the scenario's list has no built-in extension.
    pub fn holdout_split(&self, choice: &str) -> Result<Option<NameSplit>> {
        let list_id = match choice {
            "none" => return Ok(None),
            "auto" => match self.auto_holdout_list() {
                Some(id) => id,
                None => {
                    log::info!("no held-out names for name list {:?}: using the scenario's own names", self.names);
                    return Ok(None);
                }
            },
            other => other,
        };
        let list = installed_names(list_id).ok_or_else(|| ScenarioError::Holdout {
            scenario: self.id.clone(),
            list: list_id.to_string(),
            reason: format!("no built-in name list has that id (expected {HOLDOUT_CHOICES})"),
        })??;
        Ok(Some(self.held_out_names(&list)?))
    }

    /// The list `auto` draws held-out names from for this scenario, if any.
    pub fn auto_holdout_list(&self) -> Option<&'static str> {
        AUTO_HOLDOUT.iter().find(|(own, _)| *own == self.names).map(|(_, other)| *other)
    }

    /// The members of this scenario's majority and minority groups in `other` whose names
    /// the scenario's own list does not have; each group must keep at least two.
    pub fn held_out_names(&self, other: &NameList) -> Result<NameSplit> {
        let pick = |own: &super::NameGroup| -> Result<Vec<Person>> {
            let group = other.groups.get(&own.id).ok_or_else(|| ScenarioError::Holdout {
                scenario: self.id.clone(),
                list: other.id.clone(),
                reason: format!(
                    "it has no group {:?} (it has {})",
                    own.id,
                    other.groups.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            })?;
            let fresh: Vec<Person> =
                group.people.iter().filter(|p| !own.people.iter().any(|o| o.name == p.name)).cloned().collect();
            if fresh.len() < 2 {
                return Err(ScenarioError::Holdout {
                    scenario: self.id.clone(),
                    list: other.id.clone(),
                    reason: format!(
                        "group {:?} has {} name(s) that list {:?} lacks; at least 2 are needed",
                        own.id,
                        fresh.len(),
                        self.names
                    ),
                });
            }
            Ok(fresh)
        };
        Ok(NameSplit {
            list: other.id.clone(),
            excluding: self.names.clone(),
            majority: pick(&self.majority)?,
            minority: pick(&self.minority)?,
        })
    }

    /// This scenario asking about `split`'s people instead of its own list's.
    pub fn with_names(&self, split: &NameSplit) -> Scenario {
        let mut scenario = self.clone();
        scenario.names = format!("{} without {}", split.list, split.excluding);
        scenario.majority.people = split.majority.clone();
        scenario.minority.people = split.minority.clone();
        scenario
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::{installed_names, Catalog};

    #[test]
    fn audit40_scenarios_hold_out_the_24_names_extended64_adds() {
        let purchase = Catalog::installed().unwrap().get("purchase").unwrap().clone();
        let list = installed_names(purchase.auto_holdout_list().unwrap()).unwrap().unwrap();
        let split = purchase.held_out_names(&list).unwrap();
        assert_eq!((split.majority.len(), split.minority.len()), (12, 12));
        let own: Vec<&str> =
            purchase.majority.people.iter().chain(&purchase.minority.people).map(|p| p.name.as_str()).collect();
        assert!(split.names().iter().all(|n| !own.contains(&n.as_str())), "{:?}", split.names());
        let confirmation = purchase.with_names(&split);
        let prompts = confirmation.prompts(crate::scenario::ContextLevel::Low, Some(&["bicycle".into()])).unwrap();
        assert_eq!(prompts.len(), 24);
        assert!(prompts.iter().any(|p| p.name == "DeShawn Washington" && p.text.contains("DeShawn Washington")));
    }

    #[test]
    fn a_list_without_enough_new_names_is_refused() {
        let purchase = Catalog::installed().unwrap().get("purchase").unwrap().clone();
        let same = installed_names("audit40").unwrap().unwrap();
        let err = purchase.held_out_names(&same).unwrap_err().to_string();
        assert!(err.contains("at least 2") && err.contains("audit40"), "{err}");
        let finance = Catalog::installed().unwrap().get("finance").unwrap().clone();
        assert_eq!(finance.auto_holdout_list(), None, "extended64 has no larger built-in list");
    }
}
