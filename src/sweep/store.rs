//! The result store of one sweep directory: sweep.toml and plan.json (written once; a
//! directory belongs to one config, by hash), each run's folder and status, and summary.csv
//! rebuilt from the run records.
//!
//! A directory's identity does not rest on one file: plan.json, the first line of sweep.toml
//! and every run.json carry the config hash, and any of them disagreeing with the config is a
//! refusal. A damaged run.json is never overwritten silently: it and its metrics.csv are moved
//! aside (named in a warning) before the run trains again.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::plan::Plan;
use crate::plan::{RunRole, RunSpec};
pub use crate::records::{check_component, parse_plan, read_plan};
use crate::records::{write_summary, DataInfo, RunRecord, RunStatus};

/// A sweep's results directory.
pub struct SweepStore {
    pub dir: PathBuf,
}

impl SweepStore {
    /// Opens (creating if needed) `<results>/<name>` for `plan`. Checks everything first, so a
    /// refusal writes nothing: the sweep name and every run id must be one plain path component
    /// (nothing can land outside the results directory), a directory that holds another
    /// config's plan is refused, naming both hashes, a file where runs/ or a run's folder goes is
    /// refused, naming it, and so is a directory that cannot take new files (read-only).
    pub fn open(results: &Path, name: &str, config_text: &[u8], plan: &Plan) -> Result<SweepStore> {
        check_component(name).map_err(|m| Error::config(results, format!("sweep name: {m}")))?;
        for spec in &plan.runs {
            check_component(&spec.run_id).map_err(|m| Error::config(results, format!("run id: {m}")))?;
            if let RunRole::Branch { trunk, .. } = &spec.role {
                check_component(trunk).map_err(|m| Error::config(results, format!("trunk run id: {m}")))?;
            }
        }
        for path in [results, &results.join(name)] {
            if path.exists() && !path.is_dir() {
                return Err(Error::config(path, "the results path exists and is not a directory"));
            }
        }
        let dir = results.join(name);
        let plan_path = dir.join("plan.json");
        let existing = if plan_path.exists() { Some(read_plan(&plan_path)?) } else { None };
        match &existing {
            Some(existing) => check_same_config(&dir, existing, plan, config_text)?,
            None => check_identity_without_plan(&dir, plan, config_text)?,
        }
        check_folders(&dir, plan)?;
        check_writable(&dir)?;
        let runs = dir.join("runs");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        std::fs::create_dir_all(&runs).map_err(|e| Error::io(&runs, e))?;
        if existing.is_none() {
            publish_plan(&dir, plan, config_text)?;
        }
        let sweep_toml = dir.join("sweep.toml");
        if !sweep_toml.exists() {
            let mut text = format!("{HASH_LINE}{}\n", plan.config_hash).into_bytes();
            if !config_text.starts_with(HASH_LINE.as_bytes()) {
                text.extend_from_slice(config_text);
            } else {
                text = config_text.to_vec();
            }
            write_atomic(&sweep_toml, &text)?;
        }
        Ok(SweepStore { dir })
    }

