//! `biasprune mask` from score directories: regimes, joins, provenance and refusals.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use biasprune::arch::{Architecture, Component};
use biasprune::checkpoint::Checkpoint;
use biasprune::fixture::FixtureSpec;
use biasprune::mask::{
    build_mask, join_masks, load_mask, DifferenceParams, Direction, Granularity, HeadMode, HeadRanking, HeadScore,
    Selection,
};
use biasprune::score::{checkpoint_fingerprint, load_scores, save_scores, Group, ScoreInfo, ScoreMatrix, ScoreSet};
use common::{assert_bad_input, biasprune, fixture, stderr};
use rand::{Rng, SeedableRng};

fn scores(
    arch: &Architecture,
    fingerprint: &str,
    group: Group,
    scenario: &str,
    variation: &str,
    seed: u64,
) -> ScoreSet {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut weights = BTreeMap::new();
    for layer in 0..arch.num_layers {
        for c in Component::ALL {
            let [rows, cols] = arch.linear_shape(c);
            let values = (0..rows * cols).map(|_| rng.random_range(0..50) as f32 / 7.0).collect();
            weights.insert(biasprune::arch::linear_weight_name(layer, c), ScoreMatrix { rows, cols, values });
        }
    }
    let mut info = ScoreInfo::new("wanda", group, scenario, vec![variation.to_string()]);
    info.checkpoint_fingerprint = fingerprint.to_string();
    ScoreSet { info, weights, heads: BTreeMap::new() }
}

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    ckpt: PathBuf,
    arch: Architecture,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let ckpt = fixture(&root, "ckpt", &FixtureSpec::default());
    let opened = Checkpoint::open(&ckpt).unwrap();
    let arch = Architecture::of_checkpoint(&opened).unwrap();
    let fp = checkpoint_fingerprint(&opened);
    for (i, (scenario, variation)) in
        [("purchase", "car"), ("purchase", "bicycle"), ("purchase", "house"), ("finance", "childcare")]
            .iter()
            .enumerate()
    {
        for group in [Group::Minority, Group::Majority] {
            let set = scores(&arch, &fp, group, scenario, variation, i as u64 * 2 + group as u64);
            save_scores(&root.join(format!("{scenario}-{variation}-{group}")), &set, false).unwrap();
        }
    }
    Setup { _tmp: tmp, root, ckpt, arch }
}

fn dir(s: &Setup, name: &str) -> String {
    s.root.join(name).to_str().unwrap().to_string()
}

fn run_mask(s: &Setup, extra: &[&str]) -> std::process::Output {
    let ckpt = s.ckpt.to_str().unwrap().to_string();
    let mut args = vec!["mask", "--checkpoint", &ckpt];
    args.extend_from_slice(extra);
    biasprune(&args)
}

fn params() -> DifferenceParams {
    DifferenceParams {
        q: 0.15,
        p: 0.15,
        granularity: Granularity::Weight,
        direction: Direction::default(),
        selection: Selection::default(),
        head_mode: HeadMode::default(),
        head_score: HeadScore::default(),
        head_ranking: HeadRanking::default(),
    }
}

#[test]
fn scores_round_trip_exactly_in_f32_and_closely_in_f16() {
    let s = setup();
    let set = load_scores(Path::new(&dir(&s, "purchase-car-minority"))).unwrap();
    let copy = s.root.join("copy");
    save_scores(&copy, &set, false).unwrap();
    assert_eq!(load_scores(&copy).unwrap(), set);
    let half = s.root.join("half");
    save_scores(&half, &set, true).unwrap();
    let back = load_scores(&half).unwrap();
    assert_eq!(back.info.dtype, "F16");
    for (name, m) in &set.weights {
        for (a, b) in m.values.iter().zip(&back.weights[name].values) {
            assert!((a - b).abs() <= 1e-3 * a.abs().max(1.0), "{name}: {a} vs {b}");
        }
    }
}

