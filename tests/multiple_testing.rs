//! Holm and Benjamini-Hochberg adjusted p-values against an independent pure-Python
//! computation from the textbook definitions (tests/multiple_testing_reference.py), on
//! random families with ties, zeros, ones and values that scale past 1.

use std::io::Write;
use std::process::{Command, Stdio};

use biasprune::metrics::{benjamini_hochberg_adjusted, holm_adjusted};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

/// Both sides do a handful of multiplications and divisions per value.
const TOLERANCE: f64 = 1e-12;

/// Families of 1 to 60 p-values: uniform, small (a signal), exact ties, 0 and 1.
fn families() -> Vec<Vec<f64>> {
    let mut rng = ChaCha20Rng::seed_from_u64(18);
    let mut out: Vec<Vec<f64>> = vec![vec![0.5], vec![0.0, 1.0], vec![0.01, 0.01, 0.01], vec![0.2, 0.2, 0.001, 0.9]];
    for size in [2, 5, 9, 17, 33, 60] {
        let family: Vec<f64> = (0..size)
            .map(|i| match i % 5 {
                0 => rng.random::<f64>() * 0.001,
                1 => (rng.random::<f64>() * 20.0).round() / 20.0,
                _ => rng.random::<f64>(),
            })
            .collect();
        out.push(family);
    }
    out
}

fn python_reference(families: &[Vec<f64>]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/multiple_testing_reference.py");
    let mut child =
        Command::new("python3").arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("python3 runs");
    let input = serde_json::to_vec(&json!({ "families": families })).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the reference script failed");
    serde_json::from_slice(&output.stdout).unwrap()
}

fn assert_close(ours: &[f64], reference: &Value, what: &str, family: &[f64]) {
    let reference: Vec<f64> = reference.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(ours.len(), reference.len(), "{what} of {family:?}");
    for (i, (a, b)) in ours.iter().zip(&reference).enumerate() {
        assert!((a - b).abs() <= TOLERANCE, "{what} of {family:?}: p #{i} adjusts to {a} here, {b} in Python");
    }
}

#[test]
fn holm_and_bh_equal_the_textbook_definitions() {
    let families = families();
    let reference = python_reference(&families);
    for (i, family) in families.iter().enumerate() {
        assert_close(&holm_adjusted(family), &reference["holm"][i], "Holm", family);
        assert_close(&benjamini_hochberg_adjusted(family), &reference["bh"][i], "BH", family);
    }
    let rejected = |adjusted: Vec<f64>| adjusted.iter().filter(|p| **p <= 0.05).count();
    let big = families.last().unwrap();
    assert!(rejected(benjamini_hochberg_adjusted(big)) >= rejected(holm_adjusted(big)), "BH is never stricter");
}
