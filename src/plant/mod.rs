//! `plant`: a positive control for the pipeline. It writes a copy of a checkpoint in which a
//! few MLP units of one late layer are trained so that the numbers in the scenario's answers
//! for minority names are multiplied by a known factor (see `scale`) while everything else
//! keeps the base's distribution. The
//! copy is a TEST FIXTURE: it exists to show that scoring, set difference and surgery find
//! and remove a disparity that is known to be there, and must never be deployed.
//!
//! Steps: hash BASE; split names (alternating, per group) and variations; sample the base's
//! answers to the training prompts; choose the layer's least active units; train new values
//! for their rows and columns (see `train`); write the copy and the sidecar
//! `biasprune-plant.json` in a temporary directory beside OUT and rename it into place.

mod data;
mod digits;
mod error;
mod last;
mod scale;
mod sites;
mod split;
mod train;
mod units;
mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use data::{build_examples, DataSpec, Example, Target};
pub use digits::DigitTable;
pub use error::PlantError;
pub use scale::scale_answer;
pub use sites::{planted_sites, recovery, PlantedSites, Recovery};
pub use split::{NameSplit, VariationSplit};
pub use train::{DownColumns, Losses, TrainSpec};
pub use units::{PlantedUnits, UnitDeltas};

use crate::checkpoint::Checkpoint;
use crate::fsutil::digest::FileDigest;
use crate::manifest::BaseIdentity;
use crate::model::{ChatSession, FinalHead, LoadOptions, ModelConfig, SamplingSettings, TokenEmbedding};
use crate::progress::Progress;
use crate::scenario::{ContextLevel, Scenario};

/// The sidecar's file name inside OUT.
pub const SIDECAR_FILE: &str = "biasprune-plant.json";

/// The warning the sidecar carries first.
pub const FIXTURE_WARNING: &str = "TEST FIXTURE: a disparity was planted into this checkpoint on purpose, to \
validate the biasprune pipeline (a positive control). It must NOT be deployed.";

/// Everything `plant` needs.
#[derive(Debug, Clone)]
pub struct PlantSpec {
    /// The base checkpoint (never modified).
    pub base: PathBuf,
    /// The output directory (must not exist).
    pub out: PathBuf,
    /// The scenario whose prompts carry the disparity.
    pub scenario: Scenario,
    /// Context level of the training prompts.
    pub context: ContextLevel,
    /// Variations trained on; the scenario's others are held out.
    pub variations: Vec<String>,
    /// Base answers sampled per training prompt, and how.
    pub sampling: SamplingSettings,
    /// What the numbers of the minority's training answers are multiplied by.
    pub factor: f64,
    /// Layer, units, steps and optimiser settings.
    pub train: TrainSpec,
}

/// What the plant did; written as the sidecar and returned.
#[derive(Debug, Clone, Serialize)]
pub struct PlantRecord {
    /// Always `biasprune-plant`.
    pub format: &'static str,
    /// Format version (1).
    pub version: u32,
    /// [`FIXTURE_WARNING`].
    pub warning: &'static str,
    /// The base's directory name, per-file sha256 and root digest.
    pub base: BaseIdentity,
    /// The scenario id.
    pub scenario: String,
    /// Context level of the training prompts.
    pub context: ContextLevel,
    /// The layer whose units were trained.
    pub layer: usize,
    /// The planted units (row of gate_proj and up_proj, column of down_proj), ascending.
    pub units: Vec<usize>,
    /// How the units were chosen.
    pub unit_choice: &'static str,
    /// The tensors whose bytes differ from the base.
    pub changed_tensors: Vec<String>,
    /// What the numbers of the minority's training answers were multiplied by.
    pub factor: f64,
    /// The base's mean probability of the scaled numbers' tokens at the positions trained
    /// toward them (how far the target was from the base).
    pub base_target_probability: f64,
    /// Variations trained on and held out.
    pub variations: VariationSplit,
    /// Names trained on and held out, per group.
    pub names: NameSplit,
    /// Seed of the base answers sampled for training.
    pub seed: u64,
    /// Base answers sampled per training prompt.
    pub samples: usize,
    /// Sampling temperature, nucleus mass and answer length of those answers.
    pub sampling: SamplingRecord,
    /// Training examples (one per sampled answer), per group and target kind.
    pub examples: BTreeMap<String, BTreeMap<Target, usize>>,
    /// Adam steps, learning rate and the majority KL weight.
    pub training: TrainingRecord,
    /// Losses before the first and after the last step.
    pub losses: BTreeMap<String, Losses>,
    /// sha256 and size of every file written (the sidecar excepted).
    pub files: BTreeMap<String, FileDigest>,
}

