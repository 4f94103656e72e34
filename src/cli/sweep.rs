//! `biasprune sweep`: masks over a (p, q) grid, each evaluated in memory.

use std::path::PathBuf;

use anyhow::Context;

use super::eval::{checkpoint_identity, EvalOptions};
use super::inputs::{self, SCORE_OUTPUT};
use super::mask::{MaskOptions, RegimeOptions};
use super::{bars::Bars, print_json, Outcome};
use crate::checkpoint::Checkpoint;
use crate::score::{checkpoint_fingerprint, load_scores_for};
use crate::sweep::{run_sweep, sweep_svg, sweep_table, SweepInputs};

/// For each (p, q) of the grid: build the set-difference mask from the score directories,
/// apply it in memory (no checkpoint is written), evaluate it, and print a table (and
/// OUT/sweep.json, OUT/sweep.svg) of mean |SMD| and inlier ratio versus (p, q), so a deployer
/// can pick the point. Each point lives in OUT/p{p}-q{q}/ (mask/, eval/) and resumes like
/// `eval`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint the scores were computed on: a directory, or a
    /// Hugging Face Hub id `org/name[@revision]` (found in the Hugging Face cache, downloaded
    /// when missing unless HF_HUB_OFFLINE=1).
    pub checkpoint: PathBuf,
    /// Values of p (fraction of the protected group's top entries spared), comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub p_grid: Vec<f64>,
    /// Values of q (fraction of the pruned group's top entries selected), comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub q_grid: Vec<f64>,
    /// `score` outputs of minority-name prompts: the directories it wrote, or their
    /// scores.json (or scores.safetensors).
    #[arg(long, num_args = 1.., required = true)]
    pub minority: Vec<PathBuf>,
    /// `score` outputs of majority-name prompts: the directories it wrote, or their
    /// scores.json (or scores.safetensors).
    #[arg(long, num_args = 1.., required = true)]
    pub majority: Vec<PathBuf>,
    /// Mask options other than p and q.
    #[command(flatten)]
    pub mask: MaskOptions,
    /// Regime of the masks.
    #[command(flatten)]
    pub regime: RegimeOptions,
    /// What to evaluate and how.
    #[command(flatten)]
    pub eval: EvalOptions,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Print the grid as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `sweep`.
pub fn run(mut args: Args, bars: &Bars) -> anyhow::Result<Outcome> {
    args.checkpoint = inputs::checkpoint(&args.checkpoint, true)?.dir;
    args.minority = SCORE_OUTPUT.dirs(&args.minority)?;
    args.majority = SCORE_OUTPUT.dirs(&args.majority)?;
    let (spec, baseline) = args.eval.spec()?;
    let ckpt = Checkpoint::open(&args.checkpoint)?;
    let fingerprint = checkpoint_fingerprint(&ckpt);
    let load = |dirs: &[PathBuf]| -> anyhow::Result<Vec<_>> {
        dirs.iter().map(|d| load_scores_for(d, &fingerprint).with_context(|| format!("{}", d.display()))).collect()
    };
    let (minority, majority) = (load(&args.minority)?, load(&args.majority)?);
    let inputs = SweepInputs {
        ckpt: &ckpt,
        identity: checkpoint_identity(&args.checkpoint, Vec::new())?,
        minority: &minority,
        majority: &majority,
        regime: args.regime.regime()?,
        min_count: args.regime.min_count,
        params: args.mask.params(0.0, 0.0)?,
        load: args.eval.device.load_options(false)?,
        eval: spec,
        baseline: baseline.as_ref().map(|(r, d)| (r.as_slice(), d.clone())),
    };
    let points = run_sweep(&inputs, &args.p_grid, &args.q_grid, &args.out, bars)?;
    let svg = sweep_svg(&points, &args.p_grid, &args.q_grid)?;
    crate::fsutil::write_atomically(&args.out.join("sweep.svg"), svg.as_bytes())?;
    let mut json = serde_json::to_vec_pretty(&points)?;
    json.push(b'\n');
    crate::fsutil::write_atomically(&args.out.join("sweep.json"), &json)?;
    if args.json {
        print_json(&points)?;
    } else {
        print!("{}", sweep_table(&points));
    }
    Ok(Outcome::Ok)
}