    /// The run's record as found on disk: missing, readable, or there but damaged.
    pub fn record_state(&self, run_id: &str) -> RecordState {
        let path = self.run_dir(run_id).join("run.json");
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => RecordState::Missing,
            _ => match RunRecord::read(&path) {
                Ok(record) => RecordState::Readable(Box::new(record)),
                Err(e) => RecordState::Damaged(e.to_string()),
            },
        }
    }

    /// Moves a damaged run.json and the metrics.csv beside it to `<name>.damaged-<unix time>`
    /// (kept for the user to inspect or repair), so that training the run again overwrites
    /// nothing. Returns the warning to print, naming both.
    pub fn move_aside_damaged(&self, run_id: &str, why: &str) -> Result<String> {
        let run_dir = self.run_dir(run_id);
        let stamp = crate::fs::unix_now();
        let mut kept = Vec::new();
        for name in ["run.json", "metrics.csv"] {
            let from = run_dir.join(name);
            if std::fs::symlink_metadata(&from).is_err() {
                continue;
            }
            let mut to = run_dir.join(format!("{name}.damaged-{stamp}"));
            let mut n = 1;
            while std::fs::symlink_metadata(&to).is_ok() {
                to = run_dir.join(format!("{name}.damaged-{stamp}-{n}"));
                n += 1;
            }
            std::fs::rename(&from, &to).map_err(|e| Error::io(&from, e))?;
            kept.push(to.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        }
        Ok(format!(
            "{}: damaged ({why}); kept as {} in {}; the run is trained again",
            run_dir.join("run.json").display(),
            kept.join(" and "),
            run_dir.display()
        ))
    }

    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.dir.join("runs").join(run_id)
    }

    /// The run's record, if it has one that reads.
    pub fn record(&self, run_id: &str) -> Option<RunRecord> {
        RunRecord::read(&self.run_dir(run_id).join("run.json")).ok()
    }

    /// The run's status: its record's, or pending when it has none.
    pub fn status(&self, run_id: &str) -> RunStatus {
        self.record(run_id).map(|r| r.status).unwrap_or(RunStatus::Pending)
    }

    /// Rewrites summary.csv from the run records (trunks of WSD branching are left out: their
    /// final loss is at the peak learning rate). Runs without a record are `pending`.
    pub fn write_summary(&self, plan: &Plan) -> Result<()> {
        let records: Vec<RunRecord> = plan
            .runs
            .iter()
            .filter(|spec| !matches!(spec.role, RunRole::Trunk { .. }))
            .map(|spec| self.record(&spec.run_id).unwrap_or_else(|| pending_record(spec)))
            .collect();
        write_summary(&self.dir.join("summary.csv"), &records)
    }

    /// Marks a run failed in its run.json (keeping what it recorded), with the reason.
    pub fn mark_failed(&self, spec: &RunSpec, reason: &str) -> Result<()> {
        let path = self.run_dir(&spec.run_id).join("run.json");
        let mut record = self.record(&spec.run_id).unwrap_or_else(|| pending_record(spec));
        record.status = RunStatus::Failed;
        record.reason = Some(reason.to_string());
        record.write(&path)
    }

    /// Records a run that ends without training as `status` (a WSD branch whose trunk diverged
    /// before its branch point is diverged), with the reason and no result.
    /// `config_hash` names the config the record belongs to, as a trained run's does.
    pub fn mark_finished(&self, spec: &RunSpec, status: RunStatus, reason: &str, config_hash: &str) -> Result<()> {
        let run_dir = self.run_dir(&spec.run_id);
        std::fs::create_dir_all(&run_dir).map_err(|e| Error::io(&run_dir, e))?;
        let mut record = self.record(&spec.run_id).unwrap_or_else(|| pending_record(spec));
        record.status = status;
        record.reason = Some(reason.to_string());
        record.result = None;
        record.finished_at_unix = Some(crate::records::unix_now());
        record.config_hash = Some(config_hash.to_string());
        record.write(&run_dir.join("run.json"))
    }
}

/// runs/ and each planned run's folder, where they exist, are folders (a link to one counts): a
/// file in their place would fail every run, or this one, with an OS error naming another path.
/// A dangling link is left to the run, which fails alone, as an unreachable folder may come back.
fn check_folders(dir: &Path, plan: &Plan) -> Result<()> {
    let runs = dir.join("runs");
    let folders = std::iter::once(runs.clone()).chain(plan.runs.iter().map(|spec| runs.join(&spec.run_id)));
    for folder in folders {
        if std::fs::metadata(&folder).is_ok_and(|meta| !meta.is_dir()) {
            return Err(Error::record(&folder, "exists and is not a directory"));
        }
    }
    Ok(())
}

/// The sweep directory and its runs/ take new files, tried by creating and removing one, so a
/// read-only results directory is one error before any training rather than a failure per run.
/// Before the directory exists, the folder it is to be made in is tried instead.
fn check_writable(dir: &Path) -> Result<()> {
    let runs = dir.join("runs");
    let mut folders: Vec<&Path> = [dir, runs.as_path()].into_iter().filter(|f| f.is_dir()).collect();
    let missing = folders.is_empty();
    if missing {
        folders.extend(dir.ancestors().skip(1).find(|a| a.as_os_str().is_empty() || a.is_dir()));
    }
    for folder in folders {
        let base = if folder.as_os_str().is_empty() { Path::new(".") } else { folder };
        let probe = crate::fs::temp_sibling(&base.join("sweeplaw-write-check"));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
            }
            Err(e) if missing => {
                return Err(Error::record(dir, format!("cannot be made: {} is not writable ({e})", base.display())))
            }
            Err(e) => return Err(Error::record(base, format!("the results directory is not writable ({e})"))),
        }
    }
    Ok(())
}

/// What a run folder's run.json is.
pub enum RecordState {
    Missing,
    Readable(Box<RunRecord>),
    /// There but unreadable: why.
    Damaged(String),
}

/// The first line of a sweep.toml written by a sweep: a TOML comment carrying the config hash.
pub const HASH_LINE: &str = "# sweeplaw config hash ";

