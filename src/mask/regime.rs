//! The paper's three regimes: which score pairs make a mask and how their masks are joined.
//!
//! Every (scenario, variations) pair of minority and majority scores gives one set-difference
//! mask; the regime checks the pairs fit the use case and joins their masks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{build_mask, join_masks, BuildError, DifferenceParams, PruneMask};
use crate::arch::Architecture;
use crate::score::{Group, ScoreSet};

/// How the scores relate to the use case the mask is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "regime")]
pub enum Regime {
    /// One pair of scores, from the variation the mask is evaluated on.
    PromptSpecific,
    /// Pairs from the other variations of one scenario; the mask targets `held_out`.
    WithinContext {
        /// The variation the mask is for, which no pair may include.
        held_out: Option<String>,
    },
    /// Pairs from other scenarios; the mask targets `target_scenario`.
    CrossContext {
        /// The scenario the mask is for, which no pair may come from.
        target_scenario: String,
    },
}

/// Which of the paper's three regimes, without the target each one needs: job files and the
/// command line name it, and [`Regime`] adds the held-out variation or target scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum RegimeChoice {
    /// Scores from the target variations themselves.
    #[default]
    #[cfg_attr(feature = "cli", value(help = "One variation's scores"))]
    PromptSpecific,
    /// Scores from other variations of the same scenario, one mask each, joined.
    #[cfg_attr(feature = "cli", value(help = "Other variations of the same scenario"))]
    WithinContext,
    /// Scores from other scenarios, one mask each, joined.
    #[cfg_attr(feature = "cli", value(help = "Other scenarios"))]
    CrossContext,
}

/// Score sets that cannot make a mask under the chosen regime.
#[derive(Debug, thiserror::Error)]
pub enum RegimeError {
    /// Building or joining failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A score set was given under the wrong group.
    #[error("scores for {scenario}/{variations} were computed on {found} prompts but given as {expected}")]
    WrongGroup {
        /// Scenario of the scores.
        scenario: String,
        /// Variations of the scores.
        variations: String,
        /// The group the option expects.
        expected: Group,
        /// The group the sidecar records.
        found: Group,
    },
    /// Minority and majority scores do not pair up one to one.
    #[error("no {missing} scores for {scenario}/{variations}: every minority score set needs a majority one for the same variations")]
    Unpaired {
        /// Scenario.
        scenario: String,
        /// Variations.
        variations: String,
        /// The group that is missing.
        missing: Group,
    },
    /// Score sets of one mask disagree on method or checkpoint.
    #[error("score sets disagree on {what}: {a} versus {b}")]
    Inconsistent {
        /// The field.
        what: &'static str,
        /// One value.
        a: String,
        /// The other.
        b: String,
    },
    /// The pairs do not fit the regime.
    #[error("{0}")]
    Regime(String),
}

/// Builds the mask of a regime from minority and majority score sets.
pub fn build_regime_mask(
    minority: &[ScoreSet],
    majority: &[ScoreSet],
    arch: &Architecture,
    params: &DifferenceParams,
    regime: &Regime,
    min_count: Option<usize>,
) -> Result<PruneMask, RegimeError> {
    let pairs = pair_up(minority, majority)?;
    check_regime(regime, &pairs)?;
    let masks: Vec<PruneMask> =
        pairs.values().map(|(a, b)| build_mask(a, b, arch, params)).collect::<Result<_, _>>()?;
    let min_count = min_count.unwrap_or(masks.len());
    let mut mask = join_masks(&masks, min_count)?;
    mask.provenance = Some(provenance(&pairs, params, regime, min_count));
    Ok(mask)
}

type Key = (String, String);

fn key(s: &ScoreSet) -> Key {
    (s.info.scenario.clone(), s.info.variations.join(","))
}

