//! Reading a sweep's records for the figures and the report (docs/DESIGN.md "Results"):
//! summary.csv (one row per run), each done run's metrics.csv (its validation curve) and
//! run.json (FLOP budget, data source, true entropy). Corrupt or truncated lines are skipped
//! with a warning naming the file and line; nothing here panics on bad input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use csv::StringRecord;
use serde_json::Value;

use crate::plot::error::PlotError;

/// Warnings listed per metrics.csv before the rest are only counted.
const WARNINGS_PER_FILE: usize = 3;

/// Which parameter count is N (docs/DESIGN.md "Counting"; fit.json "param_count").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamCount {
    Nonembedding,
    Total,
    Matmul,
}

/// Which FLOP count is C (fit.json "flop_count").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlopCount {
    SixN,
    MatmulAttn,
    Chinchilla,
}

/// The counting conventions the figures use: those the fit used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counting {
    pub params: ParamCount,
    pub flops: FlopCount,
}

impl Default for Counting {
    fn default() -> Self {
        Counting { params: ParamCount::Nonembedding, flops: FlopCount::SixN }
    }
}

impl Counting {
    /// From fit.json's names; unknown names keep the defaults (nonembedding, 6n).
    pub fn from_names(param_count: Option<&str>, flop_count: Option<&str>) -> Counting {
        let params = match param_count {
            Some("total") => ParamCount::Total,
            Some("matmul") => ParamCount::Matmul,
            _ => ParamCount::Nonembedding,
        };
        let flops = match flop_count {
            Some("matmul_attn") => FlopCount::MatmulAttn,
            Some("chinchilla") => FlopCount::Chinchilla,
            _ => FlopCount::SixN,
        };
        Counting { params, flops }
    }

    /// summary.csv column of N.
    pub fn params_column(&self) -> &'static str {
        match self.params {
            ParamCount::Nonembedding => "params_nonembedding",
            ParamCount::Total => "params_total",
            ParamCount::Matmul => "params_matmul",
        }
    }

    /// summary.csv column of C.
    pub fn flops_column(&self) -> &'static str {
        match self.flops {
            FlopCount::SixN => "flops_6n",
            FlopCount::MatmulAttn => "flops_matmul_attn",
            FlopCount::Chinchilla => "flops_chinchilla",
        }
    }

    /// Axis name of N, with its unit.
    pub fn params_label(&self) -> &'static str {
        match self.params {
            ParamCount::Nonembedding => "N, non-embedding parameters",
            ParamCount::Total => "N, parameters (all)",
            ParamCount::Matmul => "N, parameters (non-embedding + head)",
        }
    }

    /// Axis name of C, with its unit.
    pub fn flops_label(&self) -> &'static str {
        match self.flops {
            FlopCount::SixN => "C, training compute (FLOPs, 6ND)",
            FlopCount::MatmulAttn => "C, training compute (FLOPs, matmul + attention)",
            FlopCount::Chinchilla => "C, training compute (FLOPs, Chinchilla App. F)",
        }
    }
}

/// One evaluation of a run (a metrics.csv row with a val_loss).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Eval {
    pub tokens: f64,
    /// 6n compute so far (the metrics.csv convention).
    pub flops_6n: f64,
    pub loss: f64,
}

/// What run.json adds to the summary row.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RunInfo {
    pub flop_budget: Option<f64>,
    pub data_source: Option<String>,
    pub device: Option<String>,
    /// "fused" or "composite" (absent in older records).
    pub ops: Option<String>,
    pub true_entropy: Option<f64>,
    pub batch_size: Option<f64>,
    pub lr: Option<f64>,
}

/// One summary.csv row and, for done runs, its curve and run.json.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Run {
    pub id: String,
    pub status: String,
    /// Line of summary.csv.
    pub line: u64,
    /// Numeric cells by column name; empty or unparsable cells are absent.
    pub cells: BTreeMap<String, f64>,
    pub curve: Vec<Eval>,
    pub info: RunInfo,
}

/// A done run's final figures under the chosen counting.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point {
    pub id: String,
    pub params: f64,
    pub tokens: f64,
    pub flops: f64,
    pub loss: f64,
    pub unique_tokens: Option<f64>,
    pub flop_budget: Option<f64>,
}

