//! `sweeplaw report`: report.md (figures linked) and a self-contained report.html (figures
//! inlined, no external resources) for a sweep directory, from its records, fit.json and
//! the figures `plot::plot_sweep` drew: the plan in short, the fit tables with intervals,
//! a and b from every approach beside the published values, the compute-optimal
//! recommendation, the holdout error and the counting conventions.
//!
//! ```text
//! let figures = plot_sweep(dir)?;
//! let report = write_report(dir, &figures, None)?;
//! ```

mod document;
mod error;
mod sections;
#[cfg(test)]
mod tests;
mod tune;

use std::path::{Path, PathBuf};

pub use error::ReportError;

use crate::plot::fitjson::{no_fit_reason, FitJson};
use crate::plot::records::Sweep;
use crate::plot::PlotOutput;
use crate::report::document::Block;

/// What `write_report` wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOutput {
    pub markdown: PathBuf,
    pub html: PathBuf,
    /// Problems with the records or fit.json (also listed in the report).
    pub warnings: Vec<String>,
}

/// A fit.json older than the records that was kept as it was, not refitted, and why (it
/// records no options, they are not valid, or the refit failed): the report marks it stale
/// rather than naming its recorded options as the command that made it.
#[derive(Debug, Clone, PartialEq)]
pub struct StaleFit {
    pub reason: String,
}

/// fit.json as the report found it, beyond its contents.
pub(crate) struct FitFile<'a> {
    /// Stale and kept as it was.
    pub stale: Option<&'a StaleFit>,
    /// What the report says in place of the fit results when there are none: no fit.json, or
    /// one that is unreadable.
    pub absent: String,
}

/// Writes `sweep_dir/report.md` and `sweep_dir/report.html` from the records, fit.json (when
/// present) and the figures in `figures`; `stale` when fit.json is older than the records and
/// was kept as it was.
pub fn write_report(
    sweep_dir: &Path,
    figures: &PlotOutput,
    stale: Option<&StaleFit>,
) -> Result<ReportOutput, ReportError> {
    let sweep = Sweep::read(sweep_dir)?;
    let mut warnings = sweep.warnings.clone();
    let fit_path = sweep_dir.join("fit.json");
    let (fit, absent) = match FitJson::read(&fit_path) {
        Ok(fit) => {
            warnings.extend(fit.iter().flat_map(|fit| fit.reading_warnings.iter().cloned()));
            (fit, "No fit.json: run `sweeplaw fit` on this directory for the fitted laws.".to_string())
        }
        Err(message) => {
            warnings.push(format!("{message}; the report has no fit results"));
            (None, format!("No fit results: {}.", no_fit_reason(&fit_path, true)))
        }
    };
    let file = FitFile { stale, absent };
    let mut blocks = blocks(&sweep, fit.as_ref(), &file, figures, &warnings);
    blocks.extend(tune::section(sweep_dir));
    let title = match &blocks[0] {
        Block::Heading(_, text) => text.clone(),
        _ => "Scaling-law report".to_string(),
    };
    let markdown = sweep_dir.join("report.md");
    write(&markdown, &document::to_markdown(&blocks))?;
    let html = sweep_dir.join("report.html");
    write(&html, &document::to_html(&title, &blocks)?)?;
    Ok(ReportOutput { markdown, html, warnings })
}

/// The report's blocks in reading order.
fn blocks(
    sweep: &Sweep,
    fit: Option<&FitJson>,
    file: &FitFile<'_>,
    figures: &PlotOutput,
    warnings: &[String],
) -> Vec<Block> {
    let counting = fit.map(FitJson::counting).unwrap_or_default();
    let mut blocks = sections::headline(sweep, fit, file, &counting);
    if let Some(fit) = fit {
        blocks.extend(sections::verdicts(fit));
    }
    blocks.extend(sections::plan(sweep, &counting));
    blocks.extend(sections::figures(figures));
    if let Some(fit) = fit {
        blocks.extend(sections::fit_tables(fit));
        blocks.extend(sections::exponents(fit));
        let largest = sweep
            .done_runs(&counting)
            .iter()
            .map(|(_, p)| p.flops)
            .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.max(c))));
        blocks.extend(sections::recommendation(fit, largest));
        blocks.extend(sections::holdout(fit));
    }
    blocks.extend(sections::counting(fit, &counting));
    let mut all_warnings = warnings.to_vec();
    for warning in &figures.warnings {
        if !all_warnings.contains(warning) {
            all_warnings.push(warning.clone());
        }
    }
    blocks.extend(sections::notes(fit, &all_warnings));
    blocks
}

fn write(path: &Path, text: &str) -> Result<(), ReportError> {
    std::fs::write(path, text).map_err(|source| ReportError::Io { path: path.to_path_buf(), source })
}
