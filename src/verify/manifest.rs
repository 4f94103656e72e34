//! Manifest checks: the manifest parses and fits its JSON Schema, the bitmask file matches
//! it, every entry it declares pruned is zero in the checkpoint, and the card and evidence
//! files have the digests it records.

use memmap2::Mmap;
use safetensors::Dtype;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::names::{MANIFEST_BITMASK, MANIFEST_CARD, MANIFEST_EVIDENCE, MANIFEST_PARSE, MANIFEST_PRUNED_ZERO};
use super::Check;
use crate::checkpoint::Checkpoint;
use crate::manifest::{from_bytes, FileRef, Manifest, EVIDENCE_DIR, MANIFEST_FILE};
use crate::mask::{BitMask, BitmaskFile, BitmaskFileError, BitmaskTensorError, TensorZeroing};

const SCHEMA: &str = include_str!("../../manifests/schema/biasprune-manifest.schema.json");

/// A manifest that parsed, with the zeroing it declares per tensor (rows, columns and the
/// bitmask entries read from its bitmask file).
pub(super) struct Declared {
    /// The manifest.
    pub manifest: Manifest,
    /// Per tensor name, what the manifest says is zero.
    pub tensors: BTreeMap<String, TensorZeroing>,
}

/// Runs the manifest checks on `dir`. Without a manifest file nothing is checked unless
/// `required` (then manifest.parse fails); returns the declaration when the manifest parsed.
pub(super) fn check_manifest(dir: &Path, required: bool, checks: &mut Vec<Check>) -> Option<Declared> {
    let path = dir.join(MANIFEST_FILE);
    if !path.exists() && !required {
        return None;
    }
    let manifest = match parse(&path) {
        Ok(manifest) => manifest,
        Err(reason) => {
            checks.push(Check::fail(MANIFEST_PARSE, reason).with_file(MANIFEST_FILE));
            return None;
        }
    };
    checks.push(Check::pass(
        MANIFEST_PARSE,
        format!(
            "format version {}, fits the schema; {} entries declared pruned",
            manifest.format_version, manifest.pruned.total
        ),
    ));
    let ckpt = Checkpoint::open(dir).map_err(|e| format!("the checkpoint does not open: {e}"));
    let bitmasks = check_bitmask(dir, &manifest, ckpt.as_ref().ok(), checks);
    let tensors = check_pruned_zero(&ckpt, &manifest, &bitmasks, checks);
    check_card(dir, &manifest, checks);
    check_evidence(dir, &manifest, checks);
    Some(Declared { manifest, tensors })
}

fn parse(path: &Path) -> Result<Manifest, String> {
    let bytes = crate::fsutil::read_capped(path, crate::fsutil::MAX_JSON_BYTES, crate::fsutil::Links::Refuse)
        .map_err(|e| format!("{MANIFEST_FILE}: {e}"))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{MANIFEST_FILE} is not JSON: {e}"))?;
    let schema: serde_json::Value = serde_json::from_str(SCHEMA).expect("the shipped schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the shipped schema compiles");
    let errors: Vec<String> = validator.iter_errors(&value).map(|e| format!("{e} at {}", e.instance_path())).collect();
    if !errors.is_empty() {
        return Err(format!("{MANIFEST_FILE} does not fit the manifest schema: {}", errors.join("; ")));
    }
    from_bytes(&bytes).map_err(|e| format!("{MANIFEST_FILE}: {e}"))
}

/// sha256 of a file the manifest names, refusing paths that leave `dir`.
fn sha256_hex(dir: &Path, relative: &str) -> Result<String, String> {
    let path = crate::checkpoint::resolve_inside(dir, relative).map_err(|e| e.to_string())?;
    let digest = crate::fsutil::digest::sha256_file(&path, crate::fsutil::Links::Refuse).map_err(|e| e.to_string())?;
    Ok(hex::encode(digest.sha256))
}