impl Run {
    /// A positive finite numeric cell.
    pub fn cell(&self, column: &str) -> Option<f64> {
        self.cells.get(column).copied().filter(|v| v.is_finite() && *v > 0.0)
    }

    /// C under `counting`; the 6n count falls back to the `flops` column.
    pub fn flops(&self, counting: &Counting) -> Option<f64> {
        let value = self.cell(counting.flops_column());
        match counting.flops {
            FlopCount::SixN => value.or_else(|| self.cell("flops")),
            _ => value,
        }
    }

    /// The run's final point, when every figure it needs is known.
    pub fn point(&self, counting: &Counting) -> Option<Point> {
        Some(Point {
            id: self.id.clone(),
            params: self.cell(counting.params_column())?,
            tokens: self.cell("tokens")?,
            flops: self.flops(counting)?,
            loss: self.cell("val_loss")?,
            unique_tokens: self.cell("unique_tokens"),
            flop_budget: self.info.flop_budget,
        })
    }

    /// The validation curve as (C, loss, tokens) under `counting`, ending at the final
    /// point: metrics.csv counts 6n compute, rescaled by the run's C / C_6n.
    pub fn curve(&self, counting: &Counting) -> Vec<(f64, f64, f64)> {
        let Some(point) = self.point(counting) else { return Vec::new() };
        let per_token = point.flops / point.tokens;
        let six_n_per_token = self.flops(&Counting::default()).map(|c| c / point.tokens);
        let mut curve: Vec<(f64, f64, f64)> = self
            .curve
            .iter()
            .filter(|eval| eval.tokens > 0.0 && eval.tokens < point.tokens)
            .map(|eval| {
                let flops = match six_n_per_token {
                    Some(six_n) if eval.flops_6n > 0.0 => eval.flops_6n * per_token / six_n,
                    _ => eval.tokens * per_token,
                };
                (flops, eval.loss, eval.tokens)
            })
            .collect();
        curve.push((point.flops, point.loss, point.tokens));
        curve.sort_by(|a, b| a.0.total_cmp(&b.0));
        curve
    }
}

/// Everything read from a sweep directory.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sweep {
    pub dir: PathBuf,
    /// Every summary.csv row, in file order.
    pub runs: Vec<Run>,
    /// sweep.toml as written, when present.
    pub config: Option<String>,
    pub warnings: Vec<String>,
}

impl Sweep {
    /// Reads summary.csv, then the curve and run.json of each done run.
    pub fn read(dir: &Path) -> Result<Sweep, PlotError> {
        let summary = dir.join("summary.csv");
        let mut warnings = Vec::new();
        let mut runs = read_summary(&summary, &mut warnings)?;
        let not_done: Vec<String> =
            runs.iter().filter(|r| r.status != "done").map(|r| format!("{} ({})", r.id, r.status)).collect();
        if !not_done.is_empty() {
            warnings.push(format!(
                "{}: {} run(s) not done, not plotted: {}",
                summary.display(),
                not_done.len(),
                not_done.join(", ")
            ));
        }
        for run in runs.iter_mut().filter(|r| r.status == "done") {
            let run_dir = dir.join("runs").join(&run.id);
            run.curve = read_metrics(&run_dir.join("metrics.csv"), &mut warnings);
            run.info = read_run_json(&run_dir.join("run.json"), &mut warnings);
        }
        let config = std::fs::read_to_string(dir.join("sweep.toml")).ok();
        Ok(Sweep { dir: dir.to_path_buf(), runs, config, warnings })
    }

    /// The final points of the done runs (a warning for each done run lacking a figure).
    pub fn points(&self, counting: &Counting) -> (Vec<Point>, Vec<String>) {
        let mut points = Vec::new();
        let mut warnings = Vec::new();
        for run in self.runs.iter().filter(|r| r.status == "done") {
            match run.point(counting) {
                Some(point) => points.push(point),
                None => warnings.push(format!(
                    "summary.csv line {}: run {} is done but lacks {}, tokens, C or val_loss; not plotted",
                    run.line,
                    run.id,
                    counting.params_column()
                )),
            }
        }
        (points, warnings)
    }

