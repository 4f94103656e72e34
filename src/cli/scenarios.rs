//! `biasprune scenarios`: list the installed scenarios (and those of a user directory).

use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use super::{print_json, Outcome};
use crate::scenario::{AnswerKind, Catalog, ContextLevel, Origin, PlausibleRange, Scenario};

/// Arguments of `biasprune scenarios`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also load the scenarios of DIR (its `scenarios/` subdirectory if present, name lists
    /// from `DIR/names/`); a user scenario replaces a built-in one with the same id.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One scenario as listed.
#[derive(Serialize)]
struct Listing<'a> {
    id: &'a str,
    description: &'a str,
    origin: Origin,
    path: String,
    answer: AnswerKind,
    contexts: &'a [ContextLevel],
    variations: Vec<VariationListing<'a>>,
    names: &'a str,
    majority: GroupListing<'a>,
    minority: GroupListing<'a>,
}

#[derive(Serialize)]
struct VariationListing<'a> {
    id: &'a str,
    range: PlausibleRange,
}

#[derive(Serialize)]
struct GroupListing<'a> {
    id: &'a str,
    names: usize,
}

/// Loads the catalogue and prints it.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let catalog = Catalog::load(args.dir.as_deref()).context("loading scenario manifests")?;
    let listings: Vec<Listing> = catalog.iter().map(|(scenario, origin)| listing(scenario, origin)).collect();
    if args.json {
        print_json(&listings)?;
    } else {
        print_table(&listings)?;
    }
    Ok(Outcome::Ok)
}

fn listing(scenario: &Scenario, origin: Origin) -> Listing<'_> {
    Listing {
        id: &scenario.id,
        description: &scenario.description,
        origin,
        path: scenario.path.display().to_string(),
        answer: scenario.answer,
        contexts: &scenario.contexts,
        variations: scenario.variations.iter().map(|v| VariationListing { id: &v.id, range: v.range }).collect(),
        names: &scenario.names,
        majority: GroupListing { id: &scenario.majority.id, names: scenario.majority.people.len() },
        minority: GroupListing { id: &scenario.minority.id, names: scenario.minority.people.len() },
    }
}

fn print_table(listings: &[Listing]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<14} {:<9} {:<11} {:<18} {:<30} VARIATIONS",
        "ID", "ORIGIN", "ANSWER", "CONTEXTS", "NAMES (maj/min)"
    )?;
    for l in listings {
        let contexts = l.contexts.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",");
        let origin = if l.origin == Origin::BuiltIn { "built-in" } else { "user" };
        let names =
            format!("{} {}/{} ({}/{})", l.names, l.majority.id, l.minority.id, l.majority.names, l.minority.names);
        let variations = l.variations.iter().map(|v| v.id).collect::<Vec<_>>().join(", ");
        writeln!(
            out,
            "{:<14} {:<9} {:<11} {:<18} {:<30} {variations}",
            l.id,
            origin,
            l.answer.as_str(),
            contexts,
            names
        )?;
    }
    Ok(())
}
