//! `biasprune mask`: set-difference masks from score directories, under a regime.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Context;

use super::inputs::{self, SCORE_OUTPUT};
use super::{print_json, Outcome};
use crate::arch::{Architecture, Component};
use crate::checkpoint::Checkpoint;
use crate::mask::{
    build_regime_mask, parse_layer_range, resolve, save_mask, DifferenceParams, Direction, Granularity, HeadMode,
    HeadRanking, HeadScore, Regime, RegimeChoice, Selection,
};
use crate::score::{checkpoint_fingerprint, load_scores_for};

/// Build a prune mask: per matrix, the top-q fraction of entries by minority score minus the
/// top-p fraction by majority score (floor(fraction x entries) each, ties broken by the lower
/// flat index); at unit and head granularity the same over each layer's MLP units or heads
/// (or, with --head-ranking global, over all heads together). With several score pairs (within-context or cross-context regimes) the
/// pair masks are joined: an entry is kept when at least --min-count masks select it
/// (default: all of them, the intersection).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The checkpoint the scores were computed on (its geometry and fingerprint are checked):
    /// a directory, or a
    /// Hugging Face Hub id `org/name[@revision]` (found in the Hugging Face cache, downloaded
    /// when missing unless HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// `score` outputs of minority-name prompts (one per variation set): the directories it
    /// wrote, or their scores.json (or scores.safetensors).
    #[arg(long, num_args = 1.., required = true)]
    pub minority: Vec<PathBuf>,
    /// `score` outputs of majority-name prompts, pairing with --minority by scenario and
    /// variations: the directories it wrote, or their scores.json (or scores.safetensors).
    #[arg(long, num_args = 1.., required = true)]
    pub majority: Vec<PathBuf>,
    /// Fraction of the pruned group's top entries selected (default 0.15, the authors' code;
    /// the paper's unconfirmed value is 0.40).
    #[arg(long, default_value_t = 0.15)]
    pub q: f64,
    /// Fraction of the protected group's top entries spared (default 0.15; paper: 0.35, unconfirmed).
    #[arg(long, default_value_t = 0.15)]
    pub p: f64,
    /// Granularity, direction and which matrices.
    #[command(flatten)]
    pub mask: MaskOptions,
    /// Regime and joining.
    #[command(flatten)]
    pub regime: RegimeOptions,
    /// Output mask directory (mask.json, pruning-mask.safetensors).
    #[arg(long)]
    pub out: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How a set-difference mask selects (everything but p and q), shared by `mask` and `sweep`.
#[derive(clap::Args, Debug)]
pub struct MaskOptions {
    /// Unit selected: single weights, output rows, MLP units (row j of gate_proj and up_proj
    /// with column j of down_proj, per layer) or attention heads.
    #[arg(long, value_enum, default_value_t = Granularity::Weight)]
    pub granularity: Granularity,
    /// Prune minority-important weights (the paper) or, reversed, majority-important ones.
    #[arg(long, value_enum, default_value_t = Direction::MinorityMinusMajority)]
    pub direction: Direction,
    /// Components considered, comma-separated (q,k,v,o,gate,up,down; default all).
    #[arg(long, value_delimiter = ',')]
    pub components: Vec<Component>,
    /// Layers considered, inclusive, as FIRST-LAST (default all).
    #[arg(long)]
    pub layers: Option<String>,
    /// How heads are zeroed at head granularity.
    #[arg(long, value_enum, default_value_t = HeadMode::OProjColumns)]
    pub head_mode: HeadMode,
    /// Head scores at head granularity: the score files' attention to the name tokens, or
    /// sums of the head's weight scores (q rows, o columns, shared k/v rows).
    #[arg(long, value_enum, default_value_t = HeadScore::Attention)]
    pub head_score: HeadScore,
    /// Head ranking at head granularity: the set difference within each layer, or over all
    /// heads of the considered layers together (the authors' code).
    #[arg(long, value_enum, default_value_t = HeadRanking::PerLayer)]
    pub head_ranking: HeadRanking,
}

