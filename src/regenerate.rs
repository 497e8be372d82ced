//! `sweeplaw plot` and `sweeplaw report`: regenerate figures and the report from the records
//! alone, running the fit first when fit.json is missing or older than the records.

use std::path::Path;
use std::time::SystemTime;

use crate::error::Error;
use crate::fit::{fit, load_points, FitError, FitOptions};
use crate::plot::{plot_sweep, PlotError, PlotOutput};
use crate::report::{write_report, ReportError, ReportOutput};

/// Why regenerating failed: the stage that failed keeps its own error, so the records layer's
/// error type need not know about the stages built on it.
#[derive(Debug, thiserror::Error)]
pub enum RegenerateError {
    #[error(transparent)]
    Records(#[from] Error),
    #[error(transparent)]
    Fit(#[from] FitError),
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error(transparent)]
    Report(#[from] ReportError),
}

type Result<T, E = RegenerateError> = std::result::Result<T, E>;

/// What regenerating did, for the command to print.
pub struct Regenerated {
    /// Whether the fit was (re)run because fit.json was missing or stale.
    pub refitted: bool,
    pub plots: PlotOutput,
    pub report: Option<ReportOutput>,
    pub warnings: Vec<String>,
}

impl Regenerated {
    /// What to print, one line per thing done: the fit, every figure with both files it wrote
    /// (SVG and PNG), the figures skipped and why, the report's two files.
    pub fn lines(&self, sweep_dir: &Path) -> Vec<String> {
        let mut lines = Vec::new();
        if self.refitted {
            lines.push(format!("fitted the laws: {}", sweep_dir.join("fit.json").display()));
        }
        for f in &self.plots.figures {
            lines.push(format!("figure {}: {} and {}", f.name, f.svg.display(), f.png.display()));
        }
        for s in &self.plots.skipped {
            lines.push(format!("skipped figure {}: {}", s.name, s.reason));
        }
        if let Some(r) = &self.report {
            lines.push(format!("report: {} and {}", r.markdown.display(), r.html.display()));
        }
        lines
    }
}

/// Fits (when needed) and draws the figures; with `report`, also writes report.md and report.html.
pub fn regenerate(sweep_dir: &Path, report: bool) -> Result<Regenerated> {
    if !sweep_dir.join("summary.csv").is_file() {
        return Err(Error::record(sweep_dir, "not a sweep directory: it has no summary.csv").into());
    }
    let mut warnings = Vec::new();
    let refitted = fit_if_stale(sweep_dir, &mut warnings)?;
    let plots = plot_sweep(sweep_dir)?;
    warnings.extend(plots.warnings.iter().cloned());
    let report = if report { Some(write_report(sweep_dir, &plots)?) } else { None };
    if let Some(r) = &report {
        warnings.extend(r.warnings.iter().cloned());
    }
    Ok(Regenerated { refitted, plots, report, warnings })
}

/// Runs the fit with its defaults when fit.json is missing or older than summary.csv or any
/// metrics.csv. A fit that cannot be made is a warning: the record figures are still drawn.
fn fit_if_stale(sweep_dir: &Path, warnings: &mut Vec<String>) -> Result<bool> {
    let fit_path = sweep_dir.join("fit.json");
    let fit_time = modified(&fit_path);
    if fit_time.is_some() && fit_time >= newest_record(sweep_dir) {
        return Ok(false);
    }
    let (params, flops) = crate::fit::planned_conventions(sweep_dir)?;
    let options = FitOptions { params, flops, ..FitOptions::default() };
    let (dataset, load_warnings) = load_points(sweep_dir, &options)?;
    warnings.extend(load_warnings);
    match fit(&dataset, &options) {
        Ok(report) => report.write_json(&fit_path)?,
        Err(e) => warnings.push(format!("no fit.json: {e}")),
    }
    Ok(true)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time among summary.csv and the runs' metrics.csv and run.json.
fn newest_record(sweep_dir: &Path) -> Option<SystemTime> {
    let mut newest = modified(&sweep_dir.join("summary.csv"));
    if let Ok(runs) = std::fs::read_dir(sweep_dir.join("runs")) {
        for run in runs.flatten() {
            for name in ["metrics.csv", "run.json"] {
                newest = newest.max(modified(&run.path().join(name)));
            }
        }
    }
    newest
}
