//! Repeated data for data-constrained sweeps (Muennighoff et al. 2023, "Scaling Data-Constrained
//! Language Models"): a run sees only the first U unique tokens of the training stream, cut into
//! rows of seq_len + 1 tokens, and passes over them as many times (epochs) as its budget needs.
//!
//! Row r of the repeated stream is row `perm_e(r mod n)` of the pool, epoch e = r / n, where
//! perm_e is a keyed bijection of [0, n) (a Feistel network with cycle walking), so every epoch
//! visits every pooled row exactly once, in a new order, with no per-epoch state: a resumed run
//! asks for a batch index and gets what it would have got.

use std::sync::OnceLock;

use crate::data::{check_batch_shape, Batch, DataError, TokenSource, ValidationSet};
use crate::rng::mix64;

/// A keyed pseudo-random permutation of [0, n): a balanced Feistel network over the smallest
/// even power of two ≥ n, cycle-walked back into range (Black & Rogaway 2002).
#[derive(Clone, Copy, Debug)]
pub struct Permutation {
    n: u64,
    half_bits: u32,
    key: u64,
}

const FEISTEL_ROUNDS: u64 = 4;

impl Permutation {
    pub fn new(n: u64, key: u64) -> Permutation {
        let bits = 64 - n.saturating_sub(1).leading_zeros();
        Permutation { n, half_bits: bits.div_ceil(2).max(1), key }
    }

    /// The image of `index` (< n).
    pub fn apply(&self, index: u64) -> u64 {
        let mut x = index;
        loop {
            x = self.feistel(x);
            if x < self.n {
                return x;
            }
        }
    }

    fn feistel(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut left, mut right) = (x >> self.half_bits, x & mask);
        for round in 0..FEISTEL_ROUNDS {
            let f = mix64(right ^ mix64(self.key ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15))) & mask;
            (left, right) = (right, left ^ f);
        }
        (left << self.half_bits) | right
    }
}

/// Pool row and epoch of row `row` of a stream that repeats a pool of `n_rows` rows.
pub fn repeated_row(row: u64, n_rows: u64, key: u64) -> (u64, u64) {
    let epoch = row / n_rows;
    let permutation = Permutation::new(n_rows, mix64(key ^ epoch.wrapping_mul(0xd1b5_4a32_d192_ed03)));
    (permutation.apply(row % n_rows), epoch)
}

/// Any source limited to U unique training tokens: the pool is the rows the source gives as
/// training batches 0, 1, 2, ... of one sequence each (⌊U / seq_len⌋ rows, so U is counted in
/// predicted tokens), generated once and then repeated.
pub struct RepeatedRows<'a> {
    inner: &'a dyn TokenSource,
    seq_len: usize,
    n_rows: u64,
    /// The row order's key (from the run's seed).
    key: u64,
    seed: u64,
    pool: OnceLock<Result<Vec<u32>, String>>,
}

impl<'a> RepeatedRows<'a> {
    /// The pool's rows are visited in an order keyed by `seed` (seed 0: the order before seeding).
    pub fn new(inner: &'a dyn TokenSource, unique_tokens: u64, seq_len: usize, seed: u64) -> Result<Self, DataError> {
        let n_rows = unique_tokens / seq_len.max(1) as u64;
        if n_rows == 0 || seq_len == 0 {
            return Err(DataError::config(
                "unique_tokens",
                format!("{unique_tokens} is less than one sequence of seq_len = {seq_len} tokens"),
            ));
        }
        let key = 0x5eed ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Ok(RepeatedRows { inner, seq_len, n_rows, key, seed, pool: OnceLock::new() })
    }

    fn pool(&self) -> Result<&[u32], DataError> {
        let pool = self.pool.get_or_init(|| {
            let mut rows = Vec::with_capacity(self.n_rows as usize * (self.seq_len + 1));
            for index in 0..self.n_rows {
                let batch = self.inner.train_batch(index, 1, self.seq_len).map_err(|e| e.to_string())?;
                rows.extend_from_slice(&batch.inputs);
                rows.push(*batch.targets.last().unwrap_or(&0));
            }
            Ok(rows)
        });
        pool.as_deref().map_err(|e| DataError::Internal(e.clone()))
    }
}

