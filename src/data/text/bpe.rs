//! Tokenizers for text sources: a byte-level BPE (GPT-2 style: bytes mapped to printable
//! characters, no normalisation, no prefix space, so decoding gives back the exact text) trained
//! with the `tokenizers` crate on the training documents at a chosen vocabulary size, or an
//! existing tokenizer.json. A tokenizer is identified by the SHA-256 of its tokenizer.json.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, NormalizerWrapper, PostProcessorWrapper, Tokenizer, TokenizerBuilder};

use crate::data::DataError;

/// Separates documents in the token stream; always id 0 of a trained tokenizer.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// Smallest trained vocabulary: the 256 byte symbols plus the end-of-text token.
pub const MIN_VOCAB: usize = 257;

/// A tokenizer and the hash of its tokenizer.json.
pub struct LoadedTokenizer {
    pub tokenizer: Tokenizer,
    pub hash: [u8; 32],
    pub path: PathBuf,
    /// Id placed after every document (the end-of-text token, when the tokenizer has one).
    pub separator: Option<u32>,
}

impl LoadedTokenizer {
    /// The embedding rows the tokenizer's ids need: its largest id + 1, added tokens included.
    /// Not its count of tokens: a tokenizer.json whose ids leave gaps (or skip 0) would give ids
    /// at or past that count, which no embedding of that size can look up.
    pub fn vocab_size(&self) -> usize {
        let largest = self.tokenizer.get_vocab(true).into_values().max();
        largest.map_or(0, |id| id as usize + 1).max(self.tokenizer.get_vocab_size(true))
    }
}

/// Reads a tokenizer.json; a file that does not parse is an error naming it.
pub fn load(path: &Path) -> Result<LoadedTokenizer, DataError> {
    let bytes = std::fs::read(path)
        .map_err(|e| DataError::config("tokenizer", format!("{}: cannot read: {e}", path.display())))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| DataError::config("tokenizer", format!("{}: not a tokenizer.json (not UTF-8)", path.display())))?;
    let tokenizer: Tokenizer = text
        .parse()
        .map_err(|e| DataError::config("tokenizer", format!("{}: not a valid tokenizer.json: {e}", path.display())))?;
    let separator = tokenizer.token_to_id(END_OF_TEXT);
    Ok(LoadedTokenizer { tokenizer, hash: Sha256::digest(&bytes).into(), path: path.to_path_buf(), separator })
}

/// Trains a byte-level BPE with `vocab_size` tokens (end-of-text included) on `documents`.
/// Deterministic: the same documents and size give the same tokenizer.json, byte for byte.
pub fn train<'a>(documents: impl Iterator<Item = &'a str> + Send, vocab_size: usize) -> Result<Tokenizer, DataError> {
    if vocab_size < MIN_VOCAB {
        return Err(DataError::config(
            "vocab_size",
            format!("{vocab_size} is below {MIN_VOCAB} (256 byte symbols + end-of-text)"),
        ));
    }
    let fail = |stage: &str, e: tokenizers::Error| DataError::Internal(format!("BPE {stage}: {e}"));
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from(END_OF_TEXT, true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let byte_level = ByteLevel::new(false, false, true);
    let mut builder: tokenizers::TokenizerImpl<BPE, NormalizerWrapper, ByteLevel, PostProcessorWrapper, ByteLevel> =
        TokenizerBuilder::new()
            .with_model(BPE::default())
            .with_pre_tokenizer(Some(byte_level))
            .with_decoder(Some(byte_level))
            .build()
            .map_err(|e| fail("setup", e))?;
    builder.train(&mut trainer, documents).map_err(|e| fail("training", e))?;
    let json = builder.to_string(false).map_err(|e| fail("serialisation", e))?;
    json.parse::<Tokenizer>().map_err(|e| fail("reload", e))
}

/// Writes a tokenizer.json atomically (temporary file, then rename).
pub fn save(tokenizer: &Tokenizer, path: &Path) -> Result<(), DataError> {
    let json = tokenizer.to_string(false).map_err(|e| DataError::Internal(format!("tokenizer.json: {e}")))?;
    super::cache::write_atomic(path, json.as_bytes())
}

/// Token ids of `text` (no special tokens added).
pub fn encode(tokenizer: &Tokenizer, text: &str, origin: &str) -> Result<Vec<u32>, DataError> {
    let encoding =
        tokenizer.encode_fast(text, false).map_err(|e| DataError::Internal(format!("tokenizing {origin}: {e}")))?;
    Ok(encoding.get_ids().to_vec())
}

/// Text of `ids`, special tokens kept: the exact inverse of `encode` for a byte-level BPE.
pub fn decode(tokenizer: &Tokenizer, ids: &[u32]) -> Result<String, DataError> {
    tokenizer.decode(ids, false).map_err(|e| DataError::Internal(format!("decoding: {e}")))
}
