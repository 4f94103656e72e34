//! Release: a pruned checkpoint together with its manifest, model card, bitmask, evidence
//! files and signature, all assembled in surgery's temporary directory before the atomic
//! publish, so OUT appears complete (and signed, when asked) or not at all.

mod evidence;
mod use_case;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::arch::Architecture;
use crate::checkpoint::Checkpoint;
use crate::fsutil::digest::FileDigest;
use crate::fsutil::digest::{ignore_paths, list_files, DigestError};
use crate::fsutil::{read_capped_text, Links};
use crate::hub::HubModel;
use crate::manifest::{
    card_license, creation_time, license_id, model_card, pruned_section_counted, to_bytes, BaseIdentity, DataSplits,
    EvaluationEvidence, Evidence, FileRef, Manifest, Tool, UseCase, Verdict, BASE_CARD_FILE, CARD_FILE, EVIDENCE_DIR,
    FORMAT_VERSION, MANIFEST_FILE,
};
use crate::mask::{bitmask_source, load_mask, resolve, MaskFileError, PruneMask, BITMASK_FILE};
use crate::progress::{NoProgress, Progress};
use crate::sign::{
    digest_checkpoint, list_checkpoint_files, root_digest, sign_directory_as, SignError, SignOutcome, SIGNATURE_FILE,
};
use crate::surgery::{sync_dir, write_pruned_then, ApplyOptions, ApplyReport, OutputTarget, SurgeryError};

pub use use_case::{read_use_case, use_case_and_method, DIRECTIONS, REGIMES};

