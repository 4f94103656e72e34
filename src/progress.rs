//! A small progress-reporting trait so the library can report long work without a UI.

/// Receives progress of a long operation; the CLI draws bars, tests and pipelines ignore it.
pub trait Progress: Sync {
    /// Starts a phase of `total` units described by `label`.
    fn start(&self, label: &str, total: u64, unit: Unit);
    /// Advances the current phase by `delta` units.
    fn advance(&self, delta: u64);
    /// Ends the current phase.
    fn finish(&self);
    /// Announces stage `index` (1-based) of `count` of a multi-stage job; its phases follow.
    fn stage(&self, _index: usize, _count: usize, _name: &str) {}
}

/// What a phase counts, so a front end can format rates (MB/s versus items/s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes read or written.
    Bytes,
    /// Discrete items: samples, prompts, matrices.
    Items,
}

/// Progress sink that discards everything (tests, `--json` runs, libraries).
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _label: &str, _total: u64, _unit: Unit) {}
    fn advance(&self, _delta: u64) {}
    fn finish(&self) {}
}
