//! `biasprune eval`: sample answers to a scenario's prompts and measure the disparity.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::inputs::{self, EVAL_OUTPUT, MASK_OUTPUT};
use super::{bars::Bars, device::DeviceArg, print_json, Outcome};
use crate::checkpoint::{file_digests, Checkpoint};
use crate::eval::{run_eval, CheckpointIdentity, EvalSpec, RECORDS_FILE, SUMMARY_FILE};
use crate::mask::load_masked;
use crate::metrics::{read_records, InlierRule, Summary, SummarySettings};
use crate::model::{ChatSession, SamplingSettings};
use crate::plot::{answer_distribution_svg, smd_chart_svg, SmdRun};
use crate::scenario::{Catalog, ContextLevel};

/// Sample --samples answers for every (variation, name) prompt of a scenario through the
/// checkpoint's chat template, parse the numbers, and write OUT/records.jsonl (one line per
/// answer), OUT/summary.json (per variation and overall: n, mean and sd per group, SMD
/// majority minus minority with a bootstrap 95% CI, Mann-Whitney U p-value, parse rate,
/// inlier ratio, mean |SMD|, the exact settings and the checkpoint's file digests) and
/// OUT/run.json. Rerunning the same command resumes an interrupted run and gives the same
/// files as an uninterrupted one.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint directory, or a Hugging Face Hub id `org/name[@revision]` (found in the
    /// Hugging Face cache, downloaded when missing unless HF_HUB_OFFLINE=1).
    pub checkpoint: PathBuf,
    /// What to evaluate and how.
    #[command(flatten)]
    pub eval: EvalOptions,
    /// Evaluate with this mask applied in memory (no checkpoint is written): a `mask`
    /// output, the directory it wrote or its mask.json.
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// Also draw SVG plots into OUT/plots.
    #[arg(long)]
    pub plots: bool,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Print a JSON result instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The scenario, sampling and statistics options shared by `eval` and `sweep`.
#[derive(clap::Args, Debug)]
pub struct EvalOptions {
    /// Scenario id (see `biasprune scenarios`).
    #[arg(long)]
    pub scenario: String,
    /// A directory of extra scenario manifests (added to, or replacing, the built-in ones).
    #[arg(long)]
    pub scenarios_dir: Option<PathBuf>,
    /// Variations to run, comma-separated (default: all of the scenario's).
    #[arg(long, value_delimiter = ',')]
    pub variations: Vec<String>,
    /// Context level: low, high or numeric.
    #[arg(long, default_value = "low")]
    pub context: String,
    /// Ask about held-out names instead of the scenario's own: auto (the same groups' names
    /// in the scenario's extension list that its own list lacks: for audit40, extended64's
    /// other 24, the names prune's confirmation uses), none, or a built-in name-list id.
    #[arg(long, default_value = "none")]
    pub holdout_names: String,
    /// Answers per prompt.
    #[arg(long, default_value_t = 10)]
    pub samples: usize,
    /// Seed of the sampling streams (and of the bootstrap).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sampling temperature (the authors used 0.6).
    #[arg(long, default_value_t = 0.6)]
    pub temperature: f32,
    /// Nucleus sampling mass (the authors used 0.9).
    #[arg(long, default_value_t = 0.9)]
    pub top_p: f32,
    /// Longest answer in tokens.
    #[arg(long, default_value_t = 16)]
    pub max_new_tokens: usize,
    /// Decoding rows (prompts x samples) per batch; also fixes the resume plan.
    #[arg(long, default_value_t = 200)]
    pub max_rows: usize,
    /// Records of the unpruned model: inliers must also lie within their Tukey fences. An
    /// `eval` output: the directory it wrote, or its records.jsonl (or another of its files).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Inlier rule: tukey[:K] (default K = 1.5) or percentiles[:LO:HI] (default 5:95).
    #[arg(long, default_value = "tukey")]
    pub inlier_rule: String,
    /// Bootstrap resamples of the SMD's confidence interval.
    #[arg(long, default_value_t = 2000)]
    pub bootstrap: usize,
    /// Where the model runs.
    #[command(flatten)]
    pub device: DeviceArg,
}

/// Baseline records with the sha256 of their file.
pub type Baseline = (Vec<crate::metrics::AnswerRecord>, String);

