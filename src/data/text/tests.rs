//! Tests of the text source on tiny corpora written to temporary directories.

use std::path::{Path, PathBuf};

use super::*;
use crate::data::limit_unique;

/// A fresh temporary directory, removed when dropped.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sweeplaw-text-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const WORDS: &[&str] = &[
    "the", "whale", "sea", "ship", "captain", "harpoon", "sailor", "ocean", "wind", "storm", "deck", "mast", "sail",
    "island", "harbour", "letter", "sister", "estate", "marriage", "fortune", "union", "congress", "nation", "peace",
];

/// `n_docs` documents of pseudo-random prose, about `words` words each, as `doc_XX.txt`.
pub(crate) fn write_corpus(dir: &Path, n_docs: usize, words: usize) -> Vec<String> {
    let corpus_dir = dir.join("corpus");
    std::fs::create_dir_all(&corpus_dir).unwrap();
    let mut rng = crate::rng::SplitMix64::new(42);
    (0..n_docs)
        .map(|d| {
            let mut text = format!("Document {d}: ");
            for w in 0..words {
                text.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
                text.push(if w % 11 == 10 { '\n' } else { ' ' });
            }
            text.push_str("Fin — ünïcödé ✓.\n");
            std::fs::write(corpus_dir.join(format!("doc_{d:02}.txt")), &text).unwrap();
            text
        })
        .collect()
}

pub(crate) fn text_config(dir: &Path, vocab_size: usize) -> TextConfig {
    TextConfig {
        files: vec!["corpus/*.txt".into()],
        text_field: None,
        vocab_size: Some(vocab_size),
        tokenizer: None,
        document_separator: None,
        validation_fraction: 0.15,
        split_seed: 0,
        data_seed: None,
        cache_dir: Some("cache".into()),
        base_dir: Some(dir.to_path_buf()),
    }
}

#[test]
fn bpe_training_is_deterministic_and_round_trips_exactly() {
    let dir = TempDir::new("bpe");
    let docs = write_corpus(&dir.0, 6, 300);
    let a = bpe::train(docs.iter().map(String::as_str), 300).unwrap();
    let b = bpe::train(docs.iter().map(String::as_str), 300).unwrap();
    assert_eq!(a.to_string(false).unwrap(), b.to_string(false).unwrap());
    assert_eq!(a.get_vocab_size(true), 300);
    assert_eq!(a.token_to_id(bpe::END_OF_TEXT), Some(0));
    let samples =
        ["  leading spaces\n\ttabs\r\nand CRLF  ", "ünïcödé ✓ 日本語 🐋", "the whale<|endoftext|>sea", "", "x"];
    for text in samples.iter().copied().chain(docs.iter().map(String::as_str)) {
        let ids = bpe::encode(&a, text, "sample").unwrap();
        assert_eq!(bpe::decode(&a, &ids).unwrap(), text);
    }
    // 43 merges already compress the text: fewer tokens than 0.6 × bytes.
    let ids = bpe::encode(&a, &docs[0], "doc").unwrap();
    assert!((ids.len() as f64) < 0.6 * docs[0].len() as f64, "{} tokens for {} bytes", ids.len(), docs[0].len());
    assert!(bpe::train(docs.iter().map(String::as_str), 100).unwrap_err().to_string().contains("vocab_size"));
}

