//! Base checks (`verify --base`): the base is the one the manifest names, and every byte of
//! the output that the manifest does not declare pruned equals the base.
//!
//! Each element of a shard is classified against the base: declared and zero (fine, also
//! when the base was already zero), declared but still holding the base's non-zero value
//! (`base.overdeclared`: the manifest claims pruning that did not happen), not declared but
//! zeroed (`base.undeclared_zeroing`), and any other difference, in tensor bytes, headers or
//! other files (`base.unchanged`). Shards are compared from their memory maps, one worker
//! per core, in blocks of whole rows whose pages are given back once compared, so the
//! resident set stays small whatever the checkpoint's size.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use safetensors::Dtype;

use super::manifest::{is_zero, Declared};
use super::names::{BASE_IDENTITY, BASE_OVERDECLARED, BASE_UNCHANGED, BASE_UNDECLARED_ZEROING};
use super::Check;
use crate::checkpoint::{Checkpoint, Shard, TensorInfo};
use crate::fsutil::digest::{ignore_paths, is_ignored, list_files, sha256_file};
use crate::fsutil::release_pages;
use crate::fsutil::Links;
use crate::manifest::{BASE_CARD_FILE, MANIFEST_FILE, REPORT_FILE};
use crate::mask::TensorZeroing;
use crate::progress::{Progress, Unit};
use crate::sign::{digest_checkpoint, root_digest, SIGNATURE_FILE};

/// Runs the base checks of `dir` against `base`, appending one check per finding.
pub(super) fn check_base(
    dir: &Path,
    base: &Path,
    declared: &Declared,
    progress: &dyn Progress,
    checks: &mut Vec<Check>,
) {
    let base_digests = check_identity(base, declared, progress, checks);
    let (out_ckpt, base_ckpt) = match (Checkpoint::open(dir), Checkpoint::open(base)) {
        (Ok(o), Ok(b)) => (o, b),
        (Err(e), _) | (_, Err(e)) => {
            checks.push(Check::fail(BASE_UNCHANGED, format!("cannot compare checkpoints: {e}")));
            return;
        }
    };
    let mut findings = compare_shards(&out_ckpt, &base_ckpt, &declared.tensors, progress);
    if let Some(digests) = &base_digests {
        compare_other_files(base, dir, &out_ckpt, declared, digests, &mut findings.changed);
    }
    report(findings, checks);
}

/// The base's per-file sha256 and root digest against the manifest; returns the digests.
fn check_identity(
    base: &Path,
    declared: &Declared,
    progress: &dyn Progress,
    checks: &mut Vec<Check>,
) -> Option<BTreeMap<String, String>> {
    let digests = match digest_checkpoint(base, progress) {
        Ok(d) => d,
        Err(e) => {
            checks.push(Check::fail(BASE_IDENTITY, format!("cannot hash the base: {e}")));
            return None;
        }
    };
    let root = hex::encode(root_digest(digests.values().map(|d| &d.sha256)));
    let found: BTreeMap<String, String> = digests.iter().map(|(p, d)| (p.clone(), hex::encode(d.sha256))).collect();
    let recorded = &declared.manifest.base;
    let before = checks.len();
    for (path, sha) in &recorded.files {
        match found.get(path) {
            Some(f) if f == sha => {}
            Some(f) => checks.push(
                Check::fail(BASE_IDENTITY, format!("base file {path}: sha256 is {f}, the manifest says {sha}"))
                    .with_file(path),
            ),
            None => checks.push(
                Check::fail(BASE_IDENTITY, format!("base file {path} is in the manifest but not in the base"))
                    .with_file(path),
            ),
        }
    }
    for path in found.keys().filter(|p| !recorded.files.contains_key(*p)) {
        checks.push(Check::fail(BASE_IDENTITY, format!("base file {path} is not in the manifest")).with_file(path));
    }
    if root != recorded.root_digest {
        checks.push(
            Check::fail(
                BASE_IDENTITY,
                format!("base root digest is {root}, the manifest says {}", recorded.root_digest),
            )
            .with_file(MANIFEST_FILE),
        );
    }
    if checks.len() == before {
        checks.push(Check::pass(
            BASE_IDENTITY,
            format!("{} base files and root digest {root} match the manifest (base {:?})", found.len(), recorded.name),
        ));
    }
    Some(found)
}

