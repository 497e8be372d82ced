//! Natural text as a token source: local UTF-8 files (paths or globs), a byte-level BPE trained
//! on the training documents at a chosen vocabulary size (or an existing tokenizer.json), the
//! tokens cached once per (tokenizer, corpus) as a memory-mapped file, and a train/validation
//! split by whole documents that every run of a sweep shares.
//!
//! Training rows are seq_len + 1 consecutive tokens of the training stream (the training
//! documents in split order, each ended by `<|endoftext|>`), visited in a fresh pseudo-random
//! order every epoch (`repeat`); a run limited to U unique tokens draws rows from the first U
//! tokens only (Muennighoff et al. 2023). The validation set is the first rows of the
//! validation stream, the same for every run.
//!
//! Caches live in `cache_dir` (relative to the config file), else `$SWEEPLAW_CACHE`, else
//! `$XDG_CACHE_HOME/sweeplaw`, else `~/.cache/sweeplaw`: `bpe-<vocab>-<key>/tokenizer.json`
//! for a trained tokenizer and `tokens-<tokenizer hash>-<corpus hash>.bin` for the tokens.

pub mod bpe;
pub mod cache;
pub mod corpus;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::repeat::repeated_row;
use crate::data::{check_batch_shape, unigram_entropy, Batch, DataError, TokenSource, ValidationSet};
use cache::{CacheKey, TokenCache};
use corpus::{hex, Corpus};

/// `[data] kind = "text"`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextConfig {
    /// UTF-8 files or glob patterns (`data/corpus/**/*.txt`), relative to the config file.
    pub files: Vec<String>,
    /// Train a byte-level BPE of this many tokens; with `tokenizer`, the models' vocabulary size
    /// (at least the tokenizer's).
    #[serde(default)]
    pub vocab_size: Option<usize>,
    /// An existing tokenizer.json instead of training one.
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// Cut files into documents at this string (default: one document per file).
    #[serde(default)]
    pub document_separator: Option<String>,
    /// Share of the corpus bytes held out for validation, in whole documents.
    #[serde(default = "default_validation_fraction")]
    pub validation_fraction: f64,
    /// Seed of the document shuffle that chooses the split and the training order.
    #[serde(default)]
    pub split_seed: u64,
    /// Where the tokenizer and the token cache go.
    #[serde(default)]
    pub cache_dir: Option<String>,
    /// The config file's directory (set when the config is loaded; not part of the config).
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

pub(crate) fn default_validation_fraction() -> f64 {
    0.02
}

impl PartialEq for TextConfig {
    /// Equal when they describe the same data; where the config file lives does not count.
    fn eq(&self, other: &Self) -> bool {
        self.files == other.files
            && self.vocab_size == other.vocab_size
            && self.tokenizer == other.tokenizer
            && self.document_separator == other.document_separator
            && self.validation_fraction == other.validation_fraction
            && self.split_seed == other.split_seed
            && self.cache_dir == other.cache_dir
    }
}

impl TextConfig {
    fn base(&self) -> PathBuf {
        self.base_dir.clone().unwrap_or_else(|| PathBuf::from("."))
    }

    /// A path from the config, resolved against the config file's directory.
    pub fn resolve(&self, path: &str) -> PathBuf {
        self.base().join(path)
    }

    /// Checks the fields and returns the models' vocabulary size (reading `tokenizer` if needed).
    pub fn validate(&self) -> Result<usize, DataError> {
        if !(self.validation_fraction > 0.0 && self.validation_fraction < 1.0) {
            return Err(DataError::config(
                "validation_fraction",
                format!("{} must be between 0 and 1", self.validation_fraction),
            ));
        }
        if self.files.is_empty() {
            return Err(DataError::config("files", "list at least one file or glob pattern"));
        }
        match (&self.tokenizer, self.vocab_size) {
            (None, None) => Err(DataError::config(
                "vocab_size",
                "give vocab_size (train a BPE tokenizer) or tokenizer (a tokenizer.json)",
            )),
            (None, Some(v)) if !(bpe::MIN_VOCAB..=1 << 24).contains(&v) => {
                Err(DataError::config("vocab_size", format!("{v} must be in {}..={}", bpe::MIN_VOCAB, 1 << 24)))
            }
            (None, Some(v)) => Ok(v),
            (Some(path), given) => {
                let loaded = bpe::load(&self.resolve(path))?;
                match given {
                    Some(v) if v < loaded.vocab_size() => Err(DataError::config(
                        "vocab_size",
                        format!("{v} is below the {} tokens of {}", loaded.vocab_size(), loaded.path.display()),
                    )),
                    Some(v) => Ok(v),
                    None => Ok(loaded.vocab_size()),
                }
            }
        }
    }

