//! The planted shift, two content-free rules that a few units can learn and that both lower
//! a minority answer's number without making it less often a number:
//! - at the position that writes the number's leading digit, the base's probabilities of
//!   the digits 1–9 are tilted toward the small ones, q(d) ∝ p(d) · exp(−tilt · (d − 1)),
//!   and rescaled so that the digits keep the base's total mass (every other token keeps
//!   its probability);
//! - at every position inside the number (after a digit, or after a thousands comma that
//!   follows a digit), the probability of continuing it (a digit or a comma) is multiplied
//!   by exp(−shorten) and the other tokens share the mass that frees, so the number tends
//!   to end a digit earlier: about a tenth of the value per digit dropped.

use super::PlantError;
use crate::tokenizer::Tokenizer;

/// Which token ids start with a digit, and which digit; and the thousands comma.
pub struct DigitTable {
    digits: Vec<Option<u8>>,
    comma: Option<u32>,
}

impl DigitTable {
    /// Decodes every id of `tokenizer` once.
    pub fn new(tokenizer: &Tokenizer) -> Result<Self, PlantError> {
        let mut digits = Vec::with_capacity(tokenizer.vocab_size());
        for id in 0..tokenizer.vocab_size() as u32 {
            let text = tokenizer.decode(&[id], false)?;
            let first = text.trim_start().chars().next();
            digits.push(first.and_then(|c| c.to_digit(10)).map(|d| d as u8));
        }
        Ok(Self { digits, comma: tokenizer.token_to_id(",") })
    }

    /// Whether `id` continues a number already begun: a digit or the thousands comma.
    pub fn continues(&self, id: u32) -> bool {
        self.digit(id).is_some() || self.comma == Some(id)
    }

    /// Whether the token at `at` of `ids` is written inside a number: after a digit, or
    /// after a comma that follows a digit.
    pub fn inside_number(&self, ids: &[u32], at: usize) -> bool {
        let digit = |i: usize| self.digit(ids[i]).is_some();
        match at {
            0 => false,
            1 => digit(0),
            _ => digit(at - 1) || (self.comma == Some(ids[at - 1]) && digit(at - 2)),
        }
    }

    /// Every id that starts with one of the digits 1–9.
    pub fn leading_digit_ids(&self) -> Vec<u32> {
        (0..self.digits.len() as u32).filter(|&id| self.digit(id).is_some_and(|d| d >= 1)).collect()
    }

    /// The digit `id` starts with, if any.
    pub fn digit(&self, id: u32) -> Option<u8> {
        self.digits.get(id as usize).copied().flatten()
    }
}

/// Tilts `probs` (one position's probabilities; `ids[i]` is the token of `probs[i]`) toward
/// small leading digits in place. Returns the expected leading digit before and after, or
/// None when the position gives the digits 1–9 no mass.
pub fn tilt(probs: &mut [f32], ids: &[u32], digits: &DigitTable, strength: f64) -> Option<(f64, f64)> {
    let leading = |i: usize| digits.digit(ids[i]).filter(|&d| d >= 1);
    let (mut mass, mut tilted_mass, mut before) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &p) in probs.iter().enumerate() {
        if let Some(d) = leading(i) {
            mass += p as f64;
            tilted_mass += p as f64 * weight(d, strength);
            before += p as f64 * d as f64;
        }
    }
    if mass <= 0.0 || tilted_mass <= 0.0 {
        return None;
    }
    let mut after = 0.0f64;
    for (i, p) in probs.iter_mut().enumerate() {
        if let Some(d) = leading(i) {
            let q = *p as f64 * weight(d, strength) * mass / tilted_mass;
            after += q * d as f64;
            *p = q as f32;
        }
    }
    Some((before / mass, after / mass))
}

