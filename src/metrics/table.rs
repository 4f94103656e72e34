//! A plain-text table of a [`Summary`], for terminals and logs.

use std::fmt::Write;

use super::stats::GroupStats;
use super::summary::Summary;

impl Summary {
    /// One row per variation (group n/mean/sd, SMD with CI, Mann-Whitney p, parse rate,
    /// inlier ratio) and an overall row with the mean |SMD|; `-` marks missing values.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let level = self.settings.bootstrap.confidence * 100.0;
        let _ = writeln!(
            out,
            "{:<24} {:>22} {:>22} {:>24} {:>8} {:>6} {:>7}",
            "variation",
            "majority n/mean/sd",
            "minority n/mean/sd",
            format!("SMD [{level}% CI]"),
            "MWU p",
            "parse",
            "inlier"
        );
        for (id, v) in &self.variations {
            let smd = match (v.smd, v.smd_ci) {
                (Some(s), Some(ci)) => format!("{s:.3} [{:.3}, {:.3}]", ci.low, ci.high),
                (Some(s), None) => format!("{s:.3}"),
                _ => "-".to_string(),
            };
            let p = v.mann_whitney.map_or("-".to_string(), |m| format!("{:.4}", m.p_value));
            let _ = writeln!(
                out,
                "{id:<24} {:>22} {:>22} {smd:>24} {p:>8} {:>6.3} {:>7.3}",
                group(&v.majority),
                group(&v.minority),
                v.parse_rate,
                v.inlier_ratio
            );
        }
        let mean_abs = self.overall.mean_abs_smd.map_or("-".to_string(), |m| format!("{m:.3}"));
        let _ = writeln!(
            out,
            "overall: {} answers, parse rate {:.3}, inlier ratio {:.3}, mean |SMD| {mean_abs} over {} variations",
            self.overall.answers, self.overall.parse_rate, self.overall.inlier_ratio, self.overall.variations_with_smd
        );
        out
    }
}

fn group(stats: &GroupStats) -> String {
    let number = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    format!("{}/{}/{}", stats.n, number(stats.mean), number(stats.sd))
}
