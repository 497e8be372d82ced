//! What a fit produces: the fit.json structure of docs/DESIGN.md ("source", "points", "excluded",
//! "param_count", "flop_count", "fits", plus "skipped" and "warnings") and its pieces.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::fit::chinchilla::ChinchillaParams;
use crate::fit::constraints::Constraints;
use crate::fit::data::{Dataset, Excluded};
use crate::fit::error::FitError;
use crate::fit::regress::Line;
use crate::fit::verdict::Assessment;
use crate::records::fit::lenient;

pub use crate::fit::isoflop::{IsoFlopFit, IsoFlopMinimum};

/// Named parameter values.
pub type Values = BTreeMap<String, f64>;
/// Named 95% bootstrap intervals [2.5th, 97.5th percentile].
pub type Intervals = BTreeMap<String, [f64; 2]>;
/// A named law's fit: its report entry, the full parameter vector, and the distinct
/// near-optimal end points of its grid search (where bootstrap refits restart).
pub(crate) type MappedFit = (LawFit, Vec<f64>, Vec<Vec<f64>>);

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

impl LawFit {
    pub(crate) fn new(params: Values, irreducible: Option<Values>, objective: Option<f64>, points: usize) -> LawFit {
        LawFit {
            params,
            ci95: Intervals::new(),
            irreducible,
            objective,
            points,
            basis: None,
            fixed: Values::new(),
            tied: Vec::new(),
            assessment: Assessment::default(),
        }
    }

    /// Records the constraints that concern this law.
    pub(crate) fn constrained_by(&mut self, constraints: &Constraints) {
        self.fixed = constraints.fixed.clone();
        self.tied = constraints.tied.clone();
    }
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
    #[serde(skip)]
    pub(crate) lines: (Line, Line),
    /// log L against log C along the frontier (the loss of the allocation row).
    #[serde(skip)]
    pub(crate) loss_line: Option<Line>,
}

impl FrontierFit {
    pub(crate) fn new(n_line: Line, d_line: Line, points: usize, sizes: usize, method: &str) -> FrontierFit {
        FrontierFit {
            a: n_line.slope,
            b: d_line.slope,
            points,
            sizes,
            method: method.to_string(),
            intercepts: [n_line.intercept, d_line.intercept],
            ci95: Intervals::new(),
            prediction: None,
            assessment: Assessment::default(),
            lines: (n_line, d_line),
            loss_line: None,
        }
    }
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

impl Fits {
    pub(crate) fn is_empty(&self) -> bool {
        *self == Fits::default()
    }
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
}

impl FitReport {
    pub(crate) fn new(dataset: &Dataset) -> FitReport {
        FitReport {
            source: dataset.source.clone(),
            points: dataset.points.len(),
            excluded: dataset.excluded.clone(),
            param_count: dataset.param_count.clone(),
            flop_count: dataset.flop_count.clone(),
            fits: Fits::default(),
            skipped: BTreeMap::new(),
            warnings: dataset.warnings.clone(),
            reduced: dataset.reduced.clone(),
            noise_floor: dataset.noise_floor,
        }
    }

    /// fit.json as a JSON value.
    pub fn to_json(&self) -> Result<serde_json::Value, FitError> {
        serde_json::to_value(self)
            .map_err(|error| FitError::Output { path: "fit.json".into(), message: error.to_string() })
    }

    /// Writes fit.json (pretty-printed) to `path`, atomically: a kill mid-write leaves the
    /// previous fit.json, never half of one.
    pub fn write_json(&self, path: &Path) -> Result<(), FitError> {
        let output = |message: String| FitError::Output { path: path.to_path_buf(), message };
        let text = serde_json::to_string_pretty(self).map_err(|e| output(e.to_string()))?;
        // The path is the Output error's own; keep the OS error's text alone.
        crate::fs::write_atomic(path, (text + "\n").as_bytes()).map_err(|e| output(e.source.to_string()))
    }
}
