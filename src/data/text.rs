//! Natural text as a token source: local UTF-8 files (paths or globs), a byte-level BPE trained
//! on the training documents at a chosen vocabulary size (or an existing tokenizer.json), the
//! tokens cached once per (tokenizer, corpus) as a memory-mapped file, and a train/validation
//! split by whole documents that every run of a sweep shares.
//!
//! The training stream is the training documents in split order, each ended by `<|endoftext|>`;
//! the validation stream the held-out ones. Rows, their seeded order and the validation windows
//! are [`stream`](crate::data::stream)'s.
//!
//! Caches live in `cache_dir` (relative to the config file), else `$SWEEPLAW_CACHE`, else
//! `$XDG_CACHE_HOME/sweeplaw`, else `~/.cache/sweeplaw`: `bpe-<vocab>-<key>/tokenizer.json`
//! for a trained tokenizer and `tokens-<tokenizer hash>-<corpus hash>.bin` for the tokens.

pub mod bpe;
pub mod cache;
pub mod corpus;
pub mod records;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::stream::{Stream, Streams};
use crate::data::{Batch, DataError, TokenSource, ValidationSet};
use cache::{CacheKey, TokenCache};
use corpus::{hex, Corpus};

/// `[data] kind = "text"`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextConfig {
    /// Files or glob patterns (`data/corpus/**/*.txt`), relative to the config file: UTF-8 text,
    /// `.parquet`, or JSON lines (`.jsonl`, `.json`, optionally `.gz` / `.zst`).
    pub files: Vec<String>,
    /// The column (parquet) or field (JSON lines) holding each record's text (default "text").
    #[serde(default)]
    pub text_field: Option<String>,
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
    /// Seed of the document shuffle that chooses the split (and the documents' order in the
    /// training stream).
    #[serde(default)]
    pub split_seed: u64,
    /// Pins the order training rows are visited in; default: the run's seed keys it.
    #[serde(default)]
    pub data_seed: Option<u64>,
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
            && self.text_field == other.text_field
            && self.vocab_size == other.vocab_size
            && self.tokenizer == other.tokenizer
            && self.document_separator == other.document_separator
            && self.validation_fraction == other.validation_fraction
            && self.split_seed == other.split_seed
            && self.data_seed == other.data_seed
            && self.cache_dir == other.cache_dir
    }
}

impl TextConfig {
    fn base(&self) -> PathBuf {
        self.base_dir.clone().unwrap_or_else(|| PathBuf::from("."))
    }

    /// The column or field records keep their text in.
    pub fn text_field(&self) -> &str {
        self.text_field.as_deref().unwrap_or("text")
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

/// How the source came to be: for tests and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildReport {
    pub trained_tokenizer: bool,
    pub tokenized: bool,
}

/// The text token source.
pub struct TextSource {
    pub(crate) streams: Streams,
    pub report: BuildReport,
    pub tokenizer_path: PathBuf,
    /// The tokenizer's vocabulary (the models' may be larger).
    tokenizer_vocab: usize,
    /// Whether the tokenizer has an end-of-text token to end each document with.
    separated: bool,
}

/// In the description of text whose tokenizer has no `<|endoftext|>` (its documents run
/// together), so that the record says so.
const NO_SEPARATOR: &str = ", no document separator";

impl TextSource {
    /// Reads the corpus, trains or loads the tokenizer, and opens (building if needed) the cache.
    pub fn new(config: &TextConfig) -> Result<TextSource, DataError> {
        let vocab_size = config.validate()?;
        let files = corpus::expand_files(&config.files, &config.base())?;
        let corpus = corpus::read_corpus(&files, config.document_separator.as_deref(), config.text_field())?;
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
        let segments = |documents: &[usize]| -> Vec<(u64, u64)> {
            documents.iter().map(|&d| (cache.offsets[d], cache.offsets[d + 1])).collect()
        };
        let train = Stream::new(segments(&split.train));
        let validation = Stream::new(segments(&split.validation));
        // The description is what a run records as its data and what resume and `--reuse`
        // compare, so it must change whenever the text does. A trained tokenizer's cache path
        // already carries the corpus hash (`tokenizer_for`); a given tokenizer's does not, and
        // an edit that keeps every count (two documents' texts swapped, a word replaced by one
        // of as many tokens) would otherwise pass as the same data: name the corpus hash then.
        let mut corpus_named = match config.tokenizer {
            Some(_) => format!(", corpus sha256:{}", hex(&corpus.hash, 12)),
            None => String::new(),
        };
        if tokenizer.separator.is_none() {
            corpus_named.push_str(NO_SEPARATOR);
        }
        let describe = format!(
            "text(files={}, documents={} ({} train, {} validation), tokens={} ({} train), tokenizer={} sha256:{}, vocab={}{})",
            files.len(),
            corpus.documents.len(),
            split.train.len(),
            split.validation.len(),
            cache.n_tokens(),
            train.len(),
            tokenizer.path.display(),
            hex(&tokenizer.hash, 12),
            tokenizer.vocab_size(),
            corpus_named
        );
        let streams = Streams {
            tokens: cache.tokens,
            train,
            validation,
            vocab_size,
            describe,
            data_seed: config.data_seed,
            token_files: Default::default(),
        };
        let tokenizer_vocab = tokenizer.vocab_size();
        let separated = tokenizer.separator.is_some();
        Ok(TextSource {
            streams,
            report: BuildReport { trained_tokenizer, tokenized },
            tokenizer_path: tokenizer.path,
            tokenizer_vocab,
            separated,
        })
    }

    /// Tokens of the training stream.
    pub fn train_tokens(&self) -> u64 {
        self.streams.train.len()
    }

    /// Tokens of the validation stream.
    pub fn validation_tokens(&self) -> u64 {
        self.streams.validation.len()
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
        self.streams.describe()
    }

    fn vocab_size(&self) -> usize {
        self.streams.vocab_size
    }

    fn tokens_in_vocabulary(&self) -> usize {
        self.tokenizer_vocab
    }

    fn separates_documents(&self) -> bool {
        self.separated
    }

    fn train_batch(&self, index: u64, batch_size: usize, seq_len: usize) -> Result<Batch, DataError> {
        self.streams.train_batch(index, batch_size, seq_len)
    }

    fn validation_set(&self, n_sequences: usize, seq_len: usize) -> Result<ValidationSet, DataError> {
        self.streams.validation_set(n_sequences, seq_len)
    }

    fn unique_tokens(&self) -> Option<u64> {
        self.streams.unique_tokens()
    }

    fn limited(
        &self,
        unique_tokens: u64,
        seq_len: usize,
        run_seed: u64,
    ) -> Option<Result<Box<dyn TokenSource + '_>, DataError>> {
        self.streams.limited(unique_tokens, seq_len, run_seed)
    }
}

#[cfg(test)]
pub(crate) mod tests;
