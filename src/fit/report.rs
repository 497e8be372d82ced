//! How the fitter builds what it reports: constructors and helpers of the fit.json types
//! (`records::fit` owns the types themselves, with their reader and writer).

use std::collections::BTreeMap;
use std::path::Path;

use crate::fit::constraints::Constraints;
use crate::fit::data::Dataset;
use crate::fit::error::FitError;
use crate::fit::regress::Line;
use crate::records::fit::{FitReport, Fits, FrontierFit, Intervals, IsoFlopFit, LawFit, Values};
use crate::records::verdict::Assessment;

/// A named law's fit: its report entry, the full parameter vector, and the distinct
/// near-optimal end points of its grid search (where bootstrap refits restart).
pub(crate) type MappedFit = (LawFit, Vec<f64>, Vec<Vec<f64>>);

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
        }
    }

    /// ln N_opt and ln D_opt against ln C: the fitted lines.
    pub(crate) fn lines(&self) -> (Line, Line) {
        lines(self.a, self.b, self.intercepts)
    }
}

impl IsoFlopFit {
    /// ln N_opt and ln D_opt against ln C through the budgets' minima: the fitted lines.
    pub(crate) fn lines(&self) -> (Line, Line) {
        lines(self.a, self.b, self.intercepts)
    }
}

/// The lines of slopes a (N's) and b (D's) with the given intercepts.
fn lines(a: f64, b: f64, intercepts: [f64; 2]) -> (Line, Line) {
    (Line { slope: a, intercept: intercepts[0] }, Line { slope: b, intercept: intercepts[1] })
}

impl Fits {
    pub(crate) fn is_empty(&self) -> bool {
        *self == Fits::default()
    }
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
            options: None,
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
        crate::records::fit::write_fit(path, self).map_err(|error| {
            // The path is the Output error's own; keep the message alone.
            let message = match error {
                crate::error::Error::Io { source, .. } => source.to_string(),
                crate::error::Error::Record { message, .. } => message,
                other => other.to_string(),
            };
            FitError::Output { path: path.to_path_buf(), message }
        })
    }
}
