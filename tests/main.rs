//! sweeplaw's integration tests, linked into one binary (autotests = false) so candle is linked
//! once. Each module drives the real `sweeplaw` binary or the library's public API.

mod bad_input;
mod common;
mod corrupt_records;
mod data_formats;
mod figures_cli;
mod fit_cli;
#[cfg(feature = "hub")]
mod hub_cli;
mod ladder_cli;
mod layers;
mod plan_cli;
mod reliability;
mod slurm_cli;
mod status_cli;
mod sweep_cli;
mod train_cli;
mod tune_cli;
