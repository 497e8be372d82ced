//! Already tokenized data (`[data] kind = "tokens"`): flat arrays of little-endian uint16 or
//! uint32 token ids, as nanoGPT-style preparation scripts write them (`train.bin`, `val.bin`), or
//! NumPy `.npy` arrays, whose own header gives the dtype and length.
//!
//! The files are memory-mapped, never copied; opening one reads it once to check that every id
//! is below `vocab_size` (an id at or above it is an error naming the file and the offset) and to
//! take its sha256, which run.json records so the records say what was trained on. A single file
//! can be split: its last `validation_fraction` of tokens is held out (from the next document
//! separator on, when `document_separator_id` is given). Rows, their seeded order and the
//! validation windows are [`stream`](crate::data::stream)'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::stream::{MappedTokens, Stream, Streams};
use crate::data::{Batch, DataError, TokenSource, ValidationSet};

/// `[data] kind = "tokens"`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensConfig {
    /// The training tokens (`.bin`: raw ids; `.npy`: a NumPy array), relative to the config file.
    pub train: String,
    /// The validation tokens; without it, the end of `train` is held out.
    #[serde(default)]
    pub validation: Option<String>,
    /// With a single file: the share of its tokens held out for validation (default 0.02).
    #[serde(default)]
    pub validation_fraction: Option<f64>,
    /// "u16" or "u32" for raw files; `.npy` files say their own (given, it must agree).
    #[serde(default)]
    pub dtype: Option<String>,
    /// The models' vocabulary size: every id must be below it.
    pub vocab_size: usize,
    /// The id that ends each document (e.g. GPT-2's 50256), if the files have one.
    #[serde(default)]
    pub document_separator_id: Option<u32>,
    /// Pins the order training rows are visited in; default: the run's seed keys it.
    #[serde(default)]
    pub data_seed: Option<u64>,
    /// The config file's directory (set when the config is loaded; not part of the config).
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

impl PartialEq for TokensConfig {
    /// Equal when they describe the same data; where the config file lives does not count.
    fn eq(&self, other: &Self) -> bool {
        self.train == other.train
            && self.validation == other.validation
            && self.validation_fraction == other.validation_fraction
            && self.dtype == other.dtype
            && self.vocab_size == other.vocab_size
            && self.document_separator_id == other.document_separator_id
            && self.data_seed == other.data_seed
    }
}

const DEFAULT_VALIDATION_FRACTION: f64 = 0.02;

impl TokensConfig {
    fn resolve(&self, path: &str) -> PathBuf {
        self.base_dir.clone().unwrap_or_else(|| PathBuf::from(".")).join(path)
    }

    /// Checks the fields without reading the files; returns the models' vocabulary size.
    pub fn validate(&self) -> Result<usize, DataError> {
        if self.vocab_size == 0 || self.vocab_size > 1 << 32 {
            return Err(DataError::config("vocab_size", format!("{} must be in 1..=2^32", self.vocab_size)));
        }
        if let Some(dtype) = &self.dtype {
            let bytes = dtype_bytes(dtype)?;
            if bytes == 2 && self.vocab_size > 1 << 16 {
                return Err(DataError::config(
                    "vocab_size",
                    format!("{} does not fit dtype = \"u16\" (at most 65536 ids)", self.vocab_size),
                ));
            }
        }
        match (&self.validation, self.validation_fraction) {
            (Some(_), Some(_)) => {
                return Err(DataError::config(
                    "validation_fraction",
                    "give either a validation file or a validation_fraction of the train file, not both",
                ))
            }
            (None, Some(f)) if !(f > 0.0 && f < 1.0) => {
                return Err(DataError::config("validation_fraction", format!("{f} must be between 0 and 1")))
            }
            _ => {}
        }
        if let Some(id) = self.document_separator_id {
            if id as usize >= self.vocab_size {
                return Err(DataError::config(
                    "document_separator_id",
                    format!("{id} is not below vocab_size = {}", self.vocab_size),
                ));
            }
        }
        Ok(self.vocab_size)
    }
}

fn dtype_bytes(dtype: &str) -> Result<usize, DataError> {
    match dtype {
        "u16" => Ok(2),
        "u32" => Ok(4),
        other => Err(DataError::config("dtype", format!("{other:?} must be \"u16\" or \"u32\""))),
    }
}

/// A token file opened and checked: its ids, sha256 and document ends.
struct TokenFile {
    tokens: MappedTokens,
    sha256: String,
    /// Positions just after each separator id (document ends), when a separator is given.
    document_ends: Vec<u64>,
}

