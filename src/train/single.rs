//! `sweeplaw train CONFIG`: one run from a single-run config, written as a one-run sweep
//! directory (`<results>/<name>/`), so that `fit`, `plot` and `report` read it like any sweep.

use std::path::{Path, PathBuf};

use crate::config::RunConfig;
use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::plan::RunSpec;
use crate::records::{write_summary, RunRecord, RunStatus};
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
/// recorded as done is not trained again. Nothing is written until every check passes: the
/// directory must not be a sweep's, and a recorded run must be of this same config.
pub fn train_single(options: &TrainOptions) -> Result<RunRecord> {
    refuse_sweep_config(&options.config)?;
    let (config, spec) = RunConfig::load(&options.config)?;
    let sweep_dir = options.results.join(&spec.run_id);
    let run_dir = sweep_dir.join("runs").join(&spec.run_id);
    let run_json = run_dir.join("run.json");
    refuse_a_sweeps_directory(&options.config, &sweep_dir, &spec.run_id)?;
    if std::fs::symlink_metadata(&run_json).is_ok() {
        let existing = RunRecord::read(&run_json).map_err(|e| {
            Error::config(
                &options.config,
                format!(
                    "the recorded run is damaged ({e}); it is kept: move {} aside to train again",
                    run_dir.display()
                ),
            )
        })?;
        if existing.spec != crate::records::as_recorded(&spec) {
            return Err(Error::config(
                &options.config,
                format!(
                    "{} holds run {} of another config (it differs in {}); use another --results directory or name",
                    sweep_dir.display(),
                    spec.run_id,
                    spec_differences(&existing.spec, &spec).join(", ")
                ),
            ));
        }
        if existing.status == RunStatus::Done {
            return Ok(existing);
        }
    }
    let device = crate::device::resolve(&spec.device, &spec.precision)?;
    crate::plan::memory::check_fits(std::slice::from_ref(&spec), &device.name)
        .map_err(|m| Error::config(&options.config, m))?;
    let source = config.data.build_source()?;
    crate::train::run::check_data(std::slice::from_ref(&spec), source.as_ref())
        .map_err(|m| Error::config(&options.config, m))?;
    check_results_dir(&options.results)?;
    let config_text = std::fs::read(&options.config).map_err(|e| Error::io(&options.config, e))?;
    write_atomic(&sweep_dir.join("sweep.toml"), &config_text)?;
    let mut writer = RecordWriter::new(&run_dir).with_config_hash(&spec_hash(&spec));
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

/// A sweep config (it has `[grid]` or `[budget]`) handed to `train` gets the command to use,
/// not an "unknown field" error.
fn refuse_sweep_config(path: &Path) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let Ok(table) = toml::from_str::<toml::Table>(&text) else { return Ok(()) };
    if table.contains_key("grid") || table.contains_key("budget") {
        return Err(Error::config(
            path,
            format!("this is a sweep config ([grid], [budget]): use `sweeplaw sweep {}`", path.display()),
        ));
    }
    Ok(())
}

/// `train` writes `<results>/<name>/` as a one-run sweep; a directory that holds a sweep
/// (plan.json, or other runs) is not its to replace.
fn refuse_a_sweeps_directory(config: &Path, sweep_dir: &Path, run_id: &str) -> Result<()> {
    let others = std::fs::read_dir(sweep_dir.join("runs"))
        .map(|entries| entries.filter_map(|e| e.ok()).any(|e| e.file_name() != run_id))
        .unwrap_or(false);
    if sweep_dir.join("plan.json").exists() || others {
        return Err(Error::config(
            config,
            format!(
                "{} holds the sweep {run_id:?}: a run of that name would replace its sweep.toml and summary.csv; \
                 rename the run or use another --results directory",
                sweep_dir.display()
            ),
        ));
    }
    Ok(())
}

/// SHA-256 (hex) of a single run's spec: the config hash its run.json records.
pub fn spec_hash(spec: &RunSpec) -> String {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_string(spec).unwrap_or_default();
    Sha256::digest(json.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The fields (dotted) in which two specs differ; a top-level field with both values.
fn spec_differences(recorded: &RunSpec, now: &RunSpec) -> Vec<String> {
    let (Ok(a), Ok(b)) = (serde_json::to_value(recorded), serde_json::to_value(now)) else {
        return vec!["its spec".to_string()];
    };
    let show = |v: &Option<serde_json::Value>| v.as_ref().map_or_else(|| "none".to_string(), |v| v.to_string());
    let mut fields: Vec<String> = crate::diff::differences(&a, &b)
        .into_iter()
        .map(|d| match d.key.contains('.') {
            true => d.key,
            false => format!("{}: {} recorded, {} now", d.key, show(&d.before), show(&d.after)),
        })
        .collect();
    if fields.is_empty() {
        fields.push("its spec".to_string());
    }
    fields
}

/// The results directory must be a directory we can create files in.
pub fn check_results_dir(results: &Path) -> Result<()> {
    if results.exists() && !results.is_dir() {
        return Err(Error::config(results, "the results path exists and is not a directory"));
    }
    std::fs::create_dir_all(results).map_err(|e| Error::io(results, e))
}
