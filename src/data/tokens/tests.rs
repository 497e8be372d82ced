//! Tests of the token-file source on small files written here.

use super::*;
use crate::data::limit_unique;
use crate::data::text::tests::TempDir;

fn write_u16(path: &Path, ids: &[u32]) {
    let bytes: Vec<u8> = ids.iter().flat_map(|&id| (id as u16).to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

/// A .npy file as numpy.save writes it (format 1.0, header padded to 64 bytes with a newline).
fn write_npy(path: &Path, descr: &str, ids: &[u32]) {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({},), }}", ids.len());
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(&header);
    for &id in ids {
        match descr {
            "<u2" => bytes.extend_from_slice(&(id as u16).to_le_bytes()),
            _ => bytes.extend_from_slice(&id.to_le_bytes()),
        }
    }
    std::fs::write(path, bytes).unwrap();
}

fn config(dir: &Path, train: &str, validation: Option<&str>, vocab_size: usize) -> TokensConfig {
    TokensConfig {
        train: train.into(),
        validation: validation.map(Into::into),
        validation_fraction: None,
        dtype: Some("u16".into()),
        vocab_size,
        document_separator_id: None,
        data_seed: None,
        base_dir: Some(dir.to_path_buf()),
    }
}

/// Ids 0..n mod `modulo`: each row's content says where it came from.
fn counting(n: u32, modulo: u32) -> Vec<u32> {
    (0..n).map(|i| i % modulo).collect()
}

