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
    pub tokens: u64,
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

/// Reads metrics.csv. Lines that do not parse (a row cut short by a kill, garbage) are
/// skipped, each with a warning naming the file and line.
pub fn read_metrics(path: &Path) -> Result<(Vec<MetricsRow>, Vec<String>)> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_metrics(path, &bytes)
}

/// Parses the bytes of a metrics.csv (see `read_metrics`); bytes that are not UTF-8 are
/// replaced, so their line is skipped as malformed. `path` only names the file in messages.
pub fn parse_metrics(path: &Path, bytes: &[u8]) -> Result<(Vec<MetricsRow>, Vec<String>)> {
    let text = String::from_utf8_lossy(bytes);
    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, header)) if header.trim() == METRICS_HEADER => {}
        _ => return Err(Error::record(path, format!("line 1: expected the header {METRICS_HEADER}"))),
    }
    for (index, line) in lines {
        match parse_metrics_line(line) {
            Some(row) => rows.push(row),
            None => warnings.push(format!("{}:{}: skipped a malformed metrics row", path.display(), index + 1)),
        }
    }
    Ok((rows, warnings))
}

fn parse_metrics_line(line: &str) -> Option<MetricsRow> {
    let cols: Vec<&str> = line.split(',').collect();
    if cols.len() != 9 {
        return None;
    }
    let f = |i: usize| cols[i].trim().parse::<f64>().ok();
    Some(MetricsRow {
        step: cols[0].trim().parse().ok()?,
        tokens: cols[1].trim().parse().ok()?,
        flops: f(2)?,
        lr: f(3)?,
        train_loss: f(4)?,
        val_loss: if cols[5].trim().is_empty() { None } else { Some(f(5)?) },
        grad_norm: f(6)?,
        elapsed_s: f(7)?,
        tokens_per_s: f(8)?,
    })
}