impl TokenSource for RepeatedRows<'_> {
    fn describe(&self) -> String {
        format!("{}, first {} unique tokens repeated", self.inner.describe(), self.n_rows * self.seq_len as u64)
    }

    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }

    fn train_batch(&self, index: u64, batch_size: usize, seq_len: usize) -> Result<Batch, DataError> {
        check_batch_shape(batch_size, seq_len)?;
        if seq_len != self.seq_len {
            return Err(DataError::InvalidRequest(format!(
                "seq_len = {seq_len}, but the repeated pool was cut into rows of {}",
                self.seq_len
            )));
        }
        let pool = self.pool()?;
        let width = seq_len + 1;
        let mut rows = Vec::with_capacity(batch_size * width);
        for j in 0..batch_size as u64 {
            let (row, _) = repeated_row(index * batch_size as u64 + j, self.n_rows, self.key);
            let start = row as usize * width;
            rows.extend_from_slice(&pool[start..start + width]);
        }
        Ok(Batch::from_rows(&rows, batch_size, seq_len))
    }

    fn validation_set(&self, n_sequences: usize, seq_len: usize) -> Result<ValidationSet, DataError> {
        self.inner.validation_set(n_sequences, seq_len)
    }

    fn unique_tokens(&self) -> Option<u64> {
        Some(self.n_rows * self.seq_len as u64)
    }

    fn data_seed(&self) -> Option<u64> {
        Some(self.seed)
    }

    fn token_files(&self) -> std::collections::BTreeMap<String, String> {
        self.inner.token_files()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_is_a_bijection_for_awkward_sizes() {
        for n in [1u64, 2, 3, 7, 64, 1000, 4097] {
            for key in [0u64, 1, 99] {
                let p = Permutation::new(n, key);
                let mut seen: Vec<u64> = (0..n).map(|i| p.apply(i)).collect();
                seen.sort_unstable();
                assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n = {n}, key = {key}");
            }
        }
        // Different keys give different orders.
        let a: Vec<u64> = (0..100).map(|i| Permutation::new(100, 1).apply(i)).collect();
        let b: Vec<u64> = (0..100).map(|i| Permutation::new(100, 2).apply(i)).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn every_epoch_visits_every_row_once_in_a_new_order() {
        let n = 50;
        let epochs: Vec<Vec<u64>> =
            (0..3).map(|e| (e * n..(e + 1) * n).map(|r| repeated_row(r, n, 7).0).collect()).collect();
        for (e, order) in epochs.iter().enumerate() {
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "epoch {e}");
            assert_eq!(repeated_row(e as u64 * n + 3, n, 7).1, e as u64);
        }
        assert_ne!(epochs[0], epochs[1]);
    }

    #[test]
    fn repeated_synthetic_rows_count_unique_tokens_and_epochs() {
        let config = crate::data::SyntheticConfig { vocab_size: 256, n_quanta: 16, ..Default::default() };
        let source = crate::data::SyntheticSource::new(&config).unwrap();
        // 10 rows of 8 predicted tokens.
        let repeated = RepeatedRows::new(&source, 85, 8, 0).unwrap();
        assert_eq!(repeated.unique_tokens(), Some(80));
        // 4 epochs = 40 rows = 10 batches of 4: each pooled row appears exactly 4 times.
        let mut counts = std::collections::HashMap::new();
        for index in 0..10 {
            let batch = repeated.train_batch(index, 4, 8).unwrap();
            for r in 0..4 {
                *counts.entry(batch.row_inputs(r).to_vec()).or_insert(0) += 1;
            }
        }
        assert_eq!(counts.len(), 10);
        assert!(counts.values().all(|&c| c == 4), "{counts:?}");
        // The pooled rows are the source's first training rows.
        let first = source.train_batch(0, 1, 8).unwrap();
        assert_eq!(counts.get(&first.inputs), Some(&4));
        assert!(RepeatedRows::new(&source, 7, 8, 0).is_err());
        assert!(repeated.train_batch(0, 4, 16).is_err());
    }
}