/// A release could not be made; OUT was not created.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// Surgery (or opening the checkpoint, or resolving the mask) failed.
    #[error(transparent)]
    Surgery(#[from] SurgeryError),
    /// The mask files are unusable.
    #[error(transparent)]
    Mask(#[from] MaskFileError),
    /// Hashing the base or signing the output failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// Listing the evidence files failed.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// An operating-system error on a path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Evidence or a given base identity that does not fit the release.
    #[error("{}: {reason}", path.display())]
    BadInput {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A use-case file that does not describe a use case.
    #[error("{}: {reason}", path.display())]
    BadUseCase {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl ReleaseError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        ReleaseError::Io { path: path.to_path_buf(), source }
    }
}

/// Evidence shipped in `evidence/`: files (path under evidence/, source path) and, when an
/// evaluation was summarised, the baseline and pruned summaries.
#[derive(Debug, Clone, Default)]
pub struct EvidenceInput {
    /// Files to copy, keyed by their path relative to `evidence/` ('/'-separated).
    pub files: BTreeMap<String, PathBuf>,
    /// The base model's evaluation summary.
    pub baseline: Option<EvaluationEvidence>,
    /// The pruned model's evaluation summary.
    pub pruned: Option<EvaluationEvidence>,
    /// What the evaluations show pruning did (its outcome goes to `evidence.outcome`).
    pub verdict: Option<Verdict>,
    /// Which data built, chose and proved the mask.
    pub splits: Option<DataSplits>,
    /// The calibration baseline's summary.
    pub calibration: Option<EvaluationEvidence>,
}

impl EvidenceInput {
    /// Every regular file under `dir` (symbolic links refused), keyed by relative path.
    pub fn from_dir(dir: &Path) -> Result<Self, ReleaseError> {
        let files = list_files(dir, &[])?.into_iter().map(|f| (f.path.clone(), dir.join(&f.path))).collect();
        Ok(EvidenceInput { files, ..EvidenceInput::default() })
    }
}

/// What to add to the pruned copy besides the weights.
#[derive(Debug, Clone, Default)]
pub struct ReleaseOptions {
    /// Surgery options (`--force`).
    pub apply: ApplyOptions,
    /// PEM private key: sign OUT (model.sig) inside the temporary directory.
    pub sign_key_pem: Option<String>,
    /// Use case to record instead of the one derived from the mask's provenance.
    pub use_case: Option<UseCase>,
    /// Evidence files and summaries.
    pub evidence: Option<EvidenceInput>,
    /// The manifest's `method` object, replacing the one derived from the mask's provenance.
    pub method: Option<serde_json::Value>,
    /// Extra top-level files (name to bytes), e.g. `report.html`, written and signed with
    /// the release.
    pub extra_files: BTreeMap<String, Vec<u8>>,
    /// The base's identity when the caller already hashed it (see
    /// [`base_identity_from_digests`]); the base is then not read a second time. Its file
    /// list and root digest are checked against a listing of the base.
    pub base: Option<BaseIdentity>,
    /// The Hub model and commit the base was resolved from, when it was named by Hub id;
    /// recorded in the manifest's base identity.
    pub base_hub: Option<HubModel>,
}

/// What `release` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseReport {
    /// Surgery's report; `files` includes the manifest, card, bitmask, evidence and signature.
    #[serde(flatten)]
    pub apply: ApplyReport,
    /// sha256 (hex) of the written manifest.
    pub manifest_sha256: String,
    /// Model-signing root digest (hex) of the base checkpoint, as recorded in the manifest.
    pub base_root_digest: String,
    /// The signature, when a key was given.
    pub signature: Option<SignOutcome>,
}

/// Applies the mask at `mask_path` (mask directory or mask.json) to `checkpoint` and writes
/// OUT with `biasprune-manifest.json`, `README.md` (model card), `pruning-mask.safetensors`
/// (weight-level masks), `evidence/` and, with a key, `model.sig`.
pub fn release(
    checkpoint: &Path,
    mask_path: &Path,
    out: &Path,
    options: &ReleaseOptions,
    progress: &dyn Progress,
) -> Result<ReleaseReport, ReleaseError> {
    if let Some(pem) = &options.sign_key_pem {
        crate::sign::PrivateKey::from_pem(pem)?;
    }
    let mask = load_mask(mask_path)?;
    let bitmask = bitmask_source(mask_path)?;
    let ckpt = Checkpoint::open(checkpoint).map_err(SurgeryError::from)?;
    let arch = Architecture::of_checkpoint(&ckpt).map_err(SurgeryError::from)?;
    let plan = resolve(&mask, &arch, &ckpt).map_err(SurgeryError::from)?;
    let context = Context { mask: &mask, bitmask, ckpt: &ckpt, arch: &arch, options };
    let mut finished = None;
    if let Some(given) = &options.base {
        check_given_base(ckpt.dir(), given)?;
    }
    let apply = std::thread::scope(|scope| {
        // Unless given, the base is hashed while surgery writes, on its own thread: surgery
        // waits on the disk (writes, fsync) often enough that this hides much of the hashing.
        let base_job = options.base.is_none().then(|| scope.spawn(|| base_identity(&ckpt, &NoProgress)));
        write_pruned_then(&ckpt, &plan, out, options.apply, progress, |target, report| {
            let mut base = match base_job {
                Some(job) => job.join().expect("base hashing does not panic")?,
                None => options.base.clone().expect("a base identity is given when not hashed"),
            };
            if let Some(hub) = &options.base_hub {
                base.hub = Some(hub.clone());
            }
            finished = Some(context.finalize(target, report, base, &plan, progress)?);
            Ok::<(), ReleaseError>(())
        })
    })?;
    let (manifest_sha256, base_root_digest, signature) = finished.expect("finalize ran before publishing");
    Ok(ReleaseReport { apply, manifest_sha256, base_root_digest, signature })
}

/// The base's identity: directory name, per-file sha256 and model-signing root digest,
/// hashed in parallel.
pub fn base_identity(ckpt: &Checkpoint, progress: &dyn Progress) -> Result<BaseIdentity, ReleaseError> {
    let dir = ckpt.dir().canonicalize().map_err(|e| ReleaseError::io(ckpt.dir(), e))?;
    let digests = digest_checkpoint(&dir, progress)?;
    let root = root_digest(digests.values().map(|d| &d.sha256));
    Ok(BaseIdentity {
        name: dir.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        files: digests.iter().map(|(path, d)| (path.clone(), hex::encode(d.sha256))).collect(),
        root_digest: hex::encode(root),
        hub: None,
    })
}

/// The base's identity from per-file sha256 (hex) computed earlier, e.g. by `eval` (its
/// `CheckpointIdentity::files`): the base is listed as model-signing lists it (model.sig and
/// VCS files left out, no hashing) and every listed file must have a digest in `files`.
pub fn base_identity_from_digests(dir: &Path, files: &BTreeMap<String, String>) -> Result<BaseIdentity, ReleaseError> {
    let dir = dir.canonicalize().map_err(|e| ReleaseError::io(dir, e))?;
    let mut kept = BTreeMap::new();
    for file in list_checkpoint_files(&dir, &ignore_paths())? {
        let Some(sha) = files.get(&file.path) else {
            return Err(bad_base(&dir, format!("no sha256 given for the base's file {}", file.path)));
        };
        kept.insert(file.path, sha.clone());
    }
    let root = root_of(&dir, &kept)?;
    Ok(BaseIdentity {
        name: dir.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        files: kept,
        root_digest: root,
        hub: None,
    })
}

/// A given base identity must list exactly the base's files and carry their root digest.
fn check_given_base(dir: &Path, given: &BaseIdentity) -> Result<(), ReleaseError> {
    let listed = base_identity_from_digests(dir, &given.files)?;
    if listed.files.len() != given.files.len() {
        let extra: Vec<&String> = given.files.keys().filter(|p| !listed.files.contains_key(*p)).collect();
        return Err(bad_base(dir, format!("the given base identity lists files the base does not have: {extra:?}")));
    }
    if listed.root_digest != given.root_digest {
        return Err(bad_base(
            dir,
            format!("the given root digest {} is not that of its files ({})", given.root_digest, listed.root_digest),
        ));
    }
    Ok(())
}

fn root_of(dir: &Path, files: &BTreeMap<String, String>) -> Result<String, ReleaseError> {
    let mut digests = Vec::with_capacity(files.len());
    for (path, sha) in files {
        let mut digest = [0u8; 32];
        hex::decode_to_slice(sha, &mut digest)
            .map_err(|_| bad_base(dir, format!("{path}: {sha:?} is not a hex sha256")))?;
        digests.push(digest);
    }
    Ok(hex::encode(root_digest(digests.iter())))
}

fn bad_base(dir: &Path, reason: String) -> ReleaseError {
    ReleaseError::BadInput { path: dir.to_path_buf(), reason }
}

struct Context<'a> {
    mask: &'a PruneMask,
    bitmask: Option<PathBuf>,
    ckpt: &'a Checkpoint,
    arch: &'a Architecture,
    options: &'a ReleaseOptions,
}

