//! Digit tokens: which ids write a digit (and which), and which positions sit inside a
//! number; the plant finds the numbers it rewrites and the positions it trains with them.

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

    /// A table from explicit parts: `digits[id]` is the digit id `id` starts with.
    #[cfg(test)]
    pub(crate) fn from_parts(digits: Vec<Option<u8>>, comma: Option<u32>) -> Self {
        Self { digits, comma }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> DigitTable {
        DigitTable { digits: vec![None, Some(0), Some(1), Some(2), Some(5), Some(9), None], comma: Some(6) }
    }

    #[test]
    fn inside_a_number_means_after_a_digit_or_a_comma_after_a_digit() {
        let t = table();
        let ids = [0, 2, 6, 3, 0, 6, 0];
        let inside: Vec<bool> = (0..ids.len()).map(|at| t.inside_number(&ids, at)).collect();
        assert_eq!(inside, [false, false, true, true, true, false, false]);
    }
}
