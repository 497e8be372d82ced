//! Documents stored as records, one record = one document, the text taken from a named column or
//! field (`text_field`, default "text"): Apache Parquet files (how hub datasets ship: FineWeb,
//! OpenWebText, TinyStories' parquet configs) read with the `parquet` crate's row API, projected
//! to that one column; and JSON lines (`.jsonl`, `.json`: one object per line), plain or
//! compressed (`.gz`, `.zst`). Bad input names the file and the row (or line): a missing column or
//! field, a value that is not a string, a corrupt page or line.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::data::DataError;

/// How a file's documents are stored, from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// UTF-8 text: one document per file, or cut at a separator string.
    Text,
    Parquet,
    JsonLines(Compression),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Format {
    pub fn of(path: &Path) -> Format {
        let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        let (stem, compression) = if let Some(stem) = name.strip_suffix(".gz") {
            (stem, Compression::Gzip)
        } else if let Some(stem) = name.strip_suffix(".zst") {
            (stem, Compression::Zstd)
        } else {
            (name.as_str(), Compression::None)
        };
        if compression == Compression::None && stem.ends_with(".parquet") {
            Format::Parquet
        } else if stem.ends_with(".jsonl") || stem.ends_with(".json") || stem.ends_with(".ndjson") {
            Format::JsonLines(compression)
        } else {
            Format::Text
        }
    }
}

fn error(path: &Path, what: impl std::fmt::Display) -> DataError {
    DataError::config("files", format!("{}: {what}", path.display()))
}

/// The non-empty texts of a parquet file's `field` column, in row order, with their row numbers.
pub fn parquet_documents(path: &Path, field: &str) -> Result<Vec<(u64, String)>, DataError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    use parquet::schema::types::Type;
    let file = std::fs::File::open(path).map_err(|e| error(path, e))?;
    let reader =
        SerializedFileReader::new(file).map_err(|e| error(path, format!("not a readable parquet file: {e}")))?;
    let schema = reader.metadata().file_metadata().schema_descr().root_schema();
    let column = schema.get_fields().iter().find(|f| f.name() == field).ok_or_else(|| {
        let names: Vec<&str> = schema.get_fields().iter().map(|f| f.name()).collect();
        error(path, format!("no column {field:?} (text_field); its columns are {}", names.join(", ")))
    })?;
    let projection = Type::group_type_builder(schema.name())
        .with_fields(vec![column.clone()])
        .build()
        .map_err(|e| error(path, e))?;
    let rows = reader.get_row_iter(Some(projection)).map_err(|e| error(path, format!("column {field:?}: {e}")))?;
    let mut documents = Vec::new();
    for (number, row) in rows.enumerate() {
        let row = row.map_err(|e| error(path, format!("row {number}: corrupt or unreadable ({e})")))?;
        match row.get_column_iter().next().map(|(_, value)| value) {
            Some(Field::Str(text)) => {
                if !text.trim().is_empty() {
                    documents.push((number as u64, text.clone()));
                }
            }
            Some(Field::Null) | None => {}
            Some(other) => {
                return Err(error(path, format!("row {number}: column {field:?} holds {other}, not a string")))
            }
        }
    }
    Ok(documents)
}

/// The non-empty texts of a JSON-lines file's `field`, with their line numbers (from 1).
pub fn json_lines_documents(
    path: &Path,
    field: &str,
    compression: Compression,
) -> Result<Vec<(u64, String)>, DataError> {
    let file = std::fs::File::open(path).map_err(|e| error(path, e))?;
    let reader: Box<dyn Read> = match compression {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(file).map_err(|e| error(path, e))?),
    };
    let mut documents = Vec::new();
    for (index, line) in BufReader::new(reader).lines().enumerate() {
        let number = index as u64 + 1;
        let line = line.map_err(|e| error(path, format!("line {number}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| error(path, format!("line {number}: not a JSON object ({e})")))?;
        let object = value.as_object().ok_or_else(|| error(path, format!("line {number}: not a JSON object")))?;
        match object.get(field) {
            Some(serde_json::Value::String(text)) => {
                if !text.trim().is_empty() {
                    documents.push((number, text.clone()));
                }
            }
            Some(serde_json::Value::Null) => {}
            Some(other) => {
                let kind = match other {
                    serde_json::Value::Bool(_) => "a boolean",
                    serde_json::Value::Number(_) => "a number",
                    serde_json::Value::Array(_) => "an array",
                    _ => "an object",
                };
                return Err(error(path, format!("line {number}: field {field:?} is {kind}, not a string")));
            }
            None => {
                let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
                keys.truncate(12);
                return Err(error(
                    path,
                    format!("line {number}: no field {field:?} (text_field); it has {}", keys.join(", ")),
                ));
            }
        }
    }
    Ok(documents)
}
