//! metrics.csv: one row per logged step of a run, appended and flushed as training goes, so a
//! killed process loses at most the row being written. The one reader skips lines that do not
//! parse (a row cut short by a kill, garbage), each with a warning naming the file and line.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fs::write_atomic;

/// The columns of metrics.csv, in order.
pub const METRICS_HEADER: &str = "step,tokens,flops,lr,train_loss,val_loss,grad_norm,elapsed_s,tokens_per_s";

/// One metrics.csv row.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsRow {
    pub step: u64,
    /// Tokens trained so far (read as f64: a hand-made or converted file may hold 3.2e6).
    pub tokens: f64,
    pub flops: f64,
    pub lr: f64,
    pub train_loss: f64,
    pub val_loss: Option<f64>,
    pub grad_norm: f64,
    pub elapsed_s: f64,
    pub tokens_per_s: f64,
}

impl MetricsRow {
    fn to_line(&self) -> String {
        let val = self.val_loss.map(|v| format!("{v}")).unwrap_or_default();
        format!(
            "{},{},{:e},{:e},{},{},{},{:.3},{:.1}\n",
            self.step,
            self.tokens,
            self.flops,
            self.lr,
            self.train_loss,
            val,
            self.grad_norm,
            self.elapsed_s,
            self.tokens_per_s
        )
    }
}

/// Appends rows to metrics.csv, flushing each so that a killed process loses at most the row
/// being written.
pub struct MetricsWriter {
    path: PathBuf,
    file: File,
}

impl MetricsWriter {
    /// Creates metrics.csv with its header and the rows of steps already trained (replacing
    /// any previous file atomically, so rows past a resumed checkpoint are dropped).
    pub fn create(path: &Path, history: &[MetricsRow]) -> Result<Self> {
        let mut text = format!("{METRICS_HEADER}\n");
        for row in history {
            text.push_str(&row.to_line());
        }
        write_atomic(path, text.as_bytes())?;
        let file = OpenOptions::new().append(true).open(path).map_err(|e| Error::io(path, e))?;
        Ok(MetricsWriter { path: path.to_path_buf(), file })
    }

    pub fn append(&mut self, row: &MetricsRow) -> Result<()> {
        self.file.write_all(row.to_line().as_bytes()).map_err(|e| Error::io(&self.path, e))?;
        self.file.flush().map_err(|e| Error::io(&self.path, e))
    }
}

/// Corrupt lines listed per file before the rest are only counted.
const WARNINGS_PER_FILE: usize = 3;

/// Reads metrics.csv: the one reader of the file (the runner's resume, `sweeplaw status`, the
/// fit's curves and the figures). Lines that do not parse (a row cut short by a kill, garbage)
/// are skipped, each with a warning naming the file and line; blank lines are passed over.
pub fn read_metrics(path: &Path) -> Result<(Vec<MetricsRow>, Vec<String>)> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_metrics(path, &bytes)
}

/// Parses the bytes of a metrics.csv (see `read_metrics`); bytes that are not UTF-8 are
/// replaced, so their line is skipped as malformed. `path` only names the file in messages.
/// A header other than [`METRICS_HEADER`] is an error. A val_loss that parses but is not a
/// positive finite number keeps its row (it is what training logged) with a warning; the
/// row's [`MetricsRow::evaluation`] is then `None`.
pub fn parse_metrics(path: &Path, bytes: &[u8]) -> Result<(Vec<MetricsRow>, Vec<String>)> {
    let text = String::from_utf8_lossy(bytes);
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, header)) if header.trim() == METRICS_HEADER => {}
        _ => return Err(Error::record(path, format!("line 1: expected the header {METRICS_HEADER}"))),
    }
    for (index, line) in lines.filter(|(_, line)| !line.trim().is_empty()) {
        match parse_metrics_line(index as u64 + 1, line) {
            Ok(row) => {
                if let Some(loss) = row.val_loss.filter(|v| !(v.is_finite() && *v > 0.0)) {
                    problems.push(format!(
                        "line {}: val_loss {loss} is not a positive finite number; not an evaluation",
                        index + 1
                    ));
                }
                rows.push(row);
            }
            Err(message) => problems.push(format!("{message}; skipped")),
        }
    }
    let mut warnings: Vec<String> =
        problems.iter().take(WARNINGS_PER_FILE).map(|message| format!("{}: {message}", path.display())).collect();
    if problems.len() > WARNINGS_PER_FILE {
        warnings.push(format!("{}: {} more corrupt lines skipped", path.display(), problems.len() - WARNINGS_PER_FILE));
    }
    Ok((rows, warnings))
}

