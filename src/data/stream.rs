//! The file-backed token sources' common core: a memory-mapped array of little-endian u16 or u32
//! token ids (a text source's token cache, or a user's token file), the training and validation
//! streams cut from it, training rows in an order keyed by the run's seed, and a validation sample
//! of evenly spaced windows.
//!
//! Training rows are seq_len + 1 consecutive tokens of the training stream (rows overlap by one
//! token: each row predicts seq_len), visited in a fresh keyed pseudo-random order every epoch
//! (`repeat::repeated_row`). The key comes from the run's seed, or from the data section's
//! `data_seed` when one pins it, so seed-to-seed spread includes data-order noise. A run limited
//! to U unique tokens draws rows from the first U training tokens only (Muennighoff et al. 2023).
//!
//! The validation sample is `n` windows of seq_len + 1 tokens, the first at the start of the
//! validation stream, the last at its end, evenly spaced between: every part of the held-out
//! documents weighs in proportion to its length, and the sample depends only on the data and
//! (n, seq_len), so every run of a sweep is measured on the same tokens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::data::repeat::repeated_row;
use crate::data::{check_batch_shape, unigram_entropy, Batch, DataError, TokenSource, ValidationSet};

/// A read-only, memory-mapped array of token ids: `n_tokens` ids of `token_bytes` (2 or 4) bytes,
/// little-endian, from byte `data_start` of the file. Never copied: reads decode what they need.
pub struct MappedTokens {
    map: Mmap,
    pub path: PathBuf,
    token_bytes: usize,
    data_start: usize,
    n_tokens: u64,
}

impl MappedTokens {
    /// Maps `path`; the ids start at byte `data_start` and fill the rest of the file exactly.
    pub fn open(path: &Path, data_start: usize, token_bytes: usize) -> Result<MappedTokens, String> {
        let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        // SAFETY: the file is opened read-only; sweeplaw replaces its own caches by rename only,
        // and a user's token file changing under a running sweep is outside what it guards against
        // (its sha256 in run.json tells what was read at the start).
        let map = unsafe { Mmap::map(&file) }.map_err(|e| format!("{}: cannot map: {e}", path.display()))?;
        MappedTokens::from_map(map, path, data_start, 0, token_bytes)
    }

    /// Wraps an existing mapping (the token cache checks its own header first) whose ids run
    /// from byte `data_start` to `trailer` bytes before its end (the cache's checksum).
    pub fn from_map(
        map: Mmap,
        path: &Path,
        data_start: usize,
        trailer: usize,
        token_bytes: usize,
    ) -> Result<MappedTokens, String> {
        if !matches!(token_bytes, 2 | 4) {
            return Err(format!("{}: {token_bytes} bytes per token (2 or 4 expected)", path.display()));
        }
        let data = map.len().saturating_sub(trailer).checked_sub(data_start).ok_or_else(|| {
            format!("{}: {} bytes, shorter than its {data_start}-byte header", path.display(), map.len())
        })?;
        if data % token_bytes != 0 {
            return Err(format!(
                "{}: {data} bytes of token ids is not a whole number of {token_bytes}-byte ids (truncated?)",
                path.display()
            ));
        }
        let n_tokens = (data / token_bytes) as u64;
        Ok(MappedTokens { map, path: path.to_path_buf(), token_bytes, data_start, n_tokens })
    }

    pub fn n_tokens(&self) -> u64 {
        self.n_tokens
    }

    pub fn token_bytes(&self) -> usize {
        self.token_bytes
    }

    /// The whole file's bytes (header included), for hashing.
    pub fn file_bytes(&self) -> &[u8] {
        &self.map
    }

    /// The ids' bytes of tokens `start..end`.
    pub fn id_bytes(&self, start: u64, end: u64) -> &[u8] {
        let from = self.data_start + start as usize * self.token_bytes;
        let to = self.data_start + end as usize * self.token_bytes;
        &self.map[from..to]
    }

    /// Appends tokens `start..end` to `out`.
    pub fn extend(&self, start: u64, end: u64, out: &mut Vec<u32>) {
        let bytes = self.id_bytes(start, end);
        if self.token_bytes == 2 {
            out.extend(bytes.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]]) as u32));
        } else {
            out.extend(bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])));
        }
    }
}

/// A token stream made of segments (whole documents, in split order) of a [`MappedTokens`].
pub struct Stream {
    /// (start, end) token positions in the mapped array.
    segments: Vec<(u64, u64)>,
    /// Stream position where each segment starts, and the total at the end.
    starts: Vec<u64>,
}

impl Stream {
    pub fn new(segments: Vec<(u64, u64)>) -> Stream {
        let mut starts = vec![0u64];
        for (a, b) in &segments {
            starts.push(starts[starts.len() - 1] + (b - a));
        }
        Stream { segments, starts }
    }

