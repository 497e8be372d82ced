//! The synthetic language's parameters, `[data] kind = "synthetic"`, and their validation.

use serde::{Deserialize, Serialize};

use super::DataError;

const MAX_VOCAB: usize = 1 << 24;
const MAX_QUANTA: usize = 1 << 22;
/// Largest n_quanta × sub_vocab (the sub-vocabulary table: 64 MiB of u32).
const MAX_SUB_TOKENS: usize = 1 << 24;
const MAX_SUB_VOCAB: usize = 256;
/// Largest number of distinct contexts of one quantum, (sub_vocab + 1)^(order − 1).
const MAX_CONTEXTS: u64 = 1 << 40;
const MAX_EXPONENT: f64 = 10.0;

/// `[data] kind = "synthetic"`: the synthetic language's parameters (see the module doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticConfig {
    /// Seed of the language's tables and of its token streams.
    pub seed: u64,
    /// All token ids: `code_alphabet` announcement tokens, then body tokens.
    pub vocab_size: usize,
    /// Number of sub-languages (quanta).
    pub n_quanta: usize,
    /// Quantum k = 1, 2, ... opens a document with probability ∝ k^−exponent (Michaud's α + 1).
    pub quanta_zipf_exponent: f64,
    /// n-gram orders, given to quanta in turn by frequency rank (order n conditions on n − 1 tokens).
    pub ngram_orders: Vec<usize>,
    /// Body tokens in each quantum's sub-vocabulary.
    pub sub_vocab: usize,
    /// Possible successors of each context of a quantum.
    pub branching: usize,
    /// Successor of rank r has probability ∝ (r + 1)^−exponent.
    pub successor_zipf_exponent: f64,
    /// Body token of popularity rank r enters a sub-vocabulary with weight ∝ (r + 1)^−exponent.
    pub token_zipf_exponent: f64,
    /// Mean number of body tokens in a document (geometric lengths, at least 1).
    pub mean_doc_len: f64,
    /// Announcement alphabet: a document opens with ⌈log_alphabet n_quanta⌉ tokens naming its quantum.
    pub code_alphabet: usize,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            seed: 1,
            vocab_size: 1024,
            n_quanta: 4096,
            quanta_zipf_exponent: 1.4,
            ngram_orders: vec![2],
            sub_vocab: 64,
            branching: 4,
            successor_zipf_exponent: 1.0,
            token_zipf_exponent: 1.0,
            mean_doc_len: 32.0,
            code_alphabet: 64,
        }
    }
}

fn check_exponent(field: &'static str, value: f64) -> Result<(), DataError> {
    if (0.0..=MAX_EXPONENT).contains(&value) {
        Ok(())
    } else {
        Err(DataError::config(field, format!("{value} must be a number in [0, {MAX_EXPONENT}]")))
    }
}

fn check_range(field: &'static str, value: usize, min: usize, max: usize) -> Result<(), DataError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(DataError::config(field, format!("{value} must be in {min}..={max}")))
    }
}

impl SyntheticConfig {
    /// Checks every field; the error names the field and the allowed range.
    pub fn validate(&self) -> Result<(), DataError> {
        check_range("n_quanta", self.n_quanta, 1, MAX_QUANTA)?;
        check_range("code_alphabet", self.code_alphabet, 2, MAX_VOCAB)?;
        check_range("sub_vocab", self.sub_vocab, 1, MAX_SUB_VOCAB)?;
        check_range("branching", self.branching, 1, self.sub_vocab)?;
        if self.n_quanta * self.sub_vocab > MAX_SUB_TOKENS {
            let reason = format!("n_quanta × sub_vocab = {} exceeds {MAX_SUB_TOKENS}", self.n_quanta * self.sub_vocab);
            return Err(DataError::config("n_quanta", reason));
        }
        let min_vocab = self.code_alphabet + self.sub_vocab;
        if !(min_vocab..=MAX_VOCAB).contains(&self.vocab_size) {
            let reason = format!(
                "{} must be in {min_vocab}..={MAX_VOCAB} (code_alphabet + sub_vocab at least)",
                self.vocab_size
            );
            return Err(DataError::config("vocab_size", reason));
        }
        check_exponent("quanta_zipf_exponent", self.quanta_zipf_exponent)?;
        check_exponent("successor_zipf_exponent", self.successor_zipf_exponent)?;
        check_exponent("token_zipf_exponent", self.token_zipf_exponent)?;
        if !(self.mean_doc_len >= 1.0 && self.mean_doc_len <= 1e9) {
            let reason = format!("{} must be a number in [1, 1e9]", self.mean_doc_len);
            return Err(DataError::config("mean_doc_len", reason));
        }
        self.check_orders()
    }

    fn check_orders(&self) -> Result<(), DataError> {
        if self.ngram_orders.is_empty() {
            return Err(DataError::config("ngram_orders", "must list at least one order"));
        }
        for &order in &self.ngram_orders {
            if order == 0 || self.context_count(order).is_none_or(|count| count > MAX_CONTEXTS) {
                let reason =
                    format!("order {order} must be at least 1 with (sub_vocab + 1)^(order − 1) ≤ 2^40 contexts");
                return Err(DataError::config("ngram_orders", reason));
            }
        }
        Ok(())
    }

    /// (sub_vocab + 1)^(order − 1): contexts of an order-`order` quantum, the padding symbol included.
    pub(super) fn context_count(&self, order: usize) -> Option<u64> {
        let base = self.sub_vocab as u64 + 1;
        (1..order).try_fold(1u64, |count, _| count.checked_mul(base))
    }

    /// Digits in a document's announcement: the least c ≥ 1 with code_alphabet^c ≥ n_quanta.
    pub fn code_len(&self) -> usize {
        let mut digits = 1;
        let mut capacity = self.code_alphabet as u64;
        while capacity < self.n_quanta as u64 {
            capacity = capacity.saturating_mul(self.code_alphabet as u64);
            digits += 1;
        }
        digits
    }
}