/// Without plan.json, the directory's sweep.toml and run records still say whose it is: a hash
/// in any of them that is not this config's is refused, naming the file.
fn check_identity_without_plan(dir: &Path, plan: &Plan, config_text: &[u8]) -> Result<()> {
    let sweep_toml = dir.join("sweep.toml");
    if let Ok(text) = std::fs::read_to_string(&sweep_toml) {
        if let Some(hash) = text.lines().next().and_then(|line| line.strip_prefix(HASH_LINE)) {
            refuse_other_hash(&sweep_toml, hash.trim(), &plan.config_hash, || why_other(dir, config_text))?;
        }
    }
    let Ok(entries) = std::fs::read_dir(dir.join("runs")) else { return Ok(()) };
    let mut run_jsons: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path().join("run.json")).collect();
    run_jsons.sort();
    for path in run_jsons {
        if let Ok(RunRecord { config_hash: Some(hash), .. }) = RunRecord::read(&path) {
            refuse_other_hash(&path, &hash, &plan.config_hash, || why_other(dir, config_text))?;
        }
    }
    Ok(())
}

/// `recorded` is the hash a file of the directory holds, `config` this config's; `why` says in
/// the config's own keys how they differ (empty when nothing more can be said), asked only on a
/// refusal.
fn refuse_other_hash(path: &Path, recorded: &str, config: &str, why: impl FnOnce() -> String) -> Result<()> {
    if recorded == config {
        return Ok(());
    }
    let why = why();
    let why = if why.is_empty() { String::new() } else { format!(": {why}") };
    Err(Error::config(
        path,
        format!(
            "this results directory belongs to another config (hash {}…, this config {}…){why}; \
             use another --results directory or sweep name (`sweeplaw sweep --reuse <this directory>` copies \
             in the finished runs this config shares)",
            short_hash(recorded),
            short_hash(config)
        ),
    ))
}

/// How the directory's sweep.toml (the config it was planned from) differs from `config_text`;
/// empty when there is no sweep.toml to compare, or either is not TOML.
fn why_other(dir: &Path, config_text: &[u8]) -> String {
    let Ok(planned) = std::fs::read_to_string(dir.join("sweep.toml")) else { return String::new() };
    let Ok(given) = std::str::from_utf8(config_text) else { return String::new() };
    super::identity::explain(&planned, given).unwrap_or_default()
}

fn short_hash(hash: &str) -> String {
    hash.chars().take(12).collect()
}

/// What `rebuild_summary` wrote.
#[derive(Clone, Debug)]
pub struct RebuiltSummary {
    pub path: PathBuf,
    pub rows: usize,
    /// One per run.json that could not be read (file and line named).
    pub warnings: Vec<String>,
}

/// Rebuilds `dir/summary.csv` from the run folders (`runs/<id>/run.json`), for when summary.csv
/// is lost or corrupt. With plan.json the rows follow the plan, and a run whose run.json is
/// missing or unreadable is `pending` (as the runner sees it); without one, every readable
/// run.json under runs/ gives a row, in run id order. WSD trunks are left out, as in a sweep.
pub fn rebuild_summary(dir: &Path) -> Result<RebuiltSummary> {
    if !dir.join("runs").is_dir() {
        return Err(Error::record(dir, "not a sweep directory: it has no runs/ folder"));
    }
    let mut warnings = Vec::new();
    let plan_path = dir.join("plan.json");
    let records = if plan_path.exists() {
        let plan = read_plan(&plan_path)?;
        if let Some(bad) = plan.runs.iter().find(|spec| check_component(&spec.run_id).is_err()) {
            return Err(Error::record(&plan_path, format!("run id {:?} is not a plain directory name", bad.run_id)));
        }
        let store = SweepStore { dir: dir.to_path_buf() };
        plan.runs
            .iter()
            .filter(|spec| !matches!(spec.role, RunRole::Trunk { .. }))
            .map(|spec| match RunRecord::read(&store.run_dir(&spec.run_id).join("run.json")) {
                Ok(record) => record,
                Err(e) => {
                    if !matches!(&e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound) {
                        warnings.push(format!("{e}; listed as pending"));
                    }
                    pending_record(spec)
                }
            })
            .collect()
    } else {
        records_in(&dir.join("runs"), &mut warnings)?
    };
    let path = dir.join("summary.csv");
    write_summary(&path, &records)?;
    Ok(RebuiltSummary { path, rows: records.len(), warnings })
}