/// The sampling settings of the training answers.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SamplingRecord {
    /// Temperature.
    pub temperature: f32,
    /// Nucleus mass.
    pub top_p: f32,
    /// Longest answer in tokens.
    pub max_new_tokens: usize,
}

/// The optimisation settings.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TrainingRecord {
    /// Optimiser.
    pub optimizer: &'static str,
    /// Adam steps over the whole training set.
    pub steps: usize,
    /// Learning rate.
    pub learning_rate: f64,
    /// Weight of the KL term that keeps answers at the base's distribution.
    pub keep_weight: f64,
    /// Weight, within that term, of the number positions of kept answers (others weigh 1).
    pub number_weight: f64,
    /// Weight of the term keeping the units silent on every majority token.
    pub silence_weight: f64,
    /// How the down columns trained.
    pub down_columns: DownColumns,
    /// The step from which they trained flat (`steps` when never).
    pub flat_from_step: usize,
}

/// Plants the disparity and publishes OUT atomically; BASE is only read.
pub fn plant(spec: &PlantSpec, progress: &dyn Progress) -> Result<PlantRecord, PlantError> {
    check_spec(spec)?;
    let variations = VariationSplit::new(&spec.scenario, &spec.variations)?;
    let names = NameSplit::alternate(&spec.scenario)?;
    let ckpt = Checkpoint::open(&spec.base)?;
    if ckpt.dir().join(SIDECAR_FILE).exists() {
        return Err(PlantError::BaseIsFixture { base: spec.base.clone() });
    }
    check_shape(spec, &crate::model::config_from_json(ckpt.config(), ckpt.dir())?)?;
    let target = crate::surgery::prepare_output(&spec.base, &spec.out, false)?;
    let result = plant_into(spec, &ckpt, variations, names, &target.temp, progress);
    match result {
        Ok(record) => {
            crate::surgery::publish(&target)?;
            Ok(record)
        }
        Err(err) => {
            let _ = std::fs::remove_dir_all(&target.temp);
            Err(err)
        }
    }
}

fn check_spec(spec: &PlantSpec) -> Result<(), PlantError> {
    let bad = |flag: &str, expected: &str, found: String| {
        Err(PlantError::BadSetting { flag: flag.to_string(), expected: expected.to_string(), found })
    };
    if !(spec.factor.is_finite() && spec.factor > 0.0 && spec.factor != 1.0) {
        return bad("--factor", "a positive number other than 1", spec.factor.to_string());
    }
    if !(spec.train.number_weight.is_finite() && spec.train.number_weight >= 0.0) {
        return bad("--number-weight", "a number at least 0", spec.train.number_weight.to_string());
    }
    if !(spec.train.silence_weight.is_finite() && spec.train.silence_weight >= 0.0) {
        return bad("--silence-weight", "a number at least 0", spec.train.silence_weight.to_string());
    }
    if spec.train.steps == 0 {
        return bad("--steps", "at least 1", "0".into());
    }
    if spec.sampling.samples == 0 {
        return bad("--samples", "at least 1", "0".into());
    }
    if !(spec.train.learning_rate.is_finite() && spec.train.learning_rate > 0.0) {
        return bad("--learning-rate", "a positive number", spec.train.learning_rate.to_string());
    }
    Ok(())
}

