//! `sweeplaw report`: report.md (figures linked) and a self-contained report.html (figures
//! inlined, no external resources) for a sweep directory, from its records, fit.json and
//! the figures `plot::plot_sweep` drew: the plan in short, the fit tables with intervals,
//! a and b from every approach beside the published values, the compute-optimal
//! recommendation, the holdout error and the counting conventions.
//!
//! ```text
//! let figures = plot_sweep(dir)?;
//! let report = write_report(dir, &figures)?;
//! ```

mod document;
mod error;
mod sections;
#[cfg(test)]
mod tests;
mod tune;

use std::path::{Path, PathBuf};

pub use error::ReportError;

use crate::plot::fitjson::FitJson;
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

/// Writes `sweep_dir/report.md` and `sweep_dir/report.html` from the records, fit.json (when
/// present) and the figures in `figures`.
pub fn write_report(sweep_dir: &Path, figures: &PlotOutput) -> Result<ReportOutput, ReportError> {
    let sweep = Sweep::read(sweep_dir)?;
    let mut warnings = sweep.warnings.clone();
    let fit = match FitJson::read(&sweep_dir.join("fit.json")) {
        Ok(fit) => {
            warnings.extend(fit.iter().flat_map(|fit| fit.reading_warnings.iter().cloned()));
            fit
        }
        Err(message) => {
            warnings.push(format!("{message}; the report has no fit results"));
            None
        }
    };
    let mut blocks = blocks(&sweep, fit.as_ref(), figures, &warnings);
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
fn blocks(sweep: &Sweep, fit: Option<&FitJson>, figures: &PlotOutput, warnings: &[String]) -> Vec<Block> {
    let counting = fit.map(FitJson::counting).unwrap_or_default();
    let mut blocks = sections::headline(sweep, fit, &counting);
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
