//! What the report and the release are made from: the finished stages' results, gathered
//! once by the pipeline and read by both.

use std::path::Path;

use super::gate::{Disparity, MeasuredDirection};
use super::plan::Plan;
use super::spec::PruneSpec;
use super::stages::Evaluated;
use crate::checkpoint::Checkpoint;
use crate::manifest::{BaseIdentity, Verdict};
use crate::mask::DifferenceParams;
use crate::sweep::SweepPoint;

use super::select::TargetMetrics;

/// The sweep's points and the one released.
pub struct SweepChoice {
    /// Every grid point.
    pub points: Vec<SweepPoint>,
    /// The released point (one of `points`).
    pub chosen: SweepPoint,
    /// The base's own answers on the selection prompts and seed: what each point's inlier
    /// ratio and parse rate are compared with.
    pub reference: TargetMetrics,
}

/// Everything the release is made from.
pub struct PublishInputs<'a> {
    /// The job.
    pub spec: &'a PruneSpec,
    /// The validated job.
    pub plan: &'a Plan,
    /// The base.
    pub ckpt: &'a Checkpoint,
    /// The base's identity, hashed once at the start.
    pub base: BaseIdentity,
    /// The released mask.
    pub mask_dir: &'a Path,
    /// The self-fenced calibration baseline (what the gate and the direction read).
    pub calibration: &'a Evaluated,
    /// The base on the confirmation data, self-fenced.
    pub baseline: &'a Evaluated,
    /// The pruned model on the confirmation data, fenced by `baseline`.
    pub pruned: &'a Evaluated,
    /// The direction pruned.
    pub direction: &'a MeasuredDirection,
    /// The gate's reading of the calibration baseline.
    pub disparity: &'a Disparity,
    /// The outcome on the confirmation data.
    pub verdict: &'a Verdict,
    /// Set-difference parameters (p and q of the released point for a sweep).
    pub params: &'a DifferenceParams,
    /// The sweep, when one ran.
    pub sweep: Option<&'a SweepChoice>,
}
