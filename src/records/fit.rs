//! fit.json (docs/DESIGN.md "Results: the stable contract"): the types `sweeplaw fit` writes,
//! their one writer and their one reader. The fitter (`crate::fit`) builds these values and
//! re-exports them; plot and report read them back through here, so a figure draws the numbers
//! fit.json holds. The reader is lenient where old or partial files need it: a law may be
//! absent, any field may be missing (a number reads as NaN, a list as empty), a NaN the writer
//! stored as null reads as NaN again, and an entry of a list that does not parse (one IsoFLOP
//! minimum, one held-out run) is left out. A file that is not JSON, or whose parts have the
//! wrong shape, is an error naming the file. The lenient field readers are `fit/lenient.rs`;
//! the options fit.json records, `fit/settings.rs`; the values no fit produces (a negative E,
//! an exponent of 1e308), which make a law of the file corrupt, `fit/plausible.rs`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::records::verdict::Assessment;

mod lenient;
mod plausible;
mod settings;

pub use plausible::{ImpossibleLaw, MAX_EXPONENT};
pub use settings::FitSettings;

/// Reads fit.json: `Ok(None)` when there is none.
pub fn read_fit(path: &Path) -> Result<Option<FitReport>> {
    match std::fs::read(path) {
        Ok(bytes) => parse_fit(path, &bytes).map(Some),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(Error::io(path, error)),
    }
}

/// Parses the bytes of a fit.json; `path` only names it in the error (with serde's line).
pub fn parse_fit(path: &Path, bytes: &[u8]) -> Result<FitReport> {
    serde_json::from_slice(bytes).map_err(|e| {
        let what = if e.is_data() { "not a fit.json" } else { "not valid JSON" };
        Error::record(path, format!("line {}: {what} ({e})", e.line()))
    })
}

/// Writes fit.json (pretty-printed) to `path`, atomically: a kill mid-write leaves the
/// previous fit.json, never half of one.
pub fn write_fit(path: &Path, report: &FitReport) -> Result<()> {
    let text = serde_json::to_string_pretty(report).map_err(|e| Error::record(path, e.to_string()))?;
    crate::fs::write_atomic(path, (text + "\n").as_bytes())?;
    Ok(())
}

/// Named parameter values.
pub type Values = BTreeMap<String, f64>;

/// Named 95% bootstrap intervals [2.5th, 97.5th percentile].
pub type Intervals = BTreeMap<String, [f64; 2]>;

/// A law given by named parameters (Kaplan laws, the data-constrained law).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LawFit {
    #[serde(default, deserialize_with = "lenient::numbers")]
    pub params: Values,
    #[serde(default, deserialize_with = "lenient::intervals")]
    pub ci95: Intervals,
    /// The same law with an irreducible term E, when the data have 4+ distinct values.
    #[serde(default, deserialize_with = "lenient::optional_numbers", skip_serializing_if = "Option::is_none")]
    pub irreducible: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<f64>,
    /// Points the law was fitted on.
    #[serde(default)]
    pub points: usize,
    /// What the points are, when not the runs themselves ("each size's lowest loss").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
    /// Parameters held at given values (`--fix`), natural units.
    #[serde(default, deserialize_with = "lenient::numbers", skip_serializing_if = "BTreeMap::is_empty")]
    pub fixed: Values,
    /// (follower, leader) pairs held equal (`--tie`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tied: Vec<(String, String)>,
    /// Whether the data identify the law: verdict, reasons, fixes.
    #[serde(flatten)]
    pub assessment: Assessment,
}

/// The compute-optimal allocation predicted at `--target-flops`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number")]
    pub flops: f64,
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number", rename = "N_opt")]
    pub n_opt: f64,
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number", rename = "D_opt")]
    pub d_opt: f64,
    /// Predicted loss at (N_opt, D_opt) (approach 3 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    #[serde(default, deserialize_with = "lenient::intervals")]
    pub ci95: Intervals,
}