fn sha256_hex(path: &Path) -> String {
    let digest = Sha256::digest(std::fs::read(path).unwrap());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn raw_u16_files_give_rows_of_the_train_file_and_windows_of_the_validation_file() {
    let dir = TempDir::new("tokens-bin");
    let train: Vec<u32> = counting(4000, 1000);
    let validation: Vec<u32> = (0..800).map(|i| 1000 + i % 24).collect();
    write_u16(&dir.0.join("train.bin"), &train);
    write_u16(&dir.0.join("val.bin"), &validation);
    let source = TokensSource::new(&config(&dir.0, "train.bin", Some("val.bin"), 1024)).unwrap();
    assert_eq!((source.train_tokens(), source.validation_tokens()), (4000, 800));
    assert_eq!(source.unique_tokens(), Some(3999));
    let view = limit_unique(&source, u64::MAX, 16, 0).unwrap();
    let batch = view.train_batch(5, 4, 16).unwrap();
    for r in 0..4 {
        let row = batch.row_inputs(r);
        let start = row[0] as usize;
        // Rows start at multiples of seq_len and are consecutive ids of the train file.
        assert!(train.windows(17).any(|w| w[..16] == *row && w[1..] == *batch.row_targets(r)));
        assert_eq!(row[1], (start as u32 + 1) % 1000);
    }
    let validation_set = view.validation_set(10, 16).unwrap();
    assert!(validation_set.batch.inputs.iter().all(|&id| (1000..1024).contains(&id)), "windows of val.bin only");
    // Ten windows spread from the start to the end of val.bin: the first starts at 0, the last ends at 800.
    assert_eq!(validation_set.batch.row_inputs(0), &validation[..16]);
    assert_eq!(validation_set.batch.row_targets(9), &validation[784..800]);
    // run.json's sha256 of each file.
    let files = view.token_files();
    assert_eq!(files.len(), 2);
    assert_eq!(files[&dir.0.join("train.bin").display().to_string()], sha256_hex(&dir.0.join("train.bin")));
    assert_eq!(files[&dir.0.join("val.bin").display().to_string()], sha256_hex(&dir.0.join("val.bin")));
    assert!(source.describe().contains("train.bin") && source.describe().contains("val.bin"));
}

#[test]
fn npy_files_read_their_own_header() {
    let dir = TempDir::new("tokens-npy");
    let ids = counting(3000, 3000);
    write_npy(&dir.0.join("train.npy"), "<u4", &ids);
    let mut config = config(&dir.0, "train.npy", None, 4096);
    config.dtype = None;
    config.validation_fraction = Some(0.1);
    let source = TokensSource::new(&config).unwrap();
    assert_eq!((source.train_tokens(), source.validation_tokens()), (2700, 300));
    let validation = source.validation_set(4, 8).unwrap();
    assert_eq!(validation.batch.row_inputs(0), &ids[2700..2708]);
    // The header's dtype must agree with a dtype given in the config.
    config.dtype = Some("u16".into());
    let message = TokensSource::new(&config).err().unwrap().to_string();
    assert!(message.contains("train.npy") && message.contains("<u4"), "{message}");
    // A signed array names the conversion; a cut-short array says so.
    write_npy(&dir.0.join("signed.npy"), "<i4", &ids[..100]);
    let signed = TokensConfig { train: "signed.npy".into(), dtype: None, ..config.clone() };
    let message = TokensSource::new(&signed).err().unwrap().to_string();
    assert!(message.contains("signed.npy") && message.contains("astype"), "{message}");
    // numpy's default int64 too (it got no hint before).
    let mut header = std::fs::read(dir.0.join("signed.npy")).unwrap();
    let at = header.windows(3).position(|w| w == b"<i4").unwrap();
    header[at..at + 3].copy_from_slice(b"<i8");
    std::fs::write(dir.0.join("int64.npy"), header).unwrap();
    let int64 = TokensConfig { train: "int64.npy".into(), dtype: None, ..config.clone() };
    let message = TokensSource::new(&int64).err().unwrap().to_string();
    assert!(message.contains("int64.npy") && message.contains("dtype <i8") && message.contains("astype"), "{message}");
    let bytes = std::fs::read(dir.0.join("train.npy")).unwrap();
    std::fs::write(dir.0.join("cut.npy"), &bytes[..bytes.len() - 8]).unwrap();
    let cut = TokensConfig { train: "cut.npy".into(), dtype: None, ..config };
    let message = TokensSource::new(&cut).err().unwrap().to_string();
    assert!(message.contains("cut.npy") && message.contains("3000 ids") && message.contains("2998"), "{message}");
}

#[test]
fn an_id_outside_the_vocabulary_names_the_file_and_offset() {
    let dir = TempDir::new("tokens-vocab");
    let mut ids = counting(2000, 500);
    ids[1234] = 600;
    write_u16(&dir.0.join("train.bin"), &ids);
    write_u16(&dir.0.join("val.bin"), &counting(200, 500));
    let message = TokensSource::new(&config(&dir.0, "train.bin", Some("val.bin"), 512)).err().unwrap().to_string();
    assert!(message.contains("train.bin") && message.contains("token id 600 at offset 1234 (byte 2468)"), "{message}");
    // A raw file that is not a whole number of ids, and a raw file without a dtype.
    let mut bytes = std::fs::read(dir.0.join("val.bin")).unwrap();
    bytes.push(7);
    std::fs::write(dir.0.join("odd.bin"), bytes).unwrap();
    let message = TokensSource::new(&config(&dir.0, "odd.bin", None, 512)).err().unwrap().to_string();
    assert!(message.contains("odd.bin") && message.contains("whole number"), "{message}");
    let no_dtype = TokensConfig { dtype: None, ..config(&dir.0, "val.bin", None, 512) };
    let message = TokensSource::new(&no_dtype).err().unwrap().to_string();
    assert!(message.contains("val.bin") && message.contains("dtype"), "{message}");
    let missing = TokensSource::new(&config(&dir.0, "nothing.bin", None, 512)).err().unwrap().to_string();
    assert!(missing.contains("data.train") && missing.contains("nothing.bin"), "{missing}");
    let too_big = TokensConfig { vocab_size: 70_000, ..config(&dir.0, "val.bin", None, 512) };
    assert!(too_big.validate().unwrap_err().to_string().contains("u16"));
}

#[test]
fn a_single_file_is_split_at_a_document_boundary() {
    let dir = TempDir::new("tokens-split");
    // Documents of 100 tokens, each ended by the separator 99.
    let ids: Vec<u32> = (0..3000).map(|i| if i % 100 == 99 { 99 } else { (i / 100) % 90 }).collect();
    write_u16(&dir.0.join("all.bin"), &ids);
    let config = TokensConfig {
        validation_fraction: Some(0.05),
        document_separator_id: Some(99),
        ..config(&dir.0, "all.bin", None, 128)
    };
    let source = TokensSource::new(&config).unwrap();
    // 5% of 3000 = 150 tokens from the end: the cut moves forward to the next document start, 2900.
    assert_eq!((source.train_tokens(), source.validation_tokens()), (2900, 100));
    let validation = source.validation_set(3, 16).unwrap();
    assert!(validation.sample.as_deref().unwrap().contains("1 document(s)"), "{:?}", validation.sample);
    assert_eq!(validation.batch.row_inputs(0)[0], 29);
}

#[test]
fn the_seed_keys_the_row_order_and_data_seed_pins_it() {
    let dir = TempDir::new("tokens-seed");
    write_u16(&dir.0.join("train.bin"), &counting(20_000, 20_000 / 2));
    write_u16(&dir.0.join("val.bin"), &counting(500, 100));
    let source = TokensSource::new(&config(&dir.0, "train.bin", Some("val.bin"), 10_000)).unwrap();
    let order = |source: &TokensSource, seed: u64| -> Vec<u32> {
        let view = limit_unique(source, u64::MAX, 16, seed).unwrap();
        (0..8).flat_map(|i| view.train_batch(i, 4, 16).unwrap().inputs).collect()
    };
    assert_eq!(order(&source, 1), order(&source, 1), "same seed, same order");
    assert_ne!(order(&source, 1), order(&source, 2), "another seed, another order");
    let view = limit_unique(&source, u64::MAX, 16, 7).unwrap();
    assert_eq!(view.data_seed(), Some(7));
    let pinned =
        TokensSource::new(&TokensConfig { data_seed: Some(5), ..config(&dir.0, "train.bin", Some("val.bin"), 10_000) })
            .unwrap();
    assert_eq!(order(&pinned, 1), order(&pinned, 2), "data_seed pins the order whatever the run's seed");
    assert_eq!(order(&pinned, 1), order(&source, 5));
    assert_eq!(limit_unique(&pinned, u64::MAX, 16, 1).unwrap().data_seed(), Some(5));
}

#[test]
fn npy_header_parsing() {
    let with_header = |dict: &str| -> Vec<u8> {
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        bytes.extend_from_slice(dict.as_bytes());
        bytes
    };
    let parsed =
        npy::parse_header(&with_header("{'descr': '<u2', 'fortran_order': False, 'shape': (12, 5), }  \n")).unwrap();
    assert_eq!(parsed.token_bytes, 2);
    assert_eq!(parsed.shape, vec![12, 5]);
    assert_eq!(parsed.data_start, 10 + 63);
    assert!(npy::parse_header(b"PK\x03\x04 a zip file").unwrap_err().contains("magic"));
    let float = with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n");
    assert!(npy::parse_header(&float).unwrap_err().contains("<f4"));
    let fortran = with_header("{'descr': '<u4', 'fortran_order': True, 'shape': (3, 2), }\n");
    assert!(npy::parse_header(&fortran).unwrap_err().contains("Fortran"));
}