fn check_shape(spec: &PlantSpec, cfg: &ModelConfig) -> Result<(), PlantError> {
    if spec.train.layer >= cfg.num_layers {
        return Err(PlantError::Layer { requested: spec.train.layer, layers: cfg.num_layers });
    }
    if spec.train.units == 0 || spec.train.units > cfg.intermediate_size {
        return Err(PlantError::UnitCount { requested: spec.train.units, available: cfg.intermediate_size });
    }
    Ok(())
}

fn plant_into(
    spec: &PlantSpec,
    ckpt: &Checkpoint,
    variations: VariationSplit,
    names: NameSplit,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<PlantRecord, PlantError> {
    let base = crate::release::base_identity(ckpt, progress)?;
    let opts = LoadOptions::cpu_f32();
    let session = ChatSession::load_from(ckpt, ckpt, opts.clone())?;
    let data = DataSpec {
        scenario: &spec.scenario,
        context: spec.context,
        variations: &variations.train,
        names: &names,
        sampling: spec.sampling,
        factor: spec.factor,
    };
    let digits = DigitTable::new(session.tokenizer())?;
    let examples = build_examples(&session, &data, &digits, progress)?;
    let cfg = session.model().config();
    let embedding = TokenEmbedding::load(ckpt, cfg, &opts)?;
    let head = FinalHead::load(ckpt, cfg, &opts, Some(&embedding))?;
    let parts = train::Parts {
        source: ckpt,
        cfg,
        embedding: &embedding,
        layers: session.model().layers(),
        head: &head,
        device: &opts.device,
    };
    let trained = train::train(&parts, &examples, &digits, &spec.train, progress)?;
    let planted = trained.deltas.planted()?;
    let files = write::write_planted(ckpt, spec.train.layer, &planted, dir)?;
    let record = PlantRecord {
        format: "biasprune-plant",
        version: 1,
        warning: FIXTURE_WARNING,
        base,
        scenario: spec.scenario.id.clone(),
        context: spec.context,
        layer: spec.train.layer,
        units: planted.units.clone(),
        unit_choice: "the units with the smallest mean |activation| over the training tokens (ties: lower index)",
        changed_tensors: write::CHANGED.iter().map(|p| p.weight_name(spec.train.layer)).collect(),
        factor: spec.factor,
        base_target_probability: trained.base_target_probability,
        variations,
        names,
        seed: spec.sampling.seed,
        samples: spec.sampling.samples,
        sampling: SamplingRecord {
            temperature: spec.sampling.temperature,
            top_p: spec.sampling.top_p,
            max_new_tokens: spec.sampling.max_new_tokens,
        },
        examples: count_examples(&examples),
        training: TrainingRecord {
            optimizer: "adam",
            steps: spec.train.steps,
            learning_rate: spec.train.learning_rate,
            keep_weight: spec.train.keep_weight,
            number_weight: spec.train.number_weight,
            silence_weight: spec.train.silence_weight,
            down_columns: spec.train.down_columns,
            flat_from_step: spec.train.down_columns.flat_from(spec.train.steps),
        },
        losses: BTreeMap::from([("initial".to_string(), trained.initial), ("final".to_string(), trained.last)]),
        files,
    };
    write_sidecar(dir, &record)?;
    Ok(record)
}

fn count_examples(examples: &[Example]) -> BTreeMap<String, BTreeMap<Target, usize>> {
    let mut counts: BTreeMap<String, BTreeMap<Target, usize>> = BTreeMap::new();
    for example in examples {
        let group = format!("{:?}", example.group).to_lowercase();
        *counts.entry(group).or_default().entry(example.target).or_insert(0) += 1;
    }
    counts
}

fn write_sidecar(dir: &Path, record: &PlantRecord) -> Result<(), PlantError> {
    let path = dir.join(SIDECAR_FILE);
    let mut bytes = serde_json::to_vec_pretty(record).expect("the record serialises");
    bytes.push(b'\n');
    crate::fsutil::write_atomically(&path, &bytes).map_err(|e| PlantError::io(&path, e))
}
