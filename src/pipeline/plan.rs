//! A `PruneSpec` checked against the scenario catalog and turned into library settings,
//! before any work starts, so a typo fails in a second rather than after an hour.

use std::collections::BTreeSet;

use super::spec::{EvaluationSpec, PruneSpec, RegimeChoice, CONFIRMATION_SAMPLES_FACTOR};
use super::PipelineError;
use crate::device::ComputeDtype;
use crate::eval::EvalSpec;
use crate::mask::{
    parse_layer_range, DifferenceParams, Direction, Granularity, HeadMode, HeadRanking, HeadScore, Regime, Selection,
};
use crate::metrics::{BootstrapSettings, InlierRule, SummarySettings};
use crate::model::{LoadOptions, SamplingSettings};
use crate::scenario::{Catalog, ContextLevel, NameSplit, Scenario};
use crate::score::{Method, TokenCount};
use sha2::Digest;

/// The validated job.
pub struct Plan {
    /// The target scenario.
    pub scenario: Scenario,
    /// Context level of every prompt.
    pub context: ContextLevel,
    /// Variations the mask is for, in the scenario's order.
    pub targets: Vec<String>,
    /// Variations only evaluated, in the scenario's order.
    pub held_out: Vec<String>,
    /// within-context: the variations scored.
    pub train_variations: Vec<String>,
    /// cross-context: the scenarios scored.
    pub train_scenarios: Vec<Scenario>,
    /// Sampling settings of every evaluation (calibration and selection answer `samples`
    /// times per prompt).
    pub sampling: SamplingSettings,
    /// Answers per prompt of the confirmation data.
    pub confirmation_samples: usize,
    /// Inlier rule.
    pub inlier_rule: InlierRule,
    /// Statistics settings.
    pub summary: SummarySettings,
    /// Scoring method.
    pub method: Method,
    /// Tokens the scores count: the setting for Wanda, the answer tokens for SNIP (its loss
    /// covers them only).
    pub tokens: TokenCount,
    /// Set-difference parameters; the direction is settled after the baseline.
    pub params: DifferenceParams,
    /// Device and dtype of every model run.
    pub load: LoadOptions,
    /// The signing key's PEM, read up front.
    pub sign_key_pem: Option<String>,
    /// The seeds of the three uses of data.
    pub seeds: SplitSeeds,
    /// Held-out names of the confirmation data (None: the scenario's own names).
    pub holdout: Option<NameSplit>,
}

/// The seeds of the three disjoint uses of data: calibration (the answers scoring uses and
/// the gate and direction read), selection (the sweep) and confirmation (the released
/// evidence, sampled afresh for the base and the pruned model alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SplitSeeds {
    /// Seed of the calibration answers (`evaluation.seed`).
    pub calibration: u64,
    /// Seed of the selection answers.
    pub selection: u64,
    /// Seed of the confirmation answers.
    pub confirmation: u64,
}

impl SplitSeeds {
    /// The configured seeds; a seed not given is derived from the calibration seed (the
    /// first 8 bytes of SHA-256 of "biasprune:PURPOSE:SEED"), and all three must differ.
    pub fn of(evaluation: &EvaluationSpec) -> Result<Self, PipelineError> {
        let seed = evaluation.seed;
        let seeds = SplitSeeds {
            calibration: seed,
            selection: evaluation.selection_seed.unwrap_or_else(|| derived_seed(seed, "selection")),
            confirmation: evaluation.confirmation_seed.unwrap_or_else(|| derived_seed(seed, "confirmation")),
        };
        let distinct = seeds.calibration != seeds.selection
            && seeds.calibration != seeds.confirmation
            && seeds.selection != seeds.confirmation;
        if !distinct {
            return Err(PipelineError::Spec(format!(
                "the calibration ({}), selection ({}) and confirmation ({}) seeds must all differ: evidence must come from answers that did not build or choose the mask",
                seeds.calibration, seeds.selection, seeds.confirmation
            )));
        }
        Ok(seeds)
    }
}

