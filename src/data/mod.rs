//! Token sources: the seam between data and training.
//!
//! A [`TokenSource`] hands the training loop batches of token ids by number (random access, so a
//! resumed run asks for the next index and gets what it would have got) and a fixed validation
//! set. Batches are plain `u32` vectors; the training code turns them into tensors. The
//! [`synthetic`] source is a generative language that knows the exact probability of every token
//! it emits, so its validation set carries the exact irreducible loss (`true_entropy`). The
//! [`text`] source reads local documents (text, parquet, JSON lines) with a BPE tokenizer, [`hub`]
//! fetches them from the Hugging Face hub first, [`tokens`] reads already tokenized files, and
//! [`repeat`] limits any source to U unique tokens repeated over epochs (data-constrained
//! sweeps). The file-backed sources share [`stream`]: memory-mapped ids, a training order keyed
//! by the run's seed, and a validation sample spread over every held-out document.

pub mod hub;
pub mod repeat;
pub mod sampling;
pub mod stream;
pub mod synthetic;
pub mod text;
pub mod tokens;

pub use hub::HubConfig;
pub use synthetic::{SyntheticConfig, SyntheticSource};
pub use text::{TextConfig, TextSource};
pub use tokens::{TokensConfig, TokensSource};

/// Which stream a batch comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Validation,
}

/// Row-major token ids, shape (batch_size, seq_len); `targets[i]` is the token after `inputs[i]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub inputs: Vec<u32>,
    pub targets: Vec<u32>,
    pub batch_size: usize,
    pub seq_len: usize,
}

impl Batch {
    /// Splits rows of seq_len + 1 tokens (flattened, row-major) into inputs and targets.
    pub fn from_rows(rows: &[u32], batch_size: usize, seq_len: usize) -> Batch {
        let mut inputs = Vec::with_capacity(batch_size * seq_len);
        let mut targets = Vec::with_capacity(batch_size * seq_len);
        for row in rows.chunks_exact(seq_len + 1).take(batch_size) {
            inputs.extend_from_slice(&row[..seq_len]);
            targets.extend_from_slice(&row[1..]);
        }
        Batch { inputs, targets, batch_size, seq_len }
    }

    /// The input tokens of row `row`.
    pub fn row_inputs(&self, row: usize) -> &[u32] {
        &self.inputs[row * self.seq_len..(row + 1) * self.seq_len]
    }

    /// The target tokens of row `row`.
    pub fn row_targets(&self, row: usize) -> &[u32] {
        &self.targets[row * self.seq_len..(row + 1) * self.seq_len]
    }
}

/// The held-out set and the reference entropies to read its losses against.
#[derive(Clone, Debug)]
pub struct ValidationSet {
    /// n_sequences × seq_len, fixed for a given source config.
    pub batch: Batch,
    /// Exact mean of −ln p_true(target | everything before it in its row), nats/token.
    pub true_entropy: Option<f64>,
    /// Entropy of the empirical unigram distribution of the targets, nats/token.
    pub unigram_entropy: f64,
    /// Which tokens the set holds (for run.json), when the source samples them from a stream.
    pub sample: Option<String>,
}

/// Errors of the data sources; each names the field or request it is about.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("data.{field}: {reason}")]
    InvalidConfig { field: &'static str, reason: String },
    #[error("invalid batch request: {0}")]
    InvalidRequest(String),
    #[error("internal error in data source: {0}")]
    Internal(String),
}

impl DataError {
    pub fn config(field: &'static str, reason: impl Into<String>) -> Self {
        DataError::InvalidConfig { field, reason: reason.into() }
    }
}

/// A source of training batches and of a fixed validation set.
pub trait TokenSource: Send + Sync {
    /// One line for records, e.g. "synthetic(seed=1, vocab=2048, quanta=4096, ...)".
    fn describe(&self) -> String;
    /// The models' vocabulary: the embedding rows a model of this data has.
    fn vocab_size(&self) -> usize;
    /// The token ids the data can hold: a tokenizer's vocabulary, which may be smaller than
    /// `vocab_size` (padding for fast matmuls, or a BPE that learned fewer merges than asked).
    fn tokens_in_vocabulary(&self) -> usize {
        self.vocab_size()
    }
    /// Whether a separator token ends each document in the training stream (false for text
    /// whose tokenizer has no `<|endoftext|>`: its documents run together).
    fn separates_documents(&self) -> bool {
        true
    }
    /// Deterministic random access: training batch number `index` (0, 1, 2, ...). Resuming a run =
    /// remembering the next index, so the same (index, batch_size, seq_len) always gives the same batch.
    fn train_batch(&self, index: u64, batch_size: usize, seq_len: usize) -> Result<Batch, DataError>;
    /// The fixed held-out set, disjoint in generation from the training stream.
    fn validation_set(&self, n_sequences: usize, seq_len: usize) -> Result<ValidationSet, DataError>;
    /// Number of distinct training tokens available (None = unlimited, as for the synthetic source).
    fn unique_tokens(&self) -> Option<u64>;
    /// A source's own view of its first `unique_tokens` training tokens, cut into rows of
    /// `seq_len` and repeated in an order keyed by `run_seed` (unless the source pins its own);
    /// None = use the generic [`repeat::RepeatedRows`].
    fn limited(
        &self,
        _unique_tokens: u64,
        _seq_len: usize,
        _run_seed: u64,
    ) -> Option<Result<Box<dyn TokenSource + '_>, DataError>> {
        None
    }
    /// The seed that keys the training order (None: the order is not seeded by the run).
    fn data_seed(&self) -> Option<u64> {
        None
    }
    /// sha256 (hex) of each file read as token ids, by path: what the run trained on.
    fn token_files(&self) -> std::collections::BTreeMap<String, String> {
        std::collections::BTreeMap::new()
    }
}

