//! File checks: each signed file's sha256, unsigned extra files, missing files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::names::{FILES_LISTING, FILE_SHA256, MISSING_FILES, UNSIGNED_FILES};
use super::signature::decode_digest;
use super::Check;
use crate::progress::Progress;
use crate::sign::{hash_files, list_files, ListedFile, Statement, SIGNATURE_FILE};

/// Lists `dir` with the statement's ignored paths, hashes the files the statement lists and
/// appends one check per problem file (or one passing check per kind when all is well).
pub(super) fn check_files(dir: &Path, statement: &Statement, progress: &dyn Progress, checks: &mut Vec<Check>) {
    let mut ignore = statement.predicate.serialization.ignore_paths.clone();
    ignore.push(SIGNATURE_FILE.to_string());
    let listed = match list_files(dir, &ignore) {
        Ok(listed) => listed,
        Err(err) => {
            checks.push(Check::fail(FILES_LISTING, err.to_string()));
            return;
        }
    };
    let expected: BTreeMap<&str, &str> =
        statement.predicate.resources.iter().map(|r| (r.name.as_str(), r.digest.as_str())).collect();
    let on_disk: BTreeSet<&str> = listed.iter().map(|f| f.path.as_str()).collect();
    check_unsigned(&listed, &expected, checks);
    check_missing(&expected, &on_disk, checks);
    let signed: Vec<ListedFile> = listed.iter().filter(|f| expected.contains_key(f.path.as_str())).cloned().collect();
    match hash_files(dir, &signed, progress) {
        Ok(actual) => check_digests(&actual, &expected, checks),
        Err(err) => checks.push(Check::fail(FILE_SHA256, err.to_string())),
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

fn check_digests(
    actual: &BTreeMap<String, crate::sign::FileDigest>,
    expected: &BTreeMap<&str, &str>,
    checks: &mut Vec<Check>,
) {
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
