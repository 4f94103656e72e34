//! File checks: each signed file's sha256, unsigned extra files, missing files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::names::{FILES_LISTING, FILE_SHA256, IGNORED_FILES, MISSING_FILES, UNSIGNED_FILES};
use super::signature::decode_digest;
use super::Check;
use crate::fsutil::digest::{hash_files, is_ignored, list_files, FileDigest, ListedFile};
use crate::fsutil::Links;
use crate::manifest::{Manifest, MANIFEST_FILE};
use crate::progress::Progress;
use crate::sign::{Statement, SIGNATURE_FILE};

/// How many ignored files `files.ignored` names before it only counts the rest.
const IGNORED_NAMED: usize = 10;

/// Lists `dir`, hashes the files the statement lists and appends one check per problem file
/// (or one passing check per kind when all is well); files under the statement's ignored
/// paths are reported by `files.ignored` when present.
pub(super) fn check_files(dir: &Path, statement: &Statement, progress: &dyn Progress, checks: &mut Vec<Check>) {
    let ignore = &statement.predicate.serialization.ignore_paths;
    let (ignored, listed): (Vec<ListedFile>, Vec<ListedFile>) = match list_files(dir, &[SIGNATURE_FILE.to_string()]) {
        Ok(all) => all.into_iter().partition(|f| is_ignored(&f.path, ignore)),
        Err(err) => {
            checks.push(Check::fail(FILES_LISTING, err.to_string()));
            return;
        }
    };
    let expected: BTreeMap<&str, &str> =
        statement.predicate.resources.iter().map(|r| (r.name.as_str(), r.digest.as_str())).collect();
    let (ignored, listed): (Vec<ListedFile>, Vec<ListedFile>) = {
        let (signed, unsigned): (Vec<ListedFile>, Vec<ListedFile>) =
            ignored.into_iter().partition(|f| expected.contains_key(f.path.as_str()));
        (unsigned, listed.into_iter().chain(signed).collect())
    };
    let on_disk: BTreeSet<&str> = listed.iter().map(|f| f.path.as_str()).collect();
    check_unsigned(&listed, &expected, checks);
    check_missing(&expected, &on_disk, checks);
    let signed: Vec<ListedFile> = listed.iter().filter(|f| expected.contains_key(f.path.as_str())).cloned().collect();
    match hash_files(dir, &signed, Links::Refuse, progress) {
        Ok(actual) => check_digests(&actual, &expected, checks),
        Err(err) => checks.push(Check::fail(FILE_SHA256, err.to_string())),
    }
    report_ignored(&ignored, checks);
}

/// Names the present files that no signature covers because the statement ignores them.
fn report_ignored(ignored: &[ListedFile], checks: &mut Vec<Check>) {
    if ignored.is_empty() {
        return;
    }
    let mut names: Vec<&str> = ignored.iter().take(IGNORED_NAMED).map(|f| f.path.as_str()).collect();
    let more = ignored.len().saturating_sub(IGNORED_NAMED);
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    names.sort();
    checks.push(Check::pass(
        IGNORED_FILES,
        format!(
            "{} files are present but not signed (the statement ignores their paths): {}{more}; verify --base \
             fails on any of them the base does not hold with the same bytes",
            ignored.len(),
            names.join(", ")
        ),
    ));
}

/// Every file the manifest names (itself, the shards of its pruned tensors, the bitmask, the
/// card, the evidence) must be a signed resource, whatever the statement's ignore list says:
/// the manifest checks read these files and are only as good as their signature.
pub(super) fn check_manifest_files_signed(manifest: &Manifest, statement: &Statement, checks: &mut Vec<Check>) {
    let signed: BTreeSet<&str> = statement.predicate.resources.iter().map(|r| r.name.as_str()).collect();
    let mut named: BTreeSet<&str> = BTreeSet::from([MANIFEST_FILE]);
    named.extend(manifest.pruned.tensors.values().map(|t| t.file.as_str()));
    named.extend(manifest.card.iter().chain(&manifest.pruned.bitmask_file).map(|f| f.path.as_str()));
    named.extend(manifest.evidence.iter().flat_map(|e| &e.files).map(|f| f.path.as_str()));
    for name in named.into_iter().filter(|n| !signed.contains(n)) {
        checks.push(
            Check::fail(
                UNSIGNED_FILES,
                format!(
                    "{name} is named by {MANIFEST_FILE} but is not a signed resource (the statement's ignore \
                     list cannot exempt it)"
                ),
            )
            .with_file(name),
        );
    }
}

fn check_unsigned(listed: &[ListedFile], expected: &BTreeMap<&str, &str>, checks: &mut Vec<Check>) {
    let before = checks.len();
    for file in listed.iter().filter(|f| !expected.contains_key(f.path.as_str())) {
        checks.push(
            Check::fail(
                UNSIGNED_FILES,
                format!("{} ({} bytes) is in the directory but not in the signature", file.path, file.size),
            )
            .with_file(&file.path),
        );
    }
    if checks.len() == before {
        checks.push(Check::pass(UNSIGNED_FILES, "every file in the directory is signed"));
    }
}

fn check_missing(expected: &BTreeMap<&str, &str>, on_disk: &BTreeSet<&str>, checks: &mut Vec<Check>) {
    let before = checks.len();
    for name in expected.keys().filter(|name| !on_disk.contains(*name)) {
        checks.push(
            Check::fail(MISSING_FILES, format!("{name} is signed but missing from the directory")).with_file(*name),
        );
    }
    if checks.len() == before {
        checks.push(Check::pass(MISSING_FILES, format!("all {} signed files are present", expected.len())));
    }
}

fn check_digests(actual: &BTreeMap<String, FileDigest>, expected: &BTreeMap<&str, &str>, checks: &mut Vec<Check>) {
    let before = checks.len();
    for (name, digest) in actual {
        let claimed = expected[name.as_str()];
        if decode_digest(claimed) != Some(digest.sha256) {
            checks.push(
                Check::fail(
                    FILE_SHA256,
                    format!("{name}: sha256 is {}, the signature says {claimed}", hex::encode(digest.sha256)),
                )
                .with_file(name),
            );
        }
    }
    if checks.len() == before {
        let bytes: u64 = actual.values().map(|d| d.size).sum();
        checks.push(Check::pass(
            FILE_SHA256,
            format!("{} files ({bytes} bytes) match their signed sha256", actual.len()),
        ));
    }
}
