//! MLP-unit and head granularity against brute force and hand computations, and the checks
//! that refuse settings that do not fit the granularity.

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{
    build_mask, build_regime_mask, weight_head_scores, BuildError, DifferenceParams, Direction, Granularity, HeadMode,
    HeadRanking, HeadScore, Regime, Selection,
};
use crate::arch::{linear_weight_name, Architecture, Component};
use crate::fixture::FixtureSpec;
use crate::score::{Group, ScoreInfo, ScoreMatrix, ScoreSet};

fn arch(
    num_layers: usize,
    hidden_size: usize,
    intermediate_size: usize,
    heads: usize,
    kv_heads: usize,
) -> Architecture {
    let spec = FixtureSpec {
        num_layers,
        hidden_size,
        intermediate_size,
        num_heads: heads,
        num_kv_heads: kv_heads,
        ..FixtureSpec::default()
    };
    Architecture::from_config(&spec.config_json()).unwrap()
}

fn params(granularity: Granularity, q: f64, p: f64) -> DifferenceParams {
    DifferenceParams {
        q,
        p,
        granularity,
        direction: Direction::default(),
        selection: Selection::default(),
        head_mode: HeadMode::default(),
        head_score: HeadScore::default(),
        head_ranking: HeadRanking::default(),
    }
}

fn score_set(group: Group, weights: BTreeMap<String, ScoreMatrix>, heads: BTreeMap<usize, Vec<f32>>) -> ScoreSet {
    ScoreSet { info: ScoreInfo::new("wanda", group, "purchase", vec!["bicycle".into()]), weights, heads }
}

/// Scores with many ties (multiples of 0.5, so every sum is exact).
fn random_scores(group: Group, seed: u64, arch: &Architecture) -> ScoreSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut weights = BTreeMap::new();
    for layer in 0..arch.num_layers {
        for component in Component::ALL {
            let [rows, cols] = arch.linear_shape(component);
            let values = (0..rows * cols).map(|_| rng.random_range(0..4) as f32 * 0.5).collect();
            weights.insert(linear_weight_name(layer, component), ScoreMatrix { rows, cols, values });
        }
    }
    score_set(group, weights, BTreeMap::new())
}

/// Reference top-k: sort indices by (value descending, index ascending), take k.
fn brute_top_k(values: &[f64], k: usize) -> BTreeSet<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order.into_iter().take(k).collect()
}

fn brute_difference(a: &[f64], b: &[f64], q: f64, p: f64) -> BTreeSet<usize> {
    let take = brute_top_k(a, (q * a.len() as f64).floor() as usize);
    take.difference(&brute_top_k(b, (p * b.len() as f64).floor() as usize)).copied().collect()
}

/// Unit j: every entry of gate row j and up row j plus every entry of down column j.
fn brute_unit_scores(scores: &ScoreSet, layer: usize) -> Vec<f64> {
    let m = |c| &scores.weights[&linear_weight_name(layer, c)];
    let (gate, up, down) = (m(Component::Gate), m(Component::Up), m(Component::Down));
    (0..gate.rows)
        .map(|j| {
            let row = |s: &ScoreMatrix| (0..s.cols).map(|c| s.values[j * s.cols + c] as f64).sum::<f64>();
            let column = (0..down.rows).map(|r| down.values[r * down.cols + j] as f64).sum::<f64>();
            row(gate) + row(up) + column
        })
        .collect()
}

#[test]
fn unit_granularity_selects_the_brute_force_units_per_layer() {
    let arch = arch(3, 8, 20, 4, 2);
    let minority = random_scores(Group::Minority, 1, &arch);
    let majority = random_scores(Group::Majority, 2, &arch);
    for (q, p) in [(0.4, 0.35), (0.15, 0.15), (1.0, 0.0), (0.5, 0.9)] {
        for direction in [Direction::MinorityMinusMajority, Direction::MajorityMinusMinority] {
            let selection = Selection { layers: Some((1, 2)), ..Selection::default() };
            let params = DifferenceParams { direction, selection, ..params(Granularity::Unit, q, p) };
            let mask = build_mask(&minority, &majority, &arch, &params).unwrap();
            let (pruned, protected) = if direction == Direction::MinorityMinusMajority {
                (&minority, &majority)
            } else {
                (&majority, &minority)
            };
            assert_eq!(mask.mlp_units.keys().copied().collect::<Vec<_>>(), vec![1, 2], "only the selected layers");
            for (&layer, units) in &mask.mlp_units {
                let expected =
                    brute_difference(&brute_unit_scores(pruned, layer), &brute_unit_scores(protected, layer), q, p);
                assert_eq!(units, &expected, "layer {layer} q={q} p={p} {direction:?}");
            }
            assert!(mask.weights.is_empty() && mask.rows.is_empty() && mask.heads.is_empty());
        }
    }
}

