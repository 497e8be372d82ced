//! The synthetic language: a mixture of many small sub-languages ("quanta") whose frequencies
//! follow a Zipf law, after the quantization model of neural scaling (Michaud, Liu, Girit &
//! Tegmark 2023, "The Quantization Model of Neural Scaling", arXiv:2303.13506, §2: if quantum k
//! is used with probability p_k ∝ k^−(α+1) and a model learns the n most frequent ones, the loss
//! falls as n^−α, so as N^−α with parameters and as D^−α/(α+1) with data).
//!
//! A row is a concatenation of whole documents, the last one cut at the row end. A document is
//! - an announcement: its quantum k written in `code_len` digits of the `code_alphabet` reserved
//!   tokens (ids 0..code_alphabet), k drawn with probability ∝ (k+1)^−quanta_zipf_exponent;
//! - a body of at least one token from the quantum's sub-vocabulary (`sub_vocab` body tokens,
//!   drawn by a Zipf law over the body ids, so the unigram distribution is Zipfian); quantum k
//!   is an n-gram model of order n = ngram_orders[k mod len] (orders interleave by frequency
//!   rank, so every scale mixes all orders): each context of its last n − 1 tokens (padded at
//!   the document start) has `branching` successors, placed by a hash of (quantum, context) in
//!   its sub-vocabulary, with probabilities ∝ (rank + 1)^−successor_zipf_exponent;
//! - after every body token, the document ends with probability q = 1/mean_doc_len.
//!
//! Every probability is an integer weight out of 2^32 (see `sampling`), so the probability of
//! each target given its row prefix is exact: the announcement names the quantum, and a
//! document boundary is a code token whose probability is q × P(first digit). Tables are hashed
//! rather than stored, so memory is O(n_quanta × sub_vocab) and a row costs ~20 ns per token.
//!
//! The defaults (4096 quanta, exponent 1.4, order-2 tables over 64-token sub-vocabularies,
//! 32-token documents) are chosen so that capacity binds at CPU scale: a short document shows
//! too little of its table for in-context statistics to stand in for it, so a model must store
//! the tables of the quanta it knows in its weights, and bigger models learn more of them from
//! the same tokens. A count-based oracle that knows the structure and estimates the tables from
//! D tokens has excess loss falling as about D^−0.45 from 1e4 to 1e8 tokens (the `learnability`
//! test); transformers of 12k, 49k and 197k non-embedding parameters trained on 1M tokens reach
//! 2.765, 2.551 and 2.474 nats against a true entropy of 1.43. Earlier defaults (65536 quanta,
//! orders 1–3 over 16 tokens, 128-token documents) were learnable in context, and there the
//! smallest model was as good as the biggest at every CPU budget.

use super::sampling::{hash_words, mix64, zipf_weights, QuantizedDist, SplitMix64, PROB_ONE};
use super::{check_batch_shape, unigram_entropy, Batch, DataError, Split, TokenSource, ValidationSet};
use rayon::prelude::*;

/// Stream tags: each kind of randomness hashes (seed, tag, ...) into its own stream.
const TAG_TRAIN: u64 = 1;
const TAG_VALIDATION: u64 = 2;
const TAG_SUB_VOCAB: u64 = 3;
const TAG_KEY: u64 = 5;
/// Batches of at least this many tokens are generated row-parallel (rows are independent).
const PARALLEL_MIN_TOKENS: usize = 1 << 16;

mod config;
pub use config::SyntheticConfig;

/// Where a row prefix stands in its current document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// `digits` announcement tokens read, spelling `prefix` (base code_alphabet).
    Code { digits: usize, prefix: u64 },
    /// In the body of `quantum` after `length` tokens; `context` encodes the last order − 1
    /// sub-vocabulary indices in base sub_vocab + 1 (digit sub_vocab = padding).
    Body { quantum: usize, context: u64, length: u64 },
}

/// The state before a row's first token or after a document's last one.
const DOCUMENT_START: Phase = Phase::Code { digits: 0, prefix: 0 };