    /// The cache directory: `cache_dir`, `$SWEEPLAW_CACHE`, `$XDG_CACHE_HOME/sweeplaw` or `~/.cache/sweeplaw`.
    pub fn cache_dir(&self) -> Result<PathBuf, DataError> {
        if let Some(dir) = &self.cache_dir {
            return Ok(self.resolve(dir));
        }
        let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        env("SWEEPLAW_CACHE")
            .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("sweeplaw")))
            .or_else(|| env("HOME").map(|d| d.join(".cache").join("sweeplaw")))
            .ok_or_else(|| DataError::config("cache_dir", "not set, and neither SWEEPLAW_CACHE nor HOME is"))
    }
}

/// A token stream made of document segments of the cache, in split order.
struct Stream {
    /// (start, end) token positions in the cache.
    segments: Vec<(u64, u64)>,
    /// Stream position where each segment starts, and the total at the end.
    starts: Vec<u64>,
}

impl Stream {
    fn new(cache: &TokenCache, documents: &[usize]) -> Stream {
        let segments: Vec<(u64, u64)> = documents.iter().map(|&d| (cache.offsets[d], cache.offsets[d + 1])).collect();
        let mut starts = vec![0u64];
        for (a, b) in &segments {
            starts.push(starts[starts.len() - 1] + (b - a));
        }
        Stream { segments, starts }
    }

    fn len(&self) -> u64 {
        *self.starts.last().unwrap_or(&0)
    }

    /// Appends stream tokens `from..from + count` to `out`.
    fn read(&self, cache: &TokenCache, from: u64, count: u64, out: &mut Vec<u32>) {
        let end = from + count;
        let mut segment = self.starts.partition_point(|&s| s <= from).saturating_sub(1);
        let mut position = from;
        while position < end && segment < self.segments.len() {
            let (seg_start, seg_end) = self.segments[segment];
            let offset = position - self.starts[segment];
            let take = (seg_end - seg_start - offset).min(end - position);
            cache.extend(seg_start + offset, seg_start + offset + take, out);
            position += take;
            segment += 1;
        }
    }
}

/// How the source came to be: for tests and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildReport {
    pub trained_tokenizer: bool,
    pub tokenized: bool,
}

/// The text token source.
pub struct TextSource {
    cache: Arc<TokenCache>,
    train: Stream,
    validation: Stream,
    vocab_size: usize,
    describe: String,
    pub report: BuildReport,
    pub tokenizer_path: PathBuf,
}

const ROW_ORDER_KEY: u64 = 0x7e47_0d0c;

impl TextSource {
    /// Reads the corpus, trains or loads the tokenizer, and opens (building if needed) the cache.
    pub fn new(config: &TextConfig) -> Result<TextSource, DataError> {
        let vocab_size = config.validate()?;
        let files = corpus::expand_files(&config.files, &config.base())?;
        let corpus = corpus::read_corpus(&files, config.document_separator.as_deref())?;
        let split = corpus::split_documents(&corpus, config.validation_fraction, config.split_seed)?;
        let cache_dir = config.cache_dir()?;
        let (tokenizer, trained_tokenizer) = tokenizer_for(config, &corpus, &split.train, &cache_dir)?;
        if tokenizer.vocab_size() > vocab_size {
            return Err(DataError::config(
                "vocab_size",
                format!("{vocab_size} is below the {} tokens of {}", tokenizer.vocab_size(), tokenizer.path.display()),
            ));
        }
        let key = CacheKey {
            tokenizer_hash: tokenizer.hash,
            corpus_hash: corpus.hash,
            vocab_size: tokenizer.vocab_size() as u64,
        };
        let path = cache_dir.join(format!("tokens-{}-{}.bin", hex(&key.tokenizer_hash, 16), hex(&corpus.hash, 16)));
        let (cache, tokenized) = open_or_build(&path, &key, &corpus, &tokenizer)?;
        let train = Stream::new(&cache, &split.train);
        let validation = Stream::new(&cache, &split.validation);
        let describe = format!(
            "text(files={}, documents={} ({} train, {} validation), tokens={} ({} train), tokenizer={} sha256:{}, vocab={})",
            files.len(),
            corpus.documents.len(),
            split.train.len(),
            split.validation.len(),
            cache.n_tokens(),
            train.len(),
            tokenizer.path.display(),
            hex(&tokenizer.hash, 12),
            tokenizer.vocab_size()
        );
        Ok(TextSource {
            cache: Arc::new(cache),
            train,
            validation,
            vocab_size,
            describe,
            report: BuildReport { trained_tokenizer, tokenized },
            tokenizer_path: tokenizer.path,
        })
    }