/// The confirmation data's answers per prompt: as set, else
/// [`CONFIRMATION_SAMPLES_FACTOR`] × `samples`.
fn confirmation_samples(evaluation: &EvaluationSpec) -> Result<usize, PipelineError> {
    match evaluation.confirmation_samples {
        Some(0) => Err(PipelineError::Spec("confirmation_samples must be at least 1".into())),
        Some(n) => Ok(n),
        None => evaluation
            .samples
            .checked_mul(CONFIRMATION_SAMPLES_FACTOR)
            .ok_or_else(|| PipelineError::Spec(format!("samples {} is too large", evaluation.samples))),
    }
}

fn derived_seed(seed: u64, purpose: &str) -> u64 {
    let digest = sha2::Sha256::digest(format!("biasprune:{purpose}:{seed}").as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("a SHA-256 digest has 32 bytes"))
}

impl Plan {
    /// Checks `spec` and resolves it.
    pub fn new(spec: &PruneSpec) -> Result<Self, PipelineError> {
        let catalog = Catalog::load(spec.scenarios_dir.as_deref())?;
        let scenario = catalog.get(&spec.use_case.scenario)?.clone();
        let context = ContextLevel::parse(&spec.use_case.context).ok_or_else(|| {
            PipelineError::Spec(format!("context {:?}: expected low, high or numeric", spec.use_case.context))
        })?;
        let all: Vec<String> = scenario.variations.iter().map(|v| v.id.clone()).collect();
        let targets = in_scenario_order(&scenario, &spec.use_case.variations, "variations")?;
        let targets = if targets.is_empty() { all.clone() } else { targets };
        let held_out = in_scenario_order(&scenario, &spec.use_case.held_out, "held_out")?;
        if let Some(v) = held_out.iter().find(|v| targets.contains(v)) {
            return Err(PipelineError::Spec(format!("variation {v:?} is both a target and held out")));
        }
        let (train_variations, train_scenarios) = training(spec, &catalog, &scenario, &targets, &held_out, &all)?;
        let method = parse_method(&spec.method.method)?;
        let evaluation = &spec.evaluation;
        if evaluation.samples == 0 {
            return Err(PipelineError::Spec("samples must be at least 1".into()));
        }
        let confirmation_samples = confirmation_samples(evaluation)?;
        Ok(Plan {
            context,
            targets,
            held_out,
            train_variations,
            train_scenarios,
            sampling: SamplingSettings {
                samples: evaluation.samples,
                max_new_tokens: evaluation.max_new_tokens,
                temperature: evaluation.temperature,
                top_p: evaluation.top_p,
                seed: evaluation.seed,
                max_rows: evaluation.max_rows,
            },
            confirmation_samples,
            inlier_rule: InlierRule::parse(&evaluation.inlier_rule)?,
            summary: SummarySettings::with_bootstrap(evaluation.bootstrap, evaluation.seed),
            method,
            tokens: method.tokens_counted(parse_tokens(&spec.method.tokens)?),
            params: difference_params(spec)?,
            load: load_options(&spec.compute.device, spec.compute.compute_dtype)?,
            sign_key_pem: read_sign_key(spec)?,
            seeds: SplitSeeds::of(evaluation)?,
            holdout: scenario.holdout_split(&spec.use_case.holdout_names)?,
            scenario,
        })
    }

    /// The regime of the mask built from this plan's score pairs.
    pub fn regime(&self, choice: RegimeChoice) -> Regime {
        match choice {
            RegimeChoice::PromptSpecific => Regime::PromptSpecific,
            RegimeChoice::WithinContext => {
                Regime::WithinContext { held_out: (self.targets.len() == 1).then(|| self.targets[0].clone()) }
            }
            RegimeChoice::CrossContext => Regime::CrossContext { target_scenario: self.scenario.id.clone() },
        }
    }

    /// The variations of the confirmation data (the base and the pruned model alike):
    /// targets and held-out.
    pub fn evidence_variations(&self) -> Vec<String> {
        self.ordered(|v| self.targets.contains(v) || self.held_out.contains(v))
    }

    /// A calibration evaluation of `scenario` on `variations` (None: all) with the plan's
    /// settings.
    pub fn eval_spec(&self, scenario: &Scenario, variations: Option<Vec<String>>) -> EvalSpec {
        self.seeded_spec(scenario, variations, self.seeds.calibration)
    }

