//! Loading the records a fit reads: a sweep directory (summary.csv plus each run's
//! metrics.csv, both read through `crate::records`) or any CSV whose header names N|params,
//! D|tokens, loss|val_loss and, optionally, C|flops and U|unique_tokens (docs/DESIGN.md
//! "Results"). The plain CSV is the one format read in `fit` (`data/plain.rs`): it is the
//! user's table, not a sweeplaw record.
//!
//! Rows that cannot be used (status other than `done`, empty or unparsable cells, NaN or
//! non-positive values) are skipped with a warning naming the file and line; nothing panics.

use std::path::Path;

use crate::fit::counting::{run_flops, RunShape};
use crate::fit::error::FitError;
use crate::fit::options::{FitOptions, FlopCount, Reduce};
use crate::fit::reduce::{reduce, RowConfig, HYPERPARAMETERS};
use crate::records::fit::Excluded;
use crate::records::{RejectedRow, RunStatus, SummaryFile, SummaryRow};

mod plain;

/// One finished run (or one row of a plain CSV): its final figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// run_id; for a plain CSV its `name`/`run_id`/`run` column, or "line N".
    pub run_id: String,
    /// N under the chosen parameter count.
    pub params: f64,
    /// D, tokens trained.
    pub tokens: f64,
    /// C, total compute under the chosen FLOP count.
    pub flops: f64,
    /// U, unique tokens seen (None: unknown, taken as D).
    pub unique_tokens: Option<f64>,
    /// Final validation loss.
    pub loss: f64,
}

/// One evaluation during a run (a metrics.csv row with a val_loss).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    pub tokens: f64,
    pub flops: f64,
    pub loss: f64,
}

/// The validation curve of the run `points[point]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub point: usize,
    pub evals: Vec<CurvePoint>,
}

/// Everything a fit reads.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// The path the records came from.
    pub source: String,
    pub points: Vec<Point>,
    /// Validation curves of sweep runs (empty for a plain CSV).
    pub curves: Vec<Curve>,
    pub excluded: Vec<Excluded>,
    /// The parameter count used ("as given" for a plain CSV).
    pub param_count: String,
    /// The FLOP count used ("6n" when C was derived as 6 N D).
    pub flop_count: String,
    /// Warnings raised while loading; `fit` copies them into its report.
    pub warnings: Vec<String>,
    /// How rows sharing (N, D) were combined (None: no repeated rows).
    pub reduced: Option<String>,
    /// Pooled loss standard deviation between seeds of one configuration.
    pub noise_floor: Option<f64>,
}

impl Dataset {
    /// A dataset from points already in memory (no curves).
    pub fn from_points(source: &str, points: Vec<Point>) -> Dataset {
        Dataset {
            source: source.to_string(),
            points,
            param_count: "as given".to_string(),
            flop_count: "as given".to_string(),
            ..Dataset::default()
        }
    }

    /// Drops the `count` points with the highest loss (Besiroglu et al. 2024 drop 5),
    /// listing them under `excluded`; curves are re-indexed.
    pub fn drop_highest_loss(&mut self, count: usize) {
        let mut order: Vec<usize> = (0..self.points.len()).collect();
        order.sort_by(|&i, &j| self.points[j].loss.total_cmp(&self.points[i].loss));
        let dropped: Vec<usize> = order.into_iter().take(count).collect();
        self.remove_points(&dropped, "one of the highest losses, excluded by option");
    }

    /// Removes the points at `indices`, recording `reason`; curves follow their points.
    pub(crate) fn remove_points(&mut self, indices: &[usize], reason: &str) {
        let mut new_index = vec![None; self.points.len()];
        let mut kept = Vec::with_capacity(self.points.len());
        for (i, point) in self.points.drain(..).enumerate() {
            if indices.contains(&i) {
                self.excluded.push(Excluded { run: point.run_id, reason: reason.to_string() });
            } else {
                new_index[i] = Some(kept.len());
                kept.push(point);
            }
        }
        self.points = kept;
        self.curves.retain_mut(|curve| match new_index[curve.point] {
            Some(index) => {
                curve.point = index;
                true
            }
            None => false,
        });
    }
}