    /// Tokens of the training stream.
    pub fn train_tokens(&self) -> u64 {
        self.train.len()
    }

    /// Tokens of the validation stream.
    pub fn validation_tokens(&self) -> u64 {
        self.validation.len()
    }

    /// Rows of seq_len + 1 tokens the first `limit` training tokens hold (each row predicts seq_len).
    fn train_rows(&self, limit: u64, seq_len: usize) -> Result<u64, DataError> {
        let usable = limit.min(self.train.len().saturating_sub(1));
        let rows = usable / seq_len as u64;
        if rows == 0 {
            return Err(DataError::InvalidRequest(format!(
                "the training split holds {} tokens{}, less than one sequence of seq_len + 1 = {} tokens; \
                 add text or shorten model.seq_len",
                self.train.len(),
                if limit < self.train.len() { format!(" (limited to {limit})") } else { String::new() },
                seq_len + 1
            )));
        }
        Ok(rows)
    }

    fn batch_from(&self, n_rows: u64, index: u64, batch_size: usize, seq_len: usize) -> Result<Batch, DataError> {
        check_batch_shape(batch_size, seq_len)?;
        let mut rows = Vec::with_capacity(batch_size * (seq_len + 1));
        for j in 0..batch_size as u64 {
            let (row, _) = repeated_row(index * batch_size as u64 + j, n_rows, ROW_ORDER_KEY);
            self.train.read(&self.cache, row * seq_len as u64, seq_len as u64 + 1, &mut rows);
        }
        Ok(Batch::from_rows(&rows, batch_size, seq_len))
    }
}

/// Loads the configured tokenizer, or the trained one from the cache, or trains and saves it.
fn tokenizer_for(
    config: &TextConfig,
    corpus: &Corpus,
    train_documents: &[usize],
    cache_dir: &Path,
) -> Result<(bpe::LoadedTokenizer, bool), DataError> {
    if let Some(path) = &config.tokenizer {
        return Ok((bpe::load(&config.resolve(path))?, false));
    }
    let vocab_size = config.vocab_size.unwrap_or(bpe::MIN_VOCAB);
    let mut hasher = Sha256::new();
    hasher.update(b"byte-level-bpe-v1");
    hasher.update(corpus.hash);
    for value in [vocab_size as u64, config.validation_fraction.to_bits(), config.split_seed] {
        hasher.update(value.to_le_bytes());
    }
    let key: [u8; 32] = hasher.finalize().into();
    let path = cache_dir.join(format!("bpe-{vocab_size}-{}", hex(&key, 16))).join("tokenizer.json");
    if path.exists() {
        match bpe::load(&path) {
            Ok(loaded) => return Ok((loaded, false)),
            Err(e) => eprintln!("warning: {e}; training it again"),
        }
    }
    let documents = train_documents.iter().map(|&d| corpus.documents[d].text.as_str());
    let tokenizer = bpe::train(documents, vocab_size)?;
    bpe::save(&tokenizer, &path)?;
    Ok((bpe::load(&path)?, true))
}