#[test]
fn second_build_reuses_the_cache_and_a_changed_tokenizer_invalidates_it() {
    let dir = TempDir::new("cache");
    write_corpus(&dir.0, 8, 200);
    let config = text_config(&dir.0, 300);
    let first = TextSource::new(&config).unwrap();
    assert_eq!(first.report, BuildReport { trained_tokenizer: true, tokenized: true });
    let second = TextSource::new(&config).unwrap();
    assert_eq!(second.report, BuildReport { trained_tokenizer: false, tokenized: false });
    assert_eq!(first.train_batch(3, 4, 16).unwrap(), second.train_batch(3, 4, 16).unwrap());
    assert_eq!(first.validation_set(4, 16).unwrap().batch, second.validation_set(4, 16).unwrap().batch);
    // Another vocabulary size is another tokenizer, hence another token cache.
    let bigger = TextSource::new(&text_config(&dir.0, 320)).unwrap();
    assert_eq!(bigger.report, BuildReport { trained_tokenizer: true, tokenized: true });
    // An existing tokenizer.json whose content changes invalidates the cache too.
    let external = dir.0.join("tokenizer.json");
    std::fs::copy(&first.tokenizer_path, &external).unwrap();
    let with_file = TextConfig { tokenizer: Some("tokenizer.json".into()), vocab_size: None, ..config.clone() };
    assert!(!TextSource::new(&with_file).unwrap().report.tokenized, "same bytes, same hash");
    let pretty = bpe::load(&bigger.tokenizer_path).unwrap().tokenizer.to_string(true).unwrap();
    std::fs::write(&external, pretty).unwrap();
    let changed = TextSource::new(&with_file).unwrap();
    assert!(changed.report.tokenized, "new bytes, new hash, new cache");
    assert_eq!(changed.vocab_size(), 320);
    // A damaged cache file is rebuilt, not trusted.
    let cache_file = std::fs::read_dir(dir.0.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "bin"))
        .unwrap();
    let bytes = std::fs::read(&cache_file).unwrap();
    std::fs::write(&cache_file, &bytes[..bytes.len() - 3]).unwrap();
    let sources = [config.clone(), TextConfig { vocab_size: Some(320), ..config.clone() }, with_file];
    assert!(sources.iter().any(|c| TextSource::new(c).unwrap().report.tokenized));
}

#[test]
fn an_edit_keeping_every_count_changes_the_recorded_data_under_a_given_tokenizer() {
    // Resume and `--reuse` compare the description a run recorded with the data's now; two
    // training documents' texts swapped keep every count, so only the corpus hash tells.
    let dir = TempDir::new("swap");
    write_corpus(&dir.0, 8, 200);
    let trained = text_config(&dir.0, 300);
    let tokenizer = TextSource::new(&trained).unwrap().tokenizer_path;
    std::fs::copy(&tokenizer, dir.0.join("tokenizer.json")).unwrap();
    let given = TextConfig { tokenizer: Some("tokenizer.json".into()), vocab_size: None, ..trained.clone() };
    let before = (TextSource::new(&given).unwrap().describe(), TextSource::new(&trained).unwrap().describe());

    let files = corpus::expand_files(&given.files, &given.base()).unwrap();
    let corpus = corpus::read_corpus(&files, None, given.text_field()).unwrap();
    let split = corpus::split_documents(&corpus, given.validation_fraction, given.split_seed).unwrap();
    let (a, b) = (&files[split.train[0]], &files[split.train[1]]);
    let (text_a, text_b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    std::fs::write(a, &text_b).unwrap();
    std::fs::write(b, &text_a).unwrap();
    let after = (TextSource::new(&given).unwrap().describe(), TextSource::new(&trained).unwrap().describe());

    let counts = |line: &str| line.split(", corpus sha256:").next().unwrap().to_string();
    assert_eq!(counts(&before.0), counts(&after.0), "the swap keeps every count and the tokenizer");
    assert!(before.0.contains(", corpus sha256:"), "{}", before.0);
    assert_ne!(before.0, after.0, "a given tokenizer: the corpus hash names the edit");
    assert!(!before.1.contains("corpus sha256:"), "a trained tokenizer's path carries the hash: {}", before.1);
    assert_ne!(before.1, after.1, "a trained tokenizer: retrained on the new corpus, at a new path");
}

#[test]
fn split_is_by_whole_documents_and_fixed() {
    let dir = TempDir::new("split");
    let docs = write_corpus(&dir.0, 10, 150);
    let config = text_config(&dir.0, 300);
    let files = corpus::expand_files(&config.files, &dir.0).unwrap();
    let corpus = corpus::read_corpus(&files, None, "text").unwrap();
    let split = corpus::split_documents(&corpus, 0.15, 0).unwrap();
    assert_eq!(split, corpus::split_documents(&corpus, 0.15, 0).unwrap(), "same seed, same split");
    assert_ne!(split, corpus::split_documents(&corpus, 0.15, 1).unwrap());
    let mut all: Vec<usize> = split.validation.iter().chain(&split.train).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..10).collect::<Vec<_>>(), "every document in exactly one split");
    assert_eq!(split.validation.len(), 2, "15% of 10 documents of similar size: 2");
    // The validation stream is exactly the validation documents, each ended by <|endoftext|>.
    let source = TextSource::new(&config).unwrap();
    let tokenizer = bpe::load(&source.tokenizer_path).unwrap();
    let mut expected = Vec::new();
    for &d in &split.validation {
        expected.extend(bpe::encode(&tokenizer.tokenizer, &docs[d], "doc").unwrap());
        expected.push(0);
    }
    assert_eq!(source.validation_tokens(), expected.len() as u64);
    // As many windows as fit: the first at the stream's start, the last ending at its end.
    let n = (expected.len() - 1) / 8;
    let validation = source.validation_set(n, 8).unwrap();
    assert_eq!(validation.batch.row_inputs(0), &expected[..8]);
    assert_eq!(validation.batch.row_targets(n - 1), &expected[expected.len() - 8..]);
    // No validation row appears in the training stream's documents.
    let train_text: String = split.train.iter().map(|&d| docs[d].as_str()).collect();
    for &d in &split.validation {
        assert!(!train_text.contains(&docs[d][..40]));
    }
}

