//! The plain CSV a user hands `sweeplaw fit`: any table whose header names N|params,
//! D|tokens, loss|val_loss and, optionally, C|flops and U|unique_tokens. It is the user's
//! table, not a sweeplaw record, so it is read here rather than in `crate::records`; a missing
//! D is C / (6 N), a missing C is 6 N D, and each derivation is a warning.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use csv::StringRecord;

use super::{positive_value, skip, Dataset, Point};
use crate::fit::error::FitError;
use crate::fit::reduce::{RowConfig, HYPERPARAMETERS};

/// A plain CSV read into memory: header positions and the rows that parsed.
pub(super) struct CsvTable {
    pub path: PathBuf,
    columns: HashMap<String, usize>,
    /// (line number, record)
    pub rows: Vec<(u64, StringRecord)>,
    /// (line number, why) of the rows that do not parse.
    pub rejected: Vec<(u64, String)>,
    pub warnings: Vec<String>,
}

impl CsvTable {
    /// Parses the CSV `bytes` of `path` (which only names it in messages) under its `header`
    /// (as `csv_header` read it); rows that do not parse are listed in `rejected` with their line.
    pub(super) fn parse(path: &Path, header: Vec<String>, bytes: &[u8]) -> CsvTable {
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(bytes);
        let columns = header.into_iter().enumerate().map(|(i, name)| (name, i)).collect();
        let mut table = CsvTable {
            path: path.to_path_buf(),
            columns,
            rows: Vec::new(),
            rejected: Vec::new(),
            warnings: Vec::new(),
        };
        for record in reader.records() {
            match record {
                Ok(row) => table.rows.push((row.position().map_or(0, |p| p.line()), row)),
                Err(error) => table.rejected.push((error_line(&error), format!("does not parse ({error})"))),
            }
        }
        table
    }

    /// Every row in file order: the record, or why it does not parse.
    pub fn lines(&self) -> Vec<(u64, Result<&StringRecord, &str>)> {
        let parsed = self.rows.iter().map(|(line, row)| (*line, Ok(row)));
        let rejected = self.rejected.iter().map(|(line, why)| (*line, Err(why.as_str())));
        let mut lines: Vec<_> = parsed.chain(rejected).collect();
        lines.sort_by_key(|(line, _)| *line);
        lines
    }

    /// The index of the first of `names` (lowercase) present in the header.
    pub fn column(&self, names: &[&str]) -> Option<usize> {
        names.iter().find_map(|name| self.columns.get(*name).copied())
    }

    /// Like `column`, but an absent column is an error naming the file, and so are two columns
    /// that both give the quantity (`N` and `params`): which one is meant is not ours to guess.
    pub fn require(&self, names: &[&str]) -> Result<usize, FitError> {
        let present: Vec<&str> = names.iter().copied().filter(|name| self.columns.contains_key(*name)).collect();
        if let [first, second, ..] = present.as_slice() {
            let message = format!("columns {first:?} and {second:?} both give the same quantity: keep one");
            return Err(FitError::Csv { path: self.path.clone(), message });
        }
        self.column(names)
            .ok_or_else(|| FitError::MissingColumn { path: self.path.clone(), column: names.join(" or ") })
    }
}

fn error_line(error: &csv::Error) -> u64 {
    error.position().map_or(0, |position| position.line())
}

/// A numeric cell: `Ok(None)` when empty (unknown), an error message when it does not parse.
fn cell(row: &StringRecord, column: Option<usize>, name: &str) -> Result<Option<f64>, String> {
    let Some(text) = column.and_then(|i| row.get(i)) else {
        return Ok(None);
    };
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<f64>().map(Some).map_err(|_| format!("{name} '{text}' is not a number"))
}

/// A cell that must hold a positive finite number.
fn positive(row: &StringRecord, column: Option<usize>, name: &str) -> Result<f64, String> {
    positive_value(cell(row, column, name)?, name)
}

/// Column positions of a plain CSV.
struct PlainColumns {
    params: usize,
    tokens: Option<usize>,
    flops: Option<usize>,
    unique_tokens: Option<usize>,
    loss: usize,
    status: Option<usize>,
    /// A column naming each run (`name`, `run_id`, `run`), used instead of "line N".
    name: Option<usize>,
}