/// The synthetic language, built from a [`SyntheticConfig`]: tables plus generator and scorer.
#[derive(Clone, Debug)]
pub struct SyntheticSource {
    config: SyntheticConfig,
    code_len: usize,
    /// code_span[j] = code_alphabet^(code_len − j): quanta sharing one j-digit prefix.
    code_span: Vec<u64>,
    /// Which quantum opens a document.
    quanta: QuantizedDist,
    /// Probability of a context's successor by rank.
    successors: QuantizedDist,
    /// A document ends after a body token when a 32-bit draw is below this: q = end_threshold / 2^32.
    end_threshold: u64,
    /// Sub-vocabulary of quantum k: sub_tokens[k·sub_vocab .. (k+1)·sub_vocab].
    sub_tokens: Vec<u32>,
    /// Number of contexts of quantum k, (sub_vocab + 1)^(order_k − 1).
    context_modulus: Vec<u64>,
    /// Hash key of quantum k's successor table.
    keys: Vec<u64>,
    /// Step sizes coprime with sub_vocab: start + rank·stride (mod sub_vocab) are distinct ranks.
    strides: Vec<u64>,
}

impl SyntheticSource {
    /// Validates the config and builds the tables (~50 ms at the default settings).
    pub fn new(config: &SyntheticConfig) -> Result<SyntheticSource, DataError> {
        config.validate()?;
        let quanta = QuantizedDist::from_weights(&zipf_weights(config.n_quanta, config.quanta_zipf_exponent))
            .map_err(|e| DataError::config("n_quanta", e))?;
        let successor_weights = zipf_weights(config.branching, config.successor_zipf_exponent);
        let successors =
            QuantizedDist::from_weights(&successor_weights).map_err(|e| DataError::config("branching", e))?;
        let code_len = config.code_len();
        let alphabet = config.code_alphabet as u64;
        let code_span = (0..=code_len).map(|j| alphabet.pow((code_len - j) as u32)).collect();
        let end_probability = (PROB_ONE as f64 / config.mean_doc_len).round() as u64;
        let (sub_tokens, context_modulus, keys) = build_quanta(config)?;
        Ok(SyntheticSource {
            config: config.clone(),
            code_len,
            code_span,
            quanta,
            successors,
            end_threshold: end_probability.clamp(1, PROB_ONE),
            sub_tokens,
            context_modulus,
            keys,
            strides: coprime_strides(config.sub_vocab as u64),
        })
    }

    pub fn config(&self) -> &SyntheticConfig {
        &self.config
    }

    /// Exact probability that a document is written in quantum k (0-based frequency rank; 0 beyond n_quanta).
    pub fn quantum_probability(&self, quantum: usize) -> f64 {
        self.quanta.prob(quantum)
    }

    /// The n-gram order of quantum k (None beyond n_quanta).
    pub fn quantum_order(&self, quantum: usize) -> Option<usize> {
        self.context_modulus.get(quantum)?;
        Some(self.config.ngram_orders[quantum % self.config.ngram_orders.len()])
    }

    /// Exact `ln p(row[i] | row[..i])` for `i = 1..row.len()`, for a row that starts at a document
    /// boundary (as every generated row does). Err if a token is impossible at its position.
    pub fn target_log_probs(&self, row: &[u32]) -> Result<Vec<f64>, DataError> {
        let Some((&first, rest)) = row.split_first() else {
            return Ok(Vec::new());
        };
        let impossible = |position: usize, token: u32| {
            DataError::Internal(format!("token {token} at position {position} of the row is impossible"))
        };
        let mut phase = self.advance(DOCUMENT_START, first).ok_or_else(|| impossible(0, first))?;
        let mut log_probs = Vec::with_capacity(rest.len());
        for (offset, &token) in rest.iter().enumerate() {
            let probability = self.next_token_probability(phase, token);
            if probability <= 0.0 {
                return Err(impossible(offset + 1, token));
            }
            log_probs.push(probability.ln());
            phase = self.advance(phase, token).ok_or_else(|| impossible(offset + 1, token))?;
        }
        Ok(log_probs)
    }