impl MetricsRow {
    /// (tokens, val_loss) of a row that evaluated, when the loss is a positive finite number.
    pub fn evaluation(&self) -> Option<(f64, f64)> {
        self.val_loss.filter(|v| v.is_finite() && *v > 0.0).map(|loss| (self.tokens, loss))
    }
}

/// One row, or why it does not parse (naming its line).
fn parse_metrics_line(line: u64, text: &str) -> std::result::Result<MetricsRow, String> {
    let cols: Vec<&str> = text.split(',').map(str::trim).collect();
    let fields = METRICS_HEADER.split(',').count();
    if cols.len() != fields {
        return Err(format!("line {line} has {} fields, the header {fields}", cols.len()));
    }
    let names: Vec<&str> = METRICS_HEADER.split(',').collect();
    let number = |i: usize| -> std::result::Result<f64, String> {
        cols[i].parse::<f64>().map_err(|_| format!("line {line}: {} '{}' is not a number", names[i], cols[i]))
    };
    let step = cols[0].parse().map_err(|_| format!("line {line}: step '{}' is not a whole number", cols[0]))?;
    let tokens = number(1)?;
    if !tokens.is_finite() {
        return Err(format!("line {line}: tokens '{}' is not a finite number", cols[1]));
    }
    if tokens < 0.0 {
        return Err(format!("line {line}: tokens '{}' is negative (a token count cannot be)", cols[1]));
    }
    let val_loss = match cols[5] {
        "" => None,
        text => Some(text.parse::<f64>().map_err(|_| format!("line {line}: val_loss '{text}' is not a number"))?),
    };
    Ok(MetricsRow {
        step,
        tokens,
        flops: number(2)?,
        lr: number(3)?,
        train_loss: number(4)?,
        val_loss,
        grad_norm: number(6)?,
        elapsed_s: number(7)?,
        tokens_per_s: number(8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_lines_are_skipped_naming_the_file_and_line_and_counted_past_three() {
        let text = format!(
            "{METRICS_HEADER}\n1,32,1e3,1e-3,5.5,,1,0.1,100\n2,64.5,2e3,1e-3,5.4,5.3,1,0.2,100\n\n3,96,6\n\
             4,abc,1,1,1,1,1,1,1\n5,128,1,1,1,notanumber,1,1,1\n6,160,1,1,1,NaN,1,1,1\n7,1\n"
        );
        let (rows, warnings) = parse_metrics(Path::new("m.csv"), text.as_bytes()).expect("header");
        assert_eq!(rows.iter().map(|r| r.step).collect::<Vec<_>>(), vec![1, 2, 6]);
        assert_eq!(rows[1].evaluation(), Some((64.5, 5.3)));
        assert_eq!(rows[0].evaluation(), None);
        assert_eq!(rows[2].evaluation(), None);
        assert_eq!(
            warnings,
            vec![
                "m.csv: line 5 has 3 fields, the header 9; skipped",
                "m.csv: line 6: tokens 'abc' is not a number; skipped",
                "m.csv: line 7: val_loss 'notanumber' is not a number; skipped",
                "m.csv: 2 more corrupt lines skipped",
            ]
        );
        assert!(parse_metrics(Path::new("m.csv"), b"step,tokens\n1,2\n").is_err());
        // A negative count is finite: the warning says what is wrong with it.
        let text = format!("{METRICS_HEADER}\n1,-5,1,1,1,1,1,1,1\n2,inf,1,1,1,1,1,1,1\n");
        let (rows, warnings) = parse_metrics(Path::new("m.csv"), text.as_bytes()).expect("header");
        assert!(rows.is_empty());
        assert_eq!(
            warnings,
            vec![
                "m.csv: line 2: tokens '-5' is negative (a token count cannot be); skipped",
                "m.csv: line 3: tokens 'inf' is not a finite number; skipped",
            ]
        );
    }
}
