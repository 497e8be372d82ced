//! The documents of a local text corpus: UTF-8 files named by paths or glob patterns (relative
//! to the config file's directory), each file one document or split at a separator string, a
//! content hash that keys the caches, and the train/validation split by whole documents.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::data::DataError;
use crate::rng::SplitMix64;

/// One document: its text and where it came from (file, and part number when split).
#[derive(Clone, Debug)]
pub struct Document {
    pub origin: String,
    pub text: String,
}

/// All documents in a fixed order (sorted paths, then position in the file) and their hash.
#[derive(Clone, Debug)]
pub struct Corpus {
    pub documents: Vec<Document>,
    /// SHA-256 over every document's length and bytes, in order.
    pub hash: [u8; 32],
    pub bytes: u64,
}

/// Expands `patterns` (paths or globs; relative ones against `base`) into sorted, distinct files.
pub fn expand_files(patterns: &[String], base: &Path) -> Result<Vec<PathBuf>, DataError> {
    if patterns.is_empty() {
        return Err(DataError::config("files", "list at least one file or glob pattern"));
    }
    let mut files = Vec::new();
    for pattern in patterns {
        let full = base.join(pattern);
        let text = full.to_string_lossy().to_string();
        let matches = glob::glob(&text).map_err(|e| DataError::config("files", format!("{pattern:?}: {e}")))?;
        let before = files.len();
        for entry in matches {
            let path = entry.map_err(|e| DataError::config("files", format!("{pattern:?}: {e}")))?;
            if path.is_file() {
                files.push(path);
            }
        }
        if files.len() == before {
            return Err(DataError::config("files", format!("{pattern:?} matches no file (looked for {text})")));
        }
    }
    files.sort();
    files.dedup();
    // The same file reached twice (a link to it, `a/../b`): read once, or its documents could
    // land in both the training and the validation split.
    let mut seen = std::collections::HashSet::new();
    files.retain(|path| seen.insert(std::fs::canonicalize(path).unwrap_or_else(|_| path.clone())));
    Ok(files)
}

/// Reads the files and cuts them into documents: text files as UTF-8 (cut at `separator`),
/// parquet and JSON-lines files one record per document (the text from `text_field`, see
/// [`records`](super::records)). Empty documents are dropped; a file that is empty or not
/// UTF-8, or that holds no document, is an error naming it.
pub fn read_corpus(files: &[PathBuf], separator: Option<&str>, text_field: &str) -> Result<Corpus, DataError> {
    use super::records::{json_lines_documents, parquet_documents, Format};
    let mut documents = Vec::new();
    for path in files {
        let origin = path.display().to_string();
        let records = match Format::of(path) {
            Format::Text => None,
            Format::Parquet => Some(parquet_documents(path, text_field)?),
            Format::JsonLines(compression) => Some(json_lines_documents(path, text_field, compression)?),
        };
        if let Some(records) = records {
            if records.is_empty() {
                return Err(DataError::config(
                    "files",
                    format!("{}: no non-empty {text_field:?} value in any record", path.display()),
                ));
            }
            documents
                .extend(records.into_iter().map(|(row, text)| Document { origin: format!("{origin}#{row}"), text }));
            continue;
        }
        let bytes = std::fs::read(path).map_err(|e| DataError::config("files", format!("{}: {e}", path.display())))?;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(DataError::config("files", format!("{}: the file is empty", path.display())));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            DataError::config(
                "files",
                format!("{}: not UTF-8 (invalid byte at offset {})", path.display(), e.utf8_error().valid_up_to()),
            )
        })?;
        match separator {
            Some(sep) if !sep.is_empty() => documents.extend(
                text.split(sep)
                    .filter(|part| !part.trim().is_empty())
                    .enumerate()
                    .map(|(i, part)| Document { origin: format!("{origin}#{i}"), text: part.to_string() }),
            ),
            _ => documents.push(Document { origin, text }),
        }
    }
    let mut hasher = Sha256::new();
    for document in &documents {
        hasher.update((document.text.len() as u64).to_le_bytes());
        hasher.update(document.text.as_bytes());
    }
    let bytes = documents.iter().map(|d| d.text.len() as u64).sum();
    Ok(Corpus { documents, hash: hasher.finalize().into(), bytes })
}

/// Which documents are held out: a seeded shuffle of the documents, the first ones (at least one)
/// until they hold `fraction` of the corpus bytes go to validation, the rest (in shuffled order)
/// to training. Depends only on the corpus and (fraction, seed), so every run of a sweep, and
/// every tokenizer, sees the same split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub validation: Vec<usize>,
    pub train: Vec<usize>,
}

pub fn split_documents(corpus: &Corpus, fraction: f64, seed: u64) -> Result<Split, DataError> {
    let n = corpus.documents.len();
    if n < 2 {
        let files: Vec<&str> = corpus.documents.iter().map(|d| d.origin.split('#').next().unwrap_or("")).collect();
        return Err(DataError::config(
            "files",
            format!(
                "the corpus ({}) holds {n} document(s); the train/validation split needs at least 2 (whole documents)",
                files.join(", ")
            ),
        ));
    }
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64::for_stream(seed, "text-split");
    for i in (1..n).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let target = fraction * corpus.bytes as f64;
    let mut held = 0u64;
    let mut cut = 0;
    while cut < n - 1 && (cut == 0 || (held as f64) < target) {
        held += corpus.documents[order[cut]].text.len() as u64;
        cut += 1;
    }
    Ok(Split { validation: order[..cut].to_vec(), train: order[cut..].to_vec() })
}

/// Lowercase hex of a hash prefix, for file names.
pub fn hex(bytes: &[u8], len: usize) -> String {
    bytes.iter().take(len.div_ceil(2)).map(|b| format!("{b:02x}")).collect::<String>()[..len].to_string()
}
