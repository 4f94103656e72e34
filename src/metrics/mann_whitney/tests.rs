//! Mann-Whitney U against scipy 1.17.1:
//! `stats.mannwhitneyu(x, y, method="asymptotic", alternative="two-sided")`.

use super::*;

fn check(x: &[f64], y: &[f64], u: f64, p: f64) {
    let result = mann_whitney_u(x, y).unwrap();
    assert_eq!(result.u, u, "U of {x:?} vs {y:?}");
    assert!((result.p_value - p).abs() < 1e-12, "p of {x:?} vs {y:?}: got {}, want {p}", result.p_value);
}

#[test]
fn no_ties() {
    let x = [520.0, 480.0, 500.0, 610.0, 450.0, 530.0, 495.0, 560.0];
    let y = [450.0, 470.0, 400.0, 515.0, 430.0, 480.0, 455.0];
    check(&x, &y, 48.0, 0.02377616021914935);
    check(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], 0.0, 0.08085559837005224);
}

#[test]
fn with_ties() {
    check(&[1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0], &[2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0, 5.0], 11.0, 0.049238967838553395);
    let x = [0.45, 0.5, 0.55, 0.6, 0.4, 0.45];
    let y = [0.45, 0.35, 0.4, 0.5, 0.3, 0.45, 0.4];
    check(&x, &y, 33.5, 0.07999103247420047);
}

#[test]
fn all_equal_gives_p_one_and_empty_gives_none() {
    check(&[1.0, 1.0, 1.0], &[1.0, 1.0], 3.0, 1.0);
    assert_eq!(mann_whitney_u(&[], &[1.0]), None);
}