#[test]
fn repeated_data_counts_unique_tokens_and_epochs() {
    let dir = TempDir::new("repeat");
    write_corpus(&dir.0, 8, 200);
    let source = TextSource::new(&text_config(&dir.0, 300)).unwrap();
    let seq_len = 16;
    let view = limit_unique(&source, 330, seq_len, 0).unwrap();
    // ⌊330 / 16⌋ = 20 rows of 16 predicted tokens.
    assert_eq!(view.unique_tokens(), Some(320));
    // The first 321 tokens of the training stream, rows overlapping by one token.
    let mut first = Vec::new();
    source.streams.train.read(&source.streams.tokens, 0, 321, &mut first);
    let mut seen = std::collections::HashMap::new();
    for index in 0..15 {
        let batch = view.train_batch(index, 4, seq_len).unwrap();
        for r in 0..4 {
            let start = first.windows(seq_len).position(|w| w == batch.row_inputs(r)).expect("row from the first U");
            assert_eq!(start % seq_len, 0);
            assert_eq!(batch.row_targets(r), &first[start + 1..start + seq_len + 1]);
            *seen.entry(start).or_insert(0) += 1;
        }
    }
    // 60 rows = 3 epochs over 20 rows: every row exactly 3 times.
    assert_eq!(seen.len(), 20);
    assert!(seen.values().all(|&c| c == 3));
    assert_eq!(crate::counting::epochs(60 * 16, 320), 3.0);
    // Without a limit the whole training stream is the pool; a limit past it is capped.
    let whole = limit_unique(&source, u64::MAX, seq_len, 0).unwrap();
    assert_eq!(whole.unique_tokens(), Some((source.train_tokens() - 1) / 16 * 16));
    assert!(whole.train_batch(0, 2, 8).is_err(), "rows were cut for seq_len 16");
}

