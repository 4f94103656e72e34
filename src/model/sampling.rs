//! Choosing the next token from logits: greedy, temperature, nucleus (top-p), with a
//! seeded ChaCha stream per (prompt, sample) so a sample's tokens do not depend on which
//! other samples share its batch.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::ModelError;

/// Sampling settings: temperature 0 means greedy; top_p 1 means the whole vocabulary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// Divides the logits; 0 selects the most likely token.
    pub temperature: f32,
    /// Keep the smallest set of most likely tokens whose probability reaches top_p.
    pub top_p: f32,
}

impl SamplingParams {
    /// Rejects negative temperatures and top_p outside (0, 1].
    pub fn check(&self) -> Result<(), ModelError> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(ModelError::InvalidArgument(format!(
                "temperature must be finite and >= 0, got {}",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(ModelError::InvalidArgument(format!("top_p must be in (0, 1], got {}", self.top_p)));
        }
        Ok(())
    }
}

/// The random stream of one sample plus scratch buffers reused across steps.
pub struct Sampler {
    rng: ChaCha8Rng,
    weights: Vec<f32>,
    order: Vec<u32>,
}

impl Sampler {
    /// The stream for sample `sample` of prompt `prompt` under `seed`.
    pub fn new(seed: u64, prompt: usize, sample: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(((prompt as u64) << 32) | sample as u64);
        Self { rng, weights: Vec::new(), order: Vec::new() }
    }

    /// Picks a token id from one row of logits.
    pub fn sample(&mut self, logits: &[f32], params: SamplingParams) -> u32 {
        if params.temperature == 0.0 || logits.len() == 1 {
            return argmax(logits);
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let inv_t = 1.0 / params.temperature;
        self.weights.clear();
        self.weights.extend(logits.iter().map(|&l| ((l - max) * inv_t).exp()));
        let total: f64 = self.weights.iter().map(|&w| f64::from(w)).sum();
        if params.top_p >= 1.0 {
            let target = self.rng.random::<f64>() * total;
            return pick(self.weights.iter().copied().enumerate(), target);
        }
        let nucleus = self.nucleus(total * f64::from(params.top_p));
        let mass: f64 = self.order[..nucleus].iter().map(|&i| f64::from(self.weights[i as usize])).sum();
        let target = self.rng.random::<f64>() * mass;
        let weights = &self.weights;
        pick(self.order[..nucleus].iter().map(|&i| (i as usize, weights[i as usize])), target)
    }

    /// Orders the most likely tokens first in `self.order` (ties by id) and returns how
    /// many are needed to reach `threshold`; sorts only a growing prefix, not the vocabulary.
    fn nucleus(&mut self, threshold: f64) -> usize {
        let weights = &self.weights;
        let by_weight = |a: &u32, b: &u32| weights[*b as usize].total_cmp(&weights[*a as usize]).then(a.cmp(b));
        self.order.clear();
        self.order.extend(0..weights.len() as u32);
        let mut k = 64.min(weights.len());
        loop {
            if k < self.order.len() {
                self.order.select_nth_unstable_by(k - 1, by_weight);
            }
            self.order[..k].sort_unstable_by(by_weight);
            let mut mass = 0f64;
            for (n, &i) in self.order[..k].iter().enumerate() {
                mass += f64::from(weights[i as usize]);
                if mass >= threshold {
                    return n + 1;
                }
            }
            if k == weights.len() {
                return k;
            }
            k = (k * 8).min(weights.len());
        }
    }
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// The first entry at which the running weight exceeds `target` (the last one if rounding
/// leaves the target unreached).
fn pick(entries: impl Iterator<Item = (usize, f32)>, target: f64) -> u32 {
    let mut cumulative = 0f64;
    let mut last = 0;
    for (i, w) in entries {
        cumulative += f64::from(w);
        last = i;
        if cumulative > target {
            break;
        }
    }
    last as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_first_maximum() {
        let mut s = Sampler::new(1, 0, 0);
        let params = SamplingParams { temperature: 0.0, top_p: 1.0 };
        assert_eq!(s.sample(&[0.5, 2.0, 2.0, -1.0], params), 1);
    }

    #[test]
    fn tiny_top_p_keeps_only_the_most_likely_token() {
        let mut s = Sampler::new(7, 3, 2);
        let params = SamplingParams { temperature: 1.0, top_p: 0.01 };
        let logits: Vec<f32> = (0..500).map(|i| if i == 321 { 5.0 } else { (i % 7) as f32 * 0.1 }).collect();
        for _ in 0..50 {
            assert_eq!(s.sample(&logits, params), 321);
        }
    }

    #[test]
    fn nucleus_excludes_tokens_outside_top_p() {
        // probabilities ~ 0.5, 0.3, 0.2 (+ negligible): top_p 0.75 keeps the first two.
        let logits = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln(), -40.0];
        let params = SamplingParams { temperature: 1.0, top_p: 0.75 };
        let mut s = Sampler::new(11, 0, 0);
        let mut seen = [0usize; 4];
        for _ in 0..2000 {
            seen[s.sample(&logits, params) as usize] += 1;
        }
        assert_eq!(seen[2] + seen[3], 0, "{seen:?}");
        assert!(seen[0] > 1000 && seen[1] > 500, "{seen:?}");
    }

    #[test]
    fn full_distribution_frequencies_follow_probabilities() {
        let logits = [0.6f32.ln(), 0.4f32.ln()];
        let params = SamplingParams { temperature: 1.0, top_p: 1.0 };
        let mut s = Sampler::new(5, 1, 1);
        let ones = (0..4000).filter(|_| s.sample(&logits, params) == 1).count();
        assert!((1450..1750).contains(&ones), "{ones} of 4000, expected about 1600");
    }

    #[test]
    fn streams_depend_on_seed_prompt_and_sample_only() {
        let logits: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin()).collect();
        let params = SamplingParams { temperature: 1.0, top_p: 0.9 };
        let draw = |seed, prompt, sample| {
            let mut s = Sampler::new(seed, prompt, sample);
            (0..20).map(|_| s.sample(&logits, params)).collect::<Vec<_>>()
        };
        assert_eq!(draw(3, 4, 5), draw(3, 4, 5));
        assert_ne!(draw(3, 4, 5), draw(3, 4, 6));
        assert_ne!(draw(3, 4, 5), draw(3, 5, 5));
        assert_ne!(draw(3, 4, 5), draw(4, 4, 5));
    }
}