    fn sub_vocab_of(&self, quantum: usize) -> &[u32] {
        let m = self.config.sub_vocab;
        &self.sub_tokens[quantum * m..(quantum + 1) * m]
    }

    /// Where quantum k's successor list for `context` starts and its step through the sub-vocabulary.
    #[inline]
    fn successor_layout(&self, quantum: usize, context: u64) -> (u64, u64) {
        let hash = mix64(self.keys[quantum] ^ context.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let start = hash % self.config.sub_vocab as u64;
        let stride = self.strides[((hash >> 32) % self.strides.len() as u64) as usize];
        (start, stride)
    }

    /// The row seed of (split, batch index, row): rows are independent streams.
    fn row_seed(&self, split: Split, index: u64, row: usize) -> u64 {
        let tag = match split {
            Split::Train => TAG_TRAIN,
            Split::Validation => TAG_VALIDATION,
        };
        hash_words(&[self.config.seed, tag, index, row as u64])
    }
}

/// Per quantum: its sub-vocabulary (flattened), its number of contexts and its table key.
type QuantumTables = (Vec<u32>, Vec<u64>, Vec<u64>);

/// Gives every quantum its order (in turn by rank), a table key and a sub-vocabulary, from hashed streams.
fn build_quanta(config: &SyntheticConfig) -> Result<QuantumTables, DataError> {
    let body_tokens = config.vocab_size - config.code_alphabet;
    let popularity = QuantizedDist::from_weights(&zipf_weights(body_tokens, config.token_zipf_exponent))
        .map_err(|e| DataError::config("vocab_size", e))?;
    let mut sub_tokens = Vec::with_capacity(config.n_quanta * config.sub_vocab);
    let mut context_modulus = Vec::with_capacity(config.n_quanta);
    let mut keys = Vec::with_capacity(config.n_quanta);
    for quantum in 0..config.n_quanta as u64 {
        // Orders interleave by frequency rank, so every scale of quanta mixes all orders.
        let order = config.ngram_orders[quantum as usize % config.ngram_orders.len()];
        let contexts = config.context_count(order).ok_or_else(|| DataError::config("ngram_orders", "too large"))?;
        context_modulus.push(contexts);
        keys.push(hash_words(&[config.seed, TAG_KEY, quantum]));
        let mut rng = SplitMix64::new(hash_words(&[config.seed, TAG_SUB_VOCAB, quantum]));
        draw_sub_vocab(&mut rng, &popularity, config, &mut sub_tokens);
    }
    Ok((sub_tokens, context_modulus, keys))
}

/// Appends `sub_vocab` distinct body tokens drawn by popularity (rejecting repeats); in the
/// unlikely case that the draws keep repeating, fills up with the most popular unused tokens.
fn draw_sub_vocab(rng: &mut SplitMix64, popularity: &QuantizedDist, config: &SyntheticConfig, out: &mut Vec<u32>) {
    let first_body_token = config.code_alphabet as u32;
    let start = out.len();
    let mut attempts = 0;
    while out.len() - start < config.sub_vocab && attempts < 64 * config.sub_vocab {
        let token = first_body_token + popularity.sample(rng.next_u32()) as u32;
        if !out[start..].contains(&token) {
            out.push(token);
        }
        attempts += 1;
    }
    let mut candidate = first_body_token;
    while out.len() - start < config.sub_vocab {
        if !out[start..].contains(&candidate) {
            out.push(candidate);
        }
        candidate += 1;
    }
}

/// The integers in 1..=m coprime with m (just [1] for m = 1).
fn coprime_strides(m: u64) -> Vec<u64> {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    (1..=m).filter(|&s| gcd(s, m) == 1).collect()
}

/// Generation: rows of whole documents, the last one cut at the row end.
impl SyntheticSource {
    /// Fills `rows` (consecutive rows of `row_len` tokens) with rows 0, 1, ... of batch `index`.
    fn fill_rows(&self, split: Split, index: u64, rows: &mut [u32], row_len: usize) {
        let fill = |(row, tokens): (usize, &mut [u32])| {
            let mut rng = SplitMix64::new(self.row_seed(split, index, row));
            let mut position = 0;
            while position < tokens.len() {
                position = self.write_document(&mut rng, tokens, position);
            }
        };
        if rows.len() >= PARALLEL_MIN_TOKENS {
            rows.par_chunks_mut(row_len).enumerate().for_each(fill);
        } else {
            rows.chunks_mut(row_len).enumerate().for_each(fill);
        }
    }