#[test]
fn bad_input_errors_name_the_file() {
    let dir = TempDir::new("bad");
    write_corpus(&dir.0, 4, 50);
    let config = text_config(&dir.0, 300);
    let empty = dir.0.join("corpus").join("empty.txt");
    std::fs::write(&empty, "  \n").unwrap();
    let message = TextSource::new(&config).err().unwrap().to_string();
    assert!(message.contains("empty.txt") && message.contains("empty"), "{message}");
    std::fs::write(&empty, b"valid start \xff\xfe then junk").unwrap();
    let message = TextSource::new(&config).err().unwrap().to_string();
    assert!(
        message.contains("empty.txt") && message.contains("not UTF-8") && message.contains("offset 12"),
        "{message}"
    );
    std::fs::remove_file(&empty).unwrap();
    let missing = TextConfig { files: vec!["nothing/*.txt".into()], ..config.clone() };
    assert!(TextSource::new(&missing).err().unwrap().to_string().contains("matches no file"));
    let broken = dir.0.join("broken.json");
    std::fs::write(&broken, "{\"model\": 3").unwrap();
    let with_broken = TextConfig { tokenizer: Some("broken.json".into()), vocab_size: None, ..config.clone() };
    let message = with_broken.validate().unwrap_err().to_string();
    assert!(message.contains("broken.json") && message.contains("not a valid tokenizer.json"), "{message}");
    // A corpus smaller than one sequence, and a validation split smaller than the evaluation.
    let source = TextSource::new(&config).unwrap();
    let message = source.train_batch(0, 1, 100_000).unwrap_err().to_string();
    assert!(message.contains("less than one sequence"), "{message}");
    let message = source.validation_set(1000, 64).unwrap_err().to_string();
    assert!(message.contains("validation split holds") && message.contains("eval_tokens"), "{message}");
    // One document cannot be split.
    let single = TempDir::new("single");
    write_corpus(&single.0, 1, 50);
    let message = TextSource::new(&text_config(&single.0, 300)).err().unwrap().to_string();
    assert!(message.contains("at least 2"), "{message}");
}

#[test]
fn separator_cuts_files_into_documents() {
    let dir = TempDir::new("sep");
    std::fs::create_dir_all(dir.0.join("corpus")).unwrap();
    std::fs::write(dir.0.join("corpus/all.txt"), "one story<|endoftext|>two story\n<|endoftext|>\n<|endoftext|>three")
        .unwrap();
    let files = corpus::expand_files(&["corpus/all.txt".into()], &dir.0).unwrap();
    let corpus = corpus::read_corpus(&files, Some("<|endoftext|>"), "text").unwrap();
    let texts: Vec<&str> = corpus.documents.iter().map(|d| d.text.as_str()).collect();
    assert_eq!(texts, ["one story", "two story\n", "three"]);
    assert!(corpus.documents[2].origin.ends_with("all.txt#2"));
}

#[test]
fn sweep_config_paths_are_relative_to_the_file_and_runs_record_epochs() {
    let dir = TempDir::new("sweep");
    write_corpus(&dir.0, 8, 200);
    let config_path = dir.0.join("text.toml");
    let text =
        "name = \"t\"\ndevice = \"cpu\"\n[data]\nkind = \"text\"\nfiles = [\"corpus/*.txt\"]\nvocab_size = 300\n\
                validation_fraction = 0.15\ncache_dir = \"cache\"\n[model]\nseq_len = 16\nhead_dim = 8\n\
                [grid]\nn_layers = [1]\nd_model = [16]\n[budget]\ntokens = [960]\nunique_tokens = [330]\n\
                [train]\nbatch_size = 4\nlr = 1e-3\neval_tokens = 64\n";
    std::fs::write(&config_path, text).unwrap();
    let (config, plan) = crate::sweep::load_plan(&config_path).unwrap();
    assert!(!dir.0.join("cache").is_dir(), "planning reads no corpus");
    let spec = &plan.runs[0];
    assert_eq!(spec.run_id, "L1-d16-D960-U330-s0");
    assert_eq!(spec.unique_tokens, Some(330));
    let source = config.data.build_source().unwrap();
    assert!(dir.0.join("cache").is_dir(), "cache_dir resolved against the config's directory");
    let device = crate::device::resolve("cpu", "auto").unwrap();
    let context = crate::train::run::RunContext {
        source: source.as_ref(),
        device: &device,
        observers: Vec::new(),
        checkpoint_dir: None,
        start_points: Vec::new(),
    };
    let end = crate::train::run::train(spec, context).unwrap();
    let result = end.result.unwrap();
    // 960 tokens over ⌊330 / 16⌋ × 16 = 320 unique tokens: exactly 3 epochs.
    assert_eq!(result.tokens, 960);
    assert_eq!(result.epochs, Some(3.0));
}

