//! summary.csv: one row per run of a sweep, rebuilt from the run records (docs/DESIGN.md
//! "Results: the stable contract"), its one reader (rows into [`SummaryRow`], corrupt rows
//! set aside as [`RejectedRow`]s that callers report naming the file and line), and the header
//! checks every CSV reader shares. `fit`, `plot` and `report` all read summary.csv through here.

use std::io::Read;
use std::path::Path;

use csv::StringRecord;

use crate::counting::{FlopConvention, ParamCount};
use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::records::run::{RunRecord, RunStatus};

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
    write_atomic(path, &bytes)?;
    Ok(())
}

/// One summary.csv row as read: the run, its status and line, and every numeric column of
/// [`SUMMARY_HEADER`] (absent when the cell is empty or not a number: unknown, never zero).
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    pub run_id: String,
    pub status: RunStatus,
    /// Line of summary.csv.
    pub line: u64,
    pub n_layers: Option<f64>,
    pub d_model: Option<f64>,
    pub n_heads: Option<f64>,
    pub seq_len: Option<f64>,
    pub vocab_size: Option<f64>,
    pub params_nonembedding: Option<f64>,
    pub params_total: Option<f64>,
    pub params_matmul: Option<f64>,
    pub tokens: Option<f64>,
    pub unique_tokens: Option<f64>,
    /// 6n compute (the column the contract names `flops`).
    pub flops: Option<f64>,
    pub val_loss: Option<f64>,
    pub train_loss: Option<f64>,
    pub wall_s: Option<f64>,
    pub seed: Option<f64>,
    pub flops_6n: Option<f64>,
    pub flops_matmul_attn: Option<f64>,
    pub flops_chinchilla: Option<f64>,
    pub true_entropy: Option<f64>,
    /// The cells of columns outside [`SUMMARY_HEADER`] (a column a user added, such as `lr`),
    /// by lowercase column name, in header order.
    pub extra: Vec<(String, String)>,
}

impl SummaryRow {
    fn new(run_id: String, status: RunStatus, line: u64) -> SummaryRow {
        SummaryRow {
            run_id,
            status,
            line,
            n_layers: None,
            d_model: None,
            n_heads: None,
            seq_len: None,
            vocab_size: None,
            params_nonembedding: None,
            params_total: None,
            params_matmul: None,
            tokens: None,
            unique_tokens: None,
            flops: None,
            val_loss: None,
            train_loss: None,
            wall_s: None,
            seed: None,
            flops_6n: None,
            flops_matmul_attn: None,
            flops_chinchilla: None,
            true_entropy: None,
            extra: Vec::new(),
        }
    }

    /// The field of the numeric column `name` (lowercase), if it is one of the known columns.
    fn column_mut(&mut self, name: &str) -> Option<&mut Option<f64>> {
        Some(match name {
            "n_layers" => &mut self.n_layers,
            "d_model" => &mut self.d_model,
            "n_heads" => &mut self.n_heads,
            "seq_len" => &mut self.seq_len,
            "vocab_size" => &mut self.vocab_size,
            "params_nonembedding" => &mut self.params_nonembedding,
            "params_total" => &mut self.params_total,
            "params_matmul" => &mut self.params_matmul,
            "tokens" => &mut self.tokens,
            "unique_tokens" => &mut self.unique_tokens,
            "flops" => &mut self.flops,
            "val_loss" => &mut self.val_loss,
            "train_loss" => &mut self.train_loss,
            "wall_s" => &mut self.wall_s,
            "seed" => &mut self.seed,
            "flops_6n" => &mut self.flops_6n,
            "flops_matmul_attn" => &mut self.flops_matmul_attn,
            "flops_chinchilla" => &mut self.flops_chinchilla,
            "true_entropy" => &mut self.true_entropy,
            _ => return None,
        })
    }

    /// N under `count`.
    pub fn params(&self, count: ParamCount) -> Option<f64> {
        match count {
            ParamCount::Nonembedding => self.params_nonembedding,
            ParamCount::Total => self.params_total,
            ParamCount::Matmul => self.params_matmul,
        }
    }