/// Per-tensor counts of each kind of finding, keyed by (file, tensor or "").
#[derive(Default)]
struct Findings {
    changed: BTreeMap<(String, String), String>,
    undeclared: BTreeMap<(String, String), u64>,
    overdeclared: BTreeMap<(String, String), u64>,
    already_zero: u64,
    compared_bytes: u64,
}

impl Findings {
    fn merge(&mut self, other: Findings) {
        self.changed.extend(other.changed);
        self.undeclared.extend(other.undeclared);
        self.overdeclared.extend(other.overdeclared);
        self.already_zero += other.already_zero;
        self.compared_bytes += other.compared_bytes;
    }
}

fn compare_shards(
    out: &Checkpoint,
    base: &Checkpoint,
    declared: &BTreeMap<String, TensorZeroing>,
    progress: &dyn Progress,
) -> Findings {
    let mut order: Vec<&Shard> = out.shards().iter().collect();
    order.sort_by_key(|s| std::cmp::Reverse(s.bytes().len()));
    let base_shards: BTreeMap<&str, &Shard> = base.shards().iter().map(|s| (s.file_name(), s)).collect();
    progress.start("comparing with the base", order.iter().map(|s| s.bytes().len() as u64).sum(), Unit::Bytes);
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(order.len()).max(1);
    let mut all = Findings::default();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Findings::default();
                    while let Some(shard) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                        match base_shards.get(shard.file_name()) {
                            Some(b) => compare_shard(shard, b, declared, &mut mine, progress),
                            None => {
                                let key = (shard.file_name().to_string(), String::new());
                                mine.changed.insert(key, "the base has no shard of this name".into());
                            }
                        }
                    }
                    mine
                })
            })
            .collect();
        for handle in handles {
            all.merge(handle.join().expect("comparison workers do not panic"));
        }
    });
    progress.finish();
    all
}

/// Bytes of one tensor compared at a time before their pages are given back: a worker keeps
/// at most one such block of the output and one of the base resident, whatever the tensor
/// or shard size.
const BLOCK_BYTES: usize = 4 << 20;

fn compare_shard(
    out: &Shard,
    base: &Shard,
    declared: &BTreeMap<String, TensorZeroing>,
    found: &mut Findings,
    progress: &dyn Progress,
) {
    let file = out.file_name().to_string();
    let (o, b) = (out.bytes(), base.bytes());
    let header_end = out.header().data_start();
    let release = |from: usize, to: usize| {
        release_pages(out.mmap(), from, to - from);
        release_pages(base.mmap(), from, to.min(b.len()).saturating_sub(from));
    };
    if o.len() != b.len() || o[..header_end] != b[..header_end] {
        release(0, header_end.min(o.len()));
        found.changed.insert(
            (file, String::new()),
            format!("size or header differs from the base ({} vs {} bytes)", o.len(), b.len()),
        );
        return;
    }
    release(0, header_end);
    let mut covered = header_end;
    for info in out.header().tensors() {
        let (start, end) = (header_end + info.start, header_end + info.end);
        if o[covered..start] != b[covered..start] {
            found
                .changed
                .insert((file.clone(), String::new()), format!("bytes {covered}..{start} between tensors differ"));
        }
        release(covered, start);
        let key = (file.clone(), info.name.clone());
        let zeroing = declared.get(&info.name);
        let mut tally = Tally::default();
        for (from, to, first_row) in row_blocks(info, zeroing) {
            let (o_block, b_block) = (&o[start + from..start + to], &b[start + from..start + to]);
            if zeroing.is_some() || o_block != b_block {
                tally.classify(o_block, b_block, info.dtype, zeroing, first_row, row_elements(info, zeroing));
            }
            release(start + from, start + to);
        }
        if let Some(zeroing) = zeroing {
            zeroing.release_pages();
        }
        tally.report(key, found);
        covered = end;
        progress.advance(info.len() as u64);
    }
    if o[covered..] != b[covered..] {
        found.changed.insert((file, String::new()), format!("bytes after offset {covered} differ"));
    }
    release(covered, o.len());
    found.compared_bytes += o.len() as u64;
}