#[test]
fn validation_windows_come_from_every_validation_document() {
    let dir = TempDir::new("windows");
    write_corpus(&dir.0, 24, 120);
    let config = TextConfig { validation_fraction: 0.3, ..text_config(&dir.0, 300) };
    let source = TextSource::new(&config).unwrap();
    let validation_documents = source.streams.validation.n_segments();
    assert!(validation_documents >= 7, "{validation_documents} validation documents");
    // 12 windows of 16 tokens: a quarter or so of the validation stream, from all of it.
    let set = source.validation_set(12, 16).unwrap();
    let starts = source.streams.validation_window_starts(12, 16).unwrap();
    let mut touched = std::collections::BTreeSet::new();
    for (row, &start) in starts.iter().enumerate() {
        let mut expected = Vec::new();
        source.streams.validation.read(&source.streams.tokens, start, 17, &mut expected);
        assert_eq!(set.batch.row_inputs(row), &expected[..16]);
        assert_eq!(set.batch.row_targets(row), &expected[1..]);
        touched.insert(source.streams.validation.segment_of(start));
        touched.insert(source.streams.validation.segment_of(start + 16));
    }
    assert_eq!(touched.len(), validation_documents, "every validation document contributes");
    let sample = set.sample.unwrap();
    assert!(
        sample.contains("12 windows of 17 tokens")
            && sample.contains(&format!(
                "in {validation_documents} document(s); the windows hold tokens of {validation_documents}"
            )),
        "{sample}"
    );
    // The first window starts the stream; the last ends it; the set is the same on a rebuild.
    assert_eq!(starts[0], 0);
    assert_eq!(starts[11] + 17, source.validation_tokens());
    assert_eq!(TextSource::new(&config).unwrap().validation_set(12, 16).unwrap().batch, set.batch);
}

#[test]
fn the_run_seed_keys_the_row_order_and_data_seed_pins_it() {
    let dir = TempDir::new("seeded");
    write_corpus(&dir.0, 8, 300);
    let config = text_config(&dir.0, 300);
    let source = TextSource::new(&config).unwrap();
    let rows = |source: &TextSource, seed: u64| -> Vec<Vec<u32>> {
        let view = limit_unique(source, u64::MAX, 16, seed).unwrap();
        (0..6)
            .flat_map(|i| {
                let batch = view.train_batch(i, 4, 16).unwrap();
                (0..4).map(|r| batch.row_inputs(r).to_vec()).collect::<Vec<_>>()
            })
            .collect()
    };
    let (a, b) = (rows(&source, 0), rows(&source, 1));
    assert_eq!(a, rows(&source, 0), "same seed, same order");
    assert_ne!(a, b, "another seed, another order");
    // The same rows of the training stream, only visited in another order (one full epoch).
    let view = limit_unique(&source, u64::MAX, 16, 0).unwrap();
    let n_rows = view.unique_tokens().unwrap() / 16;
    let epoch = |seed: u64| -> Vec<Vec<u32>> {
        let view = limit_unique(&source, u64::MAX, 16, seed).unwrap();
        let mut rows: Vec<Vec<u32>> = (0..n_rows).map(|i| view.train_batch(i, 1, 16).unwrap().inputs).collect();
        rows.sort();
        rows
    };
    assert_eq!(epoch(0), epoch(1));
    assert_eq!(limit_unique(&source, u64::MAX, 16, 3).unwrap().data_seed(), Some(3));
    // data_seed pins the order: runs of seeds 0 and 1 then train on the same batches.
    let pinned = TextSource::new(&TextConfig { data_seed: Some(1), ..config }).unwrap();
    assert_eq!(rows(&pinned, 0), b);
    assert_eq!(rows(&pinned, 7), b);
    assert_eq!(limit_unique(&pinned, u64::MAX, 16, 0).unwrap().data_seed(), Some(1));
}

