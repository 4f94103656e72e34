//! Which names and variations the plant trains on and which it keeps for testing.
//!
//! Names: within each group, in list order, even positions train and odd positions are held
//! out (the audit's lists hold ten men, then ten women, so both halves get five of each).
//! Variations: the requested ones train, the scenario's others are held out.

use serde::Serialize;

use super::PlantError;
use crate::scenario::{Group, NameGroup, Prompt, Scenario};

/// Training and held-out names of both groups, in list order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameSplit {
    /// Majority names trained on.
    pub majority_train: Vec<String>,
    /// Majority names kept for testing.
    pub majority_held_out: Vec<String>,
    /// Minority names trained on.
    pub minority_train: Vec<String>,
    /// Minority names kept for testing.
    pub minority_held_out: Vec<String>,
}

impl NameSplit {
    /// Alternates each group's names between training (even positions) and held out (odd).
    pub fn alternate(scenario: &Scenario) -> Result<Self, PlantError> {
        let (majority_train, majority_held_out) = alternate(&scenario.majority, "majority")?;
        let (minority_train, minority_held_out) = alternate(&scenario.minority, "minority")?;
        Ok(Self { majority_train, majority_held_out, minority_train, minority_held_out })
    }

    /// Whether `prompt`'s name is one the plant trains on.
    pub fn trains_on(&self, prompt: &Prompt) -> bool {
        let names = match prompt.group {
            Group::Majority => &self.majority_train,
            Group::Minority => &self.minority_train,
        };
        names.contains(&prompt.name)
    }
}

fn alternate(group: &NameGroup, label: &str) -> Result<(Vec<String>, Vec<String>), PlantError> {
    if group.people.len() < 2 {
        return Err(PlantError::TooFewNames { group: label.to_string(), found: group.people.len() });
    }
    let (train, held_out): (Vec<_>, Vec<_>) = group.people.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let names = |side: Vec<(usize, &crate::scenario::Person)>| side.into_iter().map(|(_, p)| p.name.clone()).collect();
    Ok((names(train), names(held_out)))
}

/// Training and held-out variations, each in the scenario's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VariationSplit {
    /// Variations trained on.
    pub train: Vec<String>,
    /// The scenario's other variations.
    pub held_out: Vec<String>,
}

impl VariationSplit {
    /// Trains on `wanted` (each must exist; at least one, not all) and holds out the rest.
    pub fn new(scenario: &Scenario, wanted: &[String]) -> Result<Self, PlantError> {
        for id in wanted {
            scenario.variation(id)?;
        }
        let (train, held_out): (Vec<String>, Vec<String>) =
            scenario.variations.iter().map(|v| v.id.clone()).partition(|id| wanted.contains(id));
        if train.is_empty() || held_out.is_empty() {
            return Err(PlantError::VariationSplit {
                scenario: scenario.id.clone(),
                requested: wanted.join(","),
                available: scenario.variations.iter().map(|v| v.id.as_str()).collect::<Vec<_>>().join(", "),
            });
        }
        Ok(Self { train, held_out })
    }
}
