//! `sweeplaw plot` and `sweeplaw report`: regenerate figures and the report from the records
//! alone, running the fit first when fit.json is missing or older than the records. A stale
//! fit.json is refitted with the options it records (its holdout, `--params`, `--fix`...), so
//! that drawing a report never quietly replaces the fit a user asked for with the defaults; one
//! that does not record them, whose recorded options are not valid, or whose refit fails, is
//! kept as it is, with a warning naming it, and the report marks it stale rather than naming
//! its options as the command that made it.

use std::path::Path;
use std::time::SystemTime;

use crate::error::Error;
use crate::fit::{fit, load_points, FitError, FitOptions};
use crate::plot::{plot_sweep, PlotError, PlotOutput};
use crate::records::fit::read_fit;
use crate::report::{write_report, ReportError, ReportOutput, StaleFit};

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
    /// Whether fit.json was (re)written because it was missing or stale, and with which
    /// options beyond the defaults (`--holdout 3`, ...).
    pub refitted: Option<Vec<String>>,
    /// A stale fit.json kept as it was, and why: the figures and the report draw it.
    pub stale: Option<StaleFit>,
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
    let (refitted, stale) = match fit_if_stale(sweep_dir, &mut warnings)? {
        FitOutcome::Written(flags) => (Some(flags), None),
        FitOutcome::Kept(stale) => (None, stale),
    };
    let plots = plot_sweep(sweep_dir)?;
    warnings.extend(plots.warnings.iter().cloned());
    let report = if report { Some(write_report(sweep_dir, &plots, stale.as_ref())?) } else { None };
    // The report reads fit.json again: what both noticed is said once.
    for warning in report.iter().flat_map(|r| r.warnings.iter()) {
        if !warnings.contains(warning) {
            warnings.push(warning.clone());
        }
    }
    Ok(Regenerated { refitted, stale, plots, report, warnings })
}

/// What `fit_if_stale` did with fit.json.
enum FitOutcome {
    /// Wrote it, with these flags beyond the defaults.
    Written(Vec<String>),
    /// Left it as it was: current, absent and not fittable, unreadable (warned about by the
    /// figures), or stale and not refitted (with why).
    Kept(Option<StaleFit>),
}

