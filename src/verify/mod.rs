//! Verification of a signed model directory, reported as a list of named checks.
//!
//! `verify_signature` runs the signature checks (bundle, key hint, DSSE signature,
//! statement, root digest) and the file checks (digests, unsigned and missing files).
//! Other checks (manifest, base comparison, reproduction of the evidence) add their own
//! `Check`s to the same `Report`.

mod agreement;
mod base;
mod files;
mod manifest;
mod reproduce;
mod signature;

use std::path::Path;

use serde::ser::SerializeStruct;
use serde::Serialize;

use crate::manifest::Outcome;
use crate::progress::Progress;
use crate::sign::{PublicKey, SignError, Statement};

pub use agreement::{Comparison, Tolerance};
pub use reproduce::{check_reproduction, ReproduceOptions};
pub use signature::{check_root_digest, parse_envelope, parse_statement, Envelope, FormatError};

/// Check names, stable for scripts reading `--json` output.
pub mod names {
    /// model.sig is a Sigstore bundle v0.3 with one DSSE signature.
    pub const BUNDLE_FORMAT: &str = "signature.bundle_format";
    /// The bundle's key hint names the given public key.
    pub const KEY_HINT: &str = "signature.key_hint";
    /// The DSSE signature over the PAE verifies with the given public key.
    pub const DSSE_SIGNATURE: &str = "signature.dsse";
    /// The payload is an in-toto statement with the model-signing predicate.
    pub const STATEMENT_SHAPE: &str = "statement.shape";
    /// The subject's root digest equals the digest of the listed resources.
    pub const ROOT_DIGEST: &str = "statement.root_digest";
    /// The directory could be listed (no symbolic links or special files).
    pub const FILES_LISTING: &str = "files.listing";
    /// Every signed file's sha256 equals the statement's.
    pub const FILE_SHA256: &str = "files.sha256";
    /// No file in the directory is missing from the statement, and every file the manifest
    /// names is a signed resource whatever the statement's ignore list says.
    pub const UNSIGNED_FILES: &str = "files.unsigned";
    /// Files under the statement's ignored paths (.git, .github, ...) that are present: no
    /// signature covers them; listed so the auditor sees them (`--base` fails on any the base
    /// does not have with the same bytes). Reported only when there are some.
    pub const IGNORED_FILES: &str = "files.ignored";
    /// No file listed by the statement is missing from the directory.
    pub const MISSING_FILES: &str = "files.missing";
    /// biasprune-manifest.json is JSON, fits the schema and has a supported format version.
    pub const MANIFEST_PARSE: &str = "manifest.parse";
    /// Every row, column and bitmask entry the manifest declares is zero, counts add up.
    pub const MANIFEST_PRUNED_ZERO: &str = "manifest.pruned_zero";
    /// The bitmask file's sha256 and per-tensor counts match the manifest.
    pub const MANIFEST_BITMASK: &str = "manifest.bitmask";
    /// The model card's sha256 matches the manifest.
    pub const MANIFEST_CARD: &str = "manifest.card";
    /// Each evidence file's sha256 matches the manifest; evidence/ holds no unlisted file.
    pub const MANIFEST_EVIDENCE: &str = "manifest.evidence";
    /// The base's per-file sha256 and root digest equal the manifest's.
    pub const BASE_IDENTITY: &str = "base.identity";
    /// Every byte not declared pruned equals the base; no file added or lost.
    pub const BASE_UNCHANGED: &str = "base.unchanged";
    /// No entry is zero here, non-zero in the base and undeclared.
    pub const BASE_UNDECLARED_ZEROING: &str = "base.undeclared_zeroing";
    /// No declared entry still holds the base's non-zero value.
    pub const BASE_OVERDECLARED: &str = "base.overdeclared";
    /// evidence/pruned (and with --base evidence/baseline) holds an evaluation's run.json
    /// and summary.json, and the baseline records that fenced it, with the recorded sha256.
    pub const REPRODUCE_EVIDENCE: &str = "reproduce.evidence";
    /// The recorded scenario exists here with the recorded definition sha256.
    pub const REPRODUCE_SCENARIO: &str = "reproduce.scenario";
    /// Re-running the pruned evaluation on DIR gives the recorded SMD and inlier ratios.
    pub const REPRODUCE_PRUNED: &str = "reproduce.pruned";
    /// Re-running the baseline evaluation on BASE gives the recorded SMD and inlier ratios.
    pub const REPRODUCE_BASELINE: &str = "reproduce.baseline";
}

/// One named verification check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable dotted name, e.g. `signature.dsse` (see `names`).
    pub name: String,
    /// Whether the check passed.
    pub passed: bool,
    /// What was found: the evidence on success, the reason on failure.
    pub detail: String,
    /// The file the check concerns, when it concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl Check {
    /// A passed check.
    pub fn pass(name: &str, detail: impl Into<String>) -> Self {
        Check { name: name.to_string(), passed: true, detail: detail.into(), file: None }
    }

    /// A failed check.
    pub fn fail(name: &str, detail: impl Into<String>) -> Self {
        Check { name: name.to_string(), passed: false, detail: detail.into(), file: None }
    }

    /// The same check, about `file`.
    pub fn with_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }
}

