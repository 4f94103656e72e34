//! What `biasprune prune` does, as data: read from a TOML pipeline file (kept in version
//! control) or built from command-line flags, with every default stated here.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::PipelineError;
use crate::arch::Component;
use crate::device::ComputeDtype;
pub use crate::mask::RegimeChoice;

/// A whole prune job: base checkpoint, use case, method, evaluation and outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneSpec {
    /// The base checkpoint directory (never modified), or a Hugging Face Hub id
    /// (`org/name[@revision]`) until the front end resolves it.
    pub base: PathBuf,
    /// The Hub model and commit `base` was resolved from, when it was named by Hub id (set by
    /// the front end, never read from a file).
    #[serde(skip)]
    pub base_hub: Option<crate::hub::HubModel>,
    /// The release directory to write (appears atomically, signed when `sign_key` is set).
    pub out: PathBuf,
    /// Where intermediate artifacts live, keyed by the digests of their inputs
    /// (default: `OUT.work` beside OUT).
    #[serde(default)]
    pub work_dir: Option<PathBuf>,
    /// ECDSA private key (PEM) that signs OUT.
    #[serde(default)]
    pub sign_key: Option<PathBuf>,
    /// Extra scenario manifests, added to the built-in ones.
    #[serde(default)]
    pub scenarios_dir: Option<PathBuf>,
    /// Replace an existing OUT made with other settings.
    #[serde(default)]
    pub force: bool,
    /// The use case the mask is for.
    pub use_case: UseCaseSpec,
    /// How weights are scored and selected.
    #[serde(default)]
    pub method: MethodSpec,
    /// How answers are sampled and summarised (baseline, calibration and pruned runs).
    #[serde(default)]
    pub evaluation: EvaluationSpec,
    /// Where the model runs.
    #[serde(default)]
    pub compute: ComputeSpec,
    /// When the job stops without a release (exit 3) and what a release must show.
    #[serde(default)]
    pub gate: GateSpec,
}

/// The use case: which prompts the mask is for, which it learns from, which only test it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UseCaseSpec {
    /// Scenario id (see `biasprune scenarios`).
    pub scenario: String,
    /// Target variations: the mask is for these (default: all of the scenario's).
    #[serde(default)]
    pub variations: Vec<String>,
    /// Variations evaluated before and after pruning but never used to build the mask.
    #[serde(default)]
    pub held_out: Vec<String>,
    /// Context level: low, high or numeric.
    #[serde(default = "default_context")]
    pub context: String,
    /// Which answers the mask is built from.
    #[serde(default)]
    pub regime: RegimeChoice,
    /// within-context: the variations scored (default: the scenario's others).
    #[serde(default)]
    pub train_variations: Vec<String>,
    /// cross-context: the scenarios scored (all their variations).
    #[serde(default)]
    pub train_scenarios: Vec<String>,
    /// Whose important weights are pruned; `auto` is the paper's (the minority's), flipped
    /// only when the baseline significantly favours the minority.
    #[serde(default)]
    pub direction: DirectionChoice,
    /// Names the confirmation evidence asks about: `auto` (names of the same groups that
    /// scoring and selection never saw, where a larger built-in list has them: audit40's
    /// groups take extended64's other 24 names), `none` (the scenario's own names, fresh
    /// seeds only), or a name-list id.
    #[serde(default = "default_holdout_names")]
    pub holdout_names: String,
}

/// Which group's important weights are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DirectionChoice {
    /// The paper's direction (prune the minority's specific weights), flipped to the
    /// majority's only when the calibration baseline significantly (cluster-aware 95% CI)
    /// gives the majority the worse answers on the targets ("worse" as the scenario
    /// declares it).
    #[default]
    Auto,
    /// Minority-important weights (the paper's experiment).
    Minority,
    /// Majority-important weights (the reverse experiment).
    Majority,
}

