//! `biasprune audit`: every (scenario, variation, context) cell, corrected for multiplicity.

use std::path::PathBuf;

use anyhow::{bail, Context};

use super::eval::checkpoint_identity;
use super::{bars::Bars, device::DeviceArg, print_json, Outcome};
use crate::audit::{run_audit, Audit, AuditSpec, Finding, NameChoice, PruneCommand, AUDIT_CSV, AUDIT_HTML, AUDIT_JSON};
use crate::metrics::{Correction, InlierRule, SummarySettings};
use crate::model::{ChatSession, SamplingSettings};
use crate::progress::{NoProgress, Progress};
use crate::scenario::{Catalog, ContextLevel};

/// Find where a model needs mitigation: evaluate every selected (scenario, variation,
/// context) cell as `eval` does (cluster-bootstrap SMD CI, name-permutation test, power),
/// correct the p-values over all cells (Holm and Benjamini-Hochberg; --correction decides
/// which flags a cell at --alpha), and write OUT/audit.json (every cell, ids
/// SCENARIO/VARIATION/CONTEXT), OUT/audit.csv and OUT/audit.html (a heatmap per context, the
/// ranked cells, and the `biasprune prune` command for each flagged cell). Each cell is an
/// eval directory under OUT/cells/SCENARIO/VARIATION/CONTEXT: rerunning the same command
/// resumes an interrupted audit and gives the same files.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint directory (never modified).
    pub checkpoint: PathBuf,
    /// Scenarios to audit: all, or ids comma-separated (see `biasprune scenarios`).
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub scenarios: Vec<String>,
    /// A directory of extra scenario manifests (added to, or replacing, the built-in ones).
    #[arg(long)]
    pub scenarios_dir: Option<PathBuf>,
    /// Context levels, comma-separated; a scenario without a level skips it.
    #[arg(long, value_delimiter = ',', default_value = "low,high,numeric")]
    pub contexts: Vec<String>,
    /// Names asked about: own (each scenario's list) or a built-in list id (audit40,
    /// extended64) whose members of the scenario's groups are used instead.
    #[arg(long, default_value = "own", value_name = "own|LIST")]
    pub names: String,
    /// Ask about only the first N names of each group (a quick, weaker audit).
    #[arg(long, value_name = "N")]
    pub names_per_group: Option<usize>,
    /// Answers per (variation, name) prompt.
    #[arg(long, default_value_t = 10)]
    pub samples: usize,
    /// Seed of the sampling streams (and of the bootstrap and permutations).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Level at which a cell is flagged, after correction.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// The correction that flags cells: holm (family-wise error rate: the chance of any
    /// false alarm is at most alpha) or bh (Benjamini-Hochberg false discovery rate: on
    /// average at most alpha of the flagged cells are false alarms). Both adjusted
    /// p-values are always reported.
    #[arg(long, default_value = "holm", value_name = "holm|bh")]
    pub correction: String,
    /// Bootstrap resamples of the SMD's CI, also the permutations of the name test (the
    /// smallest p it can give is 1/(1 + this), which must be below alpha / cells).
    #[arg(long, default_value_t = 10000)]
    pub bootstrap: usize,
    /// Sampling temperature (the authors used 0.6).
    #[arg(long, default_value_t = 0.6)]
    pub temperature: f32,
    /// Nucleus sampling mass (the authors used 0.9).
    #[arg(long, default_value_t = 0.9)]
    pub top_p: f32,
    /// Longest answer in tokens.
    #[arg(long, default_value_t = 16)]
    pub max_new_tokens: usize,
    /// Decoding rows (prompts x samples) per batch; also fixes each cell's resume plan.
    #[arg(long, default_value_t = 200)]
    pub max_rows: usize,
    /// Inlier rule: tukey[:K] (default K = 1.5) or percentiles[:LO:HI] (default 5:95).
    #[arg(long, default_value = "tukey")]
    pub inlier_rule: String,
    /// Where the model runs.
    #[command(flatten)]
    pub device: DeviceArg,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Print a JSON result instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `audit`.
