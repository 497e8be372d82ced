//! summary.csv: one row per run of a sweep, rebuilt from the run records (docs/DESIGN.md
//! "Results: the stable contract"), and the header checks every CSV reader shares.

use std::path::Path;

use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::records::run::RunRecord;

/// The columns of summary.csv, in order (docs/DESIGN.md), then the extra columns sweeplaw adds.
pub const SUMMARY_HEADER: &str = "run_id,status,n_layers,d_model,n_heads,seq_len,vocab_size,params_nonembedding,params_total,params_matmul,tokens,unique_tokens,flops,val_loss,train_loss,wall_s,seed,flops_6n,flops_matmul_attn,flops_chinchilla,true_entropy";

/// How to get a usable summary.csv of `sweep_dir` back: it is derived from the run folders.
pub fn rebuild_hint(sweep_dir: &Path) -> String {
    let dir = if sweep_dir.as_os_str().is_empty() { Path::new(".") } else { sweep_dir };
    format!("rebuild it from the run folders with `sweeplaw summary {}`", dir.display())
}

/// Checks a CSV header names each column once (names compared trimmed and case-insensitively):
/// a repeated column is an error naming both positions, never "the last one wins".
pub fn check_header<'a>(header: impl IntoIterator<Item = &'a str>) -> std::result::Result<(), String> {
    let mut seen: Vec<String> = Vec::new();
    for (index, name) in header.into_iter().enumerate() {
        let key = name.trim().to_ascii_lowercase();
        if let Some(first) = seen.iter().position(|n| *n == key) {
            return Err(format!(
                "the header repeats column {:?} (columns {} and {}): keep one",
                name.trim(),
                first + 1,
                index + 1
            ));
        }
        seen.push(key);
    }
    Ok(())
}

/// The position of the one column among `aliases` (one quantity's accepted names, lowercase)
/// in `header` (lowercase); two aliases present at once (`N` and `params`) are ambiguous, an
/// error naming both.
pub fn find_column(header: &[String], aliases: &[&str]) -> std::result::Result<Option<usize>, String> {
    let present: Vec<(usize, &str)> = aliases
        .iter()
        .filter_map(|alias| header.iter().position(|h| h.trim().eq_ignore_ascii_case(alias)).map(|i| (i, *alias)))
        .collect();
    match present.as_slice() {
        [] => Ok(None),
        [(index, _)] => Ok(Some(*index)),
        [(i, a), (j, b), ..] => Err(format!(
            "columns {a:?} (column {}) and {b:?} (column {}) both give the same quantity: keep one",
            i + 1,
            j + 1
        )),
    }
}

/// Writes summary.csv from run records (atomically).
pub fn write_summary(path: &Path, records: &[RunRecord]) -> Result<()> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let header: Vec<&str> = SUMMARY_HEADER.split(',').collect();
    out.write_record(&header).map_err(|e| Error::record(path, e.to_string()))?;
    for r in records {
        out.write_record(r.summary_row()).map_err(|e| Error::record(path, e.to_string()))?;
    }
    let bytes = out.into_inner().map_err(|e| Error::record(path, e.to_string()))?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_or_ambiguous_column_is_an_error_naming_both() {
        assert_eq!(check_header(["N", "D", "loss"]), Ok(()));
        let e = check_header(["N", "D", "loss", "loss"]).unwrap_err();
        assert!(e.contains("\"loss\"") && e.contains("columns 3 and 4"), "{e}");
        let e = check_header(["n", "D", " N "]).unwrap_err();
        assert!(e.contains("columns 1 and 3"), "{e}");
        let header: Vec<String> = ["n", "params", "d", "loss"].map(String::from).to_vec();
        let e = find_column(&header, &["n", "params"]).unwrap_err();
        assert!(e.contains("\"n\" (column 1)") && e.contains("\"params\" (column 2)"), "{e}");
        assert_eq!(find_column(&header, &["d", "tokens"]), Ok(Some(2)));
        assert_eq!(find_column(&header, &["val_loss"]), Ok(None));
    }
}
