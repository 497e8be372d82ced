//! The results files of docs/DESIGN.md "Results: the stable contract": run.json, metrics.csv and
//! summary.csv. Every record is written through `crate::fs::write_atomic` (temporary file +
//! rename, so a kill at any instant leaves the previous good version).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::RunSpec;
use crate::error::{Error, Result};
use crate::model::FlopsPerToken;

/// The atomic write lives in the filesystem layer (`crate::fs`); these paths are kept for callers.
pub use crate::fs::{commit_temp, temp_sibling, unix_now, write_atomic};

/// Version of the record format; bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// The columns of metrics.csv, in order.
pub const METRICS_HEADER: &str = "step,tokens,flops,lr,train_loss,val_loss,grad_norm,elapsed_s,tokens_per_s";

/// The columns of summary.csv, in order (docs/DESIGN.md), then the extra columns sweeplaw adds.
pub const SUMMARY_HEADER: &str = "run_id,status,n_layers,d_model,n_heads,seq_len,vocab_size,params_nonembedding,params_total,params_matmul,tokens,unique_tokens,flops,val_loss,train_loss,wall_s,seed,flops_6n,flops_matmul_attn,flops_chinchilla,true_entropy";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Done,
    Diverged,
    Failed,
    Running,
    Pending,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Done => "done",
            RunStatus::Diverged => "diverged",
            RunStatus::Failed => "failed",
            RunStatus::Running => "running",
            RunStatus::Pending => "pending",
        }
    }
}

/// Exact parameter counts and FLOPs per token of the run's model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub params_nonembedding: u64,
    pub params_total: u64,
    pub params_matmul: u64,
    pub flops_per_token: FlopsPerToken,
}

/// What the data source says about itself and its validation split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    pub source: String,
    pub vocab_size: usize,
    pub unique_tokens: Option<u64>,
    /// Exact entropy of the validation targets (nats/token): the irreducible loss, when known.
    pub true_entropy: Option<f64>,
    /// Entropy of the validation targets' unigram distribution (what a model without context gets).
    pub unigram_entropy: Option<f64>,
    pub eval_tokens: u64,
    /// The seed that keyed the training order (the run's seed, or the data section's
    /// `data_seed`); None when the order is not seeded by the run.
    #[serde(default)]
    pub data_seed: Option<u64>,
    /// Which tokens the validation set holds (e.g. evenly spaced windows over the held-out documents).
    #[serde(default)]
    pub validation_sample: Option<String>,
    /// sha256 (hex) of each token file trained on, by path.
    #[serde(default)]
    pub token_files_sha256: std::collections::BTreeMap<String, String>,
}

/// Final figures of a run (present once it has trained at least one step).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub steps: u64,
    pub tokens: u64,
    /// Compute under each convention: flops_per_token × tokens.
    pub flops_6n: f64,
    pub flops_matmul_attn: f64,
    pub flops_chinchilla: f64,
    pub val_loss: Option<f64>,
    pub train_loss: Option<f64>,
    pub wall_s: f64,
    pub tokens_per_s: f64,
    /// Passes over the unique training tokens (tokens / data.unique_tokens) when the data repeats.
    #[serde(default)]
    pub epochs: Option<f64>,
}

/// run.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub format_version: u32,
    pub run_id: String,
    pub status: RunStatus,
    /// Why a run is diverged or failed.
    pub reason: Option<String>,
    pub spec: RunSpec,
    pub counts: Counts,
    pub data: DataInfo,
    pub result: Option<RunResult>,
    pub device: String,
    /// Which ops trained the run: "fused" (sweeplaw's fused CPU ops or CUDA kernels), "fused
    /// except <kernels>" (CUDA kernels that failed their check and were turned off) or
    /// "composite" (candle's ops only: `SWEEPLAW_OPS=composite`); empty until the run starts, and
    /// in records written before this field existed.
    #[serde(default)]
    pub ops: String,
    pub versions: Versions,
    pub started_at_unix: u64,
    pub finished_at_unix: Option<u64>,
    /// Hash of the config the run belongs to (a sweep's plan hash, or a single run's spec
    /// hash): a results directory's identity does not rest on plan.json alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    pub sweeplaw: String,
    pub candle: String,
}

impl Default for Versions {
    fn default() -> Self {
        Versions { sweeplaw: env!("CARGO_PKG_VERSION").into(), candle: "0.11.1".into() }
    }
}

impl RunRecord {
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::record(path, e.to_string()))?;
        write_atomic(path, json.as_bytes())
    }

    pub fn read(path: &Path) -> Result<RunRecord> {
        let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
        RunRecord::parse(path, &bytes)
    }

    /// Parses the bytes of a run.json; `path` only names it in the error (with serde's line).
    /// A record whose numbers are impossible (a negative or non-finite loss, a run id that is not
    /// its folder's) is as damaged as one that does not parse.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<RunRecord> {
        let record: RunRecord =
            serde_json::from_slice(bytes).map_err(|e| Error::record(path, format!("not a valid run.json: {e}")))?;
        if record.run_id != record.spec.run_id {
            return Err(Error::record(
                path,
                format!("run_id {:?} is not the spec's {:?}", record.run_id, record.spec.run_id),
            ));
        }
        if let Some(result) = &record.result {
            for (name, value) in [("val_loss", result.val_loss), ("train_loss", result.train_loss)] {
                if value.is_some_and(|v| v.is_nan() || v < 0.0) && record.status == RunStatus::Done {
                    return Err(Error::record(path, format!("result.{name} is {value:?} in a run marked done")));
                }
            }
        }
        Ok(record)
    }

    /// The summary.csv row of this run (empty cells for unknowns, never zero).
    pub fn summary_row(&self) -> Vec<String> {
        let s = &self.spec.shape;
        let r = self.result.as_ref();
        let opt = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
        vec![
            self.run_id.clone(),
            self.status.as_str().into(),
            s.n_layers.to_string(),
            s.d_model.to_string(),
            s.n_heads.to_string(),
            s.seq_len.to_string(),
            s.vocab_size.to_string(),
            self.counts.params_nonembedding.to_string(),
            self.counts.params_total.to_string(),
            self.counts.params_matmul.to_string(),
            r.map(|r| r.tokens.to_string()).unwrap_or_default(),
            self.data.unique_tokens.map(|u| u.to_string()).unwrap_or_default(),
            opt(r.map(|r| r.flops_6n)),
            opt(r.and_then(|r| r.val_loss)),
            opt(r.and_then(|r| r.train_loss)),
            opt(r.map(|r| r.wall_s)),
            self.spec.seed.to_string(),
            opt(r.map(|r| r.flops_6n)),
            opt(r.map(|r| r.flops_matmul_attn)),
            opt(r.map(|r| r.flops_chinchilla)),
            opt(self.data.true_entropy),
        ]
    }
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
