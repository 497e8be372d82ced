//! `sweep --reuse DIR`: a finished run of another sweep directory that this plan also has is
//! copied in instead of trained again, when it is the same measurement: the same run id, a spec
//! equal to this plan's, and data equal to what the run would see now (source, unique tokens,
//! validation sample, data seed, token files). Grids centred per budget keep their run ids
//! stable, so a variant of a config (a budget added, another span) shares most of its runs with
//! the sweep it varies, and only the new ones train.
//!
//! Only independent runs are copied (a WSD trunk's checkpoints and its branches belong
//! together), and only finished ones (done or diverged): a run in progress stays with its own
//! sweep. A source run is copied only when both its run.json and its metrics.csv read (a run
//! missing either, or with a folder in a file's place, is not reused: it is named with why and
//! trained here). The copy is run.json and metrics.csv, written into a temporary folder and
//! renamed into place, so a worker that starts the same run meanwhile wins, nothing is
//! overwritten, and a copy that fails halfway leaves no run behind. The
//! copied run.json carries this plan's config hash and names where it came from in
//! `reused_from`; everything it measured is as it was.

use std::path::{Path, PathBuf};

use crate::data::TokenSource;
use crate::diff::differs;
use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::plan::{Plan, RunRole, RunSpec};
use crate::records::{RunRecord, RunStatus};
use crate::sweep::store::{RecordState, SweepStore};

/// What `--reuse` found in one directory.
#[derive(Clone, Debug, Default)]
pub struct Reused {
    /// Run ids copied in.
    pub copied: Vec<String>,
    /// Runs the directory has under a planned id but that were not copied, each with why.
    pub not_copied: Vec<(String, String)>,
}

impl Reused {
    /// One line for stderr: how many runs were copied from `from`, and which were not and why.
    pub fn summary(&self, from: &Path) -> String {
        let mut line = format!("reused {} finished run(s) from {}", self.copied.len(), from.display());
        if !self.not_copied.is_empty() {
            let named: Vec<String> = self.not_copied.iter().map(|(run, why)| format!("{run} ({why})")).collect();
            line.push_str(&format!(
                "; {} not reused, trained here instead: {}",
                self.not_copied.len(),
                crate::human::first_of(&named, 3)
            ));
        }
        line
    }
}

/// `reuse_finished` for each directory of `--reuse`, its summary line printed on stderr. The
/// callers (`sweep`, `slurm`) check `dirs` with `check_reuse_dirs` before they open the store.
pub fn reuse_from_all(store: &SweepStore, plan: &Plan, source: &dyn TokenSource, dirs: &[PathBuf]) -> Result<()> {
    for from in dirs {
        let reused = reuse_finished(store, plan, source, from)?;
        eprintln!("{}", reused.summary(from));
    }
    Ok(())
}

/// Copies into `store` every finished run of the sweep directory `from` that `plan` has and this
/// store does not, where the run's spec and data are this plan's (module docs).
fn reuse_finished(store: &SweepStore, plan: &Plan, source: &dyn TokenSource, from: &Path) -> Result<Reused> {
    let mut reused = Reused::default();
    for spec in plan.runs.iter().filter(|s| matches!(s.role, RunRole::Independent)) {
        let path = from.join("runs").join(&spec.run_id).join("run.json");
        if !path.exists() || !matches!(store.record_state(&spec.run_id), RecordState::Missing) {
            continue;
        }
        match check_reusable(&path, spec, source)? {
            Ok((record, metrics)) => {
                if copy_in(store, plan, from, record, &metrics)? {
                    reused.copied.push(spec.run_id.clone());
                }
            }
            Err(why) => reused.not_copied.push((spec.run_id.clone(), why)),
        }
    }
    Ok(reused)
}

/// Each `--reuse` directory must be another sweep's directory: checked before the sweep writes
/// anything into `sweep_dir`, so a mistyped path leaves no half-made results directory.
pub fn check_reuse_dirs(sweep_dir: &Path, dirs: &[PathBuf]) -> Result<()> {
    dirs.iter().try_for_each(|from| check_reuse_dir(sweep_dir, from))
}

fn check_reuse_dir(sweep_dir: &Path, from: &Path) -> Result<()> {
    if !from.join("runs").is_dir() {
        return Err(Error::config(from, "--reuse: not a sweep directory (it has no runs/ folder)"));
    }
    if same_directory(from, sweep_dir) {
        return Err(Error::config(from, "--reuse: this is the sweep's own results directory"));
    }
    Ok(())
}

/// The record at `path` and the bytes of the metrics.csv beside it, when it is `spec`'s run
/// finished on the data `source` gives it now and both files read, else why not (outer error:
/// the data itself failed).
fn check_reusable(
    path: &Path,
    spec: &RunSpec,
    source: &dyn TokenSource,
) -> Result<Result<(RunRecord, Vec<u8>), String>> {
    let record = match RunRecord::read(path) {
        Ok(record) => record,
        Err(e) => return Ok(Err(format!("its run.json does not read: {e}"))),
    };
    let metrics_path = path.with_file_name("metrics.csv");
    let metrics = match std::fs::read(&metrics_path) {
        Ok(bytes) => bytes,
        Err(e) => return Ok(Err(format!("its metrics.csv does not read: {}", Error::io(&metrics_path, e)))),
    };
    if let Err(e) = crate::records::parse_metrics(&metrics_path, &metrics) {
        return Ok(Err(format!("its metrics.csv does not read: {e}")));
    }
    if !matches!(record.status, RunStatus::Done | RunStatus::Diverged) {
        return Ok(Err(format!("{} there, not finished", record.status.as_str())));
    }
    if let Some(why) = differs("spec", &record.spec, &crate::records::as_recorded(spec)) {
        return Ok(Err(why));
    }
    let data = crate::train::run::data_info(spec, source)?;
    if let Some(why) = differs("data", &record.data.comparable(), &data.comparable()) {
        return Ok(Err(why));
    }
    Ok(Ok((record, metrics)))
}

/// Writes the run's folder (`record` and the `metrics` bytes) under a temporary name and renames
/// it into place; false when another worker made the run's folder first (that worker's run
/// stands). On any failure the temporary folder is removed, so no half-copied run remains.
fn copy_in(store: &SweepStore, plan: &Plan, from: &Path, mut record: RunRecord, metrics: &[u8]) -> Result<bool> {
    let target = store.run_dir(&record.run_id);
    let temp = store.dir.join("runs").join(format!(".reuse-{}-{}", record.run_id, std::process::id()));
    let _ = std::fs::remove_dir_all(&temp);
    let hash = record.config_hash.take().unwrap_or_else(|| "unrecorded".into());
    record.reused_from = Some(format!("{} (config hash {hash})", from.display()));
    record.config_hash = Some(plan.config_hash.clone());
    let written = std::fs::create_dir_all(&temp)
        .map_err(|e| Error::io(&temp, e))
        .and_then(|()| Ok(write_atomic(&temp.join("metrics.csv"), metrics)?))
        .and_then(|()| record.write(&temp.join("run.json")));
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&temp);
        return Err(e);
    }
    match std::fs::rename(&temp, &target) {
        Ok(()) => Ok(true),
        Err(_) if target.exists() => {
            let _ = std::fs::remove_dir_all(&temp);
            Ok(false)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&temp);
            Err(Error::io(&target, e))
        }
    }
}

fn same_directory(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
