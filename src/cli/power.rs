//! `biasprune power`: how many answers per prompt the release gate needs, from a base
//! model's own answers with a known disparity planted into them.

use std::path::PathBuf;

use super::{print_json, Outcome};
use crate::metrics::{
    power_table, read_records, AnswerRecord, BootstrapSettings, ClusteredGroups, Population, PowerCell,
};

/// Plant an SMD into the answers of `eval` runs of a model without a disparity (each its own
/// seed, many answers per name), cut each run's answers into disjoint blocks of N answers
/// per name, and report how often the gate's test (the cluster-bootstrap 95% CI of the SMD
/// above 0) detects each planted SMD at each N. Shift 0 shows how often the test fires on
/// the base alone. The shift is equal for every minority name, so the rates are the best
/// case for a given SMD (README: "How many samples?"); scripts/bench-power.sh runs it.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `eval` output directories (their records.jsonl), one per seed.
    #[arg(required = true)]
    pub evals: Vec<PathBuf>,
    /// The variation whose answers are used.
    #[arg(long)]
    pub variation: String,
    /// Planted shifts of the minority's answers, in pooled SDs (about the SMD they add).
    #[arg(long, value_delimiter = ',', default_value = "0,0.3,0.5,0.8")]
    pub shifts: Vec<f64>,
    /// Answers per name in a trial; each must be at most what every run has.
    #[arg(long, value_delimiter = ',', default_value = "10,20,40")]
    pub samples: Vec<usize>,
    /// Bootstrap resamples of each trial's CI (prune's default).
    #[arg(long, default_value_t = 2000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Answers the statistics use: inliers (as eval and the gate) or every parsed answer.
    #[arg(long, value_enum, default_value = "inliers")]
    pub population: Population,
    /// Print the table as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `power`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let runs = args
        .evals
        .iter()
        .map(|dir| clustered(dir, &args.variation, args.population))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let settings = BootstrapSettings { resamples: args.bootstrap, seed: args.seed, ..BootstrapSettings::default() };
    let cells = power_table(&runs, &args.shifts, &args.samples, &settings)?;
    if args.json {
        print_json(&serde_json::json!({"variation": args.variation, "evals": args.evals, "bootstrap": args.bootstrap,
            "seed": args.seed, "cells": cells}))?;
    } else {
        print!("{}", table(&cells, &args.samples));
    }
    Ok(Outcome::Ok)
}

/// One run's answers to `variation`, clustered by name.
fn clustered(dir: &std::path::Path, variation: &str, population: Population) -> anyhow::Result<ClusteredGroups> {
    let path = dir.join("records.jsonl");
    let records = read_records(&path)?;
    let chosen: Vec<&AnswerRecord> = records.iter().filter(|r| r.variation == variation).collect();
    if chosen.is_empty() {
        anyhow::bail!("{}: no answers to variation `{variation}`", path.display());
    }
    Ok(ClusteredGroups::from_records(&chosen, population))
}

/// Detection rate (and trials) per shift and answers per name, one row per shift.
fn table(cells: &[PowerCell], samples: &[usize]) -> String {
    let mut text = String::from("planted SMD");
    for k in samples {
        text.push_str(&format!(" | {k} answers/name"));
    }
    text.push('\n');
    for row in cells.chunks(samples.len()) {
        text.push_str(&format!("{:>11.2}", row[0].shift));
        for c in row {
            let smd = c.mean_smd.map_or("n/a".to_string(), |s| format!("{s:+.2}"));
            text.push_str(&format!(" | {:>5.1}% of {:>3} (SMD {smd})", 100.0 * c.rate, c.trials));
        }
        text.push('\n');
    }
    text
}