    /// The done runs that have a final point, with it.
    pub fn done_runs(&self, counting: &Counting) -> Vec<(&Run, Point)> {
        self.runs.iter().filter(|r| r.status == "done").filter_map(|r| Some((r, r.point(counting)?))).collect()
    }

    /// The true entropy floor the runs recorded (summary column, else run.json).
    pub fn true_entropies(&self) -> Vec<f64> {
        self.runs
            .iter()
            .filter(|r| r.status == "done")
            .filter_map(|r| r.cell("true_entropy").or(r.info.true_entropy))
            .collect()
    }
}

fn csv_reader(path: &Path) -> Result<csv::Reader<std::fs::File>, PlotError> {
    let file = std::fs::File::open(path).map_err(|e| PlotError::io(path, e))?;
    Ok(csv_from(file))
}

fn csv_from<R: std::io::Read>(input: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(input)
}

/// summary.csv rows; rows that do not parse or have the wrong field count become warnings.
fn read_summary(path: &Path, warnings: &mut Vec<String>) -> Result<Vec<Run>, PlotError> {
    let file = std::fs::File::open(path).map_err(|e| PlotError::io(path, e))?;
    parse_summary(path, file, warnings)
}

/// How to get a usable summary.csv (at `summary`) back.
fn rebuild_hint(summary: &Path) -> String {
    crate::records::rebuild_hint(summary.parent().unwrap_or(Path::new(".")))
}

/// summary.csv rows read from `input`; `path` only names the file in messages.
pub(crate) fn parse_summary<R: std::io::Read>(
    path: &Path,
    input: R,
    warnings: &mut Vec<String>,
) -> Result<Vec<Run>, PlotError> {
    let mut reader = csv_from(input);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| PlotError::Summary {
            path: path.to_path_buf(),
            message: format!("header does not parse: {e}; {}", rebuild_hint(path)),
        })?
        .iter()
        .map(|name| name.to_ascii_lowercase())
        .collect();
    for column in ["run_id", "status"] {
        if !header.iter().any(|name| name == column) {
            let message = format!("no column {column} in the header; {}", rebuild_hint(path));
            return Err(PlotError::Summary { path: path.to_path_buf(), message });
        }
    }
    let mut runs = Vec::new();
    for record in reader.records() {
        match record {
            Ok(row) => match summary_row(&header, &row) {
                Ok(run) => runs.push(run),
                Err(message) => warnings.push(format!("{} line {}: {message}; skipped", path.display(), line_of(&row))),
            },
            Err(error) => warnings.push(format!("{}: {error}; skipped", path.display())),
        }
    }
    Ok(runs)
}

fn line_of(row: &StringRecord) -> u64 {
    row.position().map_or(0, |p| p.line())
}

/// One summary row as a run; numeric cells that do not parse are left out of `cells`.
fn summary_row(header: &[String], row: &StringRecord) -> Result<Run, String> {
    if row.len() != header.len() {
        return Err(format!("has {} fields, the header {}", row.len(), header.len()));
    }
    let text = |name: &str| header.iter().position(|h| h == name).and_then(|i| row.get(i)).unwrap_or("");
    let (id, status) = (text("run_id").to_string(), text("status").to_string());
    if id.is_empty() || !["done", "diverged", "failed", "running", "pending"].contains(&status.as_str()) {
        return Err(format!("run_id '{id}' / status '{status}' is not a run row"));
    }
    let mut cells = BTreeMap::new();
    for (name, value) in header.iter().zip(row.iter()) {
        if let Ok(number) = value.parse::<f64>() {
            cells.insert(name.clone(), number);
        }
    }
    for name in ["params_nonembedding", "tokens", "val_loss"] {
        let value = text(name);
        if status == "done" && !value.is_empty() && !cells.contains_key(name) {
            return Err(format!("{name} '{value}' is not a number"));
        }
    }
    Ok(Run { id, status, line: line_of(row), cells, curve: Vec::new(), info: RunInfo::default() })
}

/// The evaluations of one metrics.csv; a missing file is a warning, corrupt rows too.
fn read_metrics(path: &Path, warnings: &mut Vec<String>) -> Vec<Eval> {
    match csv_reader(path) {
        Ok(reader) => parse_metrics(path, reader, warnings),
        Err(error) => {
            warnings.push(format!("{error}; the run's curve is not drawn"));
            Vec::new()
        }
    }
}

