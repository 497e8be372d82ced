//! `sweeplaw plot` and `sweeplaw report`: regenerate figures and the report from the records
//! alone, running the fit first when fit.json is missing or older than the records. A stale
//! fit.json is refitted with the options it records (its holdout, `--params`, `--fix`...), so
//! that drawing a report never quietly replaces the fit a user asked for with the defaults; one
//! that does not record them is kept as it is, with a warning.

use std::path::Path;
use std::time::SystemTime;

use crate::error::Error;
use crate::fit::{fit, load_points, FitError, FitOptions};
use crate::plot::{plot_sweep, PlotError, PlotOutput};
use crate::records::fit::read_fit;
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
    /// Whether the fit was (re)run because fit.json was missing or stale, and with which
    /// options beyond the defaults (`--holdout 3`, ...).
    pub refitted: Option<Vec<String>>,
    pub plots: PlotOutput,
    pub report: Option<ReportOutput>,
    pub warnings: Vec<String>,
}

impl Regenerated {
    /// What to print, one line per thing done: the fit, every figure with both files it wrote
    /// (SVG and PNG), the figures skipped and why, the report's two files.
    pub fn lines(&self, sweep_dir: &Path) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(flags) = &self.refitted {
            let with = if flags.is_empty() { String::new() } else { format!(" (with {})", flags.join(" ")) };
            lines.push(format!("fitted the laws{with}: {}", sweep_dir.join("fit.json").display()));
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

/// Runs the fit when fit.json is missing (with the defaults of the conventions the sweep was
/// planned in) or older than summary.csv or any metrics.csv or run.json (with the options it
/// records). A fit.json that records no options, or one that does not parse, is kept and
/// warned about: refitting it with the defaults would lose what it was made with. A fit that
/// cannot be made is a warning: the record figures are still drawn. Returns the flags beyond
/// the defaults the fit ran with, when it ran.
fn fit_if_stale(sweep_dir: &Path, warnings: &mut Vec<String>) -> Result<Option<Vec<String>>> {
    let fit_path = sweep_dir.join("fit.json");
    let fit_time = modified(&fit_path);
    if fit_time.is_some() && fit_time >= newest_record(sweep_dir) {
        return Ok(None);
    }
    let (params, flops) = crate::fit::planned_conventions(sweep_dir)?;
    let defaults = FitOptions { params, flops, ..FitOptions::default() };
    let options = if fit_time.is_none() {
        defaults.clone()
    } else {
        let recorded = match read_fit(&fit_path) {
            Ok(fit) => fit.and_then(|fit| fit.options),
            Err(error) => {
                warnings.push(format!("{error}; not refitted, and the figures that draw the fit are skipped"));
                return Ok(None);
            }
        };
        let Some(recorded) = recorded else {
            warnings.push(format!(
                "{} is older than the records and does not say which options it was fitted with, so it is \
                 kept as it is: refit it with `sweeplaw fit {}` and the options you want",
                fit_path.display(),
                sweep_dir.display()
            ));
            return Ok(None);
        };
        FitOptions::from_settings(&recorded)?
    };
    let flags = options.settings().flags_beyond(&defaults.settings());
    let (dataset, load_warnings) = load_points(sweep_dir, &options)?;
    warnings.extend(load_warnings);
    match fit(&dataset, &options) {
        Ok(report) => report.write_json(&fit_path)?,
        Err(e) if fit_time.is_some() => {
            warnings.push(format!("{} not refitted: {e}; the figures draw it as it was", fit_path.display()))
        }
        Err(e) => warnings.push(format!("no fit.json: {e}")),
    }
    Ok(Some(flags))
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
