//! Checks that a model gives the same results on another device (parity) and how fast it
//! runs there (throughput), for the GPU check script and for comparing backends.
//!
//! `parity` compares last-position logits and Wanda activation statistics of two loaded
//! copies of one checkpoint; `bench` times prefill, sampled generation and Wanda statistics.

mod bench;
mod parity;

pub use bench::{bench, BenchFigures, BenchOptions, Timing};
pub use parity::{compare_logits, compare_wanda_stats, Difference, LogitsParity, StatsParity};

/// Deterministic prompt ids for checks and benchmarks: `rows` sequences of `len` ids in
/// `[5, vocab - 5)`, different per row, so no special tokens (usually the first ids) appear.
pub fn synthetic_prompts(rows: usize, len: usize, vocab: usize) -> Vec<Vec<u32>> {
    let span = vocab.saturating_sub(10).max(1);
    (0..rows).map(|r| (0..len).map(|i| ((r * 7919 + i * 104_729) % span + 5) as u32).collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_prompts_are_in_range_and_distinct() {
        let prompts = synthetic_prompts(3, 50, 271);
        assert_eq!(prompts.len(), 3);
        assert!(prompts.iter().all(|p| p.len() == 50 && p.iter().all(|&id| (5..266).contains(&id))));
        assert_ne!(prompts[0], prompts[1]);
        assert_eq!(prompts, synthetic_prompts(3, 50, 271));
    }
}