/// The bitmask file's sha256 and per-tensor counts against the manifest.
fn check_bitmask(
    dir: &Path,
    manifest: &Manifest,
    ckpt: Option<&Checkpoint>,
    checks: &mut Vec<Check>,
) -> BTreeMap<String, BitMask> {
    let with_entries: BTreeMap<&String, u64> = manifest
        .pruned
        .tensors
        .iter()
        .filter(|(_, t)| t.bitmask_entries > 0)
        .map(|(n, t)| (n, t.bitmask_entries))
        .collect();
    let Some(file) = &manifest.pruned.bitmask_file else {
        match with_entries.keys().next() {
            Some(name) => checks.push(
                Check::fail(
                    MANIFEST_BITMASK,
                    format!("tensor {name} declares bitmask entries but no bitmask_file is given"),
                )
                .with_file(MANIFEST_FILE),
            ),
            None => checks.push(Check::pass(MANIFEST_BITMASK, "no weight-level entries declared, no bitmask file")),
        }
        return BTreeMap::new();
    };
    match read_bitmasks(dir, file, ckpt, &with_entries) {
        Ok(bitmasks) => {
            let total: u64 = bitmasks.values().map(BitMask::count).sum();
            checks.push(Check::pass(
                MANIFEST_BITMASK,
                format!("{} sha256 matches; {} tensors, {total} entries as declared", file.path, bitmasks.len()),
            ));
            bitmasks
        }
        Err(reason) => {
            checks.push(Check::fail(MANIFEST_BITMASK, reason).with_file(&file.path));
            BTreeMap::new()
        }
    }
}

fn read_bitmasks(
    dir: &Path,
    file: &FileRef,
    ckpt: Option<&Checkpoint>,
    with_entries: &BTreeMap<&String, u64>,
) -> Result<BTreeMap<String, BitMask>, String> {
    let opened = BitmaskFile::open(dir, &file.path, &file.sha256).map_err(|e| match e {
        BitmaskFileError::Path(e) => e.to_string(),
        BitmaskFileError::Io { source, .. } => format!("{}: {source}", file.path),
        BitmaskFileError::DigestMismatch { expected, found, .. } => {
            format!("{}: sha256 is {found}, the manifest says {expected}", file.path)
        }
        BitmaskFileError::Unreadable { reason, .. } => format!("{}: {reason}", file.path),
    })?;
    let mut out = BTreeMap::new();
    for name in opened.names() {
        let Some(&declared) = with_entries.get(&name.to_string()) else {
            return Err(format!("{} holds a bitmask for {name}, which the manifest does not declare", file.path));
        };
        let shape = opened.shape(name).unwrap_or_default();
        let [rows, packed] = <[usize; 2]>::try_from(shape).map_err(|_| format!("{name}: bitmask is not 2-D"))?;
        let cols = ckpt.and_then(|c| c.tensor(name).ok()).and_then(|t| t.shape.get(1).copied()).unwrap_or(packed * 8);
        let bits = opened.bitmask(name, rows, cols).map_err(|e| match e {
            BitmaskTensorError::Shape { dtype, shape, .. } => {
                format!("{name}: expected a U8 [{rows}, {}] bitmask, found {dtype:?} {shape:?}", cols.div_ceil(8))
            }
            BitmaskTensorError::Bits { source, .. } => format!("{name}: {source}"),
            absent @ BitmaskTensorError::Absent { .. } => absent.to_string(),
        })?;
        let count = bits.count();
        bits.release_pages();
        if count != declared {
            return Err(format!("{name}: the manifest declares {declared} bitmask entries, the file sets {count}"));
        }
        out.insert(name.to_string(), bits);
    }
    if let Some(missing) = with_entries.keys().find(|n| !out.contains_key(n.as_str())) {
        return Err(format!("{missing}: the manifest declares bitmask entries that {} does not hold", file.path));
    }
    Ok(out)
}