/// The run folders under `runs`, sorted by run id: folders (a link to one counts) named as a
/// run id can be (files, and hidden folders such as a copy in progress, are not runs).
pub fn run_folders(runs: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs)
        .map_err(|e| Error::io(runs, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_dir())
        .filter(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(|n| check_component(n).is_ok()))
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Every readable run.json under `runs`, by run id; unreadable ones become warnings.
fn records_in(runs: &Path, warnings: &mut Vec<String>) -> Result<Vec<RunRecord>> {
    let mut records = Vec::new();
    for run_dir in run_folders(runs)? {
        match RunRecord::read(&run_dir.join("run.json")) {
            Ok(record) if matches!(record.spec.role, RunRole::Trunk { .. }) => {}
            Ok(record) => records.push(record),
            Err(e) => warnings.push(format!("{e}; skipped")),
        }
    }
    Ok(records)
}

/// Creates `dir/plan.json` only if no other worker has meanwhile: written to a temporary file and
/// hard-linked into place (`link` fails rather than replace), so of two different configs started
/// at once on one directory exactly one wins and the other is refused. Filesystems without hard
/// links fall back to a rename.
fn publish_plan(dir: &Path, plan: &Plan, config_text: &[u8]) -> Result<()> {
    let plan_path = dir.join("plan.json");
    let json = serde_json::to_vec_pretty(plan).map_err(|e| Error::record(&plan_path, e.to_string()))?;
    let temp = dir.join(format!(".plan.json.new{}", std::process::id()));
    write_atomic(&temp, &json)?;
    let linked = std::fs::hard_link(&temp, &plan_path);
    let result = match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read_plan(&plan_path).and_then(|existing| check_same_config(dir, &existing, plan, config_text))
        }
        Err(_) => std::fs::rename(&temp, &plan_path).map_err(|e| Error::io(&plan_path, e)),
    };
    let _ = std::fs::remove_file(&temp);
    result
}

fn check_same_config(dir: &Path, existing: &Plan, plan: &Plan, config_text: &[u8]) -> Result<()> {
    refuse_other_hash(dir, &existing.config_hash, &plan.config_hash, || why_other(dir, config_text))
}

/// A record for a run that has not started: spec and counts, nothing measured.
fn pending_record(spec: &RunSpec) -> RunRecord {
    let data = DataInfo {
        source: String::new(),
        vocab_size: spec.shape.vocab_size,
        unique_tokens: spec.unique_tokens,
        true_entropy: None,
        unigram_entropy: None,
        eval_tokens: 0,
        data_seed: None,
        validation_sample: None,
        token_files_sha256: Default::default(),
    };
    let mut record = crate::train::run::start_record(spec, data, &spec.device);
    record.status = RunStatus::Pending;
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_plan(hash: &str) -> Plan {
        Plan {
            format_version: crate::plan::PLAN_VERSION,
            sweep: "s".into(),
            config_hash: hash.into(),
            runs: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sweeplaw-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn names_that_leave_the_results_directory_are_refused() {
        for bad in ["..", "../x", "/tmp/x", "a/b", ".hidden", "", "a\\b", "a b", "x/../.."] {
            assert!(check_component(bad).is_err(), "{bad:?}");
        }
        for good in ["smoke", "L1-d32-D10240-s0", "C1e17-L2-d64-D5-s0", "a.b_c"] {
            assert_eq!(check_component(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn a_refused_open_writes_nothing() {
        let results = scratch("refused");
        let e = SweepStore::open(&results, "../outside", b"", &empty_plan("ab")).err().unwrap().to_string();
        assert!(e.contains("sweep name") && e.contains("../outside"), "{e}");
        assert!(!results.exists() && !results.with_file_name("outside").exists());
        std::fs::create_dir_all(results.join("s")).unwrap();
        std::fs::write(results.join("s/plan.json"), b"{ not json").unwrap();
        let e = SweepStore::open(&results, "s", b"", &empty_plan("ab")).err().unwrap().to_string();
        assert!(e.contains("plan.json") && e.contains("line 1"), "{e}");
        assert!(!results.join("s/runs").exists() && !results.join("s/sweep.toml").exists());
        std::fs::remove_dir_all(&results).unwrap();
    }

    #[test]
    fn publishing_a_plan_never_replaces_another_configs() {
        let dir = scratch("publish");
        std::fs::create_dir_all(&dir).unwrap();
        publish_plan(&dir, &empty_plan("first"), b"").unwrap();
        publish_plan(&dir, &empty_plan("first"), b"").unwrap();
        let e = publish_plan(&dir, &empty_plan("second"), b"").err().unwrap().to_string();
        assert!(e.contains("belongs to another config"), "{e}");
        assert_eq!(read_plan(&dir.join("plan.json")).unwrap().config_hash, "first");
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec!["plan.json"], "no temporary file is left");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn another_configs_directory_is_refused_even_with_a_short_hash() {
        let results = scratch("other");
        SweepStore::open(&results, "s", b"name = \"s\"", &empty_plan("0123456789abcdef")).unwrap();
        let e = SweepStore::open(&results, "s", b"", &empty_plan("x")).err().unwrap().to_string();
        assert!(e.contains("belongs to another config (hash 0123456789ab…, this config x…)"), "{e}");
        let toml = std::fs::read_to_string(results.join("s/sweep.toml")).unwrap();
        assert_eq!(toml, format!("{HASH_LINE}0123456789abcdef\nname = \"s\""));
        std::fs::remove_dir_all(&results).unwrap();
    }
}