/// The counting conventions a sweep directory was planned in, which `fit` uses unless `--params`
/// or `--flops` says otherwise: `budget.param_count` (the N its tokens per parameter, centred
/// grids and seed threshold were counted in) and `budget.flop_convention` (under another FLOP
/// convention a sweep's equal budgets no longer group into IsoFLOP sets), from its sweep.toml.
/// A CSV file or a directory without a readable sweep.toml gets the defaults (non-embedding N,
/// 6N FLOPs). An unknown name there is an error.
pub fn planned_conventions(
    path: &Path,
) -> Result<(crate::counting::ParamCount, crate::counting::FlopConvention), FitError> {
    /// The part of a sweep config that says how its budgets count parameters and FLOPs.
    #[derive(serde::Deserialize, Default)]
    struct Planned {
        #[serde(default)]
        budget: PlannedBudget,
    }
    #[derive(serde::Deserialize, Default)]
    struct PlannedBudget {
        #[serde(default)]
        param_count: crate::counting::ParamCount,
        #[serde(default)]
        flop_convention: crate::counting::FlopConvention,
    }
    let config = path.join("sweep.toml");
    let Ok(text) = std::fs::read_to_string(&config) else {
        return Ok(Default::default());
    };
    let planned: Planned =
        toml::from_str(&text).map_err(|e| FitError::Csv { path: config, message: e.message().to_string() })?;
    Ok((planned.budget.param_count, planned.budget.flop_convention))
}

/// Reads a sweep directory or a CSV; returns the dataset and the warnings raised.
pub fn load_points(path: &Path, opts: &FitOptions) -> Result<(Dataset, Vec<String>), FitError> {
    let summary = if path.is_dir() { path.join("summary.csv") } else { path.to_path_buf() };
    // A sweep's summary.csv is derived from its run folders, so it can always be rebuilt.
    let rebuildable = |error: FitError| match error {
        FitError::Csv { path: csv, message } if path.is_dir() && path.join("runs").is_dir() => {
            FitError::Csv { path: csv, message: format!("{message}; {}", crate::records::rebuild_hint(path)) }
        }
        other => other,
    };
    let bytes = std::fs::read(&summary).map_err(|source| FitError::Io { path: summary.clone(), source })?;
    let columns = csv_header(&summary, &bytes).map_err(rebuildable)?;
    let (mut dataset, configs) = if crate::records::is_summary_header(&columns) {
        let file = crate::records::parse_summary_file(&summary, bytes.as_slice()).map_err(|error| match error {
            crate::error::Error::Io { path, source } => FitError::Io { path, source },
            crate::error::Error::Record { path, message } => FitError::Csv { path, message },
            other => FitError::Csv { path: summary.clone(), message: other.to_string() },
        })?;
        let run_dir = summary.parent().unwrap_or(Path::new(".")).join("runs");
        load_summary(&summary, &file, &run_dir, opts)?
    } else {
        plain::load_plain(&plain::CsvTable::parse(&summary, columns, &bytes))?
    };
    reduce(&mut dataset, &configs, opts.reduce);
    dataset.source = path.display().to_string();
    if dataset.points.is_empty() {
        return Err(FitError::NoPoints { path: summary, skipped: dataset.excluded.len() });
    }
    if opts.exclude_highest_loss > 0 {
        dataset.drop_highest_loss(opts.exclude_highest_loss);
    }
    let warnings = dataset.warnings.clone();
    Ok((dataset, warnings))
}

/// The header of the CSV `bytes` (lowercase names), checked to name each column once.
fn csv_header(path: &Path, bytes: &[u8]) -> Result<Vec<String>, FitError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(bytes);
    let header = reader.headers().map_err(|error| FitError::Csv {
        path: path.to_path_buf(),
        message: format!("header does not parse: {error}"),
    })?;
    crate::records::check_header(header.iter())
        .map_err(|message| FitError::Csv { path: path.to_path_buf(), message })?;
    Ok(header.iter().map(|name| name.to_ascii_lowercase()).collect())
}

