//! `biasprune prune`: the whole job in one command, from flags or a TOML pipeline file.

use std::path::PathBuf;

use anyhow::bail;
use serde_json::{json, Value};

use super::inputs;
use super::{bars::Bars, print_json, Outcome};
use crate::arch::Component;
use crate::device::ComputeDtype;
use crate::pipeline::{run_prune, JobStatus, PruneOutcome, PruneSpec};
use crate::progress::{NoProgress, Progress};

/// Measure the disparity of BASE on a scenario, localize it (scores for both name groups,
/// set-difference mask), zero it in a copy of BASE and prove it: OUT holds the pruned
/// checkpoint, biasprune-manifest.json with the baseline and pruned evidence, the model card
/// README.md, report.html and, with --sign-key, model.sig. Every intermediate result goes to
/// the work directory (default OUT.work) under a name keyed by the digests of its inputs:
/// rerunning after an interruption, or with one setting changed, redoes only what changed.
/// Settings come from flags, or from --config FILE (TOML, the same names as the flags with
/// underscores, in the sections use_case, method, evaluation and compute; flags override
/// it). Set BIASPRUNE_LOG=info to log each stage.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Base checkpoint directory (never modified), or a Hugging Face Hub id
    /// `org/name[@revision]` (found in the Hugging Face cache, downloaded when missing unless
    /// HF_HUB_OFFLINE=1; the manifest records the id and commit and the card names the id as
    /// base_model).
    pub base: Option<PathBuf>,
    /// TOML pipeline file; relative paths in it are relative to the file (a base that is a Hub
    /// id, with no such directory beside the file, stays an id).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Release directory to write (appears atomically once complete).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Work directory for intermediate results (default: OUT.work beside OUT).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Scenario id (see `biasprune scenarios`).
    #[arg(long)]
    pub scenario: Option<String>,
    /// Directory of extra scenario manifests.
    #[arg(long)]
    pub scenarios_dir: Option<PathBuf>,
    /// Target variations, comma-separated (default: all of the scenario's).
    #[arg(long, value_delimiter = ',')]
    pub variations: Option<Vec<String>>,
    /// Variations evaluated before and after but never used to build the mask.
    #[arg(long, value_delimiter = ',')]
    pub held_out: Option<Vec<String>>,
    /// Context level: low, high or numeric [default: low].
    #[arg(long)]
    pub context: Option<String>,
    /// prompt-specific (scores from the targets), within-context (from the scenario's other
    /// variations) or cross-context (from --train-scenarios) [default: prompt-specific].
    #[arg(long)]
    pub regime: Option<String>,
    /// within-context: the variations scored (default: all but targets and held-out).
    #[arg(long, value_delimiter = ',')]
    pub train_variations: Option<Vec<String>>,
    /// cross-context: the scenarios scored.
    #[arg(long, value_delimiter = ',')]
    pub train_scenarios: Option<Vec<String>>,
    /// auto (the paper's: prune the minority's specific weights, flipped only when the
    /// baseline significantly gives the majority the worse answers, "worse" as the scenario
    /// declares it), minority or majority [default: auto].
    #[arg(long)]
    pub direction: Option<String>,
    /// Names of the confirmation evidence: auto (names of the same groups that scoring and
    /// selection never saw, where a larger built-in list has them: audit40 scenarios use
    /// extended64's other 24 names), none (the scenario's names, fresh seeds only), or a
    /// built-in name-list id [default: auto].
    #[arg(long, value_name = "auto|none|LIST")]
    pub holdout_names: Option<String>,
    /// Scoring method: wanda or snip [default: wanda].
    #[arg(long)]
    pub method: Option<String>,
    /// Tokens Wanda counts: all or response [default: all]; SNIP always counts the answer
    /// (response) tokens, its loss covers only them, and the manifest records that.
    #[arg(long)]
    pub tokens: Option<String>,
    /// Unit pruned: weight, row, unit (MLP units: gate/up row j and down column j) or head
    /// [default: weight].
    #[arg(long)]
    pub granularity: Option<String>,
    /// Fraction of the protected group's top entries spared [default: 0.15].
    #[arg(long)]
    pub p: Option<f64>,
    /// Fraction of the pruned group's top entries selected [default: 0.15].
    #[arg(long)]
    pub q: Option<f64>,
    /// Sweep a (p, q) grid on the selection data. Among the points that keep inlier ratio and
    /// parse rate within 0.05 of the base's own answers to the same selection prompts and
    /// seed, release the smallest mask whose mean |SMD| is at most --max-residual-smd, or,
    /// when none is, the lowest mean |SMD| [default grid: p 0.05,0.15,0.35 x q 0.15,0.4].
    #[arg(long)]
    pub sweep: bool,
    /// Values of p for the sweep (implies --sweep).
    #[arg(long, value_delimiter = ',')]
    pub p_grid: Option<Vec<f64>>,
    /// Values of q for the sweep (implies --sweep).
    #[arg(long, value_delimiter = ',')]
    pub q_grid: Option<Vec<f64>>,
    /// Components considered, comma-separated (q,k,v,o,gate,up,down; default all).
    #[arg(long, value_delimiter = ',')]
    pub components: Option<Vec<Component>>,
    /// Layers considered, FIRST-LAST (default all).
    #[arg(long)]
    pub layers: Option<String>,
    /// Head granularity: o-proj-columns or q-proj-rows [default: o-proj-columns].
    #[arg(long)]
    pub head_mode: Option<String>,
    /// Head granularity: head scores from attention (the score files' attention to the name
    /// tokens) or weights (sums of the head's weight scores) [default: attention].
    #[arg(long)]
    pub head_score: Option<String>,
    /// Head granularity: rank heads per-layer or global (all layers together, the authors'
    /// code) [default: per-layer].
    #[arg(long)]
    pub head_ranking: Option<String>,
    /// Keep entries selected by at least this many pair masks (default: all).
    #[arg(long)]
    pub min_count: Option<usize>,
    /// Answers per scoring batch [default: 64].
    #[arg(long)]
    pub score_batch: Option<usize>,
    /// Answers per (variation, name) prompt [default: 10].
    #[arg(long)]
    pub samples: Option<usize>,
    /// Seed of the calibration answers (scoring, the gate, the direction) and their
    /// bootstrap [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seed of the selection answers (the sweep) [default: derived from --seed].
    #[arg(long)]
    pub selection_seed: Option<u64>,
    /// Seed of the confirmation answers, the released evidence [default: derived from
    /// --seed]; all three seeds must differ.
    #[arg(long)]
    pub confirmation_seed: Option<u64>,
    /// Answers per (variation, name) prompt of the confirmation data, the released evidence
    /// [default: 4 x --samples]. The verdict compares usable answers before and after
    /// within 0.05; at 10 answers for each of 24 names that comparison is noisier than its
    /// tolerance.
    #[arg(long, value_name = "N")]
    pub confirmation_samples: Option<usize>,
    /// Sampling temperature [default: 0.6].
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Nucleus mass [default: 0.9].
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Longest answer in tokens [default: 16].
    #[arg(long)]
    pub max_new_tokens: Option<usize>,
    /// Decoding rows per batch [default: 200].
    #[arg(long)]
    pub max_rows: Option<usize>,
    /// Inlier rule: tukey[:K] or percentiles[:LO:HI] [default: tukey].
    #[arg(long)]
    pub inlier_rule: Option<String>,
    /// Bootstrap resamples of the SMD's CI [default: 2000].
    #[arg(long)]
    pub bootstrap: Option<usize>,
    /// Where the model runs: cpu, cuda or cuda:N [default: cpu].
    #[arg(long)]
    pub device: Option<String>,
    /// Compute dtype [default: auto: f32 on the CPU, bf16 on a GPU].
    #[arg(long, value_enum)]
    pub compute_dtype: Option<ComputeDtype>,
    /// ECDSA private key (PEM) that signs OUT.
    #[arg(long, value_name = "KEY.priv")]
    pub sign_key: Option<PathBuf>,
    /// Go on when the calibration baseline shows no significant disparity on the targets
    /// (otherwise the job stops before scoring with exit 3).
    #[arg(long)]
    pub allow_no_disparity: bool,
    /// Write the release even when the outcome on the confirmation data is not-reduced or
    /// harmed; the outcome is stated in the manifest, the card, the report and verify.
    #[arg(long)]
    pub release_anyway: bool,
    /// Largest inlier-ratio drop of the pruned model that still counts as keeping usable
    /// answers [default: 0.05].
    #[arg(long)]
    pub max_inlier_drop: Option<f64>,
    /// Largest parse-rate drop that still counts as keeping usable answers [default: 0.05].
    #[arg(long)]
    pub max_parse_drop: Option<f64>,
    /// A target also counts as reduced when the base's SMD is significant on the
    /// confirmation data and the pruned model's |SMD| there falls to at most this, toward 0;
    /// 0 turns that arm off, leaving only a ΔSMD CI that excludes 0. A sweep releases the
    /// smallest mask that reaches this bound on the selection data [default: 0.3].
    #[arg(long, value_name = "SMD")]
    pub max_residual_smd: Option<f64>,
    /// Replace an existing OUT made with other settings.
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON (stages with status and time, metrics before and after).
    #[arg(long)]
    pub json: bool,
}

