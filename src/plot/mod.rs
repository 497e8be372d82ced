//! `sweeplaw plot`: the scaling figures of a sweep, drawn from its records and fit.json
//! alone (no model, no data, no GPU), as SVG and PNG in `<sweep>/figures/`.
//!
//! 1. `loss_vs_compute`: every run's validation curve against C, coloured by N, with the
//!    compute-efficient frontier and the fitted L(C) (Kaplan et al. 2020, Figure 1).
//! 2. `loss_vs_params`: final loss against N per token budget, with the fitted L(N, D).
//! 3. `isoflop`: loss against N per FLOP budget, parabolas and minima (Hoffmann et al.
//!    2022, Figure 3).
//! 4. `optimal_allocation`: N_opt and D_opt against C from approaches 1, 2 and 3, with
//!    approach 3's 95% band and the reference slopes 0.73 (Kaplan) and 0.50 (Chinchilla).
//! 5. `residuals`: approach 3's residuals against N and against D.
//! 6. `holdout`: predicted against actual loss of the held-out runs.
//! 7. `entropy_floor`: the fitted E against the synthetic source's true entropy.
//!
//! A figure the sweep cannot support (one FLOP budget, no holdout in fit.json) is skipped
//! with its reason, never drawn empty. Figures use fit.json's counting conventions.
//!
//! ```text
//! let output = plot_sweep(Path::new("results/smoke"))?;
//! for figure in &output.figures { println!("{}", figure.png.display()); }
//! ```

mod chart;
mod error;
mod figures;
mod fit_figures;
pub(crate) mod fitjson;
#[cfg(test)]
pub(crate) mod fixture;
pub(crate) mod records;
mod render;
pub(crate) mod style;
#[cfg(test)]
mod tests;
pub(crate) mod tune_figure;

use std::path::{Path, PathBuf};

pub use error::PlotError;

use crate::plot::figures::{Built, Inputs};
use crate::plot::fitjson::FitJson;
use crate::plot::records::Sweep;

/// One figure written to disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File stem, e.g. "loss_vs_compute".
    pub name: String,
    pub title: String,
    pub svg: PathBuf,
    pub png: PathBuf,
}

/// A figure the sweep's data cannot support, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedFigure {
    pub name: String,
    pub reason: String,
}

/// What `plot_sweep` wrote and what it noticed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlotOutput {
    pub figures: Vec<Figure>,
    pub skipped: Vec<SkippedFigure>,
    /// Corrupt lines, runs not done, unreadable files: each names its file (and line).
    pub warnings: Vec<String>,
}

type Builder = fn(&Inputs<'_>) -> Built;

/// The figures in report order: file stem and builder.
const FIGURES: [(&str, Builder); 7] = [
    ("loss_vs_compute", figures::loss_vs_compute),
    ("loss_vs_params", figures::loss_vs_params),
    ("isoflop", figures::isoflop),
    ("optimal_allocation", fit_figures::optimal_allocation),
    ("residuals", fit_figures::residuals),
    ("holdout", fit_figures::holdout),
    ("entropy_floor", fit_figures::entropy_floor),
];

/// Reads `sweep_dir` (summary.csv, runs/*/metrics.csv and run.json, fit.json when present)
/// and writes `sweep_dir/figures/<name>.svg` and `.png` for every figure the data supports.
pub fn plot_sweep(sweep_dir: &Path) -> Result<PlotOutput, PlotError> {
    let sweep = Sweep::read(sweep_dir)?;
    let mut output = PlotOutput { warnings: sweep.warnings.clone(), ..PlotOutput::default() };
    let (fit, no_fit) = read_fit(sweep_dir, &mut output.warnings);
    let counting = fit.as_ref().map(FitJson::counting).unwrap_or_default();
    let (points, point_warnings) = sweep.points(&counting);
    output.warnings.extend(point_warnings);
    if points.is_empty() {
        return Err(PlotError::NoRuns { path: sweep_dir.join("summary.csv"), rows: sweep.runs.len() });
    }
    let figures_dir = sweep_dir.join("figures");
    let inputs = Inputs { sweep: &sweep, fit: fit.as_ref(), no_fit, counting, points };
    for (name, build) in FIGURES {
        write_figure(&figures_dir, name, build(&inputs), &mut output)?;
    }
    tune_figure::draw(sweep_dir, &mut output)?;
    Ok(output)
}

/// Renders `built` as `figures_dir/<name>.svg` and `.png` and lists it, or lists why it was
/// skipped and removes the files an earlier run drew: a figure the data no longer supports
/// would mislead.
pub(crate) fn write_figure(
    figures_dir: &Path,
    name: &str,
    built: Built,
    output: &mut PlotOutput,
) -> Result<(), PlotError> {
    let (svg, png) = (figures_dir.join(format!("{name}.svg")), figures_dir.join(format!("{name}.png")));
    match built {
        Ok(spec) => {
            std::fs::create_dir_all(figures_dir).map_err(|e| PlotError::io(figures_dir, e))?;
            render::render(&spec, &svg, &png)?;
            output.figures.push(Figure { name: name.to_string(), title: spec.title, svg, png });
        }
        Err(reason) => {
            for stale in [&svg, &png] {
                let _ = std::fs::remove_file(stale);
            }
            output.skipped.push(SkippedFigure { name: name.to_string(), reason });
        }
    }
    Ok(())
}

/// fit.json when present and readable, with what a figure that needs it says without it
/// (`no_fit_reason`); a warning when it does not parse.
fn read_fit(sweep_dir: &Path, warnings: &mut Vec<String>) -> (Option<FitJson>, String) {
    let path = sweep_dir.join("fit.json");
    match FitJson::read(&path) {
        Ok(fit) => {
            warnings.extend(fit.iter().flat_map(|fit| fit.reading_warnings.iter().cloned()));
            (fit, fitjson::no_fit_reason(&path, false))
        }
        Err(message) => {
            warnings.push(format!("{message}; figures that need the fit are skipped"));
            (None, fitjson::no_fit_reason(&path, true))
        }
    }
}
