//! `biasprune inspect`: architecture, tensors and parameter counts of a checkpoint.

use std::path::PathBuf;

use anyhow::Context;

use super::inputs;
use super::{print_json, Outcome};
use crate::arch::{Architecture, Component};
use crate::checkpoint::Checkpoint;
use crate::inspect::{inspect, Inspection};

/// Print the architecture, every tensor (name, dtype, shape, shard) and parameter counts
/// per layer and component of a checkpoint directory, after validating it strictly.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint directory (config.json plus model.safetensors or sharded safetensors), or a
    /// Hugging Face Hub id `org/name[@revision]` (found in the Hugging Face cache, downloaded
    /// when missing unless HF_HUB_OFFLINE=1).
    pub checkpoint: PathBuf,
    /// Print the same information as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `inspect`.
pub fn run(mut args: Args) -> anyhow::Result<Outcome> {
    let resolved = inputs::checkpoint(&args.checkpoint, false)?;
    args.checkpoint = resolved.dir;
    let ckpt = Checkpoint::open(&args.checkpoint)?;
    let arch = Architecture::of_checkpoint(&ckpt).with_context(|| format!("{}", args.checkpoint.display()))?;
    let report = inspect(&ckpt, &arch);
    if args.json {
        print_json(&report)?;
    } else {
        if let Some(hub) = &resolved.hub {
            println!("hub          {}@{}", hub.id, hub.revision);
        }
        print_text(&report)?;
    }
    Ok(Outcome::Ok)
}

fn print_text(r: &Inspection) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let a = &r.architecture;
    writeln!(out, "checkpoint   {}", r.dir)?;
    writeln!(
        out,
        "architecture {}: {} layers, hidden {}, intermediate {}, {} heads ({} kv, head_dim {}), vocab {}, tied embeddings: {}",
        a.name,
        a.num_layers,
        a.hidden_size,
        a.intermediate_size,
        a.num_heads,
        a.num_kv_heads,
        a.head_dim,
        a.vocab_size,
        if a.tie_word_embeddings { "yes" } else { "no" }
    )?;
    writeln!(out, "\nshards")?;
    for s in &r.shards {
        writeln!(out, "  {:<40} {:>14} bytes {:>6} tensors", s.file, s.bytes, s.tensors)?;
    }
    writeln!(out, "\ntensors")?;
    let width = r.tensors.iter().map(|t| t.name.len()).max().unwrap_or(4);
    for t in &r.tensors {
        writeln!(out, "  {:<width$} {:<5} {:<18} {}", t.name, t.dtype, format!("{:?}", t.shape), t.shard)?;
    }
    writeln!(out, "\nparameters per layer and component")?;
    write!(out, "  {:>5}", "layer")?;
    for c in Component::ALL {
        write!(out, " {:>12}", c.as_str())?;
    }
    writeln!(out, " {:>13}", "total")?;
    for l in &r.layers {
        write!(out, "  {:>5}", l.layer)?;
        for c in Component::ALL {
            write!(out, " {:>12}", l.components.get(&c).copied().unwrap_or(0))?;
        }
        writeln!(out, " {:>13}", l.total)?;
    }
    write!(out, "  {:>5}", "all")?;
    for c in Component::ALL {
        write!(out, " {:>12}", r.components.get(&c).copied().unwrap_or(0))?;
    }
    writeln!(out, " {:>13}", r.components.values().sum::<u64>())?;
    writeln!(out, "\nembeddings, norms, lm_head {:>14}", r.other_parameters)?;
    writeln!(out, "total parameters           {:>14}", r.total_parameters)?;
    Ok(())
}
