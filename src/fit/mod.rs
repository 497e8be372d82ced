//! `sweeplaw fit`: fits the published scaling laws to a sweep's records (or any CSV of
//! N, D, loss), with bootstrap intervals and a holdout backtest. It reads records only: no
//! model code, no GPU (docs/DESIGN.md "The pipeline").
//!
//! Law families, one file each: Chinchilla approach 3 (`chinchilla`), approach 2
//! (`isoflop`), approach 1 and the compute frontier (`frontier`), Kaplan et al. 2020
//! (`kaplan`), Muennighoff et al. 2023 (`data_constrained`). Shared machinery: the L-BFGS
//! optimiser (`optim`, argmin), log-space objectives (`model`), the bootstrap, the holdout.
//!
//! ```text
//! let (dataset, warnings) = load_points(path, &options)?;
//! let report = fit(&dataset, &options)?;
//! print!("{}", report.table());
//! report.write_json(&out)?;
//! ```

mod assess;
mod bootstrap;
mod chinchilla;
mod compute;
pub mod constraints;
mod counting;
mod curves;
mod data;
mod data_constrained;
mod error;
mod fastmath;
pub(crate) mod frontier;
mod holdout;
pub(crate) mod isoflop;
mod kaplan;
mod mapping;
mod model;
mod optim;
mod options;
mod pipeline;
mod reduce;
pub(crate) mod regress;
mod report;
mod table;
#[cfg(test)]
mod tests;

/// The fit.json types the fitter builds; they live with their reader and writer in `records`.
pub use crate::records::fit::{
    BootstrapSummary, ChinchillaFit, ChinchillaParams, ComputeModel, Excluded, FitReport, Fits, FrontierFit, HeldOut,
    HoldoutReport, Intervals, IsoFlopFit, IsoFlopMinimum, LawFit, Prediction, Values,
};
pub(crate) use assess::decades;
pub use constraints::Constraints;
pub use data::{load_points, planned_conventions, Curve, CurvePoint, Dataset, Point};
pub use error::FitError;
pub use options::{FitOptions, FlopCount, Law, Overfit, ParamCount, Reduce};
pub use pipeline::fit;