#[test]
fn unit_counts_are_floors_of_the_fractions_of_the_mlp_width() {
    let arch = arch(1, 8, 10, 4, 2);
    let minority = random_scores(Group::Minority, 3, &arch);
    let majority = random_scores(Group::Majority, 4, &arch);
    let none_protected = build_mask(&minority, &majority, &arch, &params(Granularity::Unit, 0.39, 0.0)).unwrap();
    assert_eq!(none_protected.mlp_units[&0].len(), 3, "floor(0.39 x 10) units");
}

#[test]
fn unit_granularity_needs_gate_up_and_down_selected() {
    let arch = arch(1, 8, 10, 4, 2);
    let minority = random_scores(Group::Minority, 5, &arch);
    let majority = random_scores(Group::Majority, 6, &arch);
    let selection = Selection { components: [Component::Gate, Component::Down].into_iter().collect(), layers: None };
    let params = DifferenceParams { selection, ..params(Granularity::Unit, 0.4, 0.35) };
    let err = build_mask(&minority, &majority, &arch, &params).unwrap_err();
    assert!(matches!(&err, BuildError::UnitComponents { missing } if missing == &[Component::Up]), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("needs components gate, up and down; missing: up"), "{text}");
}

#[test]
fn weight_head_scores_equal_a_hand_computation_with_shared_kv_heads() {
    // hidden 4, two query heads of width 2 sharing one key/value head.
    let arch = arch(1, 4, 3, 2, 1);
    let matrix = |rows: usize, cols: usize, f: &dyn Fn(usize, usize) -> f32| ScoreMatrix {
        rows,
        cols,
        values: (0..rows * cols).map(|i| f(i / cols, i % cols)).collect(),
    };
    let weights = BTreeMap::from([
        (linear_weight_name(0, Component::Q), matrix(4, 4, &|r, _| (r + 1) as f32)),
        (linear_weight_name(0, Component::K), matrix(2, 4, &|_, _| 1.0)),
        (linear_weight_name(0, Component::V), matrix(2, 4, &|_, _| 2.0)),
        (linear_weight_name(0, Component::O), matrix(4, 4, &|_, c| c as f32)),
    ]);
    let minority = score_set(Group::Minority, weights.clone(), BTreeMap::from([(0, vec![9.0, 1.0])]));
    let majority = score_set(Group::Majority, weights, BTreeMap::from([(0, vec![0.0, 0.0])]));
    // q rows: head 0 = 4x1 + 4x2 = 12, head 1 = 4x3 + 4x4 = 28; o columns: head 0 = 4x0 + 4x1
    // = 4, head 1 = 4x2 + 4x3 = 20; k/v rows of the shared head: (8 + 16) / 2 = 12 each.
    assert_eq!(weight_head_scores(&minority, &arch, 0).unwrap(), vec![28.0, 60.0]);
    let by = |head_score| {
        let params = DifferenceParams { head_score, ..params(Granularity::Head, 0.5, 0.0) };
        build_mask(&minority, &majority, &arch, &params).unwrap().heads
    };
    assert_eq!(by(HeadScore::Weights), BTreeMap::from([(0, BTreeSet::from([1]))]));
    assert_eq!(by(HeadScore::Attention), BTreeMap::from([(0, BTreeSet::from([0]))]), "the file's own head scores");
}

fn attention_scores(group: Group, heads: [[f32; 2]; 2]) -> ScoreSet {
    score_set(group, BTreeMap::new(), heads.iter().enumerate().map(|(l, h)| (l, h.to_vec())).collect())
}