/// Every declared row, column and bitmask entry is zero in the checkpoint, the tensor lives
/// in the declared file, and the declared counts add up.
fn check_pruned_zero(
    ckpt: &Result<Checkpoint, String>,
    manifest: &Manifest,
    bitmasks: &BTreeMap<String, BitMask>,
    checks: &mut Vec<Check>,
) -> BTreeMap<String, TensorZeroing> {
    let before = checks.len();
    let ckpt = match ckpt {
        Ok(ckpt) => ckpt,
        Err(reason) => {
            checks.push(Check::fail(MANIFEST_PRUNED_ZERO, reason.clone()));
            return BTreeMap::new();
        }
    };
    let mut declared = BTreeMap::new();
    let mut fail = |file: &str, reason: String| checks.push(Check::fail(MANIFEST_PRUNED_ZERO, reason).with_file(file));
    let sum: u64 = manifest.pruned.tensors.values().map(|t| t.zeroed).sum();
    if sum != manifest.pruned.total {
        fail(
            MANIFEST_FILE,
            format!("per-tensor zeroed counts add up to {sum}, pruned.total says {}", manifest.pruned.total),
        );
    }
    for (name, entry) in &manifest.pruned.tensors {
        let tensor = match ckpt.tensor(name) {
            Ok(t) => t,
            Err(_) => {
                fail(&entry.file, format!("tensor {name} is declared pruned but the checkpoint does not hold it"));
                continue;
            }
        };
        if tensor.shard != entry.file {
            fail(&entry.file, format!("tensor {name} is declared in {} but lives in {}", entry.file, tensor.shard));
        }
        let zeroing = match zeroing_of(name, entry, tensor.shape, tensor.dtype, bitmasks) {
            Ok(z) => z,
            Err(reason) => {
                fail(&entry.file, reason);
                continue;
            }
        };
        let map = ckpt.shards().iter().find(|s| s.file_name() == tensor.shard).map(|s| s.mmap());
        let counted = count_declared(&zeroing, tensor.data, tensor.dtype, map);
        zeroing.release_pages();
        let count = counted.declared;
        if count != entry.zeroed {
            fail(
                &entry.file,
                format!(
                    "tensor {name}: rows, columns and bitmask cover {count} entries, the manifest says {}",
                    entry.zeroed
                ),
            );
        }
        if let Some((row, col)) = counted.first_non_zero {
            let n = counted.non_zero;
            fail(
                &entry.file,
                format!("tensor {name}: {n} entries declared pruned are not zero (first at row {row}, column {col})"),
            );
        }
        declared.insert(name.clone(), zeroing);
    }
    if checks.len() == before {
        checks.push(Check::pass(
            MANIFEST_PRUNED_ZERO,
            format!("all {} declared entries in {} tensors are zero", manifest.pruned.total, declared.len()),
        ));
    }
    declared
}

fn zeroing_of(
    name: &str,
    entry: &crate::manifest::PrunedTensor,
    shape: &[usize],
    dtype: Dtype,
    bitmasks: &BTreeMap<String, BitMask>,
) -> Result<TensorZeroing, String> {
    if element_bytes(dtype).is_none() {
        return Err(format!(
            "tensor {name}: expected a dtype of whole bytes per element (BF16, F16, F32), found {dtype:?} with {} \
             bits per element; sub-byte tensors cannot be declared pruned",
            dtype.bitsize()
        ));
    }
    let [rows, cols] = <[usize; 2]>::try_from(shape).map_err(|_| format!("tensor {name} is not 2-D: {shape:?}"))?;
    if let Some(&row) = entry.rows.iter().find(|&&r| r >= rows) {
        return Err(format!("tensor {name}: declared row {row} is out of range ({rows} rows)"));
    }
    if let Some(&col) = entry.columns.iter().find(|&&c| c >= cols) {
        return Err(format!("tensor {name}: declared column {col} is out of range ({cols} columns)"));
    }
    let entries = bitmasks.get(name).cloned();
    if let Some(bits) = &entries {
        if [bits.rows(), bits.cols()] != [rows, cols] {
            return Err(format!("tensor {name}: bitmask is {}x{}, the tensor {rows}x{cols}", bits.rows(), bits.cols()));
        }
    }
    Ok(TensorZeroing {
        rows,
        cols,
        zero_rows: entry.rows.iter().copied().collect(),
        zero_cols: entry.columns.iter().copied().collect(),
        entries,
    })
}

/// The declared entries of one tensor and those of them that are not zero.
struct DeclaredCount {
    declared: u64,
    non_zero: u64,
    first_non_zero: Option<(usize, usize)>,
}

/// Bytes per element, or None for dtypes of fewer than 8 bits or a bit count that is not a
/// multiple of 8 (F4, F6_E2M3, F6_E3M2, ...), whose elements do not each own whole bytes.
pub(super) fn element_bytes(dtype: Dtype) -> Option<usize> {
    let bits = dtype.bitsize();
    (bits >= 8 && bits % 8 == 0).then_some(bits / 8)
}

/// Rows of a tensor read between two page releases in `count_declared`: about 4 MiB.
const RELEASE_BYTES: usize = 4 << 20;