    /// The selection evaluation of the targets (the sweep's points): the calibration names
    /// under the selection seed.
    pub fn selection_spec(&self) -> EvalSpec {
        self.seeded_spec(&self.scenario, Some(self.targets.clone()), self.seeds.selection)
    }

    /// The confirmation evaluation, for the base and the pruned model alike: the targets and
    /// held-out variations, the held-out names where there are any, the confirmation seed and
    /// its answers per prompt.
    pub fn confirmation_spec(&self) -> EvalSpec {
        let scenario = match &self.holdout {
            Some(split) => self.scenario.with_names(split),
            None => self.scenario.clone(),
        };
        let mut spec = self.seeded_spec(&scenario, Some(self.evidence_variations()), self.seeds.confirmation);
        spec.names = self.holdout.clone();
        spec.sampling.samples = self.confirmation_samples;
        spec
    }

    fn seeded_spec(&self, scenario: &Scenario, variations: Option<Vec<String>>, seed: u64) -> EvalSpec {
        EvalSpec {
            scenario: scenario.clone(),
            context: self.context,
            variations,
            sampling: SamplingSettings { seed, ..self.sampling },
            inlier_rule: self.inlier_rule,
            summary: SummarySettings {
                bootstrap: BootstrapSettings { seed, ..self.summary.bootstrap },
                ..self.summary
            },
            names: None,
        }
    }

    fn ordered(&self, keep: impl Fn(&String) -> bool) -> Vec<String> {
        self.scenario.variations.iter().map(|v| v.id.clone()).filter(|v| keep(v)).collect()
    }
}

fn in_scenario_order(scenario: &Scenario, wanted: &[String], what: &str) -> Result<Vec<String>, PipelineError> {
    for v in wanted {
        if scenario.variation(v).is_err() {
            let known: Vec<&str> = scenario.variations.iter().map(|v| v.id.as_str()).collect();
            return Err(PipelineError::Spec(format!(
                "{what}: scenario {:?} has no variation {v:?} (it has {})",
                scenario.id,
                known.join(", ")
            )));
        }
    }
    Ok(scenario.variations.iter().map(|v| v.id.clone()).filter(|v| wanted.contains(v)).collect())
}

fn training(
    spec: &PruneSpec,
    catalog: &Catalog,
    scenario: &Scenario,
    targets: &[String],
    held_out: &[String],
    all: &[String],
) -> Result<(Vec<String>, Vec<Scenario>), PipelineError> {
    let use_case = &spec.use_case;
    let refuse = |what: &str| {
        Err(PipelineError::Spec(format!(
            "{what} only applies to the {} regime",
            match what {
                "train_variations" => "within-context",
                _ => "cross-context",
            }
        )))
    };
    match use_case.regime {
        RegimeChoice::PromptSpecific | RegimeChoice::CrossContext if !use_case.train_variations.is_empty() => {
            refuse("train_variations")
        }
        RegimeChoice::PromptSpecific | RegimeChoice::WithinContext if !use_case.train_scenarios.is_empty() => {
            refuse("train_scenarios")
        }
        RegimeChoice::PromptSpecific => Ok((Vec::new(), Vec::new())),
        RegimeChoice::WithinContext => {
            let given = in_scenario_order(scenario, &use_case.train_variations, "train_variations")?;
            let train: Vec<String> = if given.is_empty() {
                all.iter().filter(|v| !targets.contains(v) && !held_out.contains(v)).cloned().collect()
            } else {
                given
            };
            if let Some(v) = train.iter().find(|v| targets.contains(v) || held_out.contains(v)) {
                return Err(PipelineError::Spec(format!(
                    "within-context: variation {v:?} cannot be trained on, it is a target or held out"
                )));
            }
            if train.is_empty() {
                return Err(PipelineError::Spec(format!(
                    "within-context: scenario {:?} has no variation left to train on besides the targets and held-out ones",
                    scenario.id
                )));
            }
            Ok((train, Vec::new()))
        }
        RegimeChoice::CrossContext => {
            if use_case.train_scenarios.is_empty() {
                return Err(PipelineError::Spec("cross-context needs train_scenarios (other scenarios' ids)".into()));
            }
            let mut seen = BTreeSet::new();
            let mut scenarios = Vec::new();
            for id in &use_case.train_scenarios {
                if id == &scenario.id {
                    return Err(PipelineError::Spec(format!(
                        "cross-context: train_scenarios must not include the target scenario {id:?}"
                    )));
                }
                if seen.insert(id.clone()) {
                    scenarios.push(catalog.get(id)?.clone());
                }
            }
            Ok((Vec::new(), scenarios))
        }
    }
}