/// Runs `prune`.
pub fn run(args: Args, bars: &Bars) -> anyhow::Result<Outcome> {
    let mut spec = spec_from(&args)?;
    let base = inputs::checkpoint(&spec.base, !args.json)?;
    spec.base = base.dir;
    spec.base_hub = base.hub;
    let progress: &dyn Progress = if args.json { &NoProgress } else { bars };
    let outcome = run_prune(&spec, progress)?;
    if args.json {
        print_json(&outcome)?;
    } else {
        print_outcome(&outcome);
    }
    Ok(match outcome.status {
        JobStatus::Released => Outcome::Ok,
        JobStatus::NoDisparity | JobStatus::NotReleased => Outcome::Refused,
    })
}

/// The job these flags (over the --config file, if any) describe.
pub fn spec_from(args: &Args) -> anyhow::Result<PruneSpec> {
    let mut value = match &args.config {
        Some(path) => serde_json::to_value(PruneSpec::from_toml_file(path)?)?,
        None => json!({"use_case": {}}),
    };
    let config_grid = value.get("method").and_then(|m| m.get("sweep")).filter(|s| !s.is_null()).cloned();
    overlay(&mut value, args);
    if let (Some(config), Some(grid)) = (config_grid, value.get_mut("method").and_then(|m| m.get_mut("sweep"))) {
        for (key, v) in config.as_object().into_iter().flatten() {
            grid.as_object_mut().expect("grid is an object").entry(key.clone()).or_insert_with(|| v.clone());
        }
    }
    for (key, flag) in [("base", "BASE"), ("out", "--out")] {
        if value.get(key).is_none_or(Value::is_null) {
            bail!("{flag} is required (on the command line or in --config)");
        }
    }
    if value["use_case"].get("scenario").is_none_or(Value::is_null) {
        bail!("--scenario is required (on the command line or in --config's [use_case])");
    }
    serde_path_to_error::deserialize(value).map_err(|e| anyhow::anyhow!("setting {}: {}", e.path(), e.inner()))
}

