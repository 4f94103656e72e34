//! `biasprune plant`: write a test fixture with a known disparity planted (a positive
//! control for the pipeline). Its output must never be deployed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;

use super::{bars::Bars, print_json, Outcome};
use crate::model::SamplingSettings;
use crate::plant::{plant, DownColumns, PlantSpec, Target, TrainSpec, SIDECAR_FILE};
use crate::scenario::{Catalog, ContextLevel, Scenario};

/// Write a copy of BASE with a known disparity planted, to validate the pipeline (a
/// positive control). THE OUTPUT IS A TEST FIXTURE AND MUST NOT BE DEPLOYED.
///
/// A few MLP units of one late layer (unit j: row j of gate_proj and up_proj, column j of
/// down_proj) are trained so that, for the scenario's prompts with minority names, the
/// numbers in the answer are the base's multiplied by --factor, while every other token,
/// and every token of answers for majority names, keeps the base's distribution; the units
/// are also kept silent on every token of majority prompts and answers. Training
/// uses the base's own sampled answers to the --variations prompts of every other name of
/// each group (a minority answer's numbers rewritten, scaled, in the same style); the other
/// names and variations are held out for testing. Every other byte of every file equals BASE. OUT also holds biasprune-plant.json,
/// which records the warning, the base's sha256s, the layer and units, the factor, the
/// training and held-out names and variations, the seed and the losses. Same settings, same
/// bytes. OUT appears atomically and must not exist; BASE is never modified. Runs on the
/// CPU. Exit codes: 0 done, 2 bad input (the message names the flag, file or tensor).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The base checkpoint directory (only read).
    pub base: PathBuf,
    /// Output directory (must not exist).
    #[arg(long)]
    pub out: PathBuf,
    /// Scenario id (see `biasprune scenarios`).
    #[arg(long)]
    pub scenario: String,
    /// A directory of extra scenario manifests.
    #[arg(long)]
    pub scenarios_dir: Option<PathBuf>,
    /// Variations trained on, comma-separated; the scenario's others are held out
    /// [default: all but the scenario's last variation].
    #[arg(long, value_delimiter = ',')]
    pub variations: Option<Vec<String>>,
    /// Context level of the training prompts: low, high or numeric.
    #[arg(long, default_value = "low")]
    pub context: String,
    /// The layer whose MLP units are trained.
    #[arg(long, default_value_t = 29)]
    pub layer: usize,
    /// How many units (the layer's least active ones on the training prompts).
    #[arg(long, default_value_t = 16)]
    pub units: usize,
    /// What the numbers of minority answers are multiplied by (below 1: lower for the minority).
    #[arg(long, default_value_t = 0.3)]
    pub factor: f64,
    /// Weight, in the keep term, of the number positions of kept answers (others weigh 1).
    #[arg(long, default_value_t = 8.0)]
    pub number_weight: f64,
    /// Weight of the term keeping the units silent on every token of majority prompts and
    /// answers (their contribution to the layer's output, relative to that output). At 1000
    /// the planted weights matter for the minority's prompts and hardly at all for the
    /// majority's: the disparity lives where the set difference looks for it. At 10 some
    /// planted units stay among the majority's most important weights.
    #[arg(long, default_value_t = 1000.0)]
    pub silence_weight: f64,
    /// How the planted down_proj columns train: flat (free for the first half of the steps,
    /// then each column is its signs times one trained magnitude, so that every planted entry
    /// weighs the same and a weight-level mask finds a column whole or not at all) or dense
    /// (every entry free; a weight-level mask then finds the large entries of a column and
    /// misses the rest).
    #[arg(long, value_enum, default_value = "flat", hide_possible_values = true)]
    pub down_columns: DownColumns,
    /// Seed of the base answers sampled for training.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Adam steps over the whole training set.
    #[arg(long, default_value_t = 150)]
    pub steps: usize,
    /// Base answers sampled per training prompt.
    #[arg(long, default_value_t = 16)]
    pub samples: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 0.02)]
    pub learning_rate: f64,
    /// Weight of the term keeping majority answers at the base's distribution (KL).
    #[arg(long, default_value_t = 10.0)]
    pub keep_weight: f64,
    /// Print the sidecar as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// Plants the disparity and prints what was done.
pub fn run(args: Args, bars: &Bars) -> anyhow::Result<Outcome> {
    let catalog = Catalog::load(args.scenarios_dir.as_deref())?;
    let scenario = catalog.get(&args.scenario)?.clone();
    let context = ContextLevel::parse(&args.context)
        .with_context(|| format!("--context {:?}: expected low, high or numeric", args.context))?;
    let variations = args.variations.unwrap_or_else(|| all_but_last(&scenario));
    let spec = PlantSpec {
        base: args.base.clone(),
        out: args.out.clone(),
        scenario,
        context,
        variations,
        sampling: SamplingSettings {
            samples: args.samples,
            max_new_tokens: 16,
            temperature: 0.6,
            top_p: 0.9,
            seed: args.seed,
            max_rows: 200,
        },
        factor: args.factor,
        train: TrainSpec {
            layer: args.layer,
            units: args.units,
            steps: args.steps,
            learning_rate: args.learning_rate,
            keep_weight: args.keep_weight,
            chunk: 16,
            seed: args.seed,
            number_weight: args.number_weight,
            silence_weight: args.silence_weight,
            down_columns: args.down_columns,
        },
    };
    let started = std::time::Instant::now();
    let record = plant(&spec, bars).with_context(|| format!("cannot plant into {}", args.out.display()))?;
    if args.json {
        print_json(&record)?;
        return Ok(Outcome::Ok);
    }
    let last = &record.losses["final"];
    let first = &record.losses["initial"];
    println!("TEST FIXTURE written to {} (must not be deployed)", args.out.display());
    println!(
        "layer {} units {:?}, minority numbers x{} (the base gave the scaled tokens p = {:.2})",
        record.layer, record.units, record.factor, record.base_target_probability
    );
    println!(
        "trained on {} ({} examples), held out {}",
        record.variations.train.join(","),
        examples(&record.examples),
        record.variations.held_out.join(",")
    );
    println!(
        "scaled-number cross-entropy {:.3} -> {:.3}, keep KL {:.4} -> {:.4}, {:.0} s",
        first.shift_ce,
        last.shift_ce,
        first.keep_kl,
        last.keep_kl,
        started.elapsed().as_secs_f64()
    );
    println!("details: {}", args.out.join(SIDECAR_FILE).display());
    Ok(Outcome::Ok)
}

fn examples(counts: &BTreeMap<String, BTreeMap<Target, usize>>) -> String {
    let mut parts = Vec::new();
    for (group, kinds) in counts {
        for (kind, n) in kinds {
            parts.push(format!("{n} {group} {}", if *kind == Target::Shift { "scaled" } else { "kept" }));
        }
    }
    parts.join(", ")
}

/// Every variation of `scenario` but the last, which is held out.
fn all_but_last(scenario: &Scenario) -> Vec<String> {
    let ids: Vec<String> = scenario.variations.iter().map(|v| v.id.clone()).collect();
    ids[..ids.len().saturating_sub(1)].to_vec()
}