/// Elements per row of a tensor: the declared zeroing's columns, else the last dimension
/// (a 0-D or 1-D tensor is one row).
fn row_elements(info: &TensorInfo, zeroing: Option<&TensorZeroing>) -> usize {
    let element = (info.dtype.bitsize() / 8).max(1);
    let natural = if info.shape.len() >= 2 { info.shape.last().copied().unwrap_or(1) } else { info.len() / element };
    zeroing.map_or(natural, |z| z.cols).max(1)
}

/// The tensor's bytes in blocks of whole rows of about `BLOCK_BYTES` (at least one row):
/// (first byte, end byte, first row), relative to the tensor's data.
fn row_blocks(info: &TensorInfo, zeroing: Option<&TensorZeroing>) -> Vec<(usize, usize, usize)> {
    let element = (info.dtype.bitsize() / 8).max(1);
    let row_bytes = row_elements(info, zeroing) * element;
    let rows_per_block = (BLOCK_BYTES / row_bytes).max(1);
    let block = rows_per_block * row_bytes;
    (0..info.len().div_ceil(block).max(1))
        .map(|i| (i * block, ((i + 1) * block).min(info.len()), i * rows_per_block))
        .collect()
}

/// What the elements of one tensor compared so far amount to.
#[derive(Default)]
struct Tally {
    changed: u64,
    undeclared: u64,
    over: u64,
    already_zero: u64,
    first_changed: Option<(usize, usize)>,
}

impl Tally {
    /// Classifies every element of a block of whole rows (starting at row `first_row`) that
    /// is declared or differs from the base.
    fn classify(
        &mut self,
        out: &[u8],
        base: &[u8],
        dtype: Dtype,
        zeroing: Option<&TensorZeroing>,
        first_row: usize,
        cols: usize,
    ) {
        let element = (dtype.bitsize() / 8).max(1);
        let mut flags = vec![false; cols];
        for (i, (o_row, b_row)) in out.chunks(cols * element).zip(base.chunks(cols * element)).enumerate() {
            let row = first_row + i;
            let any_declared = zeroing.is_some_and(|z| z.row_flags(row, &mut flags) > 0);
            if !any_declared && o_row == b_row {
                continue;
            }
            for (col, (o, b)) in o_row.chunks_exact(element).zip(b_row.chunks_exact(element)).enumerate() {
                let is_declared = any_declared && flags[col];
                if !is_declared && o == b {
                    continue;
                }
                match (is_declared, is_zero(dtype, o), o == b) {
                    (true, true, true) => self.already_zero += 1,
                    (true, true, false) | (false, _, true) => {}
                    (true, false, true) => self.over += 1,
                    (false, true, false) => self.undeclared += 1,
                    (true, false, false) | (false, false, false) => {
                        self.changed += 1;
                        self.first_changed.get_or_insert((row, col));
                    }
                }
            }
        }
    }

    /// Adds the tensor's findings under `key`.
    fn report(self, key: (String, String), found: &mut Findings) {
        found.already_zero += self.already_zero;
        if let Some((row, col)) = self.first_changed {
            let reason = format!(
                "tensor {}: {} entries differ from the base and are not zero (first at row {row}, column {col})",
                key.1, self.changed
            );
            found.changed.insert(key.clone(), reason);
        }
        if self.undeclared > 0 {
            found.undeclared.insert(key.clone(), self.undeclared);
        }
        if self.over > 0 {
            found.overdeclared.insert(key, self.over);
        }
    }
}