/// Where the ids start, how wide they are and (for `.npy`) how many there must be: from the
/// `.npy` header, or the configured dtype.
fn layout(path: &Path, config: &TokensConfig, field: &'static str) -> Result<(usize, usize, Option<u64>), DataError> {
    let is_npy = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if !is_npy {
        let dtype = config.dtype.as_deref().ok_or_else(|| {
            DataError::config("dtype", format!("{}: a raw token file needs dtype = \"u16\" or \"u32\"", path.display()))
        })?;
        return Ok((0, dtype_bytes(dtype)?, None));
    }
    let mut head = vec![0u8; 4096];
    let read = {
        use std::io::Read;
        let mut file =
            std::fs::File::open(path).map_err(|e| DataError::config(field, format!("{}: {e}", path.display())))?;
        let mut filled = 0;
        loop {
            let n = file
                .read(&mut head[filled..])
                .map_err(|e| DataError::config(field, format!("{}: {e}", path.display())))?;
            if n == 0 || filled + n == head.len() {
                break filled + n;
            }
            filled += n;
        }
    };
    let header =
        npy::parse_header(&head[..read]).map_err(|e| DataError::config(field, format!("{}: {e}", path.display())))?;
    if let Some(dtype) = &config.dtype {
        if dtype_bytes(dtype)? != header.token_bytes {
            return Err(DataError::config(
                "dtype",
                format!("{dtype:?}, but {} holds {}", path.display(), header.descr),
            ));
        }
    }
    Ok((header.data_start, header.token_bytes, Some(header.shape.iter().product())))
}

/// Maps `path`, checks every id against `vocab_size`, hashes it and finds the document ends.
fn open_file(path: &Path, config: &TokensConfig, field: &'static str) -> Result<TokenFile, DataError> {
    let (data_start, token_bytes, expected) = layout(path, config, field)?;
    let tokens = MappedTokens::open(path, data_start, token_bytes).map_err(|e| DataError::config(field, e))?;
    if let Some(expected) = expected.filter(|&e| e != tokens.n_tokens()) {
        return Err(DataError::config(
            field,
            format!(
                "{}: its header says {expected} ids but it holds {} (truncated?)",
                path.display(),
                tokens.n_tokens()
            ),
        ));
    }
    if tokens.n_tokens() == 0 {
        return Err(DataError::config(field, format!("{}: holds no token ids", path.display())));
    }
    let sha256 = {
        let mut hasher = Sha256::new();
        hasher.update(tokens.file_bytes());
        crate::data::text::corpus::hex(&hasher.finalize(), 64)
    };
    let vocab = config.vocab_size as u64;
    let mut document_ends = Vec::new();
    const CHUNK: u64 = 1 << 20;
    let mut ids = Vec::with_capacity(CHUNK as usize);
    let mut start = 0;
    while start < tokens.n_tokens() {
        let end = (start + CHUNK).min(tokens.n_tokens());
        ids.clear();
        tokens.extend(start, end, &mut ids);
        if let Some(at) = ids.iter().position(|&id| id as u64 >= vocab) {
            let offset = start + at as u64;
            return Err(DataError::config(
                field,
                format!(
                    "{}: token id {} at offset {offset} (byte {}) is not below vocab_size = {vocab}",
                    path.display(),
                    ids[at],
                    data_start as u64 + offset * token_bytes as u64
                ),
            ));
        }
        if let Some(separator) = config.document_separator_id {
            document_ends
                .extend(ids.iter().enumerate().filter(|(_, &id)| id == separator).map(|(i, _)| start + i as u64 + 1));
        }
        start = end;
    }
    Ok(TokenFile { tokens, sha256, document_ends })
}

/// Documents of tokens `from..to` of a file: cut after each separator (the rest is one more).
fn documents(file: &TokenFile, from: u64, to: u64) -> Vec<(u64, u64)> {
    let mut segments = Vec::new();
    let mut start = from;
    let first = file.document_ends.partition_point(|&e| e <= from);
    for &end in file.document_ends[first..].iter().take_while(|&&e| e <= to) {
        segments.push((start, end));
        start = end;
    }
    if start < to {
        segments.push((start, to));
    }
    segments
}

/// The token-file source.
pub struct TokensSource {
    streams: Streams,
    /// The validation file's mapping, when it is a file of its own.
    validation_streams: Option<Streams>,
}