    pub fn len(&self) -> u64 {
        *self.starts.last().unwrap_or(&0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of segments (documents).
    pub fn n_segments(&self) -> usize {
        self.segments.len()
    }

    /// The segment holding stream position `position`.
    pub fn segment_of(&self, position: u64) -> usize {
        self.starts.partition_point(|&s| s <= position).saturating_sub(1)
    }

    /// Appends stream tokens `from..from + count` to `out`.
    pub fn read(&self, tokens: &MappedTokens, from: u64, count: u64, out: &mut Vec<u32>) {
        let end = from + count;
        let mut segment = self.segment_of(from);
        let mut position = from;
        while position < end && segment < self.segments.len() {
            let (seg_start, seg_end) = self.segments[segment];
            let offset = position - self.starts[segment];
            let take = (seg_end - seg_start - offset).min(end - position);
            tokens.extend(seg_start + offset, seg_start + offset + take, out);
            position += take;
            segment += 1;
        }
    }
}

/// The key of the training row order for a seed. Seed 0 keeps the key the order had before it was
/// seeded, so seed-0 records stay reproducible.
pub fn row_order_key(seed: u64) -> u64 {
    const ROW_ORDER_KEY: u64 = 0x7e47_0d0c;
    ROW_ORDER_KEY ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Start positions of `n` windows of `width` tokens evenly spaced over a stream of `len` tokens:
/// the first at 0, the last ending at `len`. With len ≥ n·(width − 1) + 1 the spacing is at least
/// width − 1, so no two windows share a predicted token.
pub fn window_starts(len: u64, n: usize, width: u64) -> Vec<u64> {
    let last = len.saturating_sub(width);
    if n <= 1 {
        return vec![0; n];
    }
    (0..n as u128).map(|i| (i * last as u128 / (n as u128 - 1)) as u64).collect()
}

/// A training stream and a validation stream over one mapped token array: the file-backed
/// sources (text, token files) are this plus how they came to be.
pub struct Streams {
    pub tokens: MappedTokens,
    pub train: Stream,
    pub validation: Stream,
    pub vocab_size: usize,
    pub describe: String,
    /// Pins the training order whatever the run's seed (`data_seed`).
    pub data_seed: Option<u64>,
    /// sha256 of the files read as token ids, by path (token files; empty for a text cache).
    pub token_files: BTreeMap<String, String>,
}

impl Streams {
    /// Rows of seq_len + 1 tokens the first `limit` training tokens hold (each row predicts seq_len).
    pub fn train_rows(&self, limit: u64, seq_len: usize) -> Result<u64, DataError> {
        let usable = limit.min(self.train.len().saturating_sub(1));
        let rows = usable / seq_len.max(1) as u64;
        if rows == 0 {
            return Err(DataError::InvalidRequest(format!(
                "the training split holds {} tokens{}, less than one sequence of seq_len + 1 = {} tokens; \
                 add data or shorten model.seq_len",
                self.train.len(),
                if limit < self.train.len() { format!(" (limited to {limit})") } else { String::new() },
                seq_len + 1
            )));
        }
        Ok(rows)
    }

    /// The order seed a run with seed `run_seed` trains with.
    pub fn order_seed(&self, run_seed: u64) -> u64 {
        self.data_seed.unwrap_or(run_seed)
    }

    /// Training batch `index` over a pool of `n_rows` rows, in the order keyed by `order_seed`.
    pub fn batch_from(
        &self,
        n_rows: u64,
        index: u64,
        batch_size: usize,
        seq_len: usize,
        order_seed: u64,
    ) -> Result<Batch, DataError> {
        check_batch_shape(batch_size, seq_len)?;
        let key = row_order_key(order_seed);
        let mut rows = Vec::with_capacity(batch_size * (seq_len + 1));
        for j in 0..batch_size as u64 {
            let (row, _) = repeated_row(index * batch_size as u64 + j, n_rows, key);
            self.train.read(&self.tokens, row * seq_len as u64, seq_len as u64 + 1, &mut rows);
        }
        Ok(Batch::from_rows(&rows, batch_size, seq_len))
    }

    /// Start positions (in the validation stream) of the validation windows.
    pub fn validation_window_starts(&self, n_sequences: usize, seq_len: usize) -> Result<Vec<u64>, DataError> {
        check_batch_shape(n_sequences, seq_len)?;
        let needed = (n_sequences * seq_len + 1) as u64;
        if self.validation.len() < needed {
            return Err(DataError::InvalidRequest(format!(
                "the validation split holds {} tokens, fewer than the {needed} the evaluation needs \
                 ({n_sequences} sequences of {seq_len}); lower train.eval_tokens or hold out more data",
                self.validation.len()
            )));
        }
        Ok(window_starts(self.validation.len(), n_sequences, seq_len as u64 + 1))
    }

    /// The fixed validation set: evenly spaced windows over the whole validation stream.
    pub fn validation_set(&self, n_sequences: usize, seq_len: usize) -> Result<ValidationSet, DataError> {
        let starts = self.validation_window_starts(n_sequences, seq_len)?;
        let width = seq_len as u64 + 1;
        let mut rows = Vec::with_capacity(n_sequences * (seq_len + 1));
        let mut touched = vec![false; self.validation.n_segments()];
        for &start in &starts {
            self.validation.read(&self.tokens, start, width, &mut rows);
            let (first, last) = (self.validation.segment_of(start), self.validation.segment_of(start + width - 1));
            touched[first..=last].iter_mut().for_each(|t| *t = true);
        }
        let batch = Batch::from_rows(&rows, n_sequences, seq_len);
        let unigram_entropy = unigram_entropy(&batch.targets);
        let spacing =
            if n_sequences > 1 { (self.validation.len() - width) as f64 / (n_sequences - 1) as f64 } else { 0.0 };
        let sample = format!(
            "{n_sequences} windows of {width} tokens evenly spaced (every {spacing:.1} tokens) over the validation \
             stream of {} tokens in {} document(s); the windows hold tokens of {} of them",
            self.validation.len(),
            self.validation.n_segments(),
            touched.iter().filter(|&&t| t).count()
        );
        Ok(ValidationSet { batch, true_entropy: None, unigram_entropy, sample: Some(sample) })
    }

    /// The first `unique_tokens` training tokens (whole rows), in the order of `order_seed`.
    pub fn view(&self, unique_tokens: u64, seq_len: usize, run_seed: u64) -> Result<StreamView<'_>, DataError> {
        let n_rows = self.train_rows(unique_tokens, seq_len)?;
        Ok(StreamView { streams: self, n_rows, seq_len, order_seed: self.order_seed(run_seed) })
    }
}

impl TokenSource for Streams {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    fn train_batch(&self, index: u64, batch_size: usize, seq_len: usize) -> Result<Batch, DataError> {
        let n_rows = self.train_rows(u64::MAX, seq_len)?;
        self.batch_from(n_rows, index, batch_size, seq_len, self.order_seed(0))
    }

    fn validation_set(&self, n_sequences: usize, seq_len: usize) -> Result<ValidationSet, DataError> {
        Streams::validation_set(self, n_sequences, seq_len)
    }

    fn unique_tokens(&self) -> Option<u64> {
        Some(self.train.len().saturating_sub(1))
    }

    fn limited(
        &self,
        unique_tokens: u64,
        seq_len: usize,
        run_seed: u64,
    ) -> Option<Result<Box<dyn TokenSource + '_>, DataError>> {
        Some(self.view(unique_tokens, seq_len, run_seed).map(|view| Box::new(view) as Box<dyn TokenSource + '_>))
    }

    fn token_files(&self) -> BTreeMap<String, String> {
        self.token_files.clone()
    }
}

/// The first n_rows × seq_len (+ 1) training tokens of a stream, repeated in a seeded order.
pub struct StreamView<'a> {
    streams: &'a Streams,
    n_rows: u64,
    seq_len: usize,
    order_seed: u64,
}

impl TokenSource for StreamView<'_> {
    fn describe(&self) -> String {
        format!("{}, first {} training tokens", self.streams.describe, self.n_rows * self.seq_len as u64)
    }

    fn vocab_size(&self) -> usize {
        self.streams.vocab_size
    }

    fn train_batch(&self, index: u64, batch_size: usize, seq_len: usize) -> Result<Batch, DataError> {
        if seq_len != self.seq_len {
            return Err(DataError::InvalidRequest(format!(
                "seq_len = {seq_len}, but this view was cut into rows of {}",
                self.seq_len
            )));
        }
        self.streams.batch_from(self.n_rows, index, batch_size, seq_len, self.order_seed)
    }

    fn validation_set(&self, n_sequences: usize, seq_len: usize) -> Result<ValidationSet, DataError> {
        self.streams.validation_set(n_sequences, seq_len)
    }

    fn unique_tokens(&self) -> Option<u64> {
        Some(self.n_rows * self.seq_len as u64)
    }

    fn data_seed(&self) -> Option<u64> {
        Some(self.order_seed)
    }

    fn token_files(&self) -> BTreeMap<String, String> {
        self.streams.token_files.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_span_the_stream_evenly_without_sharing_targets() {
        assert_eq!(window_starts(100, 5, 11), vec![0, 22, 44, 66, 89]);
        assert_eq!(window_starts(100, 1, 11), vec![0]);
        // The tightest case: len = n·(width − 1) + 1 gives back-to-back windows.
        assert_eq!(window_starts(4 * 8 + 1, 4, 9), vec![0, 8, 16, 24]);
        for (len, n, width) in [(1000u64, 7usize, 33u64), (12_345, 40, 257), (97, 3, 32)] {
            let starts = window_starts(len, n, width);
            assert_eq!(starts[0], 0);
            assert_eq!(starts[n - 1] + width, len, "the last window ends at the stream's end");
            assert!(starts.windows(2).all(|w| w[1] - w[0] >= width - 1), "{starts:?}");
        }
    }

    #[test]
    fn row_order_key_of_seed_zero_is_the_unseeded_key() {
        assert_eq!(row_order_key(0), 0x7e47_0d0c);
        assert_ne!(row_order_key(1), row_order_key(2));
    }
}