/// Counts the declared entries and those of them that are not zero (with the first one);
/// `zeroing_of` has refused sub-byte dtypes. `data` lies in `map` (the shard's map), whose
/// pages are given back every few MiB read, so the check's resident set stays small.
fn count_declared(zeroing: &TensorZeroing, data: &[u8], dtype: Dtype, map: Option<&Mmap>) -> DeclaredCount {
    let element = element_bytes(dtype).expect("zeroing_of refuses sub-byte dtypes");
    let row_bytes = zeroing.cols * element;
    let rows_per_release = (RELEASE_BYTES / row_bytes.max(1)).max(1);
    let mut flags = vec![false; zeroing.cols];
    let mut out = DeclaredCount { declared: 0, non_zero: 0, first_non_zero: None };
    for row in 0..zeroing.rows {
        if let Some(map) = map.filter(|_| row > 0 && row % rows_per_release == 0) {
            crate::fsutil::release_slice_pages(map, &data[(row - rows_per_release) * row_bytes..row * row_bytes]);
        }
        if zeroing.row_flags(row, &mut flags) == 0 {
            continue;
        }
        let bytes = &data[row * row_bytes..(row + 1) * row_bytes];
        for (col, value) in bytes.chunks_exact(element).enumerate().filter(|(c, _)| flags[*c]) {
            out.declared += 1;
            if !is_zero(dtype, value) {
                out.non_zero += 1;
                out.first_non_zero.get_or_insert((row, col));
            }
        }
    }
    if let Some(map) = map {
        crate::fsutil::release_slice_pages(map, data);
    }
    out
}

/// Whether one little-endian element is zero: +0 or -0 for floats, all bits clear otherwise.
pub(super) fn is_zero(dtype: Dtype, value: &[u8]) -> bool {
    let Some((last, rest)) = value.split_last() else { return true };
    let sign_mask = if matches!(dtype, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64) { 0x7f } else { 0xff };
    rest.iter().all(|&b| b == 0) && last & sign_mask == 0
}

fn check_card(dir: &Path, manifest: &Manifest, checks: &mut Vec<Check>) {
    let Some(card) = &manifest.card else {
        checks.push(Check::pass(MANIFEST_CARD, "the manifest records no model card"));
        return;
    };
    checks.push(match sha256_hex(dir, &card.path) {
        Ok(found) if found == card.sha256 => {
            Check::pass(MANIFEST_CARD, format!("{} sha256 matches the manifest", card.path))
        }
        Ok(found) => {
            Check::fail(MANIFEST_CARD, format!("{}: sha256 is {found}, the manifest says {}", card.path, card.sha256))
                .with_file(&card.path)
        }
        Err(e) => Check::fail(MANIFEST_CARD, format!("{}: {e}", card.path)).with_file(&card.path),
    });
}

fn check_evidence(dir: &Path, manifest: &Manifest, checks: &mut Vec<Check>) {
    let before = checks.len();
    let listed: Vec<&FileRef> = manifest.evidence.iter().flat_map(|e| &e.files).collect();
    for file in &listed {
        match sha256_hex(dir, &file.path) {
            Ok(found) if found == file.sha256 => {}
            Ok(found) => checks.push(
                Check::fail(
                    MANIFEST_EVIDENCE,
                    format!("{}: sha256 is {found}, the manifest says {}", file.path, file.sha256),
                )
                .with_file(&file.path),
            ),
            Err(e) => checks.push(Check::fail(MANIFEST_EVIDENCE, format!("{}: {e}", file.path)).with_file(&file.path)),
        }
    }
    let names: BTreeSet<&str> = listed.iter().map(|f| f.path.as_str()).collect();
    if let Ok(on_disk) = crate::fsutil::digest::list_files(&dir.join(EVIDENCE_DIR), &[]) {
        for file in on_disk {
            let path = format!("{EVIDENCE_DIR}/{}", file.path);
            if !names.contains(path.as_str()) {
                checks.push(
                    Check::fail(MANIFEST_EVIDENCE, format!("{path} is in evidence/ but not listed by the manifest"))
                        .with_file(&path),
                );
            }
        }
    }
    if checks.len() == before {
        checks.push(Check::pass(MANIFEST_EVIDENCE, format!("{} evidence files match the manifest", listed.len())));
    }
}
