//! `analyze`: per layer x component counts, shares and overlaps equal counting by hand.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use biasprune::analyze::{distribution, overlap_matrix};
use biasprune::arch::{linear_weight_name, Architecture, Component};
use biasprune::checkpoint::Checkpoint;
use biasprune::fixture::FixtureSpec;
use biasprune::mask::{resolve, save_mask, BitMask, PruneMask};
use common::{biasprune, fixture, stderr};

fn entries_of_a() -> BTreeSet<(usize, usize)> {
    (0..100).map(|i| (i % 64, i / 64 + 2 * (i % 5))).collect()
}

fn masks() -> Vec<PruneMask> {
    let mut bits = BitMask::new(64, 64);
    for (r, c) in entries_of_a() {
        bits.set(r, c);
    }
    let a =
        PruneMask { weights: BTreeMap::from([(linear_weight_name(0, Component::Q), bits)]), ..PruneMask::default() };
    let b = PruneMask {
        rows: BTreeMap::from([(linear_weight_name(0, Component::Q), BTreeSet::from([0, 1]))]),
        heads: BTreeMap::from([(1, BTreeSet::from([2]))]),
        ..PruneMask::default()
    };
    vec![a, b]
}

#[test]
fn distribution_and_overlap_equal_hand_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture(tmp.path(), "ckpt", &FixtureSpec::default());
    let ckpt = Checkpoint::open(&dir).unwrap();
    let arch = Architecture::of_checkpoint(&ckpt).unwrap();
    let plans: Vec<_> = masks().iter().map(|m| resolve(m, &arch, &ckpt).unwrap()).collect();

    let a = distribution(&plans[0], &arch);
    assert_eq!(a.total, 100);
    assert_eq!(a.counts[0][0], 100);
    assert!((a.fractions[0][0] - 100.0 / 4096.0).abs() < 1e-12);
    assert_eq!(a.layer_share, vec![1.0, 0.0]);

    let b = distribution(&plans[1], &arch);
    assert_eq!(b.counts[0][0], 128, "two q rows of 64");
    assert_eq!(b.counts[1][3], 64 * 16, "head 2 of layer 1: 16 o_proj columns of 64 rows");
    assert_eq!(b.total, 128 + 1024);

    let in_a = entries_of_a();
    assert_eq!(in_a.len(), 100);
    let shared = in_a.iter().filter(|(r, _)| *r < 2).count() as f64;
    let overlap = overlap_matrix(&plans);
    assert!((overlap[0][1] - shared / 100.0).abs() < 1e-12);
    assert!((overlap[1][0] - shared / 1152.0).abs() < 1e-12);
    assert_eq!((overlap[0][0], overlap[1][1]), (1.0, 1.0));

    let mask_dirs: Vec<String> = masks()
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let d = tmp.path().join(format!("mask{i}"));
            save_mask(&d, m).unwrap();
            d.to_str().unwrap().to_string()
        })
        .collect();
    let svg_dir = tmp.path().join("svg");
    let run = biasprune(&[
        "analyze",
        &mask_dirs[0],
        &mask_dirs[1],
        "--checkpoint",
        dir.to_str().unwrap(),
        "--svg-dir",
        svg_dir.to_str().unwrap(),
        "--json",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["masks"][1]["distribution"]["total"], 1152);
    let heatmap = std::fs::read_to_string(svg_dir.join("heatmap-2.svg")).unwrap();
    assert!(heatmap.starts_with("<svg") && heatmap.contains("gate") && heatmap.contains("share of pruned entries"));
    let overlap_svg = std::fs::read_to_string(svg_dir.join("overlap.svg")).unwrap();
    assert!(overlap_svg.contains("mask0") && overlap_svg.contains(&format!("{:.2}", shared / 100.0)));
}
