//! The data formats end to end through `sweeplaw train`: parquet and JSON lines (plain, gzip,
//! zstd) documents, token files, and the errors that name the file and row.

use std::path::Path;
use std::sync::Arc;

use crate::common::*;

/// `n` documents of pseudo-random prose (a fixed generator: the same every run).
pub fn documents(n: usize, words: usize) -> Vec<String> {
    const WORDS: &[&str] = &[
        "the", "whale", "sea", "ship", "captain", "harpoon", "sailor", "ocean", "wind", "storm", "deck", "mast",
        "island", "harbour", "letter", "sister", "estate", "fortune", "nation", "peace",
    ];
    let mut state = 0x1234_5678u64;
    (0..n)
        .map(|d| {
            let mut text = format!("Story {d}:");
            for _ in 0..words {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                text.push(' ');
                text.push_str(WORDS[(state >> 33) as usize % WORDS.len()]);
            }
            text
        })
        .collect()
}

/// Writes `documents(count, 120)` as `dir/corpus/docNN.txt`, one file each, and returns them.
pub fn write_corpus(dir: &Path, count: usize) -> Vec<String> {
    std::fs::create_dir_all(dir.join("corpus")).unwrap();
    let texts = documents(count, 120);
    for (i, text) in texts.iter().enumerate() {
        std::fs::write(dir.join(format!("corpus/doc{i:02}.txt")), text).unwrap();
    }
    texts
}

/// A sweep of one size (L1-d16, seq_len 16, batch 4) over the corpus of [`write_corpus`], with
/// `budget` as the `[budget]` table's body and `extra` appended.
pub fn text_sweep_config(name: &str, budget: &str, extra: &str) -> String {
    format!(
        "name = \"{name}\"\ndevice = \"cpu\"\n[data]\nkind = \"text\"\nfiles = [\"corpus/*.txt\"]\nvocab_size = 300\n\
         cache_dir = \"cache\"\n[model]\nseq_len = 16\nhead_dim = 8\n[grid]\nn_layers = [1]\nd_model = [16]\n\
         [budget]\n{budget}\n[train]\nbatch_size = 4\nlr = 1e-2\neval_tokens = 64\n{extra}"
    )
}

/// A parquet file with an int64 `id` column and an optional string column `column`, snappy pages.
pub fn write_parquet(path: &Path, column: &str, texts: &[Option<&str>]) {
    use parquet::basic::Compression;
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    let message = format!("message documents {{ required int64 id; optional binary {column} (UTF8); }}");
    let schema = Arc::new(parquet::schema::parser::parse_message_type(&message).unwrap());
    let properties = Arc::new(WriterProperties::builder().set_compression(Compression::SNAPPY).build());
    let file = std::fs::File::create(path).unwrap();
    let mut writer = SerializedFileWriter::new(file, schema, properties).unwrap();
    // Two row groups, so that reading crosses one.
    for half in texts.chunks(texts.len().div_ceil(2)) {
        let mut group = writer.next_row_group().unwrap();
        let mut ids = group.next_column().unwrap().unwrap();
        let values: Vec<i64> = (0..half.len() as i64).collect();
        ids.typed::<Int64Type>().write_batch(&values, None, None).unwrap();
        ids.close().unwrap();
        let mut text = group.next_column().unwrap().unwrap();
        let present: Vec<ByteArray> = half.iter().flatten().map(|t| ByteArray::from(*t)).collect();
        let levels: Vec<i16> = half.iter().map(|t| i16::from(t.is_some())).collect();
        text.typed::<ByteArrayType>().write_batch(&present, Some(&levels), None).unwrap();
        text.close().unwrap();
        group.close().unwrap();
    }
    writer.close().unwrap();
}

pub fn json_lines(texts: &[String], field: &str) -> String {
    texts.iter().map(|t| format!("{}\n", serde_json::json!({ "id": 1, field: t }))).collect()
}