fn parse_method(text: &str) -> Result<Method, PipelineError> {
    match text {
        "wanda" => Ok(Method::Wanda),
        "snip" => Ok(Method::Snip),
        other => Err(PipelineError::Spec(format!("method {other:?}: expected wanda or snip"))),
    }
}

fn parse_tokens(text: &str) -> Result<TokenCount, PipelineError> {
    match text {
        "all" => Ok(TokenCount::All),
        "response" => Ok(TokenCount::Response),
        other => Err(PipelineError::Spec(format!("tokens {other:?}: expected all or response"))),
    }
}

fn difference_params(spec: &PruneSpec) -> Result<DifferenceParams, PipelineError> {
    let method = &spec.method;
    let granularity = match method.granularity.as_str() {
        "weight" => Granularity::Weight,
        "row" => Granularity::Row,
        "unit" => Granularity::Unit,
        "head" => Granularity::Head,
        other => return Err(PipelineError::Spec(format!("granularity {other:?}: expected weight, row, unit or head"))),
    };
    let head_mode = match method.head_mode.as_str() {
        "o-proj-columns" => HeadMode::OProjColumns,
        "q-proj-rows" => HeadMode::QProjRows,
        other => {
            return Err(PipelineError::Spec(format!("head_mode {other:?}: expected o-proj-columns or q-proj-rows")))
        }
    };
    let head_score = match method.head_score.as_str() {
        "attention" => HeadScore::Attention,
        "weights" => HeadScore::Weights,
        other => {
            return Err(PipelineError::Spec(format!(
                "head_score {other:?} (--head-score): expected attention or weights"
            )))
        }
    };
    let head_ranking = match method.head_ranking.as_str() {
        "per-layer" => HeadRanking::PerLayer,
        "global" => HeadRanking::Global,
        other => {
            return Err(PipelineError::Spec(format!(
                "head_ranking {other:?} (--head-ranking): expected per-layer or global"
            )))
        }
    };
    let fractions = [method.p, method.q]
        .into_iter()
        .chain(method.sweep.iter().flat_map(|s| s.p_grid.iter().chain(&s.q_grid).copied().collect::<Vec<_>>()));
    for f in fractions {
        if !(0.0..=1.0).contains(&f) {
            return Err(PipelineError::Spec(format!("p and q are fractions in [0, 1]; found {f}")));
        }
    }
    if method.sweep.as_ref().is_some_and(|s| s.p_grid.is_empty() || s.q_grid.is_empty()) {
        return Err(PipelineError::Spec("a sweep needs at least one value of p and of q".into()));
    }
    let params = DifferenceParams {
        q: method.q,
        p: method.p,
        granularity,
        direction: Direction::MinorityMinusMajority,
        selection: Selection {
            components: if method.components.is_empty() {
                Selection::default().components
            } else {
                method.components.iter().copied().collect()
            },
            layers: method
                .layers
                .as_deref()
                .map(|text| {
                    parse_layer_range(text).map_err(|reason| PipelineError::Spec(format!("layers {text:?}: {reason}")))
                })
                .transpose()?,
        },
        head_mode,
        head_score,
        head_ranking,
    };
    params.check().map_err(|e| PipelineError::Spec(e.to_string()))?;
    Ok(params)
}

/// Load options for a device spec and a compute dtype name (auto: f32 on the CPU, bf16 on
/// a GPU).
pub fn load_options(device: &str, compute_dtype: ComputeDtype) -> Result<LoadOptions, PipelineError> {
    let device = crate::device::parse_device(device)?;
    let options = LoadOptions { dtype: compute_dtype.resolve(&device), device, trainable: false };
    options.check().map_err(|e| PipelineError::Spec(format!("compute_dtype {compute_dtype}: {e}")))?;
    Ok(options)
}