/// A finite positive figure, or why the row cannot be used.
fn positive_value(value: Option<f64>, name: &str) -> Result<f64, String> {
    match value {
        None => Err(format!("{name} is empty")),
        Some(value) if value.is_finite() && value > 0.0 => Ok(value),
        Some(value) => Err(format!("{name} is {value}, not a positive number")),
    }
}

/// A summary.csv line in file order: a run row, or a row the reader rejected.
enum SummaryLine<'a> {
    Row(&'a SummaryRow),
    Rejected(&'a RejectedRow),
}

fn load_summary(
    path: &Path,
    file: &SummaryFile,
    run_dir: &Path,
    opts: &FitOptions,
) -> Result<(Dataset, Vec<RowConfig>), FitError> {
    for column in [opts.params.column(), "params_nonembedding", "tokens", "val_loss"] {
        if !file.has_column(column) {
            return Err(FitError::MissingColumn { path: path.to_path_buf(), column: column.to_string() });
        }
    }
    let mut dataset = Dataset {
        param_count: opts.params.as_str().to_string(),
        flop_count: opts.flops.as_str().to_string(),
        ..Dataset::default()
    };
    let mut lines: Vec<(u64, SummaryLine)> = file.rows.iter().map(|row| (row.line, SummaryLine::Row(row))).collect();
    lines.extend(file.rejected.iter().map(|row| (row.line, SummaryLine::Rejected(row))));
    lines.sort_by_key(|(line, _)| *line);
    let has_flops_column = match opts.flops {
        // The 6n count falls back to the contract's `flops` column (`SummaryRow::compute`).
        FlopCount::SixN => file.has_column("flops_6n") || file.has_column("flops"),
        other => file.has_column(other.column()),
    };
    // Why C had to be derived from the counts, with the lines each reason applies to.
    let mut derived: Vec<(String, Vec<u64>)> = Vec::new();
    let mut vocabularies = Vec::new();
    let mut configs = Vec::new();
    for (line, entry) in lines {
        let row = match entry {
            SummaryLine::Row(row) => row,
            SummaryLine::Rejected(rejected) => {
                skip(&mut dataset, path, line, &rejected.run_id, &rejected.reason);
                continue;
            }
        };
        if row.status != RunStatus::Done {
            skip(&mut dataset, path, line, &row.run_id, &format!("status '{}', not done", row.status.as_str()));
            continue;
        }
        let config = match summary_row_config(row, run_dir) {
            Ok(config) => config,
            Err(unreadable) if opts.reduce == Reduce::Auto => {
                let reason = format!(
                    "{unreadable}: its learning rate and batch size are unknown, so it cannot be told from a seed \
                     of the other runs at its (N, D) (--reduce auto would average it with them)"
                );
                skip(&mut dataset, path, line, &row.run_id, &reason);
                continue;
            }
            Err(unreadable) => {
                // Only `auto` tells settings from seeds: under min, mean or none it is not needed.
                dataset.warnings.push(format!("{unreadable}; not needed under --reduce {}", opts.reduce.as_str()));
                RowConfig::default()
            }
        };
        match summary_point(row, opts, has_flops_column) {
            Ok((point, note)) => {
                if let Some(note) = note {
                    match derived.iter_mut().find(|(reason, _)| *reason == note) {
                        Some((_, lines)) => lines.push(line),
                        None => derived.push((note, vec![line])),
                    }
                }
                match row.vocab_size {
                    Some(vocab) if valid_vocabulary(vocab) => vocabularies.push((row.run_id.clone(), line, vocab)),
                    Some(vocab) => dataset.warnings.push(format!(
                        "{} line {line}: run {}: vocab_size {vocab} is not a vocabulary size (a whole number of at \
                         least 2): its loss is not checked against ln(vocab_size)",
                        path.display(),
                        row.run_id
                    )),
                    None => {}
                }
                dataset.points.push(point);
                configs.push(config);
            }
            Err(reason) => skip(&mut dataset, path, line, &row.run_id, &reason),
        }
    }
    for (note, lines) in derived {
        // Without the column every row derives C: the file, not each line, is the news.
        let place = match lines.as_slice() {
            _ if !has_flops_column => String::new(),
            [line] => format!(" line {line}"),
            _ => {
                format!(" lines {}", crate::human::first_of(&lines.iter().map(u64::to_string).collect::<Vec<_>>(), 10))
            }
        };
        dataset.warnings.push(format!("{}{place}: {note}", path.display()));
    }
    note_implausible_losses(&mut dataset, path, &vocabularies);
    crate::fit::curves::attach_curves(&mut dataset, run_dir);
    note_unlisted_runs(&mut dataset, path, file, run_dir);
    Ok((dataset, configs))
}

/// A summary.csv that lists fewer runs than runs/ holds finished (truncated, or written before
/// the last runs ended) is named, with the command that rebuilds it from the run folders.
fn note_unlisted_runs(dataset: &mut Dataset, path: &Path, file: &SummaryFile, run_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(run_dir) else { return };
    let listed: std::collections::HashSet<&str> = file
        .rows
        .iter()
        .map(|row| row.run_id.as_str())
        .chain(file.rejected.iter().map(|row| row.run_id.as_str()))
        .collect();
    let mut unlisted: Vec<String> = entries
        .flatten()
        .filter(|entry| {
            // An unreadable run.json is the sweep's business, not this note's.
            let info = crate::records::RunInfo::read(&entry.path().join("run.json"), &mut Vec::new());
            info.status == Some(RunStatus::Done) && !listed.contains(entry.file_name().to_string_lossy().as_ref())
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    if unlisted.is_empty() {
        return;
    }
    unlisted.sort();
    let sweep_dir = run_dir.parent().unwrap_or(Path::new("."));
    dataset.warnings.push(format!(
        "{}: lists {} run(s), but {} holds {} more finished run(s) ({}): rebuild it with `sweeplaw summary {}`",
        path.display(),
        listed.len(),
        run_dir.display(),
        unlisted.len(),
        unlisted.iter().take(5).cloned().collect::<Vec<_>>().join(", ") + if unlisted.len() > 5 { ", ..." } else { "" },
        sweep_dir.display()
    ));
}

/// Natural-log of the vocabulary: a model that has learnt nothing scores ln(vocab); a loss
/// far above it (by more than this margin) is implausible (a diverged or mis-recorded run).
const IMPLAUSIBLE_MARGIN: f64 = 1.0;

/// Warns about losses a language model cannot plausibly have: above ln(vocab_size) + 1 nats
/// when the vocabulary is known. (Non-finite losses are already skipped, with a warning.)
/// `vocab` holds (run, summary.csv line, vocab_size) of the runs with a valid vocabulary.
pub(crate) fn note_implausible_losses(dataset: &mut Dataset, path: &Path, vocab: &[(String, u64, f64)]) {
    for (run, line, vocab_size) in vocab {
        let Some(point) = dataset.points.iter().find(|p| &p.run_id == run) else { continue };
        let ceiling = vocab_size.ln() + IMPLAUSIBLE_MARGIN;
        if point.loss > ceiling {
            dataset.warnings.push(format!(
                "{} line {line}: run {run}: loss {} is implausible: above ln(vocab_size {vocab_size}) + \
                 {IMPLAUSIBLE_MARGIN} = {ceiling:.3} (a diverged or mis-recorded run?)",
                path.display(),
                crate::fit::table::number(point.loss)
            ));
        }
    }
}

fn skip(dataset: &mut Dataset, path: &Path, line: u64, run: &str, reason: &str) {
    let who = if run.is_empty() { format!("line {line}") } else { run.to_string() };
    dataset.warnings.push(format!("{} line {line}: run {who} skipped: {reason}", path.display()));
    dataset.excluded.push(Excluded { run: who, reason: reason.to_string() });
}

/// One summary row as a point; the note says when (and why) C had to be derived from the
/// counts: the file has no column for it (`has_flops_column` false), or the row's cell is
/// empty, not finite (1e400 reads as infinite) or not positive.
fn summary_point(
    row: &SummaryRow,
    opts: &FitOptions,
    has_flops_column: bool,
) -> Result<(Point, Option<String>), String> {
    let params = positive_value(row.params(opts.params), opts.params.column())?;
    let tokens = positive_value(row.tokens, "tokens")?;
    let loss = positive_value(row.val_loss, "val_loss")?;
    let unique_tokens = row.unique_tokens.filter(|u| u.is_finite() && *u > 0.0);
    let column = opts.flops.column();
    let (flops, note) = match row.compute(opts.flops) {
        Some(c) if c.is_finite() && c > 0.0 => (c, None),
        recorded => {
            let why = match recorded {
                _ if !has_flops_column => format!("no {column} column"),
                None => format!("{column} is empty"),
                Some(c) if !c.is_finite() => format!("{column} is {c}, not a finite number"),
                Some(c) => format!("{column} is {c}, not a positive number"),
            };
            let flops = run_flops(opts.flops, &run_shape(row)?, tokens, row.flops_6n.or(row.flops));
            if !(flops.is_finite() && flops > 0.0) {
                return Err(format!("{why}, and the counts to derive C from are missing"));
            }
            let note =
                format!("{why}: C derived from the model counts ({})", crate::fit::counting::derivation(opts.flops));
            (flops, Some(note))
        }
    };
    let point = Point { run_id: row.run_id.clone(), params, tokens, flops, unique_tokens, loss };
    Ok((point, note))
}

fn run_shape(row: &SummaryRow) -> Result<RunShape, String> {
    let known = |value: Option<f64>| value.unwrap_or(f64::NAN);
    Ok(RunShape {
        params_nonembedding: positive_value(row.params_nonembedding, "params_nonembedding")?,
        params_matmul: known(row.params_matmul),
        n_layers: known(row.n_layers),
        d_model: known(row.d_model),
        n_heads: known(row.n_heads),
        seq_len: known(row.seq_len),
        vocab_size: known(row.vocab_size.filter(|&vocab| valid_vocabulary(vocab))),
    })
}

/// A vocabulary size a model can have: a whole number of at least 2 tokens (with one there is
/// nothing to predict; 0 made the plausibility ceiling ln(0) + 1 = -inf).
fn valid_vocabulary(vocab: f64) -> bool {
    vocab.is_finite() && vocab >= 2.0 && vocab.fract() == 0.0
}

/// A summary row's hyperparameter cells and seed, for `--reduce`. summary.csv has no lr or batch
/// column, so where a user added none the run's own run.json gives them: runs at one (N, D) that
/// differ in lr (a tuning scan) are settings to take the best of, not seeds to average.
/// A run without a run.json (a summary.csv copied without its runs/) is keyed by its seed alone,
/// as a plain CSV row is. A run.json that exists but cannot be read is the error: the warning
/// naming the file and line (`RunInfo::read`'s): its settings are unknown, and keyed by its seed
/// alone it would be averaged with the other settings of its (N, D) as if it were their seed.
fn summary_row_config(row: &SummaryRow, run_dir: &Path) -> Result<RowConfig, String> {
    let mut cells: Vec<String> = HYPERPARAMETERS
        .iter()
        .filter_map(|name| row.extra.iter().find(|(column, _)| column == name).map(|(_, v)| format!("{name}={v}")))
        .collect();
    let run_json = run_dir.join(&row.run_id).join("run.json");
    if cells.is_empty() && std::fs::symlink_metadata(&run_json).is_ok() {
        let mut warnings = Vec::new();
        let info = crate::records::RunInfo::read(&run_json, &mut warnings);
        if let Some(warning) = warnings.first() {
            return Err(warning.strip_suffix("; ignored").unwrap_or(warning).to_string());
        }
        cells.extend(info.lr.map(|lr| format!("lr={lr}")));
        cells.extend(info.batch_size.map(|batch| format!("batch_size={batch}")));
    }
    Ok(RowConfig { hyperparameters: cells.join(","), seed: row.seed.map(|seed| seed.to_string()) })
}