/// Bootstrap bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootstrapSummary {
    #[serde(default)]
    pub resamples: usize,
    /// Resamples whose refit failed (left out of the intervals).
    #[serde(default)]
    pub failed: usize,
}

/// Chinchilla approach 3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChinchillaFit {
    #[serde(default)]
    pub params: ChinchillaParams,
    #[serde(default, deserialize_with = "lenient::intervals")]
    pub ci95: Intervals,
    /// Bootstrap standard errors.
    #[serde(default, deserialize_with = "lenient::numbers")]
    pub se: Values,
    /// Bootstrap standard errors of log10 A and log10 B (their distributions are skewed).
    #[serde(default, deserialize_with = "lenient::numbers", skip_serializing_if = "BTreeMap::is_empty")]
    pub se_log10: Values,
    /// Huber loss (delta = 1e-3) summed over the points.
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number")]
    pub objective: f64,
    /// N_opt ∝ C^a, a = beta/(alpha+beta).
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number")]
    pub a: f64,
    /// D_opt ∝ C^b, b = alpha/(alpha+beta).
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number")]
    pub b: f64,
    #[serde(default)]
    pub starts: usize,
    /// The points the grid of starts was searched on where that was a subsample of the input
    /// (inputs above `chinchilla::GRID_SEARCH_POINTS`); L-BFGS then finished on every point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid_points: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Prediction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapSummary>,
    /// Parameters held at given values (`--fix`), natural units.
    #[serde(default, deserialize_with = "lenient::numbers", skip_serializing_if = "BTreeMap::is_empty")]
    pub fixed: Values,
    /// (follower, leader) pairs held equal (`--tie`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tied: Vec<(String, String)>,
    /// Whether the data identify the law: verdict, reasons, fixes.
    #[serde(flatten)]
    pub assessment: Assessment,
}

/// Chinchilla approach 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontierFit {
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number")]
    pub a: f64,
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number")]
    pub b: f64,
    /// Frontier points the exponents were fitted on.
    #[serde(default)]
    pub points: usize,
    /// Distinct model sizes on the frontier.
    #[serde(default)]
    pub sizes: usize,
    #[serde(default)]
    pub method: String,
    /// ln N_opt = intercept + a ln C and ln D_opt = intercept + b ln C: the intercepts of the
    /// fitted lines (N's, D's), which the figures draw.
    #[serde(default = "lenient::nan_pair", deserialize_with = "lenient::pair")]
    pub intercepts: [f64; 2],
    #[serde(default, deserialize_with = "lenient::intervals")]
    pub ci95: Intervals,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Prediction>,
    /// Whether the data identify the exponents: verdict, reasons, fixes.
    #[serde(flatten)]
    pub assessment: Assessment,
}

/// One held-out run: what the law fitted without it predicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldOut {
    #[serde(default)]
    pub run: String,
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number", rename = "N")]
    pub params: f64,
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number", rename = "D")]
    pub tokens: f64,
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number", rename = "C")]
    pub flops: f64,
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number")]
    pub actual: f64,
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number")]
    pub predicted: f64,
    /// |predicted - actual| / actual.
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number")]
    pub rel_error: f64,
}

/// The backtest of `--holdout K`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutReport {
    /// The law refitted ("chinchilla" or "kaplan_nd").
    #[serde(default = "lenient::chinchilla")]
    pub law: String,
    #[serde(default)]
    pub fitted_on: usize,
    /// The refitted law's parameters (fitted without the held-out runs).
    #[serde(default, deserialize_with = "lenient::numbers")]
    pub params: Values,
    #[serde(default, deserialize_with = "lenient::entries")]
    pub held_out: Vec<HeldOut>,
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number")]
    pub max_rel_error: f64,
}

/// The fitted laws; a law that could not be fitted is absent (and named under "skipped").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chinchilla: Option<ChinchillaFit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kaplan_n: Option<LawFit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kaplan_d: Option<LawFit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kaplan_c: Option<LawFit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kaplan_nd: Option<LawFit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isoflop: Option<IsoFlopFit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frontier: Option<FrontierFit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_constrained: Option<LawFit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout: Option<HoldoutReport>,
}