fn read_sign_key(spec: &PruneSpec) -> Result<Option<String>, PipelineError> {
    let Some(path) = &spec.sign_key else { return Ok(None) };
    let pem = crate::fsutil::read_capped_text(path, crate::fsutil::MAX_KEY_BYTES, crate::fsutil::Links::Follow)
        .map_err(|e| PipelineError::io(path, e))?;
    crate::sign::PrivateKey::from_pem(&pem).map_err(|e| PipelineError::Spec(format!("{}: {e}", path.display())))?;
    Ok(Some(pem))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::EvaluationSpec;

    #[test]
    fn derived_seeds_differ_from_the_calibration_seed_and_from_each_other() {
        for seed in [0, 1, 3, u64::MAX] {
            let seeds = SplitSeeds::of(&EvaluationSpec { seed, ..EvaluationSpec::default() }).unwrap();
            assert_eq!(seeds.calibration, seed);
            assert!(seeds.selection != seed && seeds.confirmation != seed && seeds.selection != seeds.confirmation);
        }
    }

    fn method_params(method: serde_json::Value) -> Result<DifferenceParams, PipelineError> {
        let job = serde_json::json!({"base": "b", "out": "o", "use_case": {"scenario": "purchase"}, "method": method});
        difference_params(&serde_json::from_value(job).unwrap())
    }

    #[test]
    fn head_settings_and_unit_granularity_become_library_settings() {
        let defaults = method_params(serde_json::json!({})).unwrap();
        assert_eq!((defaults.head_score, defaults.head_ranking), (HeadScore::Attention, HeadRanking::PerLayer));
        let head = serde_json::json!({"granularity": "head", "head_score": "weights", "head_ranking": "global"});
        let params = method_params(head).unwrap();
        assert_eq!(
            (params.granularity, params.head_score, params.head_ranking),
            (Granularity::Head, HeadScore::Weights, HeadRanking::Global)
        );
        assert_eq!(method_params(serde_json::json!({"granularity": "unit"})).unwrap().granularity, Granularity::Unit);
        for (method, needle) in [
            (serde_json::json!({"head_score": "gradients"}), "head_score \"gradients\" (--head-score)"),
            (serde_json::json!({"head_ranking": "sideways"}), "head_ranking \"sideways\" (--head-ranking)"),
            (serde_json::json!({"granularity": "unit", "components": ["up", "down"]}), "missing: gate"),
        ] {
            let text = method_params(method).unwrap_err().to_string();
            assert!(text.contains(needle), "{text}");
        }
    }

    #[test]
    fn the_confirmation_answers_each_prompt_four_times_as_often_unless_set() {
        let plan = |evaluation: serde_json::Value| {
            let job = serde_json::json!({"base": "b", "out": "o", "use_case": {"scenario": "purchase"}, "evaluation": evaluation});
            Plan::new(&serde_json::from_value(job).unwrap())
        };
        let default = plan(serde_json::json!({"samples": 3})).unwrap();
        assert_eq!(default.eval_spec(&default.scenario, None).sampling.samples, 3);
        assert_eq!(default.selection_spec().sampling.samples, 3);
        assert_eq!(default.confirmation_spec().sampling.samples, 3 * CONFIRMATION_SAMPLES_FACTOR);
        let set = plan(serde_json::json!({"samples": 3, "confirmation_samples": 5})).unwrap();
        assert_eq!(set.confirmation_spec().sampling.samples, 5);
        let none = plan(serde_json::json!({"confirmation_samples": 0})).err().expect("0 is refused").to_string();
        assert!(none.contains("confirmation_samples must be at least 1"), "{none}");
    }

    #[test]
    fn a_confirmation_seed_equal_to_another_is_refused() {
        let reused = EvaluationSpec { seed: 5, confirmation_seed: Some(5), ..EvaluationSpec::default() };
        let err = SplitSeeds::of(&reused).unwrap_err().to_string();
        assert!(err.contains("must all differ"), "{err}");
        let explicit =
            EvaluationSpec { seed: 5, selection_seed: Some(6), confirmation_seed: Some(7), ..Default::default() };
        let seeds = SplitSeeds::of(&explicit).unwrap();
        assert_eq!((seeds.calibration, seeds.selection, seeds.confirmation), (5, 6, 7));
    }
}
