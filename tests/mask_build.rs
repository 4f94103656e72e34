//! Mask building equals brute-force references on small matrices, ties included.

use std::collections::{BTreeMap, BTreeSet};

use biasprune::arch::{linear_weight_name, Architecture, Component};
use biasprune::fixture::FixtureSpec;
use biasprune::mask::{
    build_mask, head_scores, join_masks, set_difference, top_k, BitMask, DifferenceParams, Direction, Granularity,
    HeadMode, HeadRanking, HeadScore, PruneMask, Selection,
};
use biasprune::score::{Group, ScoreInfo, ScoreMatrix, ScoreSet};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Reference top-k: sort indices by (value descending, index ascending), take k.
fn brute_top_k(values: &[f32], k: usize) -> BTreeSet<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order.into_iter().take(k).collect()
}

fn tie_heavy(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(0..5) as f32 * 0.5).collect()
}

fn flags_to_set(flags: &[bool]) -> BTreeSet<usize> {
    flags.iter().enumerate().filter(|(_, &f)| f).map(|(i, _)| i).collect()
}

#[test]
fn top_k_matches_sorting_with_ties_broken_by_index() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for n in [1, 2, 7, 64, 333] {
        for _ in 0..20 {
            let values = if rng.random_bool(0.5) {
                tie_heavy(&mut rng, n)
            } else {
                (0..n).map(|_| rng.random::<f32>()).collect()
            };
            for k in [0, 1, n / 3, n / 2, n.saturating_sub(1), n, n + 5] {
                assert_eq!(flags_to_set(&top_k(&values, k)), brute_top_k(&values, k.min(n)), "n={n} k={k}");
            }
        }
    }
}

#[test]
fn set_difference_matches_brute_force() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for _ in 0..50 {
        let n = rng.random_range(1..200);
        let a = tie_heavy(&mut rng, n);
        let b = tie_heavy(&mut rng, n);
        for (q, p) in [(0.15, 0.15), (0.4, 0.35), (1.0, 0.0), (0.5, 1.0)] {
            let expected: BTreeSet<usize> = brute_top_k(&a, (q * n as f64).floor() as usize)
                .difference(&brute_top_k(&b, (p * n as f64).floor() as usize))
                .copied()
                .collect();
            assert_eq!(flags_to_set(&set_difference(&a, &b, q, p)), expected);
        }
    }
}

fn arch() -> Architecture {
    Architecture::from_config(&FixtureSpec::default().config_json()).unwrap()
}

fn random_scores(group: Group, seed: u64, arch: &Architecture) -> ScoreSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut weights = BTreeMap::new();
    for layer in 0..arch.num_layers {
        for component in Component::ALL {
            let [rows, cols] = arch.linear_shape(component);
            weights.insert(
                linear_weight_name(layer, component),
                ScoreMatrix { rows, cols, values: tie_heavy(&mut rng, rows * cols) },
            );
        }
    }
    ScoreSet {
        info: ScoreInfo::new("wanda", group, "purchase", vec!["bicycle".into()]),
        weights,
        heads: BTreeMap::new(),
    }
}

fn params(granularity: Granularity) -> DifferenceParams {
    DifferenceParams {
        q: 0.4,
        p: 0.35,
        granularity,
        direction: Direction::default(),
        selection: Selection::default(),
        head_mode: HeadMode::default(),
        head_score: HeadScore::default(),
        head_ranking: HeadRanking::default(),
    }
}

#[test]
fn weight_masks_equal_per_matrix_brute_force_in_both_directions() {
    let arch = arch();
    let minority = random_scores(Group::Minority, 3, &arch);
    let majority = random_scores(Group::Majority, 4, &arch);
    for direction in [Direction::MinorityMinusMajority, Direction::MajorityMinusMinority] {
        let mask =
            build_mask(&minority, &majority, &arch, &DifferenceParams { direction, ..params(Granularity::Weight) })
                .unwrap();
        let (pruned, protected) =
            if direction == Direction::MinorityMinusMajority { (&minority, &majority) } else { (&majority, &minority) };
        assert_eq!(mask.weights.len(), 2 * 7);
        for (name, bits) in &mask.weights {
            let a = &pruned.weights[name];
            let n = a.values.len();
            let expected: BTreeSet<usize> = brute_top_k(&a.values, (0.4 * n as f64).floor() as usize)
                .difference(&brute_top_k(&protected.weights[name].values, (0.35 * n as f64).floor() as usize))
                .copied()
                .collect();
            let got: BTreeSet<usize> = (0..n).filter(|&i| bits.get(i / a.cols, i % a.cols)).collect();
            assert_eq!(got, expected, "{name} {direction:?}");
        }
    }
}