/// Everything `sweeplaw fit` reports; serialises to fit.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub points: usize,
    #[serde(default)]
    pub excluded: Vec<Excluded>,
    #[serde(default)]
    pub param_count: String,
    #[serde(default)]
    pub flop_count: String,
    #[serde(default)]
    pub fits: Fits,
    /// law -> why it was not fitted.
    #[serde(default)]
    pub skipped: BTreeMap<String, String>,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// How rows sharing (N, D) were combined before fitting (`--reduce`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduced: Option<String>,
    /// The loss standard deviation between seeds of one configuration (pooled), when the
    /// data have repeated seeds: the noise floor the verdicts compare against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_floor: Option<f64>,
    /// The options `sweeplaw fit` was run with, so that `plot` and `report` refit a stale
    /// fit.json the way it was made (a holdout, `--params`, `--fix`) rather than with the
    /// defaults; absent in a fit.json written before they were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<FitSettings>,
}

/// Fitted parameters of L = E + A/N^alpha + B/D^beta.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChinchillaParams {
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number", rename = "E")]
    pub e: f64,
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number", rename = "A")]
    pub a: f64,
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number", rename = "B")]
    pub b: f64,
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number")]
    pub alpha: f64,
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number")]
    pub beta: f64,
    /// How the fitted runs' compute grows with N (C = 6·N·D unless the count says otherwise).
    #[serde(default)]
    pub compute: ComputeModel,
}

impl Default for ChinchillaParams {
    /// Every parameter NaN (unknown): what a fit.json without them reads as.
    fn default() -> Self {
        let nan = f64::NAN;
        ChinchillaParams { e: nan, a: nan, b: nan, alpha: nan, beta: nan, compute: ComputeModel::default() }
    }
}

/// C = coefficient · N^params_exponent · D (a fit.json without one read C = 6·N·D; a null, a
/// NaN the writer stored, reads as NaN).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ComputeModel {
    #[serde(default = "lenient::six", deserialize_with = "lenient::number")]
    pub coefficient: f64,
    #[serde(default = "lenient::one", deserialize_with = "lenient::number")]
    pub params_exponent: f64,
}

impl Default for ComputeModel {
    /// C = 6·N·D (Kaplan et al. 2020, eq. 2.1).
    fn default() -> Self {
        ComputeModel { coefficient: 6.0, params_exponent: 1.0 }
    }
}

/// The parabola minimum of one FLOP budget (approach 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsoFlopMinimum {
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number")]
    pub flops: f64,
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number", rename = "N_opt")]
    pub n_opt: f64,
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number", rename = "D_opt")]
    pub d_opt: f64,
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number")]
    pub loss: f64,
    /// Runs of the budget.
    #[serde(default)]
    pub runs: usize,
    /// Whether N_opt lies within the sizes the parabola was fitted to; a budget whose minimum
    /// is outside them is left out of the exponents' fit.
    #[serde(default = "lenient::yes")]
    pub inside: bool,
    /// The smallest and largest size the parabola was fitted to.
    #[serde(default = "lenient::nan_pair", deserialize_with = "lenient::pair")]
    pub sizes: [f64; 2],
}

/// Chinchilla approach 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsoFlopFit {
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number")]
    pub a: f64,
    #[serde(default = "lenient::nan", deserialize_with = "lenient::number")]
    pub b: f64,
    /// Every budget with a parabola minimum, those left out (`inside: false`) included.
    #[serde(default, deserialize_with = "lenient::entries")]
    pub minima: Vec<IsoFlopMinimum>,
    /// ln N_opt = intercept + a ln C and ln D_opt = intercept + b ln C: the intercepts of the
    /// fitted lines (N's, D's), which the figures draw.
    #[serde(default = "lenient::nan_pair", deserialize_with = "lenient::pair")]
    pub intercepts: [f64; 2],
    /// The budgets the exponents were fitted on.
    #[serde(default)]
    pub budgets: usize,
    /// Each budget's parabola is fitted to the runs at this many sizes nearest its lowest loss.
    #[serde(default)]
    pub window: usize,
    #[serde(default, deserialize_with = "lenient::intervals")]
    pub ci95: Intervals,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Prediction>,
    /// Resamples of the runs within each budget behind `ci95`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapSummary>,
    #[serde(flatten)]
    pub assessment: Assessment,
}