impl Context<'_> {
    /// Adds the release files to the temporary directory and signs it under OUT's name.
    fn finalize(
        &self,
        target: &OutputTarget,
        report: &mut ApplyReport,
        base: BaseIdentity,
        plan: &crate::mask::ZeroPlan,
        progress: &dyn Progress,
    ) -> Result<(String, String, Option<SignOutcome>), ReleaseError> {
        let temp = &target.temp;
        let out_name = target.out.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        drop_base_signature(temp, report)?;
        keep_base_card(temp, report)?;
        let bitmask_ref = match &self.bitmask {
            Some(source) => Some(copy_recorded(source, temp, BITMASK_FILE, report)?),
            None => None,
        };
        let evidence = self.copy_evidence(temp, report)?;
        let (derived_use_case, derived_method) = use_case_and_method(self.mask);
        let use_case = self.options.use_case.clone().unwrap_or(derived_use_case);
        let method = self.options.method.clone().unwrap_or(derived_method);
        for (name, bytes) in &self.options.extra_files {
            write_recorded(temp, name, bytes, report)?;
        }
        let mut manifest = Manifest {
            format_version: FORMAT_VERSION,
            tool: Tool::current(),
            created: creation_time(),
            base,
            use_case,
            method,
            // Surgery counted the entries it zeroed per tensor: no second count.
            pruned: pruned_section_counted(self.mask, plan, self.ckpt, self.arch, bitmask_ref, &report.zeroed),
            evidence,
            card: None,
        };
        let card = model_card(&manifest, &out_name, base_license(self.ckpt).as_deref());
        manifest.card = Some(write_recorded(temp, CARD_FILE, card.as_bytes(), report)?);
        let manifest_ref = write_recorded(temp, MANIFEST_FILE, &to_bytes(&manifest), report)?;
        let signature = match &self.options.sign_key_pem {
            Some(pem) => Some(sign_temp(temp, &out_name, pem, report, progress)?),
            None => None,
        };
        Ok((manifest_ref.sha256, manifest.base.root_digest, signature))
    }

    fn copy_evidence(&self, temp: &Path, report: &mut ApplyReport) -> Result<Option<Evidence>, ReleaseError> {
        let Some(input) = &self.options.evidence else { return Ok(None) };
        let mut files = Vec::new();
        for (relative, source) in &input.files {
            files.push(copy_recorded(source, temp, &format!("{EVIDENCE_DIR}/{relative}"), report)?);
        }
        let mut dirs: Vec<PathBuf> =
            files.iter().filter_map(|f| Path::new(&f.path).parent().map(|p| temp.join(p))).collect();
        dirs.sort();
        dirs.dedup();
        dirs.iter().try_for_each(|d| sync_dir(d))?;
        Ok(Some(Evidence {
            baseline: input.baseline.clone(),
            pruned: input.pruned.clone(),
            files,
            outcome: input.verdict.as_ref().map(|v| v.outcome),
            verdict: input.verdict.clone(),
            splits: input.splits.clone(),
            calibration: input.calibration.clone(),
        }))
    }
}