#[test]
fn global_ranking_takes_its_counts_from_all_heads_and_differs_from_per_layer() {
    let arch = arch(2, 8, 4, 2, 1);
    let minority = attention_scores(Group::Minority, [[10.0, 9.0], [1.0, 2.0]]);
    let majority = attention_scores(Group::Majority, [[0.0, 5.0], [0.0, 0.0]]);
    let heads = |head_ranking| {
        let params = DifferenceParams { head_ranking, ..params(Granularity::Head, 0.5, 0.25) };
        build_mask(&minority, &majority, &arch, &params).unwrap().heads
    };
    // Per layer: top floor(0.5 x 2) = 1 head, none protected (floor(0.25 x 2) = 0).
    assert_eq!(heads(HeadRanking::PerLayer), BTreeMap::from([(0, BTreeSet::from([0])), (1, BTreeSet::from([1]))]));
    // Global: top floor(0.5 x 4) = 2 heads, (0, 0) and (0, 1); floor(0.25 x 4) = 1 protected, (0, 1).
    assert_eq!(heads(HeadRanking::Global), BTreeMap::from([(0, BTreeSet::from([0])), (1, BTreeSet::new())]));

    let tied = attention_scores(Group::Minority, [[1.0, 1.0], [1.0, 1.0]]);
    let params = DifferenceParams { head_ranking: HeadRanking::Global, ..params(Granularity::Head, 0.75, 0.0) };
    let mask = build_mask(&tied, &attention_scores(Group::Majority, [[0.0; 2]; 2]), &arch, &params).unwrap();
    assert_eq!(
        mask.heads,
        BTreeMap::from([(0, BTreeSet::from([0, 1])), (1, BTreeSet::from([0]))]),
        "ties go to the lower (layer, head)"
    );
}

#[test]
fn global_ranking_uses_only_the_selected_layers() {
    let arch = arch(2, 8, 4, 2, 1);
    let minority = attention_scores(Group::Minority, [[10.0, 9.0], [1.0, 2.0]]);
    let majority = attention_scores(Group::Majority, [[0.0, 0.0], [0.0, 0.0]]);
    let selection = Selection { layers: Some((1, 1)), ..Selection::default() };
    let params =
        DifferenceParams { selection, head_ranking: HeadRanking::Global, ..params(Granularity::Head, 0.5, 0.0) };
    let mask = build_mask(&minority, &majority, &arch, &params).unwrap();
    assert_eq!(mask.heads, BTreeMap::from([(1, BTreeSet::from([1]))]));
}

#[test]
fn head_settings_at_another_granularity_are_refused() {
    let arch = arch(1, 8, 4, 2, 1);
    let minority = random_scores(Group::Minority, 7, &arch);
    let majority = random_scores(Group::Majority, 8, &arch);
    for granularity in [Granularity::Weight, Granularity::Row, Granularity::Unit] {
        let params = DifferenceParams { head_ranking: HeadRanking::Global, ..params(granularity, 0.4, 0.35) };
        let text = build_mask(&minority, &majority, &arch, &params).unwrap_err().to_string();
        assert!(text.contains("apply to granularity head only") && text.contains("head ranking global"), "{text}");
        assert!(text.contains(&format!("found granularity {granularity}")), "{text}");
    }
}

#[test]
fn head_settings_are_recorded_in_the_provenance_and_defaults_keep_it_unchanged() {
    let arch = arch(1, 8, 4, 2, 1);
    let mut minority = random_scores(Group::Minority, 9, &arch);
    let mut majority = random_scores(Group::Majority, 10, &arch);
    minority.heads.insert(0, vec![1.0, 2.0]);
    majority.heads.insert(0, vec![2.0, 1.0]);
    let build = |params: &DifferenceParams| {
        let mask = build_regime_mask(
            std::slice::from_ref(&minority),
            std::slice::from_ref(&majority),
            &arch,
            params,
            &Regime::PromptSpecific,
            None,
        )
        .unwrap();
        mask.provenance.unwrap()["params"].clone()
    };
    let chosen = DifferenceParams {
        head_score: HeadScore::Weights,
        head_ranking: HeadRanking::Global,
        ..params(Granularity::Head, 0.5, 0.0)
    };
    let recorded = build(&chosen);
    assert_eq!((recorded["head_score"].as_str(), recorded["head_ranking"].as_str()), (Some("weights"), Some("global")));
    assert_eq!(serde_json::from_value::<DifferenceParams>(recorded).unwrap(), chosen);

    let default = build(&params(Granularity::Head, 0.5, 0.0));
    let keys: Vec<&str> = default.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["direction", "granularity", "head_mode", "p", "q", "selection"], "defaults add no key");
    assert_eq!(serde_json::to_value(Granularity::Unit).unwrap(), "unit");
}
