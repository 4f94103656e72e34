//! Surgery: write a copy of a checkpoint with the plan's entries zeroed, byte-exact elsewhere.
//!
//! Shard headers are copied verbatim (names and offsets stay identical), tensor bytes stream
//! from the memory map, every output file is hashed while it is written, and the output
//! directory appears atomically.

mod direct;
mod output;
mod stream;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::arch::{ArchError, Architecture};
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::fsutil::digest::FileDigest;
use crate::mask::{resolve, PlanError, PruneMask, ZeroPlan};
use crate::progress::{Progress, Unit};

pub use direct::{AlignedBuffer, OutputFile, DIRECT_ALIGN};
pub use output::{prepare_output, publish, sync_dir, OutputTarget};
pub use stream::{copy_file, write_shard, CHUNK_BYTES};

/// Surgery could not run or could not finish.
#[derive(Debug, thiserror::Error)]
pub enum SurgeryError {
    /// The input checkpoint is unusable.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The input's config or tensors do not fit a supported architecture.
    #[error(transparent)]
    Arch(#[from] ArchError),
    /// The mask does not fit the checkpoint.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// An operating-system error on a path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Writing from an input shard's map failed with EFAULT: the shard was truncated (or
    /// replaced) by another process after its size was checked.
    #[error(
        "{}: the input shard was truncated or replaced while it was being read (its mapped pages \
         past the new end cannot be read); nothing was published",
        path.display()
    )]
    InputTruncated {
        /// The input shard.
        path: PathBuf,
    },
    /// OUT exists and `--force` was not given.
    #[error("{}: output already exists (pass --force to replace it atomically)", out.display())]
    OutputExists {
        /// The output directory.
        out: PathBuf,
    },
    /// OUT exists but is not a directory (a file, or a symbolic link), so `--force` would
    /// replace something apply did not write.
    #[error("{}: output exists and is not a directory; --force only replaces a directory", out.display())]
    OutputNotADirectory {
        /// The output path.
        out: PathBuf,
    },
    /// OUT is the input or lies inside it.
    #[error("{}: output must not be the input checkpoint or lie inside it ({})", out.display(), input.display())]
    OutputInsideInput {
        /// The output directory.
        out: PathBuf,
        /// The input directory.
        input: PathBuf,
    },
    /// Replacing OUT would delete the input, which lies inside it.
    #[error("{}: refusing to replace a directory that contains the input checkpoint ({})", out.display(), input.display())]
    OutputContainsInput {
        /// The output directory.
        out: PathBuf,
        /// The input directory.
        input: PathBuf,
    },
    /// OUT has no usable final component.
    #[error("{}: output path needs a directory name", out.display())]
    BadOutputName {
        /// The path given.
        out: PathBuf,
    },
}

impl SurgeryError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        SurgeryError::Io { path: path.to_path_buf(), source }
    }
}

/// What `apply` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    /// The published output directory.
    pub out_dir: PathBuf,
    /// Every output file (relative path) with the digest computed while writing it.
    pub files: BTreeMap<String, FileDigest>,
    /// Entries zeroed per tensor.
    pub zeroed: BTreeMap<String, u64>,
    /// Entries zeroed in all.
    pub total_zeroed: u64,
    /// Bytes written in all.
    pub bytes_written: u64,
}

/// Options of `apply`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// Replace an existing OUT (still atomically).
    pub force: bool,
}

/// Opens `input`, resolves `mask` against it and writes the pruned copy to `out`.
pub fn apply_mask(
    input: &Path,
    mask: &PruneMask,
    out: &Path,
    options: ApplyOptions,
    progress: &dyn Progress,
) -> Result<ApplyReport, SurgeryError> {
    let ckpt = Checkpoint::open(input)?;
    let arch = Architecture::of_checkpoint(&ckpt)?;
    let plan = resolve(mask, &arch, &ckpt)?;
    write_pruned(&ckpt, &plan, out, options, progress)
}

/// Writes a copy of `ckpt` to `out` with `plan` applied; OUT appears only when complete.
pub fn write_pruned(
    ckpt: &Checkpoint,
    plan: &ZeroPlan,
    out: &Path,
    options: ApplyOptions,
    progress: &dyn Progress,
) -> Result<ApplyReport, SurgeryError> {
    write_pruned_then(ckpt, plan, out, options, progress, |_, _| Ok(()))
}