impl MaskOptions {
    /// The library parameters with the given p and q.
    pub fn params(&self, p: f64, q: f64) -> anyhow::Result<DifferenceParams> {
        Ok(DifferenceParams {
            q,
            p,
            granularity: self.granularity,
            direction: self.direction,
            selection: Selection {
                components: if self.components.is_empty() {
                    Component::ALL.into_iter().collect()
                } else {
                    self.components.iter().copied().collect::<BTreeSet<_>>()
                },
                layers: self.layers.as_deref().map(parse_layers).transpose()?,
            },
            head_mode: self.head_mode,
            head_score: self.head_score,
            head_ranking: self.head_ranking,
        })
    }
}

/// Which score pairs make the mask and how their masks join, shared by `mask` and `sweep`.
#[derive(clap::Args, Debug)]
pub struct RegimeOptions {
    /// prompt-specific (one pair), within-context (pairs of one scenario, --held-out names the
    /// target variation) or cross-context (pairs of other scenarios, --target-scenario).
    #[arg(long, value_enum, default_value_t = RegimeChoice::PromptSpecific)]
    pub regime: RegimeChoice,
    /// within-context: the variation the mask is for; no training pair may include it.
    #[arg(long)]
    pub held_out: Option<String>,
    /// cross-context: the scenario the mask is for; no training pair may come from it.
    #[arg(long)]
    pub target_scenario: Option<String>,
    /// Keep entries selected by at least this many pair masks (default: all).
    #[arg(long)]
    pub min_count: Option<usize>,
}

impl RegimeOptions {
    /// The library regime.
    pub fn regime(&self) -> anyhow::Result<Regime> {
        Ok(match self.regime {
            RegimeChoice::PromptSpecific => Regime::PromptSpecific,
            RegimeChoice::WithinContext => Regime::WithinContext { held_out: self.held_out.clone() },
            RegimeChoice::CrossContext => Regime::CrossContext {
                target_scenario: self
                    .target_scenario
                    .clone()
                    .context("--regime cross-context needs --target-scenario")?,
            },
        })
    }
}

/// Runs `mask`.
pub fn run(mut args: Args) -> anyhow::Result<Outcome> {
    args.checkpoint = inputs::checkpoint(&args.checkpoint, false)?.dir;
    args.minority = SCORE_OUTPUT.dirs(&args.minority)?;
    args.majority = SCORE_OUTPUT.dirs(&args.majority)?;
    let ckpt = Checkpoint::open(&args.checkpoint)?;
    let arch = Architecture::of_checkpoint(&ckpt)?;
    let fingerprint = checkpoint_fingerprint(&ckpt);
    let load = |dirs: &[PathBuf]| -> anyhow::Result<Vec<_>> {
        dirs.iter().map(|d| Ok(load_scores_for(d, &fingerprint)?)).collect()
    };
    let minority = load(&args.minority)?;
    let majority = load(&args.majority)?;
    let regime = args.regime.regime()?;
    let params = args.mask.params(args.p, args.q)?;
    let mask = build_regime_mask(&minority, &majority, &arch, &params, &regime, args.regime.min_count)?;
    let plan = resolve(&mask, &arch, &ckpt)?;
    save_mask(&args.out, &mask)?;
    let per_tensor: std::collections::BTreeMap<&String, u64> =
        plan.tensors.iter().map(|(n, z)| (n, z.zeroed_count())).collect();
    let total: u64 = per_tensor.values().sum();
    if args.json {
        print_json(
            &serde_json::json!({"out": args.out, "entries": total, "per_tensor": per_tensor, "provenance": mask.provenance}),
        )?;
    } else {
        println!("wrote {}: {} entries selected in {} tensors", args.out.display(), total, per_tensor.len());
    }
    Ok(Outcome::Ok)
}

fn parse_layers(text: &str) -> anyhow::Result<(usize, usize)> {
    parse_layer_range(text).map_err(|reason| anyhow::anyhow!("--layers {text:?}: {reason}"))
}