/// Runs the fit when fit.json is missing (with the defaults of the conventions the sweep was
/// planned in) or older than summary.csv or any metrics.csv or run.json (with the options it
/// records). A stale fit.json that records no options, whose recorded options are not valid,
/// or whose refit fails, is kept as it was and warned about, naming it: refitting it with the
/// defaults would lose what it was made with. One that does not parse is kept too (the
/// figures warn that it is unreadable). A fit that cannot be made where there was none is a
/// warning: the record figures are still drawn.
fn fit_if_stale(sweep_dir: &Path, warnings: &mut Vec<String>) -> Result<FitOutcome> {
    let fit_path = sweep_dir.join("fit.json");
    let fit_time = modified(&fit_path);
    if fit_time.is_some() && fit_time >= newest_record(sweep_dir) {
        return Ok(FitOutcome::Kept(None));
    }
    let (params, flops) = crate::fit::planned_conventions(sweep_dir)?;
    let defaults = FitOptions { params, flops, ..FitOptions::default() };
    if fit_time.is_none() {
        let (dataset, load_warnings) = load_points(sweep_dir, &defaults)?;
        warnings.extend(load_warnings);
        return Ok(match fit(&dataset, &defaults) {
            Ok(report) => {
                report.write_json(&fit_path)?;
                FitOutcome::Written(Vec::new())
            }
            Err(e) => {
                warnings.push(format!("no fit.json: {e}"));
                FitOutcome::Kept(None)
            }
        });
    }
    let mut keep = |reason: String| {
        warnings.push(format!(
            "{} is older than the records and was not refitted: {reason}; it is kept as it was, the figures draw \
             it and the report marks it stale",
            fit_path.display()
        ));
        Ok(FitOutcome::Kept(Some(StaleFit { reason })))
    };
    let recorded = match read_fit(&fit_path) {
        Ok(fit) => fit.and_then(|fit| fit.options),
        // The figures and the report warn that it is unreadable and draw no fit.
        Err(_) => return Ok(FitOutcome::Kept(None)),
    };
    let Some(recorded) = recorded else {
        return keep(format!(
            "it does not say which options it was fitted with, so refit it with `sweeplaw fit {}` and the options \
             you want",
            sweep_dir.display()
        ));
    };
    let options = match FitOptions::from_settings(&recorded) {
        Ok(options) => options,
        Err(e) => return keep(format!("its recorded `options` are not valid: {e}")),
    };
    let flags = options.settings().flags_beyond(&defaults.settings());
    let refit = load_points(sweep_dir, &options).and_then(|(dataset, load_warnings)| {
        let report = fit(&dataset, &options)?;
        Ok((report, load_warnings))
    });
    match refit {
        Ok((report, load_warnings)) => {
            warnings.extend(load_warnings);
            report.write_json(&fit_path)?;
            Ok(FitOutcome::Written(flags))
        }
        Err(e) if flags.is_empty() => {
            keep(format!("refitting it with its recorded options, the defaults, failed: {e}"))
        }
        Err(e) => keep(format!("refitting it with its recorded options, {}, failed: {e}", flags.join(" "))),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::fixture::{edit_fit, isoflop_sweep};

    /// fit.json's options as `sweeplaw fit` with the defaults records them, with `edit` applied.
    fn record_options(dir: &Path, edit: impl Fn(&mut serde_json::Value)) {
        edit_fit(dir, |fit| {
            let mut options = serde_json::to_value(FitOptions::default().settings()).expect("options");
            edit(&mut options);
            fit["options"] = options;
        });
    }

    /// summary.csv a minute newer than fit.json, as a rebuilt summary leaves it.
    fn make_records_newer(dir: &Path) {
        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        let summary = std::fs::File::options().write(true).open(dir.join("summary.csv")).expect("summary.csv");
        summary.set_modified(later).expect("set mtime");
    }

    /// What `regenerate` says, and report.md's headline line about the fit.
    fn regenerate_stale(dir: &Path) -> (Regenerated, String) {
        let before = std::fs::read(dir.join("fit.json")).expect("fit.json");
        make_records_newer(dir);
        let done = regenerate(dir, true).expect("a bad recorded option is a warning, not an error");
        assert_eq!(std::fs::read(dir.join("fit.json")).expect("fit.json"), before, "fit.json is kept as it was");
        assert_eq!(done.refitted, None);
        assert!(!done.lines(dir).iter().any(|line| line.starts_with("fitted the laws")), "{:?}", done.lines(dir));
        // The fit is drawn as it was.
        assert!(done.plots.figures.iter().any(|f| f.name == "residuals"), "{:?}", done.plots.skipped);
        let markdown = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
        assert!(!markdown.contains("fitted by"), "{markdown}");
        let line = markdown.lines().find(|line| line.starts_with("- stale: ")).unwrap_or_default().to_string();
        (done, line)
    }

    #[test]
    fn a_stale_fit_whose_recorded_option_is_not_valid_is_kept_and_marked_stale_naming_fit_json() {
        let (dir, _) = isoflop_sweep("regen-bad-law");
        record_options(&dir.0, |options| options["law"] = "bogus".into());
        let (done, headline) = regenerate_stale(&dir.0);
        let why = "its recorded `options` are not valid: unknown law 'bogus' (expected one of: chinchilla, kaplan, \
                   isoflop, frontier, data-constrained, all)";
        assert_eq!(done.stale, Some(StaleFit { reason: why.to_string() }));
        let warning =
            format!("{} is older than the records and was not refitted: {why}; ", dir.0.join("fit.json").display());
        assert!(done.warnings.iter().any(|w| w.starts_with(&warning)), "{:?}", done.warnings);
        let command = format!("`sweeplaw fit {} --law bogus --params nonembedding --flops 6n`", dir.0.display());
        assert_eq!(
            headline,
            format!(
                "- stale: fit.json is older than the records and was not refitted, so the results below are of \
                 earlier records and its recorded options, {command}, do not reproduce them; why: {why}"
            )
        );
    }

    #[test]
    fn a_stale_fit_whose_refit_fails_is_not_called_fitted() {
        let (dir, _) = isoflop_sweep("regen-bad-fix");
        record_options(&dir.0, |options| options["fixed"] = serde_json::json!({ "alpha": -1.0, "zzz": 3.0 }));
        let (done, headline) = regenerate_stale(&dir.0);
        let reason = done.stale.map(|stale| stale.reason).unwrap_or_default();
        let why = "refitting it with its recorded options, --fix alpha=-1,zzz=3, failed: option fix/tie: zzz is not a \
                   parameter";
        assert!(reason.starts_with(why), "{reason}");
        assert!(headline.ends_with(&format!("do not reproduce them; why: {reason}")), "{headline}");
    }

    #[test]
    fn a_fit_that_cannot_be_made_where_there_was_none_is_not_called_fitted() {
        let (dir, _) = isoflop_sweep("regen-no-fit");
        std::fs::remove_file(dir.0.join("fit.json")).expect("remove fit.json");
        // One run without its curve: no law can be fitted to one point.
        let summary = std::fs::read_to_string(dir.0.join("summary.csv")).expect("summary.csv");
        std::fs::write(dir.0.join("summary.csv"), summary.lines().take(2).collect::<Vec<_>>().join("\n") + "\n")
            .expect("write summary.csv");
        for run in std::fs::read_dir(dir.0.join("runs")).expect("runs").flatten() {
            std::fs::remove_file(run.path().join("metrics.csv")).expect("remove metrics.csv");
        }
        let done = regenerate(&dir.0, false).expect("the record figures are still drawn");
        assert_eq!((done.refitted, done.stale), (None, None));
        assert!(done.warnings.iter().any(|w| w.starts_with("no fit.json: ")), "{:?}", done.warnings);
        assert!(!dir.0.join("fit.json").exists());
    }
}
