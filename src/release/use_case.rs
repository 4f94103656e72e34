//! The manifest's use case and method, derived from a mask's provenance (written by
//! `build_regime_mask`) or read from a use-case file; "manual" for hand-made masks.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Value};

use super::ReleaseError;
use crate::manifest::UseCase;
use crate::mask::PruneMask;

/// The regimes a manifest may record.
pub const REGIMES: [&str; 4] = ["prompt-specific", "within-context", "cross-context", "manual"];
/// The directions a manifest may record.
pub const DIRECTIONS: [&str; 3] = ["minority-minus-majority", "majority-minus-minority", "manual"];

/// The use case and method of a mask: from its provenance when it has one, otherwise a
/// manual use case and `{"method": "manual"}`.
pub fn use_case_and_method(mask: &PruneMask) -> (UseCase, Value) {
    let Some(provenance) = &mask.provenance else {
        let manual = UseCase { regime: "manual".into(), direction: "manual".into(), ..UseCase::default() };
        return (manual, json!({"method": "manual"}));
    };
    let regime = known(provenance["regime"]["regime"].as_str(), &REGIMES);
    let direction = known(provenance["params"]["direction"].as_str(), &DIRECTIONS);
    let sources = provenance["sources"].as_array().map(Vec::as_slice).unwrap_or_default();
    let source_scenarios: BTreeSet<String> =
        sources.iter().filter_map(|s| s["scenario"].as_str()).map(str::to_string).collect();
    let mut variations: BTreeSet<String> = sources
        .iter()
        .filter_map(|s| s["variations"].as_array())
        .flatten()
        .filter_map(|v| v.as_str())
        .map(str::to_string)
        .collect();
    let held_out: Vec<String> = provenance["regime"]["held_out"].as_str().map(str::to_string).into_iter().collect();
    variations.extend(held_out.iter().cloned());
    let scenarios = match provenance["regime"]["target_scenario"].as_str() {
        Some(target) => vec![target.to_string()],
        None => source_scenarios.into_iter().collect(),
    };
    let method = if provenance.is_object() { provenance.clone() } else { json!({"provenance": provenance}) };
    (UseCase { scenarios, variations: variations.into_iter().collect(), held_out, regime, direction }, method)
}

fn known(value: Option<&str>, allowed: &[&str]) -> String {
    value.filter(|v| allowed.contains(v)).unwrap_or("manual").to_string()
}

/// Reads a use case from a JSON file (the manifest's `use_case` object), checking the regime
/// and direction are ones the manifest schema allows.
pub fn read_use_case(path: &Path) -> Result<UseCase, ReleaseError> {
    let bad = |reason: String| ReleaseError::BadUseCase { path: path.to_path_buf(), reason };
    let bytes = crate::fsutil::read_capped(path, crate::fsutil::MAX_JSON_BYTES, crate::fsutil::Links::Follow)
        .map_err(|e| ReleaseError::io(path, e))?;
    let use_case: UseCase = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if !REGIMES.contains(&use_case.regime.as_str()) {
        return Err(bad(format!("regime {:?} is not one of {REGIMES:?}", use_case.regime)));
    }
    if !DIRECTIONS.contains(&use_case.direction.as_str()) {
        return Err(bad(format!("direction {:?} is not one of {DIRECTIONS:?}", use_case.direction)));
    }
    Ok(use_case)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_case_comes_from_a_within_context_provenance() {
        let mask = PruneMask {
            provenance: Some(json!({
                "regime": {"regime": "within-context", "held_out": "car"},
                "params": {"q": 0.15, "p": 0.15, "direction": "minority-minus-majority"},
                "sources": [
                    {"scenario": "purchase", "variations": ["bicycle"], "group": "minority"},
                    {"scenario": "purchase", "variations": ["bicycle"], "group": "majority"},
                    {"scenario": "purchase", "variations": ["house"], "group": "minority"},
                ],
            })),
            ..PruneMask::default()
        };
        let (use_case, method) = use_case_and_method(&mask);
        assert_eq!(use_case.scenarios, ["purchase"]);
        assert_eq!(use_case.variations, ["bicycle", "car", "house"]);
        assert_eq!(use_case.held_out, ["car"]);
        assert_eq!(
            (use_case.regime.as_str(), use_case.direction.as_str()),
            ("within-context", "minority-minus-majority")
        );
        assert_eq!(method["params"]["q"], 0.15);
    }

    #[test]
    fn cross_context_targets_its_scenario_and_hand_made_masks_are_manual() {
        let mask = PruneMask {
            provenance: Some(json!({"regime": {"regime": "cross-context", "target_scenario": "hiring"},
                                    "params": {"direction": "sideways"}, "sources": []})),
            ..PruneMask::default()
        };
        let (use_case, _) = use_case_and_method(&mask);
        assert_eq!(use_case.scenarios, ["hiring"]);
        assert_eq!(use_case.direction, "manual", "an unknown direction is not written into the manifest");
        let (manual, method) = use_case_and_method(&PruneMask::default());
        assert_eq!((manual.regime.as_str(), method), ("manual", json!({"method": "manual"})));
    }
}