/// A row's hyperparameter cells and seed (for `--reduce`).
fn row_config(table: &CsvTable, row: &StringRecord) -> RowConfig {
    let cells: Vec<String> = HYPERPARAMETERS
        .iter()
        .filter_map(|name| table.column(&[name]).and_then(|i| row.get(i)).map(|v| format!("{name}={v}")))
        .collect();
    RowConfig {
        hyperparameters: cells.join(","),
        seed: table.column(&["seed"]).and_then(|i| row.get(i)).map(str::to_string),
    }
}

pub(super) fn load_plain(table: &CsvTable) -> Result<(Dataset, Vec<RowConfig>), FitError> {
    let columns = PlainColumns {
        params: table.require(&["n", "params", "model size", "model_size"])?,
        tokens: table.column(&["d", "tokens", "training tokens"]),
        flops: table.column(&["c", "flops", "training flop", "training flops"]),
        unique_tokens: table.column(&["u", "unique_tokens"]),
        loss: table.require(&["loss", "val_loss"])?,
        status: table.column(&["status"]),
        name: table.column(&["name", "run_id", "run"]),
    };
    if columns.tokens.is_none() && columns.flops.is_none() {
        table.require(&["d", "tokens"])?;
    }
    let mut dataset = Dataset::from_points("", Vec::new());
    let mut configs = Vec::new();
    dataset.warnings = table.warnings.clone();
    for (line, row) in table.lines() {
        let named =
            |row: &StringRecord| columns.name.and_then(|i| row.get(i)).filter(|n| !n.is_empty()).map(str::to_string);
        let run = row.ok().and_then(named).unwrap_or_else(|| format!("line {line}"));
        let row = match row {
            Ok(row) => row,
            Err(reason) => {
                skip(&mut dataset, &table.path, line, &run, reason);
                continue;
            }
        };
        let status = columns.status.and_then(|i| row.get(i)).unwrap_or("done");
        if status != "done" {
            skip(&mut dataset, &table.path, line, &run, &format!("status '{status}', not done"));
            continue;
        }
        match plain_point(row, &columns, run.clone()) {
            Ok(point) => {
                dataset.points.push(point);
                configs.push(row_config(table, row));
            }
            Err(reason) => skip(&mut dataset, &table.path, line, &run, &reason),
        }
    }
    note_plain_derivations(&mut dataset, table, &columns);
    Ok((dataset, configs))
}

fn plain_point(row: &StringRecord, columns: &PlainColumns, run_id: String) -> Result<Point, String> {
    let params = positive(row, Some(columns.params), "N")?;
    let loss = positive(row, Some(columns.loss), "loss")?;
    let flops = match columns.flops {
        Some(_) => Some(positive(row, columns.flops, "C")?),
        None => None,
    };
    let tokens = match (columns.tokens, flops) {
        (Some(_), _) => positive(row, columns.tokens, "D")?,
        // Besiroglu et al. 2024: D = C / (6 N) when only C is given.
        (None, Some(c)) => c / (6.0 * params),
        (None, None) => return Err("neither D nor C is given".to_string()),
    };
    let unique_tokens = match cell(row, columns.unique_tokens, "U")? {
        Some(u) if u.is_finite() && u > 0.0 => Some(u),
        _ => None,
    };
    Ok(Point {
        run_id,
        params,
        tokens,
        // Kaplan et al. 2020: C = 6 N D when the compute is not given.
        flops: flops.unwrap_or(6.0 * params * tokens),
        unique_tokens,
        loss,
    })
}

fn note_plain_derivations(dataset: &mut Dataset, table: &CsvTable, columns: &PlainColumns) {
    let path = table.path.display();
    if columns.flops.is_none() {
        dataset.flop_count = "6n".to_string();
        dataset.warnings.push(format!("{path}: no C/flops column: C = 6 N D"));
    }
    if columns.tokens.is_none() {
        dataset.warnings.push(format!("{path}: no D/tokens column: D = C / (6 N)"));
    }
}
