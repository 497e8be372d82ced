//! sweeplaw: measure neural scaling laws empirically.
//!
//! ```text
//! configs/*.toml ──> plan ──> runner ──> run records ──> fit ──> plots + report
//! ```
//! `config` parses TOML into validated specs, `model` is the transformer and its counts,
//! `train` runs one spec on a `device` over a `data::TokenSource` and reports to observers
//! that write the records; `fit` reads records only.

pub mod config;
pub mod counting;
pub mod data;
pub mod device;
pub mod diag;
pub mod diff;
pub mod error;
pub mod fit;
pub mod fs;
#[doc(hidden)]
pub mod fuzzing;
pub mod human;
pub mod ladder;
pub mod model;
pub mod ops;
pub mod plan;
pub mod plot;
pub mod records;
#[doc(hidden)]
pub mod reference_data;
pub mod regenerate;
pub mod report;
#[doc(hidden)]
pub mod requirements;
pub mod rng;
pub mod slurm;
pub mod status;
pub mod sweep;
pub mod train;
pub mod tune;
pub mod verdict;

pub use error::{Error, Result};
