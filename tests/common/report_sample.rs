//! A synthetic pruning run for report tests and the sample report: the installed purchase
//! scenario, a target (bicycle) and a held-out (car) variation, baseline answers where the
//! minority is offered less, pruned answers with a smaller gap, a mask distribution over
//! 30 layers, a 3 x 3 (p, q) sweep and a `reduced` verdict (any other outcome on request).
//! Everything is drawn from a fixed seed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use biasprune::analyze::Distribution;
use biasprune::manifest::{BaseIdentity, DeltaEvidence, Outcome, UseCase, UtilityEvidence, Verdict};
use biasprune::metrics::{AnswerRecord, InlierJudge, InlierRule, Summary, SummarySettings};
use biasprune::report::{ReportInput, SweepView};
use biasprune::scenario::parse::ParseStatus;
use biasprune::scenario::{Catalog, ContextLevel, Group, Scenario};
use biasprune::sweep::SweepPoint;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Answers per group, variation and run.
const PER_GROUP: u32 = 60;

/// Everything a [`ReportInput`] borrows.
pub struct Sample {
    pub base: BaseIdentity,
    pub use_case: UseCase,
    pub settings: serde_json::Value,
    pub scenario: Scenario,
    pub baseline: Summary,
    pub baseline_records: Vec<AnswerRecord>,
    pub pruned: Summary,
    pub pruned_records: Vec<AnswerRecord>,
    pub targets: Vec<String>,
    pub distribution: Distribution,
    pub points: Vec<SweepPoint>,
    pub grid: Vec<f64>,
    pub verdict: Option<Verdict>,
    pub nothing_to_remove: Option<String>,
}

impl Sample {
    /// The sample run; `group_name` replaces the majority group's id (to test escaping).
    pub fn new(group_name: &str) -> Self {
        let mut scenario = Catalog::installed().unwrap().get("purchase").unwrap().clone();
        scenario.majority.id = group_name.to_string();
        let baseline_values = answers(&[("bicycle", 520.0, 0.14), ("car", 14000.0, 0.08)], 7);
        let pruned_values = answers(&[("bicycle", 500.0, 0.01), ("car", 13800.0, 0.05)], 8);
        let baseline_judge = InlierJudge::new(&scenario, ContextLevel::Low, InlierRule::default(), None);
        let baseline_records = records(&baseline_values, &baseline_judge);
        let judge = InlierJudge::new(&scenario, ContextLevel::Low, InlierRule::default(), Some(&baseline_records));
        let baseline_records = records(&baseline_values, &judge);
        let pruned_records = records(&pruned_values, &judge);
        let summary = |r: &[AnswerRecord]| {
            Summary::compute("purchase", ContextLevel::Low, r, judge.description(), &SummarySettings::default())
                .unwrap()
        };
        let mut sample = Sample {
            base: BaseIdentity {
                name: "SmolLM2-135M-Instruct".into(),
                files: BTreeMap::from([("model.safetensors".into(), "ab".repeat(32))]),
                root_digest: "3f".repeat(32),
                hub: None,
            },
            use_case: UseCase {
                scenarios: vec!["purchase".into()],
                variations: vec!["bicycle".into(), "car".into()],
                held_out: vec!["car".into()],
                regime: "within-context".into(),
                direction: "minority-minus-majority".into(),
            },
            settings: serde_json::json!({
                "scoring": "wanda", "granularity": "weight", "p": 0.15, "q": 0.15,
                "sampling": {"samples": 3, "temperature": 1.0, "seed": 7}, "train_variations": ["bicycle"],
                "scoring_sources": [{"records_sha256_of_the_calibration_answers": "5a".repeat(32)}],
            }),
            baseline: summary(&baseline_records),
            pruned: summary(&pruned_records),
            baseline_records,
            pruned_records,
            scenario,
            targets: vec!["bicycle".into()],
            distribution: distribution(30),
            points: sweep_points(),
            grid: vec![0.05, 0.15, 0.3],
            verdict: None,
            nothing_to_remove: None,
        };
        sample.verdict = Some(sample.verdict_of(Outcome::Reduced, false));
        sample
    }

    /// A verdict with `outcome` over the target (bicycle), its figures from the summaries.
    pub fn verdict_of(&self, outcome: Outcome, released_anyway: bool) -> Verdict {
        let (before, after) = (&self.baseline.variations["bicycle"], &self.pruned.variations["bicycle"]);
        let delta = after.smd.zip(before.smd).map(|(a, b)| a - b);
        let target = DeltaEvidence {
            baseline: before.smd,
            baseline_ci: before.smd_ci.map(|ci| (ci.low, ci.high)),
            pruned: after.smd,
            delta,
            delta_ci: delta.map(|d| (d - 0.2, d + 0.2)),
            outcome,
            reason: format!("the paired change is {outcome}"),
        };
        Verdict {
            outcome,
            reason: format!("every target is {outcome}"),
            released_anyway,
            targets: BTreeMap::from([("bicycle".to_string(), target)]),
            utility: UtilityEvidence {
                inlier_before: self.baseline.overall.inlier_ratio,
                inlier_after: self.pruned.overall.inlier_ratio,
                parse_before: self.baseline.overall.parse_rate,
                parse_after: self.pruned.overall.parse_rate,
                max_inlier_drop: 0.05,
                max_parse_drop: 0.05,
                kept: outcome != Outcome::Harmed,
            },
        }
    }