    /// Writes one document from `position` (announcement, then body); returns the next free position.
    fn write_document(&self, rng: &mut SplitMix64, row: &mut [u32], mut position: usize) -> usize {
        let quantum = self.quanta.sample(rng.next_u32());
        let alphabet = self.config.code_alphabet as u64;
        for digit in 0..self.code_len {
            if position == row.len() {
                return position;
            }
            row[position] = ((quantum as u64 / self.code_span[digit + 1]) % alphabet) as u32;
            position += 1;
        }
        self.write_body(rng, quantum, row, position)
    }

    /// The hot loop: one 64-bit draw per token (high half: successor rank, low half: end or not).
    #[inline]
    fn write_body(&self, rng: &mut SplitMix64, quantum: usize, row: &mut [u32], mut position: usize) -> usize {
        let m = self.config.sub_vocab as u64;
        let contexts = self.context_modulus[quantum];
        let tokens = self.sub_vocab_of(quantum);
        let mut context = contexts - 1; // all padding
        while position < row.len() {
            let draw = rng.next_u64();
            let (start, stride) = self.successor_layout(quantum, context);
            let rank = self.successors.sample((draw >> 32) as u32) as u64;
            let index = (start + rank * stride) % m;
            row[position] = tokens[index as usize];
            position += 1;
            context = (context * (m + 1) + index) % contexts;
            if (draw & 0xffff_ffff) < self.end_threshold {
                break;
            }
        }
        position
    }

    /// Generates `count` rows of `row_len` tokens of (split, index), flattened.
    fn generate_rows(&self, split: Split, index: u64, count: usize, row_len: usize) -> Vec<u32> {
        let mut rows = vec![0u32; count * row_len];
        self.fill_rows(split, index, &mut rows, row_len);
        rows
    }
}

/// Scoring: the exact conditional probability of a token after a row prefix.
impl SyntheticSource {
    /// Total weight (out of 2^32) of the quanta whose announcement starts with the `digits`-digit `prefix`.
    fn code_mass(&self, digits: usize, prefix: u64) -> u64 {
        let span = self.code_span[digits];
        let lo = prefix.saturating_mul(span).min(self.config.n_quanta as u64) as usize;
        let hi = (prefix + 1).saturating_mul(span).min(self.config.n_quanta as u64) as usize;
        self.quanta.mass(lo, hi)
    }

    /// P(next token = `token` | phase), exactly as `write_document` samples it.
    fn next_token_probability(&self, phase: Phase, token: u32) -> f64 {
        let alphabet = self.config.code_alphabet as u64;
        let token_id = token as u64;
        let one = PROB_ONE as f64;
        match phase {
            Phase::Code { digits, prefix } => {
                let before = self.code_mass(digits, prefix);
                if token_id >= alphabet || before == 0 {
                    return 0.0;
                }
                self.code_mass(digits + 1, prefix * alphabet + token_id) as f64 / before as f64
            }
            Phase::Body { quantum, context, length } => {
                let end = if length == 0 { 0 } else { self.end_threshold };
                if token_id < alphabet {
                    (end as f64 / one) * (self.code_mass(1, token_id) as f64 / one)
                } else {
                    ((PROB_ONE - end) as f64 / one) * self.body_probability(quantum, context, token)
                }
            }
        }
    }

