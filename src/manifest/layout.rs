//! The release layout: the names of the files and folders a pruned release holds beside its
//! weights, shared by the writer (`release`) and the readers (`verify`, `pipeline`).

/// File name of the manifest inside a pruned checkpoint.
pub const MANIFEST_FILE: &str = "biasprune-manifest.json";
/// Folder of the evidence files (records, summaries) inside a pruned checkpoint.
pub const EVIDENCE_DIR: &str = "evidence";
/// Model card file name; the base's own README.md is kept as `README.base.md`.
pub const CARD_FILE: &str = "README.md";
/// Where the base checkpoint's README.md goes in a release.
pub const BASE_CARD_FILE: &str = "README.base.md";
/// The HTML report `biasprune prune` ships beside the card (signed like every file).
pub const REPORT_FILE: &str = "report.html";
/// Folder of the base model's evaluation under `evidence/`.
pub const BASELINE_EVIDENCE: &str = "baseline";
/// Folder of the pruned model's evaluation under `evidence/`.
pub const PRUNED_EVIDENCE: &str = "pruned";
/// Folder of `prune`'s calibration baseline under `evidence/`: what the gate and the
/// direction read, shipped for disclosure; not evidence of the effect.
pub const CALIBRATION_EVIDENCE: &str = "calibration";