/// A row or run left out of the fit, and why.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Excluded {
    #[serde(default)]
    pub run: String,
    #[serde(default)]
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_fit_json_reads_with_what_it_has_and_nulls_as_nan() -> Result<()> {
        let text = br#"{ "param_count": "total",
            "fits": { "chinchilla": { "params": { "E": 1.5, "A": null }, "ci95": { "E": [1.4, 1.6], "A": [null, 2] } },
                      "isoflop": { "a": 0.5, "minima": [ { "flops": 1e12, "N_opt": 1e5, "D_opt": 1e6 }, { "flops": "x" } ] },
                      "holdout": { "held_out": [ { "run": "r", "actual": 3.0, "predicted": null } ] } } }"#;
        let fit = parse_fit(Path::new("fit.json"), text)?;
        assert_eq!((fit.param_count.as_str(), fit.points, fit.flop_count.as_str()), ("total", 0, ""));
        let chinchilla = fit.fits.chinchilla.as_ref().ok_or_else(|| Error::Failed("no chinchilla".into()))?;
        assert_eq!(chinchilla.params.e, 1.5);
        assert_eq!(chinchilla.params.compute, ComputeModel::default());
        assert!(chinchilla.params.a.is_nan() && chinchilla.params.alpha.is_nan() && chinchilla.a.is_nan());
        assert_eq!(chinchilla.ci95.keys().collect::<Vec<_>>(), vec!["E"]);
        let isoflop = fit.fits.isoflop.as_ref().ok_or_else(|| Error::Failed("no isoflop".into()))?;
        assert_eq!((isoflop.a, isoflop.minima.len(), isoflop.minima[0].inside), (0.5, 1, true));
        assert!(isoflop.b.is_nan() && isoflop.minima[0].loss.is_nan());
        let holdout = fit.fits.holdout.as_ref().ok_or_else(|| Error::Failed("no holdout".into()))?;
        assert_eq!((holdout.law.as_str(), holdout.held_out.len()), ("chinchilla", 1));
        assert!(holdout.held_out[0].predicted.is_nan() && holdout.max_rel_error.is_nan());
        assert!(fit.fits.frontier.is_none() && fit.fits.kaplan_n.is_none());
        Ok(())
    }

    /// A fit that failed writes its NaN compute model as nulls (serde_json's NaN); it reads back.
    #[test]
    fn a_compute_model_of_nulls_reads_as_nan() -> Result<()> {
        let text = br#"{ "fits": { "chinchilla": { "params": { "E": 0.0, "alpha": 0.19,
            "compute": { "coefficient": null, "params_exponent": null } } } } }"#;
        let fit = parse_fit(Path::new("fit.json"), text)?;
        let chinchilla = fit.fits.chinchilla.ok_or_else(|| Error::Failed("no chinchilla".into()))?;
        assert_eq!(chinchilla.params.alpha, 0.19);
        assert!(chinchilla.params.compute.coefficient.is_nan() && chinchilla.params.compute.params_exponent.is_nan());
        Ok(())
    }

    #[test]
    fn a_fit_json_that_does_not_parse_is_an_error_naming_the_file() {
        for (text, what) in
            [(&b"{ \"fits\": "[..], "not valid JSON"), (b"{ \"fits\": { \"isoflop\": 3 } }", "not a fit.json")]
        {
            let error = parse_fit(Path::new("dir/fit.json"), text).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.starts_with("dir/fit.json: line 1: ") && error.contains(what), "{error}");
        }
    }
}