#[test]
fn prompt_specific_and_within_context_masks_equal_the_library_joins() {
    let s = setup();
    let out = dir(&s, "mask-ps");
    let run = run_mask(
        &s,
        &[
            "--minority",
            &dir(&s, "purchase-car-minority"),
            "--majority",
            &dir(&s, "purchase-car-majority"),
            "--out",
            &out,
        ],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let load = |n: &str| load_scores(Path::new(&dir(&s, n))).unwrap();
    let expected =
        build_mask(&load("purchase-car-minority"), &load("purchase-car-majority"), &s.arch, &params()).unwrap();
    let got = load_mask(Path::new(&out)).unwrap();
    assert_eq!(got.weights, expected.weights);
    assert_eq!(got.provenance.as_ref().unwrap()["regime"]["regime"], "prompt-specific");

    let out = dir(&s, "mask-wc");
    let run = run_mask(
        &s,
        &[
            "--regime",
            "within-context",
            "--held-out",
            "house",
            "--minority",
            &dir(&s, "purchase-car-minority"),
            &dir(&s, "purchase-bicycle-minority"),
            "--majority",
            &dir(&s, "purchase-bicycle-majority"),
            &dir(&s, "purchase-car-majority"),
            "--out",
            &out,
        ],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let car = build_mask(&load("purchase-car-minority"), &load("purchase-car-majority"), &s.arch, &params()).unwrap();
    let bicycle =
        build_mask(&load("purchase-bicycle-minority"), &load("purchase-bicycle-majority"), &s.arch, &params()).unwrap();
    let got = load_mask(Path::new(&out)).unwrap();
    assert_eq!(got.weights, join_masks(&[car.clone(), bicycle.clone()], 2).unwrap().weights);
    assert_eq!(got.provenance.as_ref().unwrap()["masks_joined"], 2);

    let out = dir(&s, "mask-cc");
    let run = run_mask(
        &s,
        &[
            "--regime",
            "cross-context",
            "--target-scenario",
            "finance",
            "--min-count",
            "1",
            "--minority",
            &dir(&s, "purchase-car-minority"),
            &dir(&s, "purchase-bicycle-minority"),
            "--majority",
            &dir(&s, "purchase-bicycle-majority"),
            &dir(&s, "purchase-car-majority"),
            "--out",
            &out,
            "--json",
        ],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let got = load_mask(Path::new(&out)).unwrap();
    assert_eq!(got.weights, join_masks(&[car, bicycle], 1).unwrap().weights);
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let count: u64 = got.weights.values().map(|b| b.count()).sum();
    assert_eq!(summary["entries"], count);
}

/// Copies of the car score pair that also carry attention head scores, so that the two head
/// score sources differ; returns the --minority/--majority arguments.
fn car_pair_with_head_scores(s: &Setup) -> Vec<String> {
    let mut args = Vec::new();
    for (group, seed) in [("minority", 11), ("majority", 12)] {
        let mut set = load_scores(Path::new(&dir(s, &format!("purchase-car-{group}")))).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        set.heads = (0..s.arch.num_layers)
            .map(|l| (l, (0..s.arch.num_heads).map(|_| rng.random_range(0..10) as f32).collect()))
            .collect();
        let name = format!("car-{group}-heads");
        save_scores(&s.root.join(&name), &set, false).unwrap();
        args.extend([format!("--{group}"), dir(s, &name)]);
    }
    args
}

#[test]
fn unit_and_head_granularities_equal_the_library_and_record_their_settings() {
    let s = setup();
    let pair = car_pair_with_head_scores(&s);
    let load = |n: &str| load_scores(Path::new(&dir(&s, n))).unwrap();
    let (minority, majority) = (load("car-minority-heads"), load("car-majority-heads"));
    let head = |head_score, head_ranking| DifferenceParams {
        q: 0.5,
        p: 0.25,
        granularity: Granularity::Head,
        head_score,
        head_ranking,
        ..params()
    };
    let cases = [
        (vec!["--granularity", "unit"], DifferenceParams { granularity: Granularity::Unit, ..params() }),
        (
            vec![
                "--granularity",
                "head",
                "--q",
                "0.5",
                "--p",
                "0.25",
                "--head-score",
                "weights",
                "--head-ranking",
                "global",
            ],
            head(HeadScore::Weights, HeadRanking::Global),
        ),
        (
            vec!["--granularity", "head", "--q", "0.5", "--p", "0.25", "--head-ranking", "global"],
            head(HeadScore::Attention, HeadRanking::Global),
        ),
        (vec!["--granularity", "head", "--q", "0.5", "--p", "0.25"], head(HeadScore::Attention, HeadRanking::PerLayer)),
    ];
    for (i, (flags, params)) in cases.into_iter().enumerate() {
        let out = dir(&s, &format!("mask-{i}"));
        let mut args: Vec<&str> = pair.iter().map(String::as_str).collect();
        args.extend(flags.iter().copied());
        args.extend(["--out", &out, "--json"]);
        let run = run_mask(&s, &args);
        assert!(run.status.success(), "{flags:?}: {}", stderr(&run));
        let expected = build_mask(&minority, &majority, &s.arch, &params).unwrap();
        let got = load_mask(Path::new(&out)).unwrap();
        assert_eq!((&got.mlp_units, &got.heads), (&expected.mlp_units, &expected.heads), "{flags:?}");
        assert!(got.weights.is_empty() && got.rows.is_empty(), "{flags:?}");
        let recorded = &got.provenance.as_ref().unwrap()["params"];
        assert_eq!(recorded, &serde_json::to_value(&params).unwrap(), "{flags:?}");
        let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        if params.granularity == Granularity::Unit {
            assert_eq!(recorded["granularity"], "unit");
            let units: usize = got.mlp_units.values().map(|u| u.len()).sum();
            assert!(units > 0);
            assert_eq!(summary["entries"], (3 * s.arch.hidden_size * units) as u64, "gate and up rows, down columns");
        } else {
            let heads: usize = got.heads.values().map(|h| h.len()).sum();
            assert_eq!(summary["entries"], (s.arch.hidden_size * s.arch.head_dim * heads) as u64, "o_proj columns");
        }
    }
    let by_weights = load_mask(Path::new(&dir(&s, "mask-1"))).unwrap().heads;
    let by_attention = load_mask(Path::new(&dir(&s, "mask-2"))).unwrap().heads;
    assert_ne!(by_weights, by_attention, "the head score source changes the heads chosen");
}

#[test]
fn granularity_settings_that_do_not_fit_are_refused_naming_the_flag() {
    let s = setup();
    let out = dir(&s, "never");
    let pair = [
        "--minority".to_string(),
        dir(&s, "purchase-car-minority"),
        "--majority".to_string(),
        dir(&s, "purchase-car-majority"),
    ];
    let cases: [(&[&str], &[&str]); 5] = [
        (&["--granularity", "neuron"], &["--granularity", "neuron"]),
        (&["--granularity", "head", "--head-score", "gradients"], &["--head-score", "gradients"]),
        (&["--granularity", "head", "--head-ranking", "sideways"], &["--head-ranking", "sideways"]),
        (&["--granularity", "unit", "--components", "gate,down,q"], &["gate, up and down", "missing: up"]),
        (&["--head-score", "weights"], &["apply to granularity head only", "found granularity weight"]),
    ];
    for (flags, needles) in cases {
        let mut args: Vec<&str> = pair.iter().map(String::as_str).collect();
        args.extend(flags.iter().copied());
        args.extend(["--out", &out]);
        assert_bad_input(&run_mask(&s, &args), needles);
        assert!(!Path::new(&out).exists(), "{flags:?}");
    }
}

#[test]
fn regime_misuse_is_refused_with_a_reason() {
    let s = setup();
    let out = dir(&s, "never");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--minority".into(),
                dir(&s, "purchase-car-minority"),
                dir(&s, "purchase-bicycle-minority"),
                "--majority".into(),
                dir(&s, "purchase-car-majority"),
                dir(&s, "purchase-bicycle-majority"),
            ],
            "prompt-specific takes one",
        ),
        (
            vec![
                "--regime".into(),
                "within-context".into(),
                "--held-out".into(),
                "car".into(),
                "--minority".into(),
                dir(&s, "purchase-car-minority"),
                "--majority".into(),
                dir(&s, "purchase-car-majority"),
            ],
            "held-out variation \"car\"",
        ),
        (
            vec![
                "--regime".into(),
                "within-context".into(),
                "--minority".into(),
                dir(&s, "purchase-car-minority"),
                dir(&s, "finance-childcare-minority"),
                "--majority".into(),
                dir(&s, "purchase-car-majority"),
                dir(&s, "finance-childcare-majority"),
            ],
            "one scenario",
        ),
        (
            vec![
                "--regime".into(),
                "cross-context".into(),
                "--target-scenario".into(),
                "purchase".into(),
                "--minority".into(),
                dir(&s, "purchase-car-minority"),
                "--majority".into(),
                dir(&s, "purchase-car-majority"),
            ],
            "other than \"purchase\"",
        ),
        (
            vec![
                "--minority".into(),
                dir(&s, "purchase-car-majority"),
                "--majority".into(),
                dir(&s, "purchase-car-majority"),
            ],
            "given as minority",
        ),
        (
            vec![
                "--minority".into(),
                dir(&s, "purchase-car-minority"),
                "--majority".into(),
                dir(&s, "purchase-bicycle-majority"),
            ],
            "no majority scores for purchase/car",
        ),
        (
            vec![
                "--q".into(),
                "1.5".into(),
                "--minority".into(),
                dir(&s, "purchase-car-minority"),
                "--majority".into(),
                dir(&s, "purchase-car-majority"),
            ],
            "q = 1.5",
        ),
        (
            vec![
                "--layers".into(),
                "5-2".into(),
                "--minority".into(),
                dir(&s, "purchase-car-minority"),
                "--majority".into(),
                dir(&s, "purchase-car-majority"),
            ],
            "--layers",
        ),
    ];
    for (extra, needle) in cases {
        let mut args: Vec<&str> = extra.iter().map(String::as_str).collect();
        args.extend(["--out", &out]);
        assert_bad_input(&run_mask(&s, &args), &[needle]);
        assert!(!Path::new(&out).exists());
    }
    let other = fixture(&s.root, "other", &FixtureSpec { seed: 1, num_layers: 3, ..FixtureSpec::default() });
    let run = biasprune(&[
        "mask",
        "--checkpoint",
        other.to_str().unwrap(),
        "--minority",
        &dir(&s, "purchase-car-minority"),
        "--majority",
        &dir(&s, "purchase-car-majority"),
        "--out",
        &out,
    ]);
    assert_bad_input(&run, &["purchase-car-minority", "another checkpoint"]);
}