/// Scoring and selection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodSpec {
    /// wanda or snip.
    #[serde(default = "default_method")]
    pub method: String,
    /// Tokens counted by Wanda: all or response.
    #[serde(default = "default_tokens")]
    pub tokens: String,
    /// weight, row, unit (MLP units) or head.
    #[serde(default = "default_granularity")]
    pub granularity: String,
    /// Fraction of the protected group's top entries spared.
    #[serde(default = "default_fraction")]
    pub p: f64,
    /// Fraction of the pruned group's top entries selected.
    #[serde(default = "default_fraction")]
    pub q: f64,
    /// Sweep a (p, q) grid instead and pick a point (overrides p and q).
    #[serde(default)]
    pub sweep: Option<SweepSpec>,
    /// Components considered (default all seven).
    #[serde(default)]
    pub components: Vec<Component>,
    /// Layers considered, inclusive FIRST-LAST (default all).
    #[serde(default)]
    pub layers: Option<String>,
    /// How heads are zeroed: o-proj-columns or q-proj-rows.
    #[serde(default = "default_head_mode")]
    pub head_mode: String,
    /// Where head scores come from: attention (the score files' attention to the name
    /// tokens) or weights (sums of the head's weight scores).
    #[serde(default = "default_head_score")]
    pub head_score: String,
    /// How heads are ranked: per-layer (within each layer) or global (all heads together).
    #[serde(default = "default_head_ranking")]
    pub head_ranking: String,
    /// Keep entries selected by at least this many pair masks (default: all of them).
    #[serde(default)]
    pub min_count: Option<usize>,
    /// Answers per scoring batch.
    #[serde(default = "default_score_batch")]
    pub score_batch: usize,
}

/// A (p, q) grid and the rule that picks the released point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Values of p.
    #[serde(default = "default_p_grid")]
    pub p_grid: Vec<f64>,
    /// Values of q.
    #[serde(default = "default_q_grid")]
    pub q_grid: Vec<f64>,
    /// A point qualifies when its inlier ratio is at most this far below the baseline's.
    #[serde(default = "default_max_drop")]
    pub max_inlier_drop: f64,
    /// A point qualifies when its parse rate is at most this far below the baseline's.
    #[serde(default = "default_max_drop")]
    pub max_parse_drop: f64,
}

impl Default for SweepSpec {
    fn default() -> Self {
        SweepSpec {
            p_grid: default_p_grid(),
            q_grid: default_q_grid(),
            max_inlier_drop: default_max_drop(),
            max_parse_drop: default_max_drop(),
        }
    }
}

/// Sampling and statistics settings of every evaluation in the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationSpec {
    /// Answers per (variation, name) prompt.
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// Seed of the sampling streams and the bootstrap.
    #[serde(default)]
    pub seed: u64,
    /// Sampling temperature (the authors' 0.6).
    #[serde(default = "default_temperature")]
    pub temperature: f32,
    /// Nucleus mass (the authors' 0.9).
    #[serde(default = "default_top_p")]
    pub top_p: f32,
    /// Longest answer in tokens.
    #[serde(default = "default_max_new_tokens")]
    pub max_new_tokens: usize,
    /// Decoding rows per batch; also fixes the resume plan.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// Inlier rule: tukey[:K] or percentiles[:LO:HI].
    #[serde(default = "default_inlier_rule")]
    pub inlier_rule: String,
    /// Bootstrap resamples of the SMD's CI.
    #[serde(default = "default_bootstrap")]
    pub bootstrap: usize,
    /// Seed of the selection data (the sweep); default derived from `seed`.
    #[serde(default)]
    pub selection_seed: Option<u64>,
    /// Seed of the confirmation data (the released evidence); default derived from `seed`.
    #[serde(default)]
    pub confirmation_seed: Option<u64>,
    /// Answers per prompt of the confirmation data (the released evidence); default
    /// [`CONFIRMATION_SAMPLES_FACTOR`] × `samples`.
    #[serde(default)]
    pub confirmation_samples: Option<usize>,
}

/// The confirmation data's answers per prompt, as a multiple of `samples`, unless set. The
/// release's verdict compares the base's and the pruned model's parse rate and inlier ratio
/// against a 0.05 tolerance, and at 10 answers for each of 24 names that difference moved
/// between seeds by about as much as the tolerance: on the planted control the default
/// mask read a parse-rate change of -0.058 at 10 answers per prompt and -0.001 at 40 on
/// the same seed (README, `prune` stage 7).
pub const CONFIRMATION_SAMPLES_FACTOR: usize = 4;