    /// C under `convention` (its own column; the 6n count falls back to `flops`).
    pub fn compute(&self, convention: FlopConvention) -> Option<f64> {
        match convention {
            FlopConvention::SixN => self.flops_6n.or(self.flops),
            FlopConvention::MatmulAttn => self.flops_matmul_attn,
            FlopConvention::Chinchilla => self.flops_chinchilla,
        }
    }
}

/// A summary.csv row that cannot be used as a run row, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRow {
    /// Line of summary.csv.
    pub line: u64,
    /// The row's run id, where it has one.
    pub run_id: String,
    pub reason: String,
}

/// summary.csv as read: its header (lowercase), the rows that parsed and the rows that did not,
/// each in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SummaryFile {
    pub columns: Vec<String>,
    pub rows: Vec<SummaryRow>,
    pub rejected: Vec<RejectedRow>,
}

impl SummaryFile {
    /// Whether the header has the column `name` (lowercase).
    pub fn has_column(&self, name: &str) -> bool {
        self.columns.iter().any(|column| column == name)
    }

    /// One warning per rejected row, naming `path` and the line.
    pub fn warnings(&self, path: &Path) -> Vec<String> {
        self.rejected.iter().map(|r| format!("{} line {}: {}; skipped", path.display(), r.line, r.reason)).collect()
    }
}

/// Whether a CSV header (lowercase names) is summary.csv's: it names run_id, status and
/// params_nonembedding. Any other CSV is a plain table of points.
pub fn is_summary_header(columns: &[String]) -> bool {
    ["run_id", "status", "params_nonembedding"].iter().all(|name| columns.iter().any(|c| c == name))
}

/// Reads summary.csv (see `parse_summary`).
pub fn read_summary(path: &Path) -> Result<(Vec<SummaryRow>, Vec<String>)> {
    let file = read_summary_file(path)?;
    let warnings = file.warnings(path);
    Ok((file.rows, warnings))
}

/// Reads summary.csv with its header and rejected rows (see `parse_summary_file`).
pub fn read_summary_file(path: &Path) -> Result<SummaryFile> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    parse_summary_file(path, file)
}

/// summary.csv rows read from `input`, in file order, and a warning per row skipped (see
/// `parse_summary_file`); `path` only names the file in messages.
pub fn parse_summary<R: Read>(path: &Path, input: R) -> Result<(Vec<SummaryRow>, Vec<String>)> {
    let file = parse_summary_file(path, input)?;
    let warnings = file.warnings(path);
    Ok((file.rows, warnings))
}

/// summary.csv read from `input`. A header without run_id and status, or naming a column
/// twice, is an error saying how to rebuild the file; a row that does not parse, has the wrong
/// field count, no run id, an unknown status, (in a done run) a numeric column that is not a
/// number, or that repeats the run id of an earlier row (`repeat_reason`) is rejected with its
/// line. Names are compared case-insensitively, cells trimmed; an
/// empty cell is unknown, never zero.
pub fn parse_summary_file<R: Read>(path: &Path, input: R) -> Result<SummaryFile> {
    let hint = || rebuild_hint(path.parent().unwrap_or(Path::new(".")));
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(input);
    let header =
        reader.headers().map_err(|e| Error::record(path, format!("header does not parse: {e}; {}", hint())))?;
    check_header(header.iter()).map_err(|e| Error::record(path, format!("{e}; {}", hint())))?;
    let columns: Vec<String> = header.iter().map(|name| name.to_ascii_lowercase()).collect();
    for column in ["run_id", "status"] {
        if !columns.iter().any(|name| name == column) {
            return Err(Error::record(path, format!("no column {column} in the header; {}", hint())));
        }
    }
    let run_id_column = columns.iter().position(|name| name == "run_id");
    let mut file = SummaryFile { columns, ..SummaryFile::default() };
    // Each run's first row: its line and cells, against which a repeat is compared.
    let mut first_rows: std::collections::HashMap<String, (u64, StringRecord)> = std::collections::HashMap::new();
    for record in reader.records() {
        match record {
            Ok(row) => match summary_row(&file.columns, &row) {
                Ok(parsed) => match first_rows.get(&parsed.run_id) {
                    Some((first_line, first)) => file.rejected.push(RejectedRow {
                        line: parsed.line,
                        reason: repeat_reason(path, &file.columns, &parsed.run_id, *first_line, first, &row),
                        run_id: parsed.run_id,
                    }),
                    None => {
                        first_rows.insert(parsed.run_id.clone(), (parsed.line, row));
                        file.rows.push(parsed);
                    }
                },
                Err(reason) => {
                    let run_id = run_id_column.and_then(|i| row.get(i)).unwrap_or("").to_string();
                    file.rejected.push(RejectedRow { line: line_of(&row), run_id, reason });
                }
            },
            Err(error) => file.rejected.push(RejectedRow {
                line: error.position().map_or(0, |p| p.line()),
                run_id: String::new(),
                reason: format!("does not parse ({error})"),
            }),
        }
    }
    file.rejected.sort_by_key(|row| row.line);
    Ok(file)
}