impl EvalOptions {
    /// The evaluation spec and the baseline records these options describe.
    pub fn spec(&self) -> anyhow::Result<(EvalSpec, Option<Baseline>)> {
        let catalog = Catalog::load(self.scenarios_dir.as_deref())?;
        let scenario = catalog.get(&self.scenario)?.clone();
        let names = scenario
            .holdout_split(&self.holdout_names)
            .with_context(|| format!("--holdout-names {:?}", self.holdout_names))?;
        let scenario = match &names {
            Some(split) => scenario.with_names(split),
            None => scenario,
        };
        let context = ContextLevel::parse(&self.context)
            .with_context(|| format!("--context {:?}: expected low, high or numeric", self.context))?;
        if self.samples == 0 {
            bail!("--samples must be at least 1");
        }
        let spec = EvalSpec {
            scenario,
            context,
            variations: (!self.variations.is_empty()).then(|| self.variations.clone()),
            sampling: SamplingSettings {
                samples: self.samples,
                max_new_tokens: self.max_new_tokens,
                temperature: self.temperature,
                top_p: self.top_p,
                seed: self.seed,
                max_rows: self.max_rows,
            },
            inlier_rule: InlierRule::parse(&self.inlier_rule)?,
            summary: SummarySettings::with_bootstrap(self.bootstrap, self.seed),
            names,
        };
        let baseline = self.baseline.as_deref().map(|arg| load_baseline(&EVAL_OUTPUT.file(arg)?)).transpose()?;
        Ok((spec, baseline))
    }
}

/// Runs `eval`.
pub fn run(mut args: Args, bars: &Bars) -> anyhow::Result<Outcome> {
    args.checkpoint = inputs::checkpoint(&args.checkpoint, true)?.dir;
    args.mask = args.mask.as_deref().map(|m| MASK_OUTPUT.dir(m)).transpose()?;
    let (spec, baseline) = args.eval.spec()?;
    let (scenario, context) = (spec.scenario.clone(), spec.context);
    let ckpt = Checkpoint::open(&args.checkpoint)?;
    let (session, masks_applied) = match &args.mask {
        None => (ChatSession::load_from(&ckpt, &ckpt, args.eval.device.load_options(false)?)?, Vec::new()),
        Some(path) => {
            let masked = load_masked(&ckpt, path, args.eval.device.load_options(false)?)?;
            (masked.session, vec![masked.mask_sha256])
        }
    };
    let identity = checkpoint_identity(&args.checkpoint, masks_applied)?;
    let baseline_ref = baseline.as_ref().map(|(records, digest)| (records.as_slice(), digest.clone()));
    let output = run_eval(&session, &spec, identity, baseline_ref, &args.out, bars)?;
    if args.plots {
        let baseline_summary = match &baseline {
            Some((records, _)) => {
                Some(Summary::compute(&scenario.id, context, records, &output.summary.inliers, &spec.summary)?)
            }
            None => None,
        };
        write_plots(&args.out, &scenario, &output.records, &output.summary, baseline_summary.as_ref())?;
    }
    if args.json {
        print_json(&serde_json::json!({
            "out": args.out,
            "records": args.out.join(RECORDS_FILE),
            "summary": args.out.join(SUMMARY_FILE),
            "answers": output.records.len(),
            "chunks_resumed": output.chunks_resumed,
            "chunks_generated": output.chunks_generated,
            "mean_abs_smd": output.summary.overall.mean_abs_smd,
            "inlier_ratio": output.summary.overall.inlier_ratio,
            "parse_rate": output.summary.overall.parse_rate,
        }))?;
    } else {
        print!("{}", output.summary.table());
        if output.chunks_resumed > 0 {
            println!("resumed: {} chunk(s) were already complete in {}", output.chunks_resumed, args.out.display());
        }
    }
    Ok(Outcome::Ok)
}

/// The identity recorded with a run: directory name, file digests, masks applied in memory.
pub fn checkpoint_identity(dir: &Path, masks_applied: Vec<String>) -> anyhow::Result<CheckpointIdentity> {
    Ok(CheckpointIdentity { name: dir_name(dir), files: file_digests(dir)?, masks_applied })
}

fn load_baseline(path: &Path) -> anyhow::Result<(Vec<crate::metrics::AnswerRecord>, String)> {
    Ok((read_records(path)?, file_sha256(path)?))
}

fn file_sha256(path: &Path) -> anyhow::Result<String> {
    crate::fsutil::file_sha256(path).with_context(|| format!("{}", path.display()))
}

fn dir_name(path: &Path) -> String {
    path.canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| path.display().to_string())
}

fn write_plots(
    out: &Path,
    scenario: &crate::scenario::Scenario,
    records: &[crate::metrics::AnswerRecord],
    summary: &Summary,
    baseline: Option<&Summary>,
) -> anyhow::Result<()> {
    let dir = out.join("plots");
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    for variation in summary.variations.keys() {
        let svg = answer_distribution_svg(scenario, records, variation)?;
        crate::fsutil::write_atomically(&dir.join(format!("answers-{variation}.svg")), svg.as_bytes())?;
    }
    let mut runs = Vec::new();
    if let Some(b) = baseline {
        runs.push(SmdRun { label: "baseline", summary: b });
    }
    runs.push(SmdRun { label: "this run", summary });
    match smd_chart_svg(&runs) {
        Ok(svg) => crate::fsutil::write_atomically(&dir.join("smd.svg"), svg.as_bytes())?,
        Err(e) => log::warn!("no SMD chart: {e}"),
    }
    Ok(())
}