impl TokensSource {
    pub fn new(config: &TokensConfig) -> Result<TokensSource, DataError> {
        let vocab_size = config.validate()?;
        let train_path = config.resolve(&config.train);
        let train = open_file(&train_path, config, "train")?;
        let mut token_files = BTreeMap::new();
        token_files.insert(train_path.display().to_string(), train.sha256.clone());
        let n = train.tokens.n_tokens();
        let (train_stream, held_out, validation_file) = match &config.validation {
            Some(name) => {
                let path = config.resolve(name);
                let validation = open_file(&path, config, "validation")?;
                if validation.sha256 == train.sha256 {
                    return Err(DataError::config(
                        "validation",
                        format!(
                            "{} holds the same tokens as train ({}): the validation loss would be measured on \
                             training tokens; give a held-out file, or leave validation out to hold out the last \
                             validation_fraction (default {DEFAULT_VALIDATION_FRACTION}) of train",
                            path.display(),
                            train_path.display()
                        ),
                    ));
                }
                token_files.insert(path.display().to_string(), validation.sha256.clone());
                let segments = documents(&validation, 0, validation.tokens.n_tokens());
                (Stream::new(vec![(0, n)]), Stream::new(segments), Some(validation))
            }
            None => {
                let fraction = config.validation_fraction.unwrap_or(DEFAULT_VALIDATION_FRACTION);
                let mut cut = n - ((n as f64 * fraction).ceil() as u64).clamp(1, n);
                if config.document_separator_id.is_some() {
                    // The held-out part starts at a document boundary: the first one at or after the cut.
                    let next = train.document_ends.partition_point(|&e| e < cut);
                    cut = train.document_ends.get(next).copied().unwrap_or(n);
                }
                if cut == 0 || cut >= n {
                    return Err(DataError::config(
                        "validation_fraction",
                        format!(
                            "{}: holding out {fraction} of its {n} tokens{} leaves no training or no validation tokens",
                            train_path.display(),
                            if config.document_separator_id.is_some() { " at a document boundary" } else { "" }
                        ),
                    ));
                }
                (Stream::new(vec![(0, cut)]), Stream::new(documents(&train, cut, n)), None)
            }
        };
        let validation_tokens = held_out.len();
        let describe = format!(
            "tokens(train={} ({} tokens, sha256:{}){}, {} bytes per id, vocab={vocab_size})",
            train_path.display(),
            train_stream.len(),
            &train.sha256[..12],
            match (&validation_file, &config.validation) {
                (Some(v), Some(name)) => format!(
                    ", validation={} ({validation_tokens} tokens, sha256:{})",
                    config.resolve(name).display(),
                    &v.sha256[..12]
                ),
                _ => format!(", validation = its last {validation_tokens} tokens"),
            },
            train.tokens.token_bytes()
        );
        let make = |tokens: MappedTokens, train: Stream, validation: Stream| Streams {
            tokens,
            train,
            validation,
            vocab_size,
            describe: describe.clone(),
            data_seed: config.data_seed,
            token_files: token_files.clone(),
        };
        match validation_file {
            None => Ok(TokensSource { streams: make(train.tokens, train_stream, held_out), validation_streams: None }),
            Some(validation) => {
                // Two mappings: training rows come from the train file, the windows from the other.
                let validation_streams = make(validation.tokens, Stream::new(Vec::new()), held_out);
                let streams = make(train.tokens, train_stream, Stream::new(Vec::new()));
                Ok(TokensSource { streams, validation_streams: Some(validation_streams) })
            }
        }
    }

    fn validation_streams(&self) -> &Streams {
        self.validation_streams.as_ref().unwrap_or(&self.streams)
    }

    /// Tokens of the training stream.
    pub fn train_tokens(&self) -> u64 {
        self.streams.train.len()
    }

    /// Tokens of the validation stream.
    pub fn validation_tokens(&self) -> u64 {
        self.validation_streams().validation.len()
    }
}

impl TokenSource for TokensSource {
    fn describe(&self) -> String {
        self.streams.describe()
    }

    fn vocab_size(&self) -> usize {
        self.streams.vocab_size
    }

    fn train_batch(&self, index: u64, batch_size: usize, seq_len: usize) -> Result<Batch, DataError> {
        self.streams.train_batch(index, batch_size, seq_len)
    }

    fn validation_set(&self, n_sequences: usize, seq_len: usize) -> Result<ValidationSet, DataError> {
        self.validation_streams().validation_set(n_sequences, seq_len)
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
        let view = self.streams.view(unique_tokens, seq_len, run_seed).map(|view| {
            Box::new(TokensView { train: view, validation: self.validation_streams() }) as Box<dyn TokenSource + '_>
        });
        Some(view)
    }