#[test]
fn a_given_tokenizer_whose_ids_leave_gaps_sizes_the_vocabulary_by_its_largest_id() {
    // A tokenizer.json whose merges' ids are shifted by 10000 has 300 tokens but ids up to
    // 10299: sized by its count, the embedding had 300 rows and training crashed on id 10296
    // after the run's records were written.
    let dir = TempDir::new("sparse-ids");
    write_corpus(&dir.0, 8, 200);
    let trained = text_config(&dir.0, 300);
    let tokenizer = TextSource::new(&trained).unwrap().tokenizer_path;
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&tokenizer).unwrap()).unwrap();
    for id in json["model"]["vocab"].as_object_mut().unwrap().values_mut() {
        if id.as_u64().unwrap() > 0 {
            *id = serde_json::json!(id.as_u64().unwrap() + 10_000);
        }
    }
    std::fs::write(dir.0.join("sparse.json"), serde_json::to_vec(&json).unwrap()).unwrap();
    let given = TextConfig { tokenizer: Some("sparse.json".into()), vocab_size: None, ..trained };
    let source = TextSource::new(&given).unwrap();
    assert_eq!(source.vocab_size(), 10_300);
    let batch = source.train_batch(0, 4, 16).unwrap();
    let largest = batch.inputs.iter().copied().max().unwrap();
    assert!((largest as usize) < source.vocab_size() && largest > 300, "{largest}");
    // A models' vocabulary below the tokenizer's largest id is refused, naming both.
    let small = TextConfig { vocab_size: Some(5000), ..given };
    let message = TextSource::new(&small).err().expect("refused").to_string();
    assert!(message.contains("5000 is below the 10300 tokens of") && message.contains("sparse.json"), "{message}");
}

#[test]
fn a_cache_whose_ids_were_changed_on_disk_is_rebuilt_not_trained_on() {
    // Same size, ids overwritten with an id in range: the sizes agree, only the checksum tells.
    let dir = TempDir::new("cache-ids");
    write_corpus(&dir.0, 8, 200);
    let config = text_config(&dir.0, 300);
    let first = TextSource::new(&config).unwrap();
    let cache_file = std::fs::read_dir(dir.0.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "bin"))
        .unwrap();
    let mut bytes = std::fs::read(&cache_file).unwrap();
    let end = bytes.len() - 32; // before the checksum trailer
    for pair in bytes[end - 400..end].chunks_exact_mut(2) {
        pair.copy_from_slice(&7u16.to_le_bytes());
    }
    std::fs::write(&cache_file, &bytes).unwrap();
    let again = TextSource::new(&config).unwrap();
    assert!(again.report.tokenized, "the damaged cache is rebuilt");
    let validation = |s: &TextSource| s.validation_set(4, 16).unwrap().batch;
    assert_eq!(validation(&first), validation(&again));
    assert_eq!(std::fs::read(&cache_file).unwrap().len(), bytes.len());
}

#[test]
fn a_file_reached_twice_through_a_link_is_read_once() {
    let dir = TempDir::new("linked");
    write_corpus(&dir.0, 8, 50);
    std::fs::create_dir_all(dir.0.join("more")).unwrap();
    std::os::unix::fs::symlink(dir.0.join("corpus/doc_00.txt"), dir.0.join("more/link.txt")).unwrap();
    let patterns = vec!["corpus/*.txt".to_string(), "more/link.txt".to_string(), "corpus/../corpus/doc_01.txt".into()];
    let files = corpus::expand_files(&patterns, &dir.0).unwrap();
    assert_eq!(files.len(), 8, "{files:?}");
}
