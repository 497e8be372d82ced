//! A sweep's records as the figures and the report see them (docs/DESIGN.md "Results"):
//! summary.csv's rows, each done run's validation curve (metrics.csv) and the parts of its
//! run.json they use, all read through `crate::records` (whose readers skip corrupt lines
//! with a warning naming the file and line); here they become final points and curves under
//! the fit's counting conventions.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::counting::{FlopConvention, ParamCount, UnknownName};
use crate::plot::error::PlotError;
use crate::records::{read_metrics, read_summary, RunInfo, RunStatus, SummaryRow};

/// The counting conventions the figures use: those the fit used (fit.json "param_count" and
/// "flop_count"; docs/DESIGN.md "Counting").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counting {
    pub params: ParamCount,
    pub flops: FlopConvention,
}

impl Counting {
    /// From fit.json's names: an absent name is the default (nonembedding, 6n); so is an
    /// unknown one ("as given", from a fit of a plain CSV), which is returned to be warned about.
    pub fn from_names(param_count: Option<&str>, flop_count: Option<&str>) -> (Counting, Vec<UnknownName>) {
        let mut unknown = Vec::new();
        let params = parse_or_default(param_count, &mut unknown);
        let flops = parse_or_default(flop_count, &mut unknown);
        (Counting { params, flops }, unknown)
    }

    /// summary.csv column of N.
    pub fn params_column(&self) -> &'static str {
        self.params.column()
    }

    /// summary.csv column of C.
    #[cfg(test)]
    pub fn flops_column(&self) -> &'static str {
        self.flops.column()
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
            FlopConvention::SixN => "C, training compute (FLOPs, 6ND)",
            FlopConvention::MatmulAttn => "C, training compute (FLOPs, matmul + attention)",
            FlopConvention::Chinchilla => "C, training compute (FLOPs, Chinchilla App. F)",
        }
    }
}

/// `name` parsed, the default when absent or unknown (an unknown name is added to `unknown`).
fn parse_or_default<T: FromStr<Err = UnknownName> + Default>(name: Option<&str>, unknown: &mut Vec<UnknownName>) -> T {
    match name.map(str::parse).transpose() {
        Ok(value) => value.unwrap_or_default(),
        Err(error) => {
            unknown.push(error);
            T::default()
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

/// One summary.csv row and, for done runs, its curve and run.json.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Run {
    pub row: SummaryRow,
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
}

/// A positive finite number, else `None`.
pub(crate) fn positive(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite() && *v > 0.0)
}

impl Run {
    pub fn id(&self) -> &str {
        &self.row.run_id
    }

    pub fn is_done(&self) -> bool {
        self.row.status == RunStatus::Done
    }

    /// C under `counting` (positive), the 6n count falling back to the `flops` column.
    pub fn flops(&self, counting: &Counting) -> Option<f64> {
        match counting.flops {
            FlopConvention::SixN => positive(self.row.flops_6n).or_else(|| positive(self.row.flops)),
            other => positive(self.row.compute(other)),
        }
    }

    /// The run's final point, when every figure it needs is known.
    pub fn point(&self, counting: &Counting) -> Option<Point> {
        Some(Point {
            id: self.row.run_id.clone(),
            params: positive(self.row.params(counting.params))?,
            tokens: positive(self.row.tokens)?,
            flops: self.flops(counting)?,
            loss: positive(self.row.val_loss)?,
            unique_tokens: positive(self.row.unique_tokens),
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
    /// How many runs plan.json holds, when it is readable: summary.csv may list fewer (rows
    /// that did not parse, runs not yet summarised), and the report counts against the plan.
    pub planned: Option<usize>,
    pub warnings: Vec<String>,
}

impl Sweep {
    /// Reads summary.csv, then the curve and run.json of each done run.
    pub fn read(dir: &Path) -> Result<Sweep, PlotError> {
        let summary = dir.join("summary.csv");
        let (rows, mut warnings) = read_summary(&summary).map_err(|e| match e {
            crate::error::Error::Io { path, source } => PlotError::Io { path, source },
            crate::error::Error::Record { path, message } => PlotError::Summary { path, message },
            other => PlotError::Summary { path: summary.clone(), message: other.to_string() },
        })?;
        let mut runs: Vec<Run> =
            rows.into_iter().map(|row| Run { row, curve: Vec::new(), info: RunInfo::default() }).collect();
        let not_done: Vec<String> =
            runs.iter().filter(|r| !r.is_done()).map(|r| format!("{} ({})", r.id(), r.row.status.as_str())).collect();
        if !not_done.is_empty() {
            warnings.push(format!(
                "{}: {} run(s) not done, not plotted: {}",
                summary.display(),
                not_done.len(),
                not_done.join(", ")
            ));
        }
        for run in runs.iter_mut().filter(|r| r.is_done()) {
            let run_dir = dir.join("runs").join(run.id());
            run.curve = read_curve(&run_dir.join("metrics.csv"), &mut warnings);
            run.info = RunInfo::read(&run_dir.join("run.json"), &mut warnings);
        }
        let config = std::fs::read_to_string(dir.join("sweep.toml")).ok();
        let planned = crate::records::plan::read_plan(&dir.join("plan.json")).ok().map(|plan| plan.runs.len());
        Ok(Sweep { dir: dir.to_path_buf(), runs, config, planned, warnings })
    }

    /// The final points of the done runs (a warning for each done run lacking a figure).
    pub fn points(&self, counting: &Counting) -> (Vec<Point>, Vec<String>) {
        let mut points = Vec::new();
        let mut warnings = Vec::new();
        for run in self.runs.iter().filter(|r| r.is_done()) {
            match run.point(counting) {
                Some(point) => points.push(point),
                None => warnings.push(format!(
                    "summary.csv line {}: run {} is done but lacks {}, tokens, C or val_loss; not plotted",
                    run.row.line,
                    run.id(),
                    counting.params_column()
                )),
            }
        }
        (points, warnings)
    }

    /// The done runs that have a final point, with it.
    pub fn done_runs(&self, counting: &Counting) -> Vec<(&Run, Point)> {
        self.runs.iter().filter(|r| r.is_done()).filter_map(|r| Some((r, r.point(counting)?))).collect()
    }

    /// The true entropy floor the runs recorded (summary column, else run.json).
    pub fn true_entropies(&self) -> Vec<f64> {
        self.runs
            .iter()
            .filter(|r| r.is_done())
            .filter_map(|r| positive(r.row.true_entropy).or(r.info.true_entropy))
            .collect()
    }
}

/// The evaluations of one metrics.csv; a missing or unusable file is a warning, corrupt rows too.
fn read_curve(path: &Path, warnings: &mut Vec<String>) -> Vec<Eval> {
    match read_metrics(path) {
        Ok((rows, row_warnings)) => {
            warnings.extend(row_warnings);
            rows.iter()
                .filter_map(|row| row.evaluation().map(|(tokens, loss)| Eval { tokens, flops_6n: row.flops, loss }))
                .collect()
        }
        Err(error) => {
            warnings.push(format!("{error}; the run's curve is not drawn"));
            Vec::new()
        }
    }
}