    /// P_k(token | context) within quantum k's body (0 for tokens outside its successor list).
    fn body_probability(&self, quantum: usize, context: u64, token: u32) -> f64 {
        let Some(index) = self.sub_vocab_of(quantum).iter().position(|&t| t == token) else {
            return 0.0;
        };
        let (start, stride) = self.successor_layout(quantum, context);
        let m = self.config.sub_vocab as u64;
        (0..self.config.branching)
            .find(|&rank| (start + rank as u64 * stride) % m == index as u64)
            .map_or(0.0, |rank| self.successors.prob(rank))
    }

    /// The phase after `token`; None if the token is impossible there.
    fn advance(&self, phase: Phase, token: u32) -> Option<Phase> {
        let alphabet = self.config.code_alphabet as u64;
        let token_id = token as u64;
        match phase {
            Phase::Code { digits, prefix } => {
                let prefix = prefix.checked_mul(alphabet)?.checked_add(token_id).filter(|_| token_id < alphabet)?;
                if digits + 1 < self.code_len {
                    return Some(Phase::Code { digits: digits + 1, prefix });
                }
                let quantum = usize::try_from(prefix).ok().filter(|&k| k < self.config.n_quanta)?;
                let context = self.context_modulus[quantum] - 1;
                Some(Phase::Body { quantum, context, length: 0 })
            }
            Phase::Body { .. } if token_id < alphabet => self.advance(DOCUMENT_START, token),
            Phase::Body { quantum, context, length } => {
                let index = self.sub_vocab_of(quantum).iter().position(|&t| t == token)? as u64;
                let m = self.config.sub_vocab as u64;
                let context = (context * (m + 1) + index) % self.context_modulus[quantum];
                Some(Phase::Body { quantum, context, length: length + 1 })
            }
        }
    }
}

impl TokenSource for SyntheticSource {
    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "synthetic(seed={}, vocab={}, quanta={}, quanta_zipf={}, orders={:?}, sub_vocab={}, branching={}, \
             successor_zipf={}, token_zipf={}, mean_doc_len={}, code_alphabet={})",
            c.seed,
            c.vocab_size,
            c.n_quanta,
            c.quanta_zipf_exponent,
            c.ngram_orders,
            c.sub_vocab,
            c.branching,
            c.successor_zipf_exponent,
            c.token_zipf_exponent,
            c.mean_doc_len,
            c.code_alphabet
        )
    }

    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn train_batch(&self, index: u64, batch_size: usize, seq_len: usize) -> Result<Batch, DataError> {
        check_batch_shape(batch_size, seq_len)?;
        let rows = self.generate_rows(Split::Train, index, batch_size, seq_len + 1);
        Ok(Batch::from_rows(&rows, batch_size, seq_len))
    }

    fn validation_set(&self, n_sequences: usize, seq_len: usize) -> Result<ValidationSet, DataError> {
        check_batch_shape(n_sequences, seq_len)?;
        let rows = self.generate_rows(Split::Validation, 0, n_sequences, seq_len + 1);
        // Per-row sums in parallel, added in row order: the same bits on every run.
        let row_sums: Vec<f64> = rows
            .par_chunks(seq_len + 1)
            .map(|row| self.target_log_probs(row).map(|log_probs| log_probs.iter().sum::<f64>()))
            .collect::<Result<_, _>>()?;
        let batch = Batch::from_rows(&rows, n_sequences, seq_len);
        let true_entropy = -row_sums.iter().sum::<f64>() / batch.targets.len() as f64;
        let unigram_entropy = unigram_entropy(&batch.targets);
        let sample = format!(
            "{n_sequences} independent sequences of {} tokens drawn from the language's validation stream",
            seq_len + 1
        );
        Ok(ValidationSet { batch, true_entropy: Some(true_entropy), unigram_entropy, sample: Some(sample) })
    }

    fn unique_tokens(&self) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests;
