//! The token cache of a text corpus: every document's token ids (each followed by the document
//! separator) in corpus order, as little-endian u16 (vocabularies up to 65,536) or u32, behind a
//! small header, memory-mapped so that a sweep tokenizes once and its runs share the pages.
//!
//! Layout (all little-endian): magic `SWLTOKS\0`, format version u32, bytes per token u32,
//! vocab size u64, tokenizer SHA-256 (32 bytes), corpus SHA-256 (32 bytes), documents u64, tokens u64, then
//! documents + 1 token offsets u64 (document `i` is tokens `offsets[i]..offsets[i+1]`), then the
//! tokens, then the SHA-256 of everything before it. Written to a temporary file and renamed, so a
//! reader never sees half a cache; the checksum, checked at every open, catches what a rename
//! cannot: a cache damaged on disk afterwards, whose ids would otherwise be trained on (or crash
//! the embedding lookup mid-run when out of range).

use std::path::Path;

use memmap2::Mmap;

use crate::data::stream::MappedTokens;
use crate::data::DataError;

const MAGIC: &[u8; 8] = b"SWLTOKS\0";
pub const CACHE_VERSION: u32 = 2;
/// The SHA-256 trailer.
const CHECKSUM: usize = 32;
const FIXED_HEADER: usize = 8 + 4 + 4 + 8 + 32 + 32 + 8 + 8;

/// What a cache must match to be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheKey {
    pub tokenizer_hash: [u8; 32],
    pub corpus_hash: [u8; 32],
    pub vocab_size: u64,
}

/// An opened, verified token cache.
pub struct TokenCache {
    pub tokens: MappedTokens,
    /// Token offset of each document, and the total at the end.
    pub offsets: Vec<u64>,
}

impl TokenCache {
    pub fn n_tokens(&self) -> u64 {
        *self.offsets.last().unwrap_or(&0)
    }

    pub fn n_documents(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Opens `path` if it exists and matches `key`; Ok(None) when it is absent, Err(reason) when
    /// it is there but stale or damaged (the caller rebuilds it).
    pub fn open(path: &Path, key: &CacheKey) -> Result<Option<TokenCache>, String> {
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        // SAFETY: the cache is only ever replaced by rename, never written in place, so the
        // mapped file does not change under us.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| format!("{}: cannot map: {e}", path.display()))?;
        let header = parse_header(&map).map_err(|e| format!("{}: {e}", path.display()))?;
        let body = map.len().saturating_sub(CHECKSUM);
        if sha256(&map[..body]) != map[body..] {
            return Err(format!("{}: damaged (its SHA-256 does not match the one it ends with)", path.display()));
        }
        if header.key != *key {
            return Err(format!("{}: made by another tokenizer or corpus", path.display()));
        }
        let data_start = FIXED_HEADER + 8 * (header.documents + 1);
        let offsets: Vec<u64> = map[FIXED_HEADER..data_start]
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            .collect();
        let n_tokens = *offsets.last().unwrap_or(&0);
        let consistent = offsets.windows(2).all(|w| w[0] <= w[1])
            && n_tokens == header.tokens
            && body as u64 == data_start as u64 + n_tokens * header.token_bytes as u64;
        if !consistent {
            return Err(format!("{}: truncated or damaged (sizes disagree)", path.display()));
        }
        let tokens = MappedTokens::from_map(map, path, data_start, CHECKSUM, header.token_bytes)?;
        Ok(Some(TokenCache { tokens, offsets }))
    }
}

struct Header {
    key: CacheKey,
    token_bytes: usize,
    documents: usize,
    tokens: u64,
}

fn parse_header(map: &[u8]) -> Result<Header, String> {
    if map.len() < FIXED_HEADER + CHECKSUM || &map[..8] != MAGIC {
        return Err("not a sweeplaw token cache".into());
    }
    let u32_at = |at: usize| u32::from_le_bytes(map[at..at + 4].try_into().unwrap_or([0; 4]));
    let u64_at = |at: usize| u64::from_le_bytes(map[at..at + 8].try_into().unwrap_or([0; 8]));
    let version = u32_at(8);
    if version != CACHE_VERSION {
        return Err(format!("cache format version {version}, this build reads {CACHE_VERSION}"));
    }
    let token_bytes = u32_at(12) as usize;
    let hash_at = |at: usize| -> [u8; 32] { map[at..at + 32].try_into().unwrap_or([0; 32]) };
    let key = CacheKey { vocab_size: u64_at(16), tokenizer_hash: hash_at(24), corpus_hash: hash_at(56) };
    let documents = u64_at(88) as usize;
    if !matches!(token_bytes, 2 | 4) || documents > map.len() / 8 || map.len() < FIXED_HEADER + 8 * (documents + 1) {
        return Err("damaged header".into());
    }
    Ok(Header { key, token_bytes, documents, tokens: u64_at(96) })
}

/// Writes a cache of `documents` (token ids; the separator already appended) for `key`.
pub fn write(path: &Path, key: &CacheKey, documents: &[Vec<u32>]) -> Result<(), DataError> {
    let token_bytes: usize = if key.vocab_size <= 1 << 16 { 2 } else { 4 };
    let tokens: u64 = documents.iter().map(|d| d.len() as u64).sum();
    let mut out = Vec::with_capacity(FIXED_HEADER + 8 * (documents.len() + 1) + tokens as usize * token_bytes);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&CACHE_VERSION.to_le_bytes());
    out.extend_from_slice(&(token_bytes as u32).to_le_bytes());
    out.extend_from_slice(&key.vocab_size.to_le_bytes());
    out.extend_from_slice(&key.tokenizer_hash);
    out.extend_from_slice(&key.corpus_hash);
    out.extend_from_slice(&(documents.len() as u64).to_le_bytes());
    out.extend_from_slice(&tokens.to_le_bytes());
    let mut offset = 0u64;
    out.extend_from_slice(&offset.to_le_bytes());
    for document in documents {
        offset += document.len() as u64;
        out.extend_from_slice(&offset.to_le_bytes());
    }
    for &id in documents.iter().flatten() {
        if token_bytes == 2 {
            out.extend_from_slice(&(id as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&id.to_le_bytes());
        }
    }
    let checksum = sha256(&out);
    out.extend_from_slice(&checksum);
    write_atomic(path, &out)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place
/// (`fs::write_atomic`, its error as one about `cache_dir`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    crate::fs::write_atomic(path, bytes).map_err(|e| DataError::config("cache_dir", e.to_string()))
}