/// Non-shard files: each base file must be in the output unchanged (README.md as
/// README.base.md when a card was written); extra files must be ones the manifest declares
/// or the release's own report.html. Files under the paths signing ignores (.git, .github,
/// .gitattributes, .gitignore) are listed too: no signature covers them, so each must equal
/// the base's file of the same path.
fn compare_other_files(
    base: &Path,
    dir: &Path,
    out: &Checkpoint,
    declared: &Declared,
    base_digests: &BTreeMap<String, String>,
    changed: &mut BTreeMap<(String, String), String>,
) {
    let shards: BTreeSet<&str> = out.shards().iter().map(|s| s.file_name()).collect();
    let manifest = &declared.manifest;
    let card = manifest.card.as_ref().map(|c| c.path.as_str());
    let rename = |path: &str| -> String {
        if Some(path) == card {
            BASE_CARD_FILE.to_string()
        } else {
            path.to_string()
        }
    };
    let mut expected: BTreeSet<String> = [MANIFEST_FILE.to_string(), REPORT_FILE.to_string()].into();
    expected.extend(manifest.card.iter().chain(&manifest.pruned.bitmask_file).map(|f| f.path.clone()));
    expected.extend(manifest.evidence.iter().flat_map(|e| &e.files).map(|f| f.path.clone()));
    for (path, sha) in base_digests.iter().filter(|(p, _)| !shards.contains(p.as_str())) {
        let target = rename(path);
        expected.insert(target.clone());
        match sha256_of(&dir.join(&target)) {
            Ok(found) if found == *sha => {}
            Ok(_) => {
                changed.insert((target, String::new()), format!("differs from the base's {path}"));
            }
            Err(e) => {
                changed.insert((target, String::new()), format!("the base's {path} is not in the output: {e}"));
            }
        }
    }
    let ignored = ignore_paths();
    let listed = match list_files(dir, &[SIGNATURE_FILE.to_string()]) {
        Ok(listed) => listed,
        Err(e) => {
            changed.insert((".".to_string(), String::new()), format!("cannot list the release: {e}"));
            return;
        }
    };
    for file in listed {
        if shards.contains(file.path.as_str()) || expected.contains(&file.path) {
            continue;
        }
        if !is_ignored(&file.path, &ignored) {
            changed.insert((file.path, String::new()), "is neither in the base nor declared by the manifest".into());
            continue;
        }
        let unsigned = "is not covered by the signature (an ignored path)";
        match (sha256_of(&dir.join(&file.path)), sha256_of(&base.join(&file.path))) {
            (Ok(found), Ok(in_base)) if found == in_base => {}
            (_, Err(_)) => {
                changed.insert((file.path, String::new()), format!("{unsigned} and the base has no such file"));
            }
            _ => {
                changed.insert((file.path, String::new()), format!("{unsigned} and differs from the base's"));
            }
        }
    }
}

/// Hex sha256 of a release file, which must be a regular file and not a link.
fn sha256_of(path: &Path) -> std::io::Result<String> {
    sha256_file(path, Links::Refuse).map(|d| hex::encode(d.sha256))
}

fn report(findings: Findings, checks: &mut Vec<Check>) {
    let file_of = |(file, _): &(String, String)| file.clone();
    if findings.changed.is_empty() {
        checks.push(Check::pass(
            BASE_UNCHANGED,
            format!(
                "{} shard bytes and every other file equal the base outside the declared entries",
                findings.compared_bytes
            ),
        ));
    }
    for (key, reason) in &findings.changed {
        checks.push(Check::fail(BASE_UNCHANGED, format!("{}: {reason}", key.0)).with_file(file_of(key)));
    }
    if findings.undeclared.is_empty() {
        checks.push(Check::pass(BASE_UNDECLARED_ZEROING, "no entry is zeroed that the manifest does not declare"));
    }
    for (key, n) in &findings.undeclared {
        let reason = format!(
            "tensor {}: {n} entries are zero here but not in the base, and the manifest does not declare them",
            key.1
        );
        checks.push(Check::fail(BASE_UNDECLARED_ZEROING, reason).with_file(file_of(key)));
    }
    if findings.overdeclared.is_empty() {
        checks.push(Check::pass(
            BASE_OVERDECLARED,
            format!("every declared entry is zero ({} of them were already zero in the base)", findings.already_zero),
        ));
    }
    for (key, n) in &findings.overdeclared {
        let reason =
            format!("tensor {}: {n} entries the manifest declares pruned still hold the base's non-zero values", key.1);
        checks.push(Check::fail(BASE_OVERDECLARED, reason).with_file(file_of(key)));
    }
}
