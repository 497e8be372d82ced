//! `sweeplaw train CONFIG`: one run from a single-run config, written as a one-run sweep
//! directory (`<results>/<name>/`), so that `fit`, `plot` and `report` read it like any sweep.

use std::path::{Path, PathBuf};

use crate::config::RunConfig;
use crate::error::{Error, Result};
use crate::records::{write_atomic, write_summary, RunRecord, RunStatus};
use crate::train::observe::{DivergenceGuard, ProgressObserver, RecordWriter, RunObserver};
use crate::train::run::{train, RunContext};

/// Options of `sweeplaw train`.
pub struct TrainOptions {
    pub config: PathBuf,
    pub results: PathBuf,
    /// Hide the progress bar (tests, non-interactive use).
    pub quiet: bool,
}

/// Trains the run described by `options.config` and returns its final record. A run already
/// recorded as done is not trained again.
pub fn train_single(options: &TrainOptions) -> Result<RunRecord> {
    let (config, spec) = RunConfig::load(&options.config)?;
    let sweep_dir = options.results.join(&spec.run_id);
    let run_dir = sweep_dir.join("runs").join(&spec.run_id);
    let run_json = run_dir.join("run.json");
    if run_json.exists() {
        let existing = RunRecord::read(&run_json)?;
        if existing.status == RunStatus::Done && existing.spec == spec {
            return Ok(existing);
        }
    }
    let device = crate::device::resolve(&spec.device, &spec.precision)?;
    crate::plan::memory::check_fits(std::slice::from_ref(&spec), &device.name)
        .map_err(|m| Error::config(&options.config, m))?;
    let source = config.data.build_source()?;
    check_results_dir(&options.results)?;
    let config_text = std::fs::read(&options.config).map_err(|e| Error::io(&options.config, e))?;
    write_atomic(&sweep_dir.join("sweep.toml"), &config_text)?;
    let mut writer = RecordWriter::new(&run_dir);
    let mut guard = DivergenceGuard::new(spec.divergence.spike_factor);
    let mut progress = ProgressObserver::new(&spec.run_id, spec.tokens, options.quiet);
    let observers: Vec<&mut dyn RunObserver> = vec![&mut writer, &mut guard, &mut progress];
    let context = RunContext {
        source: source.as_ref(),
        device: &device,
        observers,
        checkpoint_dir: None,
        start_points: Vec::new(),
    };
    train(&spec, context)?;
    let record = RunRecord::read(&run_json)?;
    write_summary(&sweep_dir.join("summary.csv"), std::slice::from_ref(&record))?;
    Ok(record)
}

/// The results directory must be a directory we can create files in.
pub fn check_results_dir(results: &Path) -> Result<()> {
    if results.exists() && !results.is_dir() {
        return Err(Error::config(results, "the results path exists and is not a directory"));
    }
    std::fs::create_dir_all(results).map_err(|e| Error::io(results, e))
}