/// The release rules: before scoring, a disparity must be there to remove; after pruning,
/// the confirmation data must show it reduced without losing usable answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateSpec {
    /// Go on when the baseline shows no significant disparity on the targets.
    #[serde(default)]
    pub allow_no_disparity: bool,
    /// Write the release whatever the outcome (it is stated in the manifest, card, report
    /// and verify's output).
    #[serde(default)]
    pub release_anyway: bool,
    /// The pruned model's inlier ratio may fall at most this far below the baseline's.
    #[serde(default = "default_max_drop")]
    pub max_inlier_drop: f64,
    /// The pruned model's parse rate may fall at most this far below the baseline's.
    #[serde(default = "default_max_drop")]
    pub max_parse_drop: f64,
    /// A target also counts as reduced when the base's disparity is significant on the
    /// confirmation data and the pruned model's |SMD| there is at most this, having moved
    /// toward 0 (the "confirmation |SMD| <= 0.3"); 0 turns this arm off.
    #[serde(default = "default_max_residual_smd")]
    pub max_residual_smd: f64,
}

impl Default for GateSpec {
    fn default() -> Self {
        GateSpec {
            allow_no_disparity: false,
            release_anyway: false,
            max_inlier_drop: default_max_drop(),
            max_parse_drop: default_max_drop(),
            max_residual_smd: default_max_residual_smd(),
        }
    }
}

/// Device and compute dtype.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeSpec {
    /// cpu, cuda or cuda:N.
    #[serde(default = "default_device")]
    pub device: String,
    /// auto, f32, f16 or bf16.
    #[serde(default)]
    pub compute_dtype: ComputeDtype,
}

impl Default for MethodSpec {
    fn default() -> Self {
        MethodSpec {
            method: default_method(),
            tokens: default_tokens(),
            granularity: default_granularity(),
            p: default_fraction(),
            q: default_fraction(),
            sweep: None,
            components: Vec::new(),
            layers: None,
            head_mode: default_head_mode(),
            head_score: default_head_score(),
            head_ranking: default_head_ranking(),
            min_count: None,
            score_batch: default_score_batch(),
        }
    }
}

impl Default for EvaluationSpec {
    fn default() -> Self {
        EvaluationSpec {
            samples: default_samples(),
            seed: 0,
            temperature: default_temperature(),
            top_p: default_top_p(),
            max_new_tokens: default_max_new_tokens(),
            max_rows: default_max_rows(),
            inlier_rule: default_inlier_rule(),
            bootstrap: default_bootstrap(),
            selection_seed: None,
            confirmation_seed: None,
            confirmation_samples: None,
        }
    }
}

impl Default for ComputeSpec {
    fn default() -> Self {
        ComputeSpec { device: default_device(), compute_dtype: ComputeDtype::Auto }
    }
}

impl PruneSpec {
    /// Reads a TOML pipeline file; relative paths in it are taken from the file's directory
    /// (a base that looks like a Hub id, with neither it nor its `org` a directory there, stays
    /// an id).
    pub fn from_toml_file(path: &Path) -> Result<Self, PipelineError> {
        let text = crate::fsutil::read_capped_text(path, crate::fsutil::MAX_TOML_BYTES, crate::fsutil::Links::Follow)
            .map_err(|e| PipelineError::io(path, e))?;
        Self::from_toml(&text, path)
    }

    /// Parses the text of a TOML pipeline file read from `path` (named in errors; relative
    /// paths in the text are taken from its directory).
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, PipelineError> {
        let mut spec: PruneSpec = toml::from_str(text)
            .map_err(|e| PipelineError::Spec(format!("{}: {}", path.display(), e.to_string().trim_end())))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        spec.resolve_paths(dir);
        Ok(spec)
    }