/// `write_pruned` with a hook that runs on the complete temporary directory before it is
/// published: it may add files (recording their digests in the report) and sign them; an
/// error from it discards the temporary directory, so OUT appears complete or not at all.
pub fn write_pruned_then<E: From<SurgeryError>>(
    ckpt: &Checkpoint,
    plan: &ZeroPlan,
    out: &Path,
    options: ApplyOptions,
    progress: &dyn Progress,
    finalize: impl FnOnce(&OutputTarget, &mut ApplyReport) -> Result<(), E>,
) -> Result<ApplyReport, E> {
    let others = ckpt.other_files().map_err(SurgeryError::from)?;
    let target = prepare_output(ckpt.dir(), out, options.force)?;
    let result = write_all(ckpt, plan, &others, &target, progress).map_err(E::from).and_then(|mut report| {
        finalize(&target, &mut report)?;
        report.bytes_written = report.files.values().map(|f| f.size).sum();
        publish(&target)?;
        Ok(report)
    });
    if result.is_err() {
        output::discard(&target);
    }
    result.map(|mut report| {
        report.out_dir = target.out.clone();
        report
    })
}

fn write_all(
    ckpt: &Checkpoint,
    plan: &ZeroPlan,
    others: &[String],
    target: &OutputTarget,
    progress: &dyn Progress,
) -> Result<ApplyReport, SurgeryError> {
    let total = total_bytes(ckpt, others)?;
    progress.start("writing checkpoint", total, Unit::Bytes);
    let mut files = BTreeMap::new();
    let mut zeroed = BTreeMap::new();
    for (name, digest, counts) in write_shards_in_parallel(ckpt, plan, &target.temp, progress)? {
        files.insert(name, digest);
        zeroed.extend(counts);
    }
    for name in others {
        let digest = copy_file(&ckpt.dir().join(name), &target.temp.join(name), progress)?;
        files.insert(name.clone(), digest);
    }
    sync_subdirs(&target.temp, &files)?;
    progress.finish();
    Ok(ApplyReport {
        out_dir: target.out.clone(),
        total_zeroed: zeroed.values().sum(),
        bytes_written: files.values().map(|f| f.size).sum(),
        files,
        zeroed,
    })
}

type ShardResult = (String, FileDigest, BTreeMap<String, u64>);

/// Writes the shards on as many workers as there are cores (each worker also runs its own
/// hashing thread), taking shards largest first so the workers finish together.
fn write_shards_in_parallel(
    ckpt: &Checkpoint,
    plan: &ZeroPlan,
    temp: &Path,
    progress: &dyn Progress,
) -> Result<Vec<ShardResult>, SurgeryError> {
    let mut order: Vec<&crate::checkpoint::Shard> = ckpt.shards().iter().collect();
    order.sort_by_key(|s| std::cmp::Reverse(s.bytes().len()));
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(order.len()).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let write_one = |shard: &crate::checkpoint::Shard| -> Result<ShardResult, SurgeryError> {
        let dst = temp.join(shard.file_name());
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|source| SurgeryError::io(parent, source))?;
        }
        let (digest, counts) = write_shard(shard, plan, &dst, progress)?;
        Ok((shard.file_name().to_string(), digest, counts))
    };
    let results: Vec<Result<Vec<ShardResult>, SurgeryError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(shard) = order.get(i) else { return Ok(done) };
                        done.push(write_one(shard)?);
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("shard writer does not panic")).collect()
    });
    let mut all = Vec::new();
    for result in results {
        all.extend(result?);
    }
    Ok(all)
}

fn total_bytes(ckpt: &Checkpoint, others: &[String]) -> Result<u64, SurgeryError> {
    let mut total: u64 = ckpt.shards().iter().map(|s| s.bytes().len() as u64).sum();
    for name in others {
        let path = ckpt.dir().join(name);
        total += std::fs::metadata(&path).map_err(|source| SurgeryError::io(&path, source))?.len();
    }
    Ok(total)
}

fn sync_subdirs(root: &Path, files: &BTreeMap<String, FileDigest>) -> Result<(), SurgeryError> {
    let mut dirs: Vec<PathBuf> = files.keys().filter_map(|f| Path::new(f).parent().map(|p| root.join(p))).collect();
    dirs.sort();
    dirs.dedup();
    dirs.iter().filter(|d| *d != root).try_for_each(|d| sync_dir(d))
}