/// All checks of one verification; serialises as `{"passed": bool, "outcome": ...,
/// "released_anyway": bool, "checks": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Checks in the order they ran.
    pub checks: Vec<Check>,
    /// The evidence outcome the manifest states (`evidence.outcome`, format version 2), so
    /// an auditor sees whether the release claims a reduction at all.
    pub outcome: Option<Outcome>,
    /// Whether the manifest says the release was written although its outcome is not
    /// `reduced`.
    pub released_anyway: bool,
}

impl Report {
    /// True when there is at least one check and every check passed.
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Report", 4)?;
        s.serialize_field("passed", &self.passed())?;
        s.serialize_field("outcome", &self.outcome)?;
        s.serialize_field("released_anyway", &self.released_anyway)?;
        s.serialize_field("checks", &self.checks)?;
        s.end()
    }
}

/// Verifies `dir/model.sig` against the files of `dir` with a PEM public key. Failures of
/// the signature or files come back as failed checks; `Err` means unusable input (a
/// public key that cannot be parsed, a path that is not a directory).
pub fn verify_signature(dir: &Path, public_key_pem: &str, progress: &dyn Progress) -> Result<Vec<Check>, SignError> {
    signed_statement(dir, public_key_pem, progress).map(|(checks, _)| checks)
}

/// `verify_signature`, also returning the statement when it is authentic and well formed.
fn signed_statement(
    dir: &Path,
    public_key_pem: &str,
    progress: &dyn Progress,
) -> Result<(Vec<Check>, Option<Statement>), SignError> {
    let key = PublicKey::from_pem(public_key_pem)?;
    if !dir.is_dir() {
        return Err(SignError::NotADirectory { path: dir.to_path_buf() });
    }
    let mut checks = Vec::new();
    let Some(statement) = signature::check_signature(dir, &key, &mut checks) else {
        return Ok((checks, None));
    };
    files::check_files(dir, &statement, progress, &mut checks);
    Ok((checks, Some(statement)))
}

/// The auditor's verification: the signature and file checks, then the manifest checks
/// when DIR holds a manifest (required with `base`), then the base checks against `base`.
/// `Err` means unusable input (bad public key, DIR or BASE not a directory).
pub fn verify_directory(
    dir: &Path,
    public_key_pem: &str,
    base: Option<&Path>,
    progress: &dyn Progress,
) -> Result<Report, SignError> {
    if let Some(base) = base.filter(|b| !b.is_dir()) {
        return Err(SignError::NotADirectory { path: base.to_path_buf() });
    }
    // The manifest checks read only the declared entries and the bitmask: they run while
    // the signature checks hash every file, and their checks are reported after those.
    let (signature, (declared, manifest_checks)) = std::thread::scope(|scope| {
        let manifest_job = scope.spawn(|| {
            let mut checks = Vec::new();
            (manifest::check_manifest(dir, base.is_some(), &mut checks), checks)
        });
        let signature = signed_statement(dir, public_key_pem, progress);
        (signature, manifest_job.join().expect("manifest checks do not panic"))
    });
    let (mut checks, statement) = signature?;
    checks.extend(manifest_checks);
    if let (Some(declared), Some(statement)) = (&declared, &statement) {
        files::check_manifest_files_signed(&declared.manifest, statement, &mut checks);
    }
    let evidence = declared.as_ref().and_then(|d| d.manifest.evidence.as_ref());
    let outcome = evidence.and_then(|e| e.outcome);
    let released_anyway = evidence.and_then(|e| e.verdict.as_ref()).is_some_and(|v| v.released_anyway);
    if let Some(declared) = &declared {
        if let Some(base) = base {
            base::check_base(dir, base, declared, progress, &mut checks);
        }
    }
    Ok(Report { checks, outcome, released_anyway })
}

/// Adds the reproduction checks to `report` only when every check in it passed: reproducing
/// loads and runs the release's model, tokenizer and chat template, which are trusted only
/// once the signature, file, manifest and base checks have vouched for them. Otherwise one
/// failed `reproduce.evidence` check says why nothing was run.
pub fn reproduce_if_verified(
    report: &mut Report,
    dir: &Path,
    base: Option<&Path>,
    options: &ReproduceOptions,
    progress: &dyn Progress,
) {
    let failed = report.failures().count();
    if failed == 0 {
        report.checks.extend(check_reproduction(dir, base, options, progress));
    } else {
        report.checks.push(Check::fail(
            names::REPRODUCE_EVIDENCE,
            format!(
                "not run: {failed} earlier checks failed, and the release's model, tokenizer and chat template \
                 are loaded only after every signature and file check passed"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_passes_only_when_non_empty_and_all_checks_pass() {
        let mut report = Report::default();
        assert!(!report.passed(), "an empty report proves nothing");
        report.checks.push(Check::pass(names::KEY_HINT, "ok"));
        assert!(report.passed());
        report.checks.push(Check::fail(names::FILE_SHA256, "differs").with_file("a.bin"));
        assert!(!report.passed());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["passed"], false);
        assert_eq!(json["checks"][1]["file"], "a.bin");
        assert!(json["checks"][0].get("file").is_none());
    }
}