#[test]
fn sweep_evaluates_every_grid_point_with_its_mask() {
    let s = setup();
    let out = dir(&s, "sweep");
    let run = biasprune(&[
        "sweep",
        s.ckpt.to_str().unwrap(),
        "--p-grid",
        "0.1,0.5",
        "--q-grid",
        "0.3",
        "--minority",
        &dir(&s, "purchase-car-minority"),
        "--majority",
        &dir(&s, "purchase-car-majority"),
        "--scenario",
        "purchase",
        "--variations",
        "car",
        "--samples",
        "2",
        "--max-new-tokens",
        "4",
        "--bootstrap",
        "50",
        "--out",
        &out,
        "--json",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let points: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let points = points.as_array().unwrap();
    assert_eq!(points.len(), 2);
    let load = |n: &str| load_scores(Path::new(&dir(&s, n))).unwrap();
    for point in points {
        let (p, q) = (point["p"].as_f64().unwrap(), point["q"].as_f64().unwrap());
        let params = DifferenceParams { p, q, ..params() };
        let mask =
            build_mask(&load("purchase-car-minority"), &load("purchase-car-majority"), &s.arch, &params).unwrap();
        let expected: u64 = mask.weights.values().map(|b| b.count()).sum();
        assert_eq!(point["pruned_entries"], expected, "p={p} q={q}");
        let point_dir = Path::new(point["dir"].as_str().unwrap());
        assert_eq!(load_mask(&point_dir.join("mask")).unwrap().weights, mask.weights);
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(point_dir.join("eval/summary.json")).unwrap()).unwrap();
        assert_eq!(summary["variations"]["car"]["answers"], 80);
        let mask_sha256 = biasprune::fsutil::file_sha256(&point_dir.join("mask/mask.json")).unwrap();
        assert_eq!(summary["run"]["checkpoint"]["masks_applied"][0], mask_sha256.as_str());
    }
    assert!(points[0]["pruned_entries"].as_u64() > points[1]["pruned_entries"].as_u64(), "a larger p protects more");
    let svg = std::fs::read_to_string(Path::new(&out).join("sweep.svg")).unwrap();
    assert!(svg.contains("mean |SMD|") && svg.contains("inlier ratio"));
}

#[test]
fn score_matrices_that_do_not_fit_the_checkpoint_are_refused_by_name_not_a_panic() {
    let s = setup();
    let q0 = biasprune::arch::linear_weight_name(0, Component::Q);
    let [_, cols] = s.arch.linear_shape(Component::Q);
    for group in [Group::Minority, Group::Majority] {
        let name = format!("purchase-car-{group}");
        let mut set = load_scores(Path::new(&dir(&s, &name))).unwrap();
        set.weights.insert(q0.clone(), ScoreMatrix { rows: 2, cols, values: vec![1.0; 2 * cols] });
        save_scores(&s.root.join(format!("small-{group}")), &set, false).unwrap();
    }
    let run = run_mask(
        &s,
        &[
            "--granularity",
            "head",
            "--minority",
            &dir(&s, "small-minority"),
            "--majority",
            &dir(&s, "small-majority"),
            "--out",
            &dir(&s, "never"),
        ],
    );
    let expected = format!("{:?}", s.arch.linear_shape(Component::Q));
    assert_bad_input(&run, &[&q0, &format!("expected shape {expected}"), &format!("found shape [2, {cols}]")]);
    assert!(!s.root.join("never").exists());
}