/// `source` limited to its first `unique_tokens` training tokens (rows of `seq_len`), repeated
/// for as many epochs as a run asks for (Muennighoff et al. 2023), in an order keyed by the run's
/// seed `run_seed`.
pub fn limit_unique<'a>(
    source: &'a dyn TokenSource,
    unique_tokens: u64,
    seq_len: usize,
    run_seed: u64,
) -> Result<Box<dyn TokenSource + 'a>, DataError> {
    match source.limited(unique_tokens, seq_len, run_seed) {
        Some(view) => view,
        None => Ok(Box::new(repeat::RepeatedRows::new(source, unique_tokens, seq_len, run_seed)?)),
    }
}

/// Largest number of tokens one batch request may ask for (2^31).
pub const MAX_BATCH_TOKENS: usize = 1 << 31;

/// Checks a (batch_size, seq_len) request: both positive and the batch not absurdly large.
pub fn check_batch_shape(batch_size: usize, seq_len: usize) -> Result<(), DataError> {
    if batch_size == 0 || seq_len == 0 {
        return Err(DataError::InvalidRequest(format!(
            "batch_size = {batch_size} and seq_len = {seq_len} must both be positive"
        )));
    }
    match batch_size.checked_mul(seq_len + 1) {
        Some(tokens) if tokens <= MAX_BATCH_TOKENS => Ok(()),
        _ => Err(DataError::InvalidRequest(format!(
            "batch_size × (seq_len + 1) = {batch_size} × {} exceeds {MAX_BATCH_TOKENS} tokens",
            seq_len + 1
        ))),
    }
}

/// Entropy (nats) of the empirical unigram distribution of `tokens`: −Σ f ln f over frequencies f.
pub fn unigram_entropy(tokens: &[u32]) -> f64 {
    if tokens.is_empty() {
        return 0.0;
    }
    let mut sorted = tokens.to_vec();
    sorted.sort_unstable();
    let total = tokens.len() as f64;
    sorted
        .chunk_by(|a, b| a == b)
        .map(|run| {
            let frequency = run.len() as f64 / total;
            -frequency * frequency.ln()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unigram_entropy_known_answers() {
        assert!((unigram_entropy(&[0, 1, 2, 3]) - 4f64.ln()).abs() < 1e-15);
        assert!((unigram_entropy(&[7, 7, 9, 9, 7, 9]) - 2f64.ln()).abs() < 1e-15);
        assert_eq!(unigram_entropy(&[5, 5, 5]), 0.0);
        assert_eq!(unigram_entropy(&[]), 0.0);
        // p = (1/2, 1/4, 1/4): H = 1.5 ln 2.
        assert!((unigram_entropy(&[1, 1, 2, 3]) - 1.5 * 2f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn batch_from_rows_shifts_targets_by_one() {
        let rows = [10, 11, 12, 13, 20, 21, 22, 23];
        let batch = Batch::from_rows(&rows, 2, 3);
        assert_eq!(batch.inputs, vec![10, 11, 12, 20, 21, 22]);
        assert_eq!(batch.targets, vec![11, 12, 13, 21, 22, 23]);
        assert_eq!(batch.row_inputs(1), &[20, 21, 22]);
        assert_eq!(batch.row_targets(0), &[11, 12, 13]);
    }

    #[test]
    fn batch_shape_errors_name_the_dimension() {
        assert!(check_batch_shape(16, 256).is_ok());
        let message = check_batch_shape(0, 256).unwrap_err().to_string();
        assert!(message.contains("batch_size = 0"), "{message}");
        let message = check_batch_shape(4, 0).unwrap_err().to_string();
        assert!(message.contains("seq_len = 0"), "{message}");
        assert!(check_batch_shape(usize::MAX / 2, 4).is_err());
    }
}