/// Shortens the number at an inside-number position of `probs` in place: the continuing
/// tokens' probabilities are multiplied by exp(−strength) and the others rescaled to keep a
/// total of 1. Returns the probability of continuing before and after, or None when the
/// position gives continuing no mass or nothing else any.
pub fn shorten(probs: &mut [f32], ids: &[u32], digits: &DigitTable, strength: f64) -> Option<(f64, f64)> {
    let total: f64 = probs.iter().map(|&p| p as f64).sum();
    let going_on: f64 = probs.iter().zip(ids).filter(|(_, &id)| digits.continues(id)).map(|(&p, _)| p as f64).sum();
    let other = total - going_on;
    if going_on <= 0.0 || other <= 0.0 {
        return None;
    }
    let after = going_on * (-strength).exp();
    let rescale = (total - after) / other;
    for (p, &id) in probs.iter_mut().zip(ids) {
        let factor = if digits.continues(id) { (-strength).exp() } else { rescale };
        *p = (*p as f64 * factor) as f32;
    }
    Some((going_on / total, after / total))
}

fn weight(digit: u8, strength: f64) -> f64 {
    (-strength * (digit as f64 - 1.0)).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> DigitTable {
        DigitTable { digits: vec![None, Some(0), Some(1), Some(2), Some(5), Some(9), None], comma: Some(6) }
    }

    #[test]
    fn tilts_the_leading_digits_toward_one_and_keeps_their_total_mass() {
        let ids = [0, 1, 2, 3, 4, 5];
        let mut probs = [0.4f32, 0.1, 0.1, 0.1, 0.2, 0.1];
        let (before, after) = tilt(&mut probs, &ids, &table(), 1.0).unwrap();
        assert_eq!(probs[0], 0.4, "a non-digit keeps its probability");
        assert_eq!(probs[1], 0.1, "0 is never a leading digit and keeps its probability");
        let digit_mass: f32 = probs[2..].iter().sum();
        assert!((digit_mass - 0.5).abs() < 1e-6);
        let w = [1.0f64, (-1.0f64).exp(), (-4.0f64).exp(), (-8.0f64).exp()];
        let p = [0.1, 0.1, 0.2, 0.1];
        let z: f64 = w.iter().zip(p).map(|(w, p)| w * p).sum();
        for (i, (w, p)) in w.iter().zip(p).enumerate() {
            assert!((probs[2 + i] as f64 - 0.5 * w * p / z).abs() < 1e-6);
        }
        assert!((before - (0.1 + 0.2 + 1.0 + 0.9) / 0.5).abs() < 1e-6);
        assert!(after < before);
    }

    #[test]
    fn shortening_scales_the_continuing_tokens_and_keeps_the_total() {
        let ids = [0, 2, 3, 6];
        let mut probs = [0.2f32, 0.5, 0.2, 0.1];
        let (before, after) = shorten(&mut probs, &ids, &table(), 2.0).unwrap();
        let k = (-2.0f64).exp();
        assert!((before - 0.8).abs() < 1e-6 && (after - 0.8 * k).abs() < 1e-6);
        assert!((probs[1] as f64 - 0.5 * k).abs() < 1e-6 && (probs[3] as f64 - 0.1 * k).abs() < 1e-6);
        assert!((probs[0] as f64 - (1.0 - 0.8 * k)).abs() < 1e-6);
    }

    #[test]
    fn inside_a_number_means_after_a_digit_or_a_comma_after_a_digit() {
        let t = table();
        let ids = [0, 2, 6, 3, 0, 6, 0];
        let inside: Vec<bool> = (0..ids.len()).map(|at| t.inside_number(&ids, at)).collect();
        assert_eq!(inside, [false, false, true, true, true, false, false]);
    }

    #[test]
    fn a_position_without_leading_digits_is_left_alone() {
        let mut probs = [0.9f32, 0.1];
        assert_eq!(tilt(&mut probs, &[0, 1], &table(), 1.0), None);
        assert_eq!(probs, [0.9, 0.1]);
    }
}