/// The evaluations of a metrics.csv read from `reader`; `path` only names the file in messages.
pub(crate) fn parse_metrics<R: std::io::Read>(
    path: &Path,
    mut reader: csv::Reader<R>,
    warnings: &mut Vec<String>,
) -> Vec<Eval> {
    let header: Vec<String> = match reader.headers() {
        Ok(header) => header.iter().map(str::to_string).collect(),
        Err(error) => {
            warnings.push(format!("{}: header does not parse ({error})", path.display()));
            return Vec::new();
        }
    };
    let position = |name: &str| header.iter().position(|h| h == name);
    let columns = (position("tokens"), position("flops"), position("val_loss"));
    let mut evals = Vec::new();
    let mut corrupt: Vec<String> = Vec::new();
    for record in reader.records() {
        match record.map_err(|e| e.to_string()).and_then(|row| metrics_row(&row, header.len(), columns)) {
            Ok(Some(eval)) => evals.push(eval),
            Ok(None) => {}
            Err(message) => corrupt.push(message),
        }
    }
    for message in corrupt.iter().take(WARNINGS_PER_FILE) {
        warnings.push(format!("{}: {message}; skipped", path.display()));
    }
    if corrupt.len() > WARNINGS_PER_FILE {
        warnings.push(format!("{}: {} more corrupt lines skipped", path.display(), corrupt.len() - WARNINGS_PER_FILE));
    }
    evals
}

/// A metrics row: `None` when it is not an eval step, an error naming its line when corrupt.
fn metrics_row(
    row: &StringRecord,
    fields: usize,
    (tokens, flops, loss): (Option<usize>, Option<usize>, Option<usize>),
) -> Result<Option<Eval>, String> {
    let line = line_of(row);
    if row.len() != fields {
        return Err(format!("line {line} has {} fields, the header {fields}", row.len()));
    }
    let number = |column: Option<usize>, name: &str| -> Result<Option<f64>, String> {
        match column.and_then(|i| row.get(i)).filter(|text| !text.is_empty()) {
            None => Ok(None),
            Some(text) => match text.parse::<f64>() {
                Ok(value) if value.is_finite() => Ok(Some(value)),
                _ => Err(format!("line {line}: {name} '{text}' is not a finite number")),
            },
        }
    };
    let Some(loss) = number(loss, "val_loss")? else { return Ok(None) };
    let tokens = number(tokens, "tokens")?.ok_or_else(|| format!("line {line}: tokens is empty"))?;
    let flops_6n = number(flops, "flops")?.unwrap_or(0.0);
    Ok((loss > 0.0).then_some(Eval { tokens, flops_6n, loss }))
}

/// The parts of run.json the figures use; an unreadable file is a warning.
fn read_run_json(path: &Path, warnings: &mut Vec<String>) -> RunInfo {
    match std::fs::read(path) {
        Ok(bytes) => parse_run_json(path, &bytes, warnings),
        Err(error) => {
            warnings.push(format!("{}: {error}", path.display()));
            RunInfo::default()
        }
    }
}

/// The parts of a run.json's bytes the figures use; `path` only names the file in messages.
pub(crate) fn parse_run_json(path: &Path, bytes: &[u8], warnings: &mut Vec<String>) -> RunInfo {
    let json: Value = match serde_json::from_slice(bytes) {
        Ok(json) => json,
        Err(error) => {
            warnings.push(format!("{} line {}: not valid JSON ({error}); ignored", path.display(), error.line()));
            return RunInfo::default();
        }
    };
    let number = |pointer: &str| json.pointer(pointer).and_then(Value::as_f64).filter(|v| v.is_finite());
    let text = |pointer: &str| json.pointer(pointer).and_then(Value::as_str).map(str::to_string);
    RunInfo {
        flop_budget: number("/spec/flop_budget").filter(|v| *v > 0.0),
        data_source: text("/data/source"),
        device: text("/device"),
        ops: text("/ops").filter(|ops| !ops.is_empty()),
        true_entropy: number("/data/true_entropy"),
        batch_size: number("/spec/batch_size"),
        lr: number("/spec/lr"),
    }
}