/// Why a second row of one run is dropped: a run is one row of summary.csv (`write_summary`
/// writes each record once), so a repeat is a file concatenated or edited by hand, and counting
/// it again would make it extra seeds of itself. Where the rows disagree the message names each
/// differing column with both values (numbers compared as numbers: `4.0` repeats `4`).
fn repeat_reason(
    path: &Path,
    header: &[String],
    run_id: &str,
    first_line: u64,
    first: &StringRecord,
    repeat: &StringRecord,
) -> String {
    let same = |a: &str, b: &str| a == b || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y);
    let differences: Vec<String> = header
        .iter()
        .zip(first.iter().zip(repeat.iter()))
        .filter(|(_, (there, here))| !same(there, here))
        .map(|(name, (there, here))| format!("{name} '{here}' here, '{there}' on line {first_line}"))
        .collect();
    let listed = format!("run {run_id} is listed again (first on line {first_line})");
    if differences.is_empty() {
        return listed;
    }
    format!(
        "{listed} and disagrees with it ({}): {}",
        differences.join("; "),
        rebuild_hint(path.parent().unwrap_or(Path::new(".")))
    )
}

fn line_of(row: &StringRecord) -> u64 {
    row.position().map_or(0, |p| p.line())
}

/// One row, or why it is not a run row.
fn summary_row(header: &[String], row: &StringRecord) -> std::result::Result<SummaryRow, String> {
    if row.len() != header.len() {
        return Err(format!("has {} fields, the header {}: the row does not parse", row.len(), header.len()));
    }
    let text = |name: &str| header.iter().position(|h| h == name).and_then(|i| row.get(i)).unwrap_or("");
    let (id, status_text) = (text("run_id").to_string(), text("status"));
    let status = RunStatus::parse(status_text);
    let Some(status) = status.filter(|_| !id.is_empty()) else {
        return Err(format!("run_id '{id}' / status '{status_text}' is not a run row"));
    };
    let mut parsed = SummaryRow::new(id, status, line_of(row));
    for (name, value) in header.iter().zip(row.iter()) {
        if matches!(name.as_str(), "run_id" | "status") {
            continue;
        }
        match parsed.column_mut(name) {
            Some(slot) => match value.parse::<f64>() {
                Ok(number) => *slot = Some(number),
                // A damaged number in a finished run would silently become "unknown".
                Err(_) if status == RunStatus::Done && !value.is_empty() => {
                    return Err(format!("{name} '{value}' is not a number"));
                }
                Err(_) => {}
            },
            None => parsed.extra.push((name.clone(), value.to_string())),
        }
    }
    Ok(parsed)
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

    #[test]
    fn summary_rows_read_typed_and_bad_rows_are_skipped_naming_the_line() {
        let text = "run_id,status,params_nonembedding,tokens,val_loss,flops\n\
                    a,done,1e6,2e7,3.1,\nb,done,ten,2e7,3.1,1\nc,walking,1,2,3,4\nd,pending,,,,\ne,done,1\n";
        let (rows, warnings) = parse_summary(Path::new("s/summary.csv"), text.as_bytes()).expect("header");
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].params(ParamCount::Nonembedding), rows[0].tokens, rows[0].line), (Some(1e6), Some(2e7), 2));
        assert_eq!((rows[0].compute(FlopConvention::SixN), rows[1].status), (None, RunStatus::Pending));
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].starts_with("s/summary.csv line 3: params_nonembedding 'ten'"), "{warnings:?}");
        assert!(warnings[2].starts_with("s/summary.csv line 6: has 3 fields"), "{warnings:?}");
        let error = parse_summary(Path::new("s/summary.csv"), "run_id,x\n".as_bytes()).err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("no column status") && e.contains("sweeplaw summary s")));
    }

    /// A run listed more than once is one run: the repeats are rejected naming their line, the
    /// first line and the run id, and a repeat whose cells differ says which and how.
    #[test]
    fn a_run_listed_again_is_read_once_and_a_disagreeing_repeat_names_its_cells() {
        let text = "run_id,status,params_nonembedding,tokens,val_loss\n\
                    a,done,1e6,2e7,3.1\nb,done,1e6,4e7,3.0\na,done,1e6,2e7,3.10\na,done,1e6,2e7,3.4\n";
        let file = parse_summary_file(Path::new("s/summary.csv"), text.as_bytes()).expect("header");
        let rows: Vec<(&str, u64)> = file.rows.iter().map(|row| (row.run_id.as_str(), row.line)).collect();
        assert_eq!(rows, [("a", 2), ("b", 3)]);
        let rejected: Vec<(&str, u64)> = file.rejected.iter().map(|row| (row.run_id.as_str(), row.line)).collect();
        assert_eq!(rejected, [("a", 4), ("a", 5)]);
        // 3.10 is the number 3.1: the same row written again.
        assert_eq!(file.rejected[0].reason, "run a is listed again (first on line 2)");
        assert_eq!(
            file.rejected[1].reason,
            "run a is listed again (first on line 2) and disagrees with it (val_loss '3.4' here, '3.1' on line 2): \
             rebuild it from the run folders with `sweeplaw summary s`"
        );
        let warnings = file.warnings(Path::new("s/summary.csv"));
        assert_eq!(warnings[0], "s/summary.csv line 4: run a is listed again (first on line 2); skipped");
    }

    #[test]
    fn extra_columns_are_kept_and_a_damaged_number_in_a_done_run_rejects_the_row() {
        let text = "run_id,status,params_nonembedding,tokens,val_loss,wall_s,lr\n\
                    a,done,1e6,2e7,3.1,12,3e-3\nb,done,1e6,2e7,3.1,12s,3e-3\nc,failed,1e6,,,12s,\n";
        let file = parse_summary_file(Path::new("s/summary.csv"), text.as_bytes()).expect("header");
        assert!(is_summary_header(&file.columns) && file.has_column("lr"));
        assert_eq!(file.rows.len(), 2, "{file:?}");
        assert_eq!(file.rows[0].extra, vec![("lr".to_string(), "3e-3".to_string())]);
        assert_eq!((file.rows[1].run_id.as_str(), file.rows[1].wall_s), ("c", None));
        let rejected = &file.rejected;
        assert_eq!((rejected.len(), rejected[0].line, rejected[0].run_id.as_str()), (1, 3, "b"));
        assert!(rejected[0].reason.contains("wall_s '12s' is not a number"), "{rejected:?}");
        assert_eq!(
            file.warnings(Path::new("s/summary.csv"))[0],
            format!("s/summary.csv line 3: {}; skipped", rejected[0].reason)
        );
    }
}