#[test]
fn row_and_head_masks_select_the_brute_force_units() {
    let arch = arch();
    let minority = random_scores(Group::Minority, 5, &arch);
    let majority = random_scores(Group::Majority, 6, &arch);
    let rows = build_mask(&minority, &majority, &arch, &params(Granularity::Row)).unwrap();
    for (name, selected) in &rows.rows {
        let sums = |s: &ScoreSet| -> Vec<f32> {
            let m = &s.weights[name];
            m.values.chunks(m.cols).map(|r| r.iter().map(|&v| v as f64).sum::<f64>() as f32).collect()
        };
        let (a, b) = (sums(&minority), sums(&majority));
        let n = a.len();
        let expected: BTreeSet<usize> = brute_top_k(&a, (0.4 * n as f64).floor() as usize)
            .difference(&brute_top_k(&b, (0.35 * n as f64).floor() as usize))
            .copied()
            .collect();
        assert_eq!(selected, &expected, "{name}");
    }

    let d = arch.head_dim;
    let group = arch.num_heads / arch.num_kv_heads;
    let brute_heads = |s: &ScoreSet, layer: usize| -> Vec<f32> {
        let m = |c| &s.weights[&linear_weight_name(layer, c)];
        (0..arch.num_heads)
            .map(|h| {
                let kv = h / group;
                let rows = |mat: &ScoreMatrix, lo: usize| -> f64 {
                    (lo * d..(lo + 1) * d)
                        .flat_map(|r| &mat.values[r * mat.cols..(r + 1) * mat.cols])
                        .map(|&v| v as f64)
                        .sum()
                };
                let o = m(Component::O);
                let cols: f64 = (0..o.rows)
                    .flat_map(|r| (h * d..(h + 1) * d).map(move |c| (r, c)))
                    .map(|(r, c)| o.values[r * o.cols + c] as f64)
                    .sum();
                (rows(m(Component::Q), h)
                    + cols
                    + (rows(m(Component::K), kv) + rows(m(Component::V), kv)) / group as f64) as f32
            })
            .collect()
    };
    for layer in 0..arch.num_layers {
        let got = head_scores(&minority, &arch, layer).unwrap();
        for (g, e) in got.iter().zip(brute_heads(&minority, layer)) {
            assert!((g - e).abs() <= 1e-3 * e.abs().max(1.0), "layer {layer}: {g} vs {e}");
        }
    }
    let heads =
        build_mask(&minority, &majority, &arch, &DifferenceParams { q: 0.5, p: 0.25, ..params(Granularity::Head) })
            .unwrap();
    for layer in 0..arch.num_layers {
        let a = head_scores(&minority, &arch, layer).unwrap();
        let b = head_scores(&majority, &arch, layer).unwrap();
        let expected: BTreeSet<usize> = brute_top_k(&a, 2).difference(&brute_top_k(&b, 1)).copied().collect();
        assert_eq!(heads.heads[&layer], expected);
    }
}

#[test]
fn selection_limits_components_and_layers() {
    let arch = arch();
    let minority = random_scores(Group::Minority, 7, &arch);
    let majority = random_scores(Group::Majority, 8, &arch);
    let selection = Selection {
        components: [Component::Gate, Component::Up, Component::Down].into_iter().collect(),
        layers: Some((1, 1)),
    };
    let mask = build_mask(&minority, &majority, &arch, &DifferenceParams { selection, ..params(Granularity::Weight) })
        .unwrap();
    let names: BTreeSet<String> = mask.weights.keys().cloned().collect();
    let expected: BTreeSet<String> =
        [Component::Gate, Component::Up, Component::Down].iter().map(|&c| linear_weight_name(1, c)).collect();
    assert_eq!(names, expected);
}

#[test]
fn joins_equal_counting_by_hand() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let name = linear_weight_name(0, Component::Q);
    let masks: Vec<PruneMask> = (0..4)
        .map(|_| {
            let mut bits = BitMask::new(5, 11);
            for r in 0..5 {
                for c in 0..11 {
                    if rng.random_bool(0.5) {
                        bits.set(r, c);
                    }
                }
            }
            let heads = BTreeMap::from([(0, (0..4).filter(|_| rng.random_bool(0.5)).collect())]);
            PruneMask { weights: BTreeMap::from([(name.clone(), bits)]), heads, ..PruneMask::default() }
        })
        .collect();
    for min_count in 1..=4 {
        let joined = join_masks(&masks, min_count).unwrap();
        for r in 0..5 {
            for c in 0..11 {
                let n = masks.iter().filter(|m| m.weights[&name].get(r, c)).count();
                assert_eq!(joined.weights[&name].get(r, c), n >= min_count);
            }
        }
        for h in 0..4 {
            let n = masks.iter().filter(|m| m.heads[&0].contains(&h)).count();
            assert_eq!(joined.heads[&0].contains(&h), n >= min_count);
        }
    }
    assert!(join_masks(&masks, 5).is_err());
    assert!(join_masks(&[], 1).is_err());
}
