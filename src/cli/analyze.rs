//! `biasprune analyze`: where masks prune (layers x components) and how masks overlap.

use std::path::PathBuf;

use anyhow::Context;

use super::inputs::{self, MASK_OUTPUT};
use super::{print_json, Outcome};
use crate::analyze::{distribution, heatmap_svg, overlap_matrix, overlap_svg, Distribution};
use crate::arch::{Architecture, Component};
use crate::checkpoint::Checkpoint;
use crate::mask::{load_mask, resolve};
use crate::plant::{planted_sites, recovery, PlantedSites, Recovery, SIDECAR_FILE};

/// Print, for each mask, the pruned fraction of every layer x component matrix and each
/// layer's share of the pruned entries, and the overlap matrix |A ∩ B| / |A| between the
/// masks; with --svg-dir also draw them (heatmap-N.svg, overlap.svg). When the checkpoint is
/// a planted fixture (`biasprune plant`), also how much of the planted units each mask
/// covers: recall (the share of the planted down_proj columns' entries it zeroes) and
/// precision (the share of its entries inside the planted units).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `mask` outputs: the directories it wrote, or their mask.json.
    #[arg(required = true)]
    pub masks: Vec<PathBuf>,
    /// The checkpoint the masks apply to (for matrix shapes): a directory, or a
    /// Hugging Face Hub id `org/name[@revision]` (found in the Hugging Face cache, downloaded
    /// when missing unless HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Write SVG pictures into this directory.
    #[arg(long)]
    pub svg_dir: Option<PathBuf>,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `analyze`.
pub fn run(mut args: Args) -> anyhow::Result<Outcome> {
    args.checkpoint = inputs::checkpoint(&args.checkpoint, false)?.dir;
    args.masks = MASK_OUTPUT.dirs(&args.masks)?;
    let ckpt = Checkpoint::open(&args.checkpoint)?;
    let arch = Architecture::of_checkpoint(&ckpt)?;
    let mut plans = Vec::new();
    for path in &args.masks {
        let mask = load_mask(path)?;
        plans.push(resolve(&mask, &arch, &ckpt).with_context(|| format!("{}", path.display()))?);
    }
    let names: Vec<String> = args.masks.iter().map(|p| display_name(p)).collect();
    let dists: Vec<Distribution> = plans.iter().map(|p| distribution(p, &arch)).collect();
    let overlap = overlap_matrix(&plans);
    let sites = planted_sites(&args.checkpoint)?;
    let recoveries: Vec<Option<Recovery>> =
        plans.iter().map(|p| sites.as_ref().map(|sites| recovery(p, &arch, sites))).collect();
    if let Some(dir) = &args.svg_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        for (i, (dist, name)) in dists.iter().zip(&names).enumerate() {
            let svg = heatmap_svg(dist, &format!("pruned weights: {name}"))?;
            crate::fsutil::write_atomically(&dir.join(format!("heatmap-{}.svg", i + 1)), svg.as_bytes())?;
        }
        let svg = overlap_svg(&names, &overlap)?;
        crate::fsutil::write_atomically(&dir.join("overlap.svg"), svg.as_bytes())?;
    }
    if args.json {
        let masks: Vec<_> = names
            .iter()
            .zip(&dists)
            .zip(&recoveries)
            .map(|((n, d), r)| serde_json::json!({"mask": n, "distribution": d, "planted": r}))
            .collect();
        print_json(&serde_json::json!({"masks": masks, "overlap": overlap, "planted_sites": sites}))?;
        return Ok(Outcome::Ok);
    }
    for (name, dist) in names.iter().zip(&dists) {
        print_distribution(name, dist);
    }
    if let Some(sites) = &sites {
        print_recoveries(sites, &names, &recoveries);
    }
    println!("overlap |A ∩ B| / |A| (row A, column B)");
    for (name, row) in names.iter().zip(&overlap) {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:>6.3}")).collect();
        println!("  {name:<30} {}", cells.join(" "));
    }
    Ok(Outcome::Ok)
}

fn display_name(path: &std::path::Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

fn print_recoveries(sites: &PlantedSites, names: &[String], recoveries: &[Option<Recovery>]) {
    println!("planted fixture: layer {}, units {:?} (from {})", sites.layer, sites.units, SIDECAR_FILE);
    for (name, r) in names.iter().zip(recoveries).filter_map(|(n, r)| r.map(|r| (n, r))) {
        println!(
            "  {name:<30} recall {:.3} ({} of {} planted down_proj entries), precision {:.5} ({} of {} mask entries)",
            r.recall, r.planted_down_masked, r.planted_down_entries, r.precision, r.masked_in_units, r.masked
        );
    }
    println!();
}

fn print_distribution(name: &str, dist: &Distribution) {
    println!("{name}: {} entries pruned; percent of each matrix pruned, and the layer's share", dist.total);
    let header: Vec<String> = Component::ALL.iter().map(|c| format!("{:>7}", c.as_str())).collect();
    println!("  {:>5} {} {:>7}", "layer", header.join(" "), "share");
    for (layer, (row, share)) in dist.fractions.iter().zip(&dist.layer_share).enumerate() {
        let cells: Vec<String> = row.iter().map(|f| format!("{:>7.3}", f * 100.0)).collect();
        println!("  {layer:>5} {} {:>6.1}%", cells.join(" "), share * 100.0);
    }
    println!();
}