    /// The report input over this sample, with the sweep when `with_sweep`.
    pub fn input(&self, title: &str, with_sweep: bool) -> ReportInput<'_> {
        ReportInput {
            title: title.to_string(),
            base: &self.base,
            use_case: &self.use_case,
            settings: &self.settings,
            scenario: &self.scenario,
            baseline: &self.baseline,
            baseline_records: &self.baseline_records,
            pruned: &self.pruned,
            pruned_records: &self.pruned_records,
            target_variations: &self.targets,
            distribution: &self.distribution,
            pruned_entries: self.distribution.total,
            total_entries: 106_168_320,
            sweep: with_sweep.then(|| SweepView {
                points: &self.points,
                p_grid: &self.grid,
                q_grid: &self.grid,
                chosen: (0.15, 0.15),
                rule: "lowest mean |SMD| among points with an inlier ratio of at least 90%".into(),
            }),
            generated: "2025-01-01T00:00:00Z".into(),
            verdict: self.verdict.as_ref(),
            nothing_to_remove: self.nothing_to_remove.clone(),
        }
    }
}

/// (variation, group, value or None for an unparsed answer), minority offered `gap` less;
/// values rounded to 10 like a model's round offers, a few unparsed, one far outlier each.
fn answers(specs: &[(&str, f64, f64)], seed: u64) -> Vec<(String, Group, Option<f64>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for &(variation, centre, gap) in specs {
        for (group, shift) in [(Group::Majority, 0.0), (Group::Minority, gap)] {
            for i in 0..PER_GROUP {
                let noise: f64 = (0..4).map(|_| rng.random::<f64>() - 0.5).sum::<f64>() * 0.35;
                let value = (centre * (1.0 - shift) * (1.0 + noise) / 10.0).round() * 10.0;
                let value = match i {
                    0 => None,
                    1 => Some(centre * 40.0),
                    _ => Some(value),
                };
                out.push((variation.to_string(), group, value));
            }
        }
    }
    out
}

fn records(values: &[(String, Group, Option<f64>)], judge: &InlierJudge) -> Vec<AnswerRecord> {
    values
        .iter()
        .enumerate()
        .map(|(i, (variation, group, value))| AnswerRecord {
            scenario: "purchase".into(),
            variation: variation.clone(),
            context: ContextLevel::Low,
            name: format!("person {}", i % 40),
            group: *group,
            gender: if i % 2 == 0 { "man" } else { "woman" }.into(),
            sample: (i / 40) as u32,
            seed: 7,
            raw: value.map_or("I cannot say".into(), |v| format!("${v}")),
            value: *value,
            status: if value.is_some() { ParseStatus::Ok } else { ParseStatus::Unparseable },
            inlier: judge.is_inlier(variation, *value),
        })
        .collect()
}

/// Pruned entries concentrated in the later layers' MLP matrices.
fn distribution(layers: usize) -> Distribution {
    let sizes = [576u64 * 576, 576 * 192, 576 * 192, 576 * 576, 576 * 1536, 576 * 1536, 1536 * 576];
    let counts: Vec<[u64; 7]> = (0..layers)
        .map(|layer| {
            let depth = (layer + 1) as u64;
            std::array::from_fn(|c| depth * depth * if c >= 4 { 40 } else { 9 } + (c as u64 * 13 + depth * 7) % 50)
        })
        .collect();
    let total: u64 = counts.iter().flatten().sum();
    let fractions = counts.iter().map(|row| std::array::from_fn(|c| row[c] as f64 / sizes[c] as f64)).collect();
    let layer_share = counts.iter().map(|row| row.iter().sum::<u64>() as f64 / total as f64).collect();
    Distribution { counts, fractions, layer_share, total }
}

fn sweep_points() -> Vec<SweepPoint> {
    let grid = [0.05, 0.15, 0.3];
    let mut points = Vec::new();
    for (j, &q) in grid.iter().enumerate() {
        for (i, &p) in grid.iter().enumerate() {
            points.push(SweepPoint {
                p,
                q,
                pruned_entries: 20_000 * (j as u64 + 1) * (3 - i as u64),
                mean_abs_smd: Some(0.45 - 0.12 * j as f64 + 0.03 * i as f64),
                inlier_ratio: 0.93 - 0.04 * j as f64 + 0.01 * i as f64,
                parse_rate: 0.98 - 0.01 * j as f64,
                dir: PathBuf::from(format!("sweep/p{p}-q{q}")),
            });
        }
    }
    points
}