fn overlay(value: &mut Value, args: &Args) {
    let mut set = |section: Option<&str>, key: &str, v: Option<Value>| {
        let Some(v) = v else { return };
        let target = match section {
            Some(s) => value.as_object_mut().expect("object").entry(s).or_insert_with(|| json!({})),
            None => value,
        };
        target.as_object_mut().expect("sections are objects").insert(key.to_string(), v);
    };
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| json!(p));
    set(None, "base", path(&args.base));
    set(None, "out", path(&args.out));
    set(None, "work_dir", path(&args.work_dir));
    set(None, "scenarios_dir", path(&args.scenarios_dir));
    set(None, "sign_key", path(&args.sign_key));
    set(None, "force", args.force.then_some(json!(true)));
    let uc = Some("use_case");
    set(uc, "scenario", args.scenario.as_ref().map(|v| json!(v)));
    set(uc, "variations", args.variations.as_ref().map(|v| json!(v)));
    set(uc, "held_out", args.held_out.as_ref().map(|v| json!(v)));
    set(uc, "context", args.context.as_ref().map(|v| json!(v)));
    set(uc, "regime", args.regime.as_ref().map(|v| json!(v)));
    set(uc, "train_variations", args.train_variations.as_ref().map(|v| json!(v)));
    set(uc, "train_scenarios", args.train_scenarios.as_ref().map(|v| json!(v)));
    set(uc, "direction", args.direction.as_ref().map(|v| json!(v)));
    set(uc, "holdout_names", args.holdout_names.as_ref().map(|v| json!(v)));
    let m = Some("method");
    set(m, "method", args.method.as_ref().map(|v| json!(v)));
    set(m, "tokens", args.tokens.as_ref().map(|v| json!(v)));
    set(m, "granularity", args.granularity.as_ref().map(|v| json!(v)));
    set(m, "p", args.p.map(|v| json!(v)));
    set(m, "q", args.q.map(|v| json!(v)));
    set(m, "components", args.components.as_ref().map(|v| json!(v)));
    set(m, "layers", args.layers.as_ref().map(|v| json!(v)));
    set(m, "head_mode", args.head_mode.as_ref().map(|v| json!(v)));
    set(m, "head_score", args.head_score.as_ref().map(|v| json!(v)));
    set(m, "head_ranking", args.head_ranking.as_ref().map(|v| json!(v)));
    set(m, "min_count", args.min_count.map(|v| json!(v)));
    set(m, "score_batch", args.score_batch.map(|v| json!(v)));
    if args.sweep || args.p_grid.is_some() || args.q_grid.is_some() {
        let mut grid = json!({});
        if let Some(p) = &args.p_grid {
            grid["p_grid"] = json!(p);
        }
        if let Some(q) = &args.q_grid {
            grid["q_grid"] = json!(q);
        }
        set(m, "sweep", Some(grid));
    }
    let e = Some("evaluation");
    set(e, "samples", args.samples.map(|v| json!(v)));
    set(e, "seed", args.seed.map(|v| json!(v)));
    set(e, "temperature", args.temperature.map(|v| json!(v)));
    set(e, "top_p", args.top_p.map(|v| json!(v)));
    set(e, "max_new_tokens", args.max_new_tokens.map(|v| json!(v)));
    set(e, "max_rows", args.max_rows.map(|v| json!(v)));
    set(e, "inlier_rule", args.inlier_rule.as_ref().map(|v| json!(v)));
    set(e, "bootstrap", args.bootstrap.map(|v| json!(v)));
    set(e, "selection_seed", args.selection_seed.map(|v| json!(v)));
    set(e, "confirmation_seed", args.confirmation_seed.map(|v| json!(v)));
    set(e, "confirmation_samples", args.confirmation_samples.map(|v| json!(v)));
    let g = Some("gate");
    set(g, "allow_no_disparity", args.allow_no_disparity.then_some(json!(true)));
    set(g, "release_anyway", args.release_anyway.then_some(json!(true)));
    set(g, "max_inlier_drop", args.max_inlier_drop.map(|v| json!(v)));
    set(g, "max_parse_drop", args.max_parse_drop.map(|v| json!(v)));
    set(g, "max_residual_smd", args.max_residual_smd.map(|v| json!(v)));
    let c = Some("compute");
    set(c, "device", args.device.as_ref().map(|v| json!(v)));
    set(c, "compute_dtype", args.compute_dtype.as_ref().map(|v| json!(v)));
}