/// Opens the token cache, or tokenizes the corpus and writes it (when absent or stale).
fn open_or_build(
    path: &Path,
    key: &CacheKey,
    corpus: &Corpus,
    tokenizer: &bpe::LoadedTokenizer,
) -> Result<(TokenCache, bool), DataError> {
    match TokenCache::open(path, key) {
        Ok(Some(cache)) => return Ok((cache, false)),
        Ok(None) => {}
        Err(reason) => eprintln!("warning: token cache {reason}; tokenizing again"),
    }
    let documents = tokenize(corpus, tokenizer)?;
    cache::write(path, key, &documents)?;
    match TokenCache::open(path, key) {
        Ok(Some(cache)) => Ok((cache, true)),
        Ok(None) => Err(DataError::config("cache_dir", format!("{}: vanished after writing", path.display()))),
        Err(reason) => Err(DataError::config("cache_dir", reason)),
    }
}

/// Token ids of every document, each followed by the separator, tokenized in parallel.
fn tokenize(corpus: &Corpus, tokenizer: &bpe::LoadedTokenizer) -> Result<Vec<Vec<u32>>, DataError> {
    use rayon::prelude::*;
    corpus
        .documents
        .par_iter()
        .map(|document| {
            let mut ids = bpe::encode(&tokenizer.tokenizer, &document.text, &document.origin)?;
            ids.extend(tokenizer.separator);
            Ok(ids)
        })
        .collect()
}

impl TokenSource for TextSource {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    fn train_batch(&self, index: u64, batch_size: usize, seq_len: usize) -> Result<Batch, DataError> {
        let n_rows = self.train_rows(u64::MAX, seq_len.max(1))?;
        self.batch_from(n_rows, index, batch_size, seq_len)
    }

    fn validation_set(&self, n_sequences: usize, seq_len: usize) -> Result<ValidationSet, DataError> {
        check_batch_shape(n_sequences, seq_len)?;
        let needed = (n_sequences * seq_len + 1) as u64;
        if self.validation.len() < needed {
            return Err(DataError::InvalidRequest(format!(
                "the validation split holds {} tokens, fewer than the {needed} the evaluation needs \
                 ({n_sequences} sequences of {seq_len}); lower train.eval_tokens or raise data.validation_fraction",
                self.validation.len()
            )));
        }
        let mut rows = Vec::with_capacity(n_sequences * (seq_len + 1));
        for row in 0..n_sequences as u64 {
            self.validation.read(&self.cache, row * seq_len as u64, seq_len as u64 + 1, &mut rows);
        }
        let batch = Batch::from_rows(&rows, n_sequences, seq_len);
        let unigram_entropy = unigram_entropy(&batch.targets);
        Ok(ValidationSet { batch, true_entropy: None, unigram_entropy })
    }

    fn unique_tokens(&self) -> Option<u64> {
        Some(self.train.len().saturating_sub(1))
    }

    fn limited(&self, unique_tokens: u64, seq_len: usize) -> Option<Result<Box<dyn TokenSource + '_>, DataError>> {
        let view = self
            .train_rows(unique_tokens, seq_len.max(1))
            .map(|n_rows| Box::new(TextView { source: self, n_rows, seq_len }) as Box<dyn TokenSource + '_>);
        Some(view)
    }
}

/// The first n_rows × seq_len (+ 1) training tokens of a text source, repeated.
struct TextView<'a> {
    source: &'a TextSource,
    n_rows: u64,
    seq_len: usize,
}

impl TokenSource for TextView<'_> {
    fn describe(&self) -> String {
        format!("{}, first {} training tokens", self.source.describe, self.n_rows * self.seq_len as u64)
    }

    fn vocab_size(&self) -> usize {
        self.source.vocab_size
    }

    fn train_batch(&self, index: u64, batch_size: usize, seq_len: usize) -> Result<Batch, DataError> {
        if seq_len != self.seq_len {
            return Err(DataError::InvalidRequest(format!(
                "seq_len = {seq_len}, but this view was cut into rows of {}",
                self.seq_len
            )));
        }
        self.source.batch_from(self.n_rows, index, batch_size, seq_len)
    }

    fn validation_set(&self, n_sequences: usize, seq_len: usize) -> Result<ValidationSet, DataError> {
        self.source.validation_set(n_sequences, seq_len)
    }

    fn unique_tokens(&self) -> Option<u64> {
        Some(self.n_rows * self.seq_len as u64)
    }
}

#[cfg(test)]
pub(crate) mod tests;