    /// The work directory: the configured one, or `OUT.work` beside OUT.
    pub fn work_dir(&self) -> PathBuf {
        self.work_dir.clone().unwrap_or_else(|| {
            let mut name = self.out.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "out".into());
            name.push(".work");
            self.out.with_file_name(name)
        })
    }

    fn resolve_paths(&mut self, dir: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        // A Hub id (`org/name[@revision]`) stays an id when neither it nor its `org` is a
        // directory beside the file (the rule `crate::hub::hub_reference` applies on the command line).
        let local = |reference: crate::hub::HubRef| {
            let org = reference.id.split('/').next().unwrap_or_default().to_string();
            dir.join(&self.base).exists() || dir.join(org).is_dir()
        };
        let hub_id = crate::hub::HubRef::parse(&self.base.to_string_lossy()).is_some_and(|r| !local(r));
        if !hub_id {
            join(&mut self.base);
        }
        join(&mut self.out);
        for p in [&mut self.work_dir, &mut self.sign_key, &mut self.scenarios_dir].into_iter().flatten() {
            join(p);
        }
    }
}

fn default_holdout_names() -> String {
    "auto".into()
}
fn default_context() -> String {
    "low".into()
}
fn default_method() -> String {
    "wanda".into()
}
fn default_tokens() -> String {
    "all".into()
}
fn default_granularity() -> String {
    "weight".into()
}
fn default_head_mode() -> String {
    "o-proj-columns".into()
}
fn default_head_score() -> String {
    "attention".into()
}
fn default_head_ranking() -> String {
    "per-layer".into()
}
fn default_fraction() -> f64 {
    0.15
}
fn default_score_batch() -> usize {
    64
}
fn default_p_grid() -> Vec<f64> {
    vec![0.05, 0.15, 0.35]
}
fn default_q_grid() -> Vec<f64> {
    vec![0.15, 0.4]
}
fn default_max_drop() -> f64 {
    0.05
}
fn default_max_residual_smd() -> f64 {
    0.3
}
fn default_samples() -> usize {
    10
}
fn default_temperature() -> f32 {
    0.6
}
fn default_top_p() -> f32 {
    0.9
}
fn default_max_new_tokens() -> usize {
    16
}
fn default_max_rows() -> usize {
    200
}
fn default_inlier_rule() -> String {
    "tukey".into()
}
fn default_bootstrap() -> usize {
    2000
}
fn default_device() -> String {
    "cpu".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_toml_takes_every_default_and_resolves_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("models")).unwrap();
        let path = dir.path().join("prune.toml");
        std::fs::write(&path, "base = \"models/base\"\nout = \"/abs/out\"\n[use_case]\nscenario = \"purchase\"\n")
            .unwrap();
        let spec = PruneSpec::from_toml_file(&path).unwrap();
        assert_eq!(spec.base, dir.path().join("models/base"), "models/ is a directory beside the file: a path");
        assert_eq!(spec.out, PathBuf::from("/abs/out"));
        assert_eq!(spec.work_dir(), PathBuf::from("/abs/out.work"));
        assert_eq!(spec.method, MethodSpec::default());
        assert_eq!(spec.evaluation, EvaluationSpec::default());
        assert_eq!(spec.use_case.regime, RegimeChoice::PromptSpecific);
        assert_eq!(spec.use_case.direction, DirectionChoice::Auto);
    }

    #[test]
    fn a_hub_id_in_the_file_stays_an_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prune.toml");
        let text =
            "base = \"HuggingFaceTB/SmolLM2-135M-Instruct@main\"\nout = \"o\"\n[use_case]\nscenario = \"purchase\"\n";
        std::fs::write(&path, text).unwrap();
        let spec = PruneSpec::from_toml_file(&path).unwrap();
        assert_eq!(spec.base, PathBuf::from("HuggingFaceTB/SmolLM2-135M-Instruct@main"));
        assert_eq!((spec.base_hub, spec.out), (None, dir.path().join("o")), "the front end resolves the id");
    }

    #[test]
    fn unknown_keys_are_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prune.toml");
        std::fs::write(&path, "base = \"b\"\nout = \"o\"\n[use_case]\nscenario = \"purchase\"\nsamples = 3\n").unwrap();
        let err = PruneSpec::from_toml_file(&path).unwrap_err().to_string();
        assert!(err.contains("prune.toml") && err.contains("samples"), "{err}");
    }
}