/// A model.sig copied from the base signs the base, not OUT: it must not be shipped.
fn drop_base_signature(temp: &Path, report: &mut ApplyReport) -> Result<(), ReleaseError> {
    if report.files.remove(SIGNATURE_FILE).is_some() {
        let path = temp.join(SIGNATURE_FILE);
        std::fs::remove_file(&path).map_err(|e| ReleaseError::io(&path, e))?;
    }
    Ok(())
}

/// The base's README.md becomes README.base.md so the model card can take its place.
/// Largest base card read for its licence: 1 MiB (cards are a few KiB).
const MAX_BASE_CARD_BYTES: u64 = 1 << 20;

/// The licence the base states: its card's front matter `license`, else config.json's.
fn base_license(ckpt: &Checkpoint) -> Option<String> {
    let card = crate::checkpoint::resolve_inside(ckpt.dir(), CARD_FILE)
        .ok()
        .filter(|path| path.is_file())
        .and_then(|path| read_capped_text(&path, MAX_BASE_CARD_BYTES, Links::Follow).ok());
    card.as_deref()
        .and_then(card_license)
        .or_else(|| ckpt.config().get("license").and_then(|v| v.as_str()).and_then(license_id))
}

fn keep_base_card(temp: &Path, report: &mut ApplyReport) -> Result<(), ReleaseError> {
    if let Some(digest) = report.files.remove(CARD_FILE) {
        let (from, to) = (temp.join(CARD_FILE), temp.join(BASE_CARD_FILE));
        std::fs::rename(&from, &to).map_err(|e| ReleaseError::io(&to, e))?;
        report.files.insert(BASE_CARD_FILE.to_string(), digest);
    }
    Ok(())
}

/// Writes `bytes` to `temp/relative` durably and records its digest in the report.
fn write_recorded(
    temp: &Path,
    relative: &str,
    bytes: &[u8],
    report: &mut ApplyReport,
) -> Result<FileRef, ReleaseError> {
    let path = temp.join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| ReleaseError::io(parent, e))?;
    }
    write_durably(&path, bytes).map_err(|e| ReleaseError::io(&path, e))?;
    let digest = FileDigest { sha256: Sha256::digest(bytes).into(), size: bytes.len() as u64 };
    let reference = FileRef { path: relative.to_string(), sha256: hex::encode(digest.sha256) };
    report.files.insert(relative.to_string(), digest);
    Ok(reference)
}

/// Creates `path` (inside the unpublished temporary directory, so no rename is needed) with
/// the usual permissions and fsyncs it.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Copies a small file (bitmask, evidence) into the release, hashing the bytes it writes.
fn copy_recorded(
    source: &Path,
    temp: &Path,
    relative: &str,
    report: &mut ApplyReport,
) -> Result<FileRef, ReleaseError> {
    let mut bytes = Vec::new();
    crate::fsutil::open_regular(source, crate::fsutil::Links::Follow)
        .and_then(|mut file| std::io::Read::read_to_end(&mut file, &mut bytes))
        .map_err(|e| ReleaseError::io(source, e))?;
    write_recorded(temp, relative, &bytes, report)
}

/// Signs the temporary directory under OUT's final name, reusing every recorded digest.
fn sign_temp(
    temp: &Path,
    out_name: &str,
    pem: &str,
    report: &mut ApplyReport,
    progress: &dyn Progress,
) -> Result<SignOutcome, ReleaseError> {
    let outcome = sign_directory_as(temp, out_name, pem, Some(&report.files), progress)?;
    let bytes = std::fs::read(&outcome.signature).map_err(|e| ReleaseError::io(&outcome.signature, e))?;
    let signature = FileDigest { sha256: Sha256::digest(&bytes).into(), size: bytes.len() as u64 };
    report.files.insert(SIGNATURE_FILE.to_string(), signature);
    Ok(outcome)
}