pub fn run(args: Args, bars: &Bars) -> anyhow::Result<Outcome> {
    let spec = spec_from(&args)?;
    let options = args.device.load_options(false)?;
    let session = ChatSession::load(&args.checkpoint, options)?;
    let identity = checkpoint_identity(&args.checkpoint, Vec::new())?;
    let progress: &dyn Progress = if args.json { &NoProgress } else { bars };
    let audit = run_audit(&session, &spec, identity, &args.out, progress)?;
    if args.json {
        print_json(&serde_json::json!({
            "out": args.out,
            "audit_json": args.out.join(AUDIT_JSON),
            "audit_csv": args.out.join(AUDIT_CSV),
            "audit_html": args.out.join(AUDIT_HTML),
            "cells": audit.cells.len(),
            "tested": audit.tested,
            "flagged": audit.flagged,
            "flagged_cells": flagged_ids(&audit),
        }))?;
    } else {
        print_table(&audit);
        println!("wrote {}, {} and {} in {}", AUDIT_JSON, AUDIT_CSV, AUDIT_HTML, args.out.display());
    }
    Ok(Outcome::Ok)
}

/// The audit these flags describe; every value is checked before the model loads.
fn spec_from(args: &Args) -> anyhow::Result<AuditSpec> {
    let catalog = Catalog::load(args.scenarios_dir.as_deref())?;
    let ids: Vec<String> = if args.scenarios.iter().any(|s| s == "all") {
        if args.scenarios.len() > 1 {
            bail!("--scenarios: expected all or scenario ids, found all together with {}", args.scenarios.join(","));
        }
        catalog.iter().map(|(s, _)| s.id.clone()).collect()
    } else {
        let mut ids = args.scenarios.clone();
        ids.sort();
        ids.dedup();
        ids
    };
    let choice =
        NameChoice { list: (args.names != "own").then(|| args.names.clone()), per_group: args.names_per_group };
    let mut scenarios = Vec::with_capacity(ids.len());
    for id in &ids {
        let scenario = catalog.get(id).with_context(|| format!("--scenarios {id}"))?;
        scenarios.push(choice.apply(scenario)?);
    }
    if args.samples == 0 {
        bail!("--samples must be at least 1");
    }
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        bail!("--alpha must lie strictly between 0 and 1, found {}", args.alpha);
    }
    let correction = Correction::parse(&args.correction)
        .with_context(|| format!("--correction {:?}: expected holm or bh", args.correction))?;
    Ok(AuditSpec {
        scenarios,
        contexts: contexts(&args.contexts)?,
        sampling: SamplingSettings {
            samples: args.samples,
            max_new_tokens: args.max_new_tokens,
            temperature: args.temperature,
            top_p: args.top_p,
            seed: args.seed,
            max_rows: args.max_rows,
        },
        inlier_rule: InlierRule::parse(&args.inlier_rule)?,
        summary: SummarySettings::with_bootstrap(args.bootstrap, args.seed),
        alpha: args.alpha,
        correction,
        prune_command: prune_command(args),
    })
}

/// The context levels, sorted low, high, numeric, each once.
fn contexts(texts: &[String]) -> anyhow::Result<Vec<ContextLevel>> {
    let mut out = Vec::new();
    for text in texts {
        let context =
            ContextLevel::parse(text).with_context(|| format!("--contexts {text:?}: expected low, high or numeric"))?;
        out.push(context);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn prune_command(args: &Args) -> PruneCommand {
    let mut extra_args = Vec::new();
    if let Some(dir) = &args.scenarios_dir {
        extra_args.extend(["--scenarios-dir".to_string(), dir.display().to_string()]);
    }
    if args.device.device != "cpu" {
        extra_args.extend(["--device".to_string(), args.device.device.clone()]);
    }
    PruneCommand { checkpoint: args.checkpoint.display().to_string(), extra_args }
}

fn flagged_ids(audit: &Audit) -> Vec<&str> {
    audit.cells.iter().filter(|c| c.finding == Finding::Disparity).map(|c| c.id.as_str()).collect()
}

fn print_table(audit: &Audit) {
    let num = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:+.3}"));
    let p = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
    println!("{:<40} {:>8} {:>8} {:>8} {:>8}  finding", "cell", "SMD", "p", "Holm p", "BH p");
    for c in audit.ranked() {
        let finding = match c.finding {
            Finding::NoneDetected => format!(
                "none detected (smallest detectable |SMD| {})",
                c.minimum_detectable_smd_corrected.map_or("n/a".to_string(), |m| format!("{m:.2}"))
            ),
            other => other.as_str().to_string(),
        };
        println!("{:<40} {:>8} {:>8} {:>8} {:>8}  {finding}", c.id, num(c.smd), p(c.p_value), p(c.p_holm), p(c.p_bh));
    }
    println!(
        "{} of {} tested cells show a disparity after {} correction at alpha {}",
        audit.flagged,
        audit.tested,
        audit.settings.correction.as_str(),
        audit.settings.alpha
    );
}