/// A single-run config training 6 steps of 4 × 16 tokens on `data` (a `[data]` table's body).
pub fn text_run_config(name: &str, data: &str) -> String {
    format!(
        "name = \"{name}\"\ndevice = \"cpu\"\nseed = 1\n[model]\nd_model = 16\nn_layers = 1\nn_heads = 2\nseq_len = 16\n\
         [data]\n{data}\n[train]\ntokens = 384\nbatch_size = 4\nlr = 1e-2\neval_tokens = 64\n"
    )
}

fn train(dir: &Path, name: &str, config: &str) -> std::process::Output {
    let path = write(dir, &format!("{name}.toml"), config);
    let results = dir.join("results");
    run(&["train", path.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"])
}

fn record(dir: &Path, name: &str) -> serde_json::Value {
    let path = dir.join("results").join(name).join("runs").join(name).join("run.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn parquet_and_json_lines_give_the_same_documents_as_each_other() {
    let dir = scratch("formats");
    let texts = documents(12, 80);
    let refs: Vec<Option<&str>> = texts.iter().map(|t| Some(t.as_str())).collect();
    write_parquet(&dir.join("stories.parquet"), "content", &refs);
    std::fs::write(dir.join("stories.jsonl"), json_lines(&texts, "content")).unwrap();
    let gz = {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(json_lines(&texts, "content").as_bytes()).unwrap();
        encoder.finish().unwrap()
    };
    std::fs::write(dir.join("stories.jsonl.gz"), gz).unwrap();
    let zst = zstd::encode_all(json_lines(&texts, "content").as_bytes(), 3).unwrap();
    std::fs::write(dir.join("stories.jsonl.zst"), zst).unwrap();
    let mut losses_of = Vec::new();
    for (name, file) in
        [("pq", "stories.parquet"), ("jl", "stories.jsonl"), ("gz", "stories.jsonl.gz"), ("zst", "stories.jsonl.zst")]
    {
        let data = format!(
            "kind = \"text\"\nfiles = [\"{file}\"]\ntext_field = \"content\"\nvocab_size = 300\n\
             validation_fraction = 0.2\ncache_dir = \"cache-{name}\""
        );
        let out = train(&dir, name, &text_run_config(name, &data));
        assert!(out.status.success(), "{file}: {}", stderr(&out));
        let record = record(&dir, name);
        let source = record["data"]["source"].as_str().unwrap();
        assert!(source.contains("documents=12 (9 train, 3 validation)"), "{source}");
        losses_of.push(losses(&dir.join("results").join(name).join("runs").join(name).join("metrics.csv")));
    }
    // One row = one document, whatever the container: the same corpus, the same losses.
    assert_eq!(losses_of[0].len(), 6);
    assert!(losses_of.iter().all(|l| *l == losses_of[0]), "{losses_of:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_records_name_the_file_and_row() {
    let dir = scratch("bad-records");
    let texts = documents(6, 40);
    let refs: Vec<Option<&str>> = texts.iter().map(|t| Some(t.as_str())).collect();
    write_parquet(&dir.join("ok.parquet"), "text", &refs);
    let data = |file: &str, field: &str| {
        format!(
            "kind = \"text\"\nfiles = [\"{file}\"]\ntext_field = \"{field}\"\nvocab_size = 300\ncache_dir = \"cache\""
        )
    };
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        ("missing-column", data("ok.parquet", "content"), vec!["ok.parquet", "no column \"content\"", "id, text"]),
        ("not-a-string", data("ok.parquet", "id"), vec!["ok.parquet", "row 0", "not a string"]),
        ("json-number", data("numbers.jsonl", "text"), vec!["numbers.jsonl", "line 2", "a number"]),
        ("json-missing", data("numbers.jsonl", "body"), vec!["numbers.jsonl", "line 1", "no field \"body\""]),
        ("json-broken", data("broken.jsonl", "text"), vec!["broken.jsonl", "line 3", "not a JSON object"]),
        ("corrupt", data("corrupt.parquet", "text"), vec!["corrupt.parquet"]),
    ];
    std::fs::write(dir.join("numbers.jsonl"), "{\"text\": \"a story\"}\n{\"text\": 7}\n").unwrap();
    std::fs::write(dir.join("broken.jsonl"), "{\"text\": \"one\"}\n{\"text\": \"two\"}\n{\"text\": \"thr").unwrap();
    // A parquet file whose page bytes are overwritten: its footer still parses, its pages do not.
    let mut bytes = std::fs::read(dir.join("ok.parquet")).unwrap();
    for b in &mut bytes[4..200] {
        *b = 0xa5;
    }
    std::fs::write(dir.join("corrupt.parquet"), bytes).unwrap();
    for (name, data, needles) in cases {
        let out = train(&dir, name, &text_run_config(name, &data));
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        let message = stderr(&out);
        assert_eq!(message.trim().lines().count(), 1, "{name}: one line: {message}");
        for needle in needles {
            assert!(message.contains(needle), "{name}: {needle:?} not in {message}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn token_files_train_and_their_sha256_is_recorded() {
    let dir = scratch("token-files");
    // A repeating pattern of 64 ids that a model learns quickly, in u16 little-endian.
    let ids = |n: usize| -> Vec<u8> { (0..n).flat_map(|i| (((i * 7) % 64) as u16).to_le_bytes()).collect() };
    std::fs::write(dir.join("train.bin"), ids(20_000)).unwrap();
    std::fs::write(dir.join("val.bin"), ids(2_000)).unwrap();
    let data = "kind = \"tokens\"\ntrain = \"train.bin\"\nvalidation = \"val.bin\"\ndtype = \"u16\"\nvocab_size = 64";
    let out = train(&dir, "tok", &text_run_config("tok", data));
    assert!(out.status.success(), "{}", stderr(&out));
    let record = record(&dir, "tok");
    let hashes = record["data"]["token_files_sha256"].as_object().unwrap();
    assert_eq!(hashes.len(), 2);
    let train_hash = hashes.iter().find(|(k, _)| k.ends_with("train.bin")).unwrap().1.as_str().unwrap();
    let expected: String = {
        use sha2::Digest;
        sha2::Sha256::digest(std::fs::read(dir.join("train.bin")).unwrap()).iter().map(|b| format!("{b:02x}")).collect()
    };
    assert_eq!(train_hash, expected);
    assert_eq!(record["data"]["data_seed"], 1, "the run's seed keys the order");
    assert_eq!(record["data"]["vocab_size"], 64);
    let sample = record["data"]["validation_sample"].as_str().unwrap();
    assert!(sample.starts_with("4 windows of 17 tokens evenly spaced"), "{sample}");
    // An id past the vocabulary is a one-line error naming the file and the offset.
    let mut bad = ids(2_000);
    bad[2 * 1500] = 200;
    std::fs::write(dir.join("bad.bin"), bad).unwrap();
    let data = "kind = \"tokens\"\ntrain = \"bad.bin\"\ndtype = \"u16\"\nvocab_size = 64";
    let out = train(&dir, "bad", &text_run_config("bad", data));
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(message.contains("bad.bin") && message.contains("token id 200 at offset 1500"), "{message}");
    // A validation file with the training tokens (here a copy) would measure a training loss.
    std::fs::copy(dir.join("train.bin"), dir.join("copy.bin")).unwrap();
    let data = "kind = \"tokens\"\ntrain = \"train.bin\"\nvalidation = \"copy.bin\"\ndtype = \"u16\"\nvocab_size = 64";
    let out = train(&dir, "same", &text_run_config("same", data));
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(message.contains("copy.bin holds the same tokens as train") && message.lines().count() == 1, "{message}");
    assert!(!dir.join("results/same").exists() || std::fs::read_dir(dir.join("results/same")).unwrap().count() == 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