fn print_outcome(outcome: &PruneOutcome) {
    let smd = |m: Option<f64>| m.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    println!("{:<44} {:>8} {:>10}", "stage", "status", "seconds");
    for stage in &outcome.stages {
        let status = match &stage.status {
            crate::pipeline::StageStatus::Ran => "ran".to_string(),
            crate::pipeline::StageStatus::Reused => "reused".to_string(),
            crate::pipeline::StageStatus::Resumed { done, total } => format!("resumed {done}/{total}"),
        };
        println!("{:<44} {:>8} {:>10.1}", stage.name, status, stage.seconds);
    }
    let seeds = &outcome.seeds;
    println!(
        "seeds: calibration {}, selection {}, confirmation {}; confirmation names: {}",
        seeds.calibration,
        seeds.selection,
        seeds.confirmation,
        outcome.holdout_names.as_ref().map_or("the scenario's own (fresh seeds only)".to_string(), |n| format!(
            "{} held out ({})",
            n.len(),
            n.join(", ")
        ))
    );
    println!("calibration baseline on the targets: {}", outcome.disparity.describe());
    if let Some(direction) = &outcome.direction {
        println!("direction: {} ({})", direction.direction_name(), direction.reason);
    }
    if let (Some(p), Some(q)) = (outcome.p, outcome.q) {
        println!(
            "p = {p}, q = {q}{}",
            outcome.pruned_entries.map_or(String::new(), |n| format!(": {n} entries pruned"))
        );
    }
    if let (Some(before), Some(after)) = (&outcome.baseline, &outcome.pruned) {
        println!(
            "confirmation data, targets: mean |SMD| {} -> {}; inlier ratio {:.3} -> {:.3}; parse rate {:.3} -> {:.3}",
            smd(before.mean_abs_smd),
            smd(after.mean_abs_smd),
            before.inlier_ratio,
            after.inlier_ratio,
            before.parse_rate,
            after.parse_rate,
        );
    }
    if let Some(verdict) = &outcome.verdict {
        println!("outcome: {} ({})", verdict.outcome, verdict.reason);
    }
    match outcome.status {
        JobStatus::Released => println!(
            "wrote {}{} in {:.1} s; report: {}",
            outcome.out.as_ref().map_or(String::new(), |p| p.display().to_string()),
            if outcome.signed { " (signed)" } else { "" },
            outcome.seconds,
            outcome.report.as_ref().map_or(String::new(), |p| p.display().to_string())
        ),
        JobStatus::NoDisparity | JobStatus::NotReleased => {
            println!("{}", outcome.message);
            for dir in &outcome.evidence_dirs {
                println!("evidence kept in {}", dir.display());
            }
        }
    }
}