    fn token_files(&self) -> BTreeMap<String, String> {
        self.streams.token_files.clone()
    }
}

/// A run's view: seeded training rows of the train file, validation windows of the held-out part.
struct TokensView<'a> {
    train: crate::data::stream::StreamView<'a>,
    validation: &'a Streams,
}

impl TokenSource for TokensView<'_> {
    fn describe(&self) -> String {
        self.train.describe()
    }

    fn vocab_size(&self) -> usize {
        self.train.vocab_size()
    }

    fn train_batch(&self, index: u64, batch_size: usize, seq_len: usize) -> Result<Batch, DataError> {
        self.train.train_batch(index, batch_size, seq_len)
    }

    fn validation_set(&self, n_sequences: usize, seq_len: usize) -> Result<ValidationSet, DataError> {
        self.validation.validation_set(n_sequences, seq_len)
    }

    fn unique_tokens(&self) -> Option<u64> {
        self.train.unique_tokens()
    }

    fn data_seed(&self) -> Option<u64> {
        self.train.data_seed()
    }

    fn token_files(&self) -> BTreeMap<String, String> {
        self.train.token_files()
    }
}

/// The NumPy `.npy` format's header (format versions 1-3): magic `\x93NUMPY`, version, header
/// length, then a Python dict literal with `descr`, `fortran_order` and `shape`.
pub mod npy {
    /// What sweeplaw needs from a header.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Header {
        pub descr: String,
        pub token_bytes: usize,
        pub data_start: usize,
        pub shape: Vec<u64>,
    }

    /// Parses the header at the start of `bytes`.
    pub fn parse_header(bytes: &[u8]) -> Result<Header, String> {
        if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
            return Err("not a NumPy .npy file (no \\x93NUMPY magic)".into());
        }
        let (length, start) = match bytes[6] {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
            2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
            major => return Err(format!(".npy format version {major} (1, 2 or 3 are read)")),
        };
        let text =
            bytes.get(start..start + length).ok_or_else(|| format!(".npy header of {length} bytes is cut short"))?;
        let text = std::str::from_utf8(text).map_err(|_| ".npy header is not text".to_string())?;
        let descr = value_of(text, "descr")?;
        let descr = descr.trim_matches(|c| c == '\'' || c == '"').to_string();
        let token_bytes = match descr.as_str() {
            "<u2" | "|u2" => 2,
            "<u4" | "|u4" => 4,
            // numpy's default integer is int64: the commonest array a user has.
            "<i8" | "<i4" | "<i2" | "<u8" | "|i1" | "|u1" => {
                return Err(format!(
                    "dtype {descr}; sweeplaw reads unsigned little-endian ids of 2 or 4 bytes (<u2 = uint16, <u4 = \
                     uint32): convert with array.astype(numpy.uint16) (ids below 65536) or array.astype(numpy.uint32)"
                ))
            }
            other => return Err(format!("dtype {other}; sweeplaw reads <u2 (uint16) or <u4 (uint32)")),
        };
        let fortran = value_of(text, "fortran_order")?;
        let shape_text = value_of(text, "shape")?;
        let shape: Vec<u64> = shape_text
            .trim_matches(|c| c == '(' || c == ')')
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.parse::<u64>().map_err(|_| format!(".npy shape {shape_text} is not a tuple of sizes")))
            .collect::<Result<_, _>>()?;
        if fortran.starts_with("True") && shape.len() > 1 {
            return Err(".npy array in Fortran order: save it C-ordered (numpy.ascontiguousarray)".into());
        }
        Ok(Header { descr, token_bytes, data_start: start + length, shape })
    }

    /// The text of `key`'s value in the dict literal (up to the next top-level comma or brace).
    fn value_of<'a>(text: &'a str, key: &str) -> Result<&'a str, String> {
        let at = text
            .find(&format!("'{key}'"))
            .or_else(|| text.find(&format!("\"{key}\"")))
            .ok_or_else(|| format!(".npy header has no {key}: {}", text.trim()))?;
        let rest = &text[at + key.len() + 2..];
        let rest =
            rest.trim_start().strip_prefix(':').ok_or_else(|| format!(".npy header: no value for {key}"))?.trim_start();
        let mut depth = 0;
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(&rest[..=i]);
                    }
                }
                ',' | '}' if depth == 0 => return Ok(rest[..i].trim()),
                _ => {}
            }
        }
        Err(format!(".npy header: value of {key} does not end"))
    }
}

#[cfg(test)]
mod tests;