fn pair_up<'s>(
    minority: &'s [ScoreSet],
    majority: &'s [ScoreSet],
) -> Result<BTreeMap<Key, (&'s ScoreSet, &'s ScoreSet)>, RegimeError> {
    let index = |sets: &'s [ScoreSet], expected: Group| -> Result<BTreeMap<Key, &'s ScoreSet>, RegimeError> {
        let mut out = BTreeMap::new();
        for s in sets {
            let (scenario, variations) = key(s);
            if s.info.group != expected {
                return Err(RegimeError::WrongGroup { scenario, variations, expected, found: s.info.group });
            }
            if out.insert((scenario.clone(), variations.clone()), s).is_some() {
                return Err(RegimeError::Regime(format!("two {expected} score sets for {scenario}/{variations}")));
            }
        }
        Ok(out)
    };
    let minority = index(minority, Group::Minority)?;
    let mut majority = index(majority, Group::Majority)?;
    let mut pairs = BTreeMap::new();
    for (k, a) in minority {
        let b = majority.remove(&k).ok_or_else(|| RegimeError::Unpaired {
            scenario: k.0.clone(),
            variations: k.1.clone(),
            missing: Group::Majority,
        })?;
        pairs.insert(k, (a, b));
    }
    if let Some(((scenario, variations), _)) = majority.into_iter().next() {
        return Err(RegimeError::Unpaired { scenario, variations, missing: Group::Minority });
    }
    let all: Vec<&ScoreSet> = pairs.values().flat_map(|(a, b)| [*a, *b]).collect();
    for s in &all[1..] {
        for (what, a, b) in [
            ("method", &all[0].info.method, &s.info.method),
            ("checkpoint_fingerprint", &all[0].info.checkpoint_fingerprint, &s.info.checkpoint_fingerprint),
        ] {
            if a != b {
                return Err(RegimeError::Inconsistent { what, a: a.clone(), b: b.clone() });
            }
        }
    }
    Ok(pairs)
}

fn check_regime(regime: &Regime, pairs: &BTreeMap<Key, (&ScoreSet, &ScoreSet)>) -> Result<(), RegimeError> {
    let fail = |m: String| Err(RegimeError::Regime(m));
    if pairs.is_empty() {
        return fail("no score sets given".into());
    }
    match regime {
        Regime::PromptSpecific if pairs.len() != 1 => {
            fail(format!("prompt-specific takes one minority/majority pair, found {}", pairs.len()))
        }
        Regime::PromptSpecific => Ok(()),
        Regime::WithinContext { held_out } => {
            let scenarios: std::collections::BTreeSet<&String> = pairs.keys().map(|(s, _)| s).collect();
            if scenarios.len() != 1 {
                return fail(format!("within-context takes scores of one scenario, found {scenarios:?}"));
            }
            match held_out {
                Some(v) if pairs.values().any(|(a, _)| a.info.variations.contains(v)) => {
                    fail(format!("held-out variation {v:?} is among the training scores"))
                }
                _ => Ok(()),
            }
        }
        Regime::CrossContext { target_scenario } => match pairs.keys().find(|(s, _)| s == target_scenario) {
            Some(_) => fail(format!("cross-context scores must come from scenarios other than {target_scenario:?}")),
            None => Ok(()),
        },
    }
}

fn provenance(
    pairs: &BTreeMap<Key, (&ScoreSet, &ScoreSet)>,
    params: &DifferenceParams,
    regime: &Regime,
    min_count: usize,
) -> serde_json::Value {
    let sources: Vec<serde_json::Value> = pairs
        .values()
        .flat_map(|(a, b)| [*a, *b])
        .map(|s| {
            json!({"scenario": s.info.scenario, "variations": s.info.variations, "group": s.info.group,
                   "method": s.info.method, "records_sha256": s.info.records_sha256,
                   "sequences": s.info.sequences, "tokens": s.info.tokens, "tokens_counted": s.info.tokens_counted})
        })
        .collect();
    let first = pairs.values().next().expect("checked non-empty").0;
    json!({
        "regime": regime,
        "params": params,
        "min_count": min_count,
        "masks_joined": pairs.len(),
        "method": first.info.method,
        "checkpoint_fingerprint": first.info.checkpoint_fingerprint,
        "sources": sources,
    })
}
