//! `sweeplaw sweep`: trains every run of a plan that is not done yet, resuming interrupted runs
//! from their last good checkpoint. Several workers (`--worker i/n`, separate processes, Slurm
//! array tasks) share one results directory by claiming runs atomically (`claim`). A diverged or
//! failed run is recorded as such and the sweep goes on.

mod branches;
pub mod claim;
pub mod estimate;
mod identity;
mod progress;
mod resume;
pub mod reuse;
pub mod store;

use std::path::{Path, PathBuf};

use branches::{GiveUp, Trunks};
use std::time::Duration;

use crate::config::SweepConfig;
use crate::data::TokenSource;
use crate::device::ComputeDevice;
use crate::error::{Error, Result};
use crate::plan::{expand, Plan};
use crate::plan::{RunRole, RunSpec};
use crate::records::RunStatus;
use crate::train::observe::{DivergenceGuard, ProgressObserver, RecordWriter, RunEnd, RunObserver};
use crate::train::run::{branch_checkpoint_name, rotating_checkpoints, train, RunContext, StartPoint};
use claim::{try_claim, ClaimConfig, ClaimOutcome};
use progress::{ClaimWatch, SweepProgress};
use store::{RecordState, SweepStore};

/// Options of `sweeplaw sweep`.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    pub config: PathBuf,
    pub results: PathBuf,
    /// This worker's share of the plan: runs whose index % n == i.
    pub worker: Option<(usize, usize)>,
    pub quiet: bool,
    /// A claim whose heartbeat is older than this is taken over.
    pub stale_after: Duration,
    /// Runs trained at once on the sweep's device, each by its own thread (its own CUDA stream
    /// on a GPU): small models leave a GPU mostly idle. 1 = one run at a time.
    pub runs_per_device: usize,
    /// Refuse to train when a plan check warns (the design checks, and the data check once the
    /// data is open).
    pub strict: bool,
    /// Other sweep directories whose finished runs this plan shares (same id, spec and data) are
    /// copied in before training instead of trained again (`reuse`).
    pub reuse: Vec<PathBuf>,
}

impl SweepOptions {
    /// The whole plan of `config` into `results`, one run at a time, as `sweeplaw sweep` with no
    /// flags does.
    pub fn new(config: impl Into<PathBuf>, results: impl Into<PathBuf>) -> Self {
        SweepOptions {
            config: config.into(),
            results: results.into(),
            worker: None,
            quiet: false,
            stale_after: claim::ClaimConfig::DEFAULT_STALE_AFTER,
            runs_per_device: 1,
            strict: false,
            reuse: Vec::new(),
        }
    }
}

/// What a worker did.
#[derive(Clone, Debug, Default)]
pub struct SweepReport {
    pub sweep_dir: PathBuf,
    pub trained: Vec<String>,
    pub skipped_done: Vec<String>,
    pub diverged: Vec<String>,
    pub failed: Vec<(String, String)>,
    /// Wall-clock seconds of the whole sweep command, and the model FLOPs (matmul_attn) of the
    /// steps it trained (a resumed run counts from its checkpoint): their ratio is the sweep's
    /// aggregate model FLOP/s.
    pub wall_s: f64,
    pub model_flops: f64,
    /// The signal that stopped the sweep early, if one did, and the runs it stopped mid-training.
    pub signal: Option<i32>,
    pub stopped: Vec<StoppedRun>,
}

/// A run a signal stopped: after which step, and the checkpoint it resumes from.
#[derive(Clone, Debug)]
pub struct StoppedRun {
    pub run_id: String,
    pub step: u64,
    pub checkpoint: Option<PathBuf>,
}

impl SweepReport {
    fn merge(&mut self, other: SweepReport) {
        self.trained.extend(other.trained);
        self.diverged.extend(other.diverged);
        self.failed.extend(other.failed);
        self.model_flops += other.model_flops;
        self.signal = self.signal.or(other.signal);
        self.stopped.extend(other.stopped);
    }
}

/// Loads, plans and runs a sweep.
/// Everything is checked (config, plan, device, data, results directory) before anything is
/// written, so a bad input leaves the results directory as it was.
pub fn run_sweep(options: &SweepOptions) -> Result<SweepReport> {
    let (config, plan) = load_plan(&options.config)?;
    run_plan(options, config, plan)
}

/// Runs `plan` of `config` into `<results>/<plan.sweep>/` (a sweep's own plan, or the tuning
/// runs `sweeplaw tune` plans), checked like `run_sweep`.
pub fn run_plan(options: &SweepOptions, config: SweepConfig, plan: Plan) -> Result<SweepReport> {
    let config_text = std::fs::read(&options.config).map_err(|e| Error::io(&options.config, e))?;
    let device = crate::device::resolve(&config.device, &config.precision)?;
    crate::plan::memory::check_fits(&plan.runs, &device.name).map_err(|m| Error::config(&options.config, m))?;
    let source = config.data.build_source()?;
    crate::train::run::check_data(&plan.runs, source.as_ref()).map_err(|m| Error::config(&options.config, m))?;
    let mut warnings = plan.warnings.clone();
    warnings.extend(data_warnings(&plan, source.as_ref()));
    if options.strict && !warnings.is_empty() {
        print_warnings(&warnings);
        return Err(Error::StrictRefusal(warnings.len()));
    }
    let mine: Vec<&RunSpec> = plan
        .runs
        .iter()
        .enumerate()
        .filter(|(i, _)| options.worker.is_none_or(|(w, n)| i % n == w))
        .map(|(_, r)| r)
        .collect();
    let sweep_dir = options.results.join(&plan.sweep);
    reuse::check_reuse_dirs(&sweep_dir, &options.reuse)?;
    resume::check_resume_data(&sweep_dir, &plan, &mine, source.as_ref())?;
    let store = SweepStore::open(&options.results, &plan.sweep, &config_text, &plan)?;
    // The plan checks' warnings, once the inputs have passed their checks and before training.
    print_warnings(&warnings);
    reuse::reuse_from_all(&store, &plan, source.as_ref(), &options.reuse)?;
    let started = std::time::Instant::now();
    let progress = SweepProgress::new(&plan, options.quiet);
    let slots = options.runs_per_device.max(1);
    let trunks = Trunks::new(&mine);
    let mut report = SweepReport { sweep_dir: store.dir.clone(), ..SweepReport::default() };
    report.skipped_done = mine
        .iter()
        .filter(|r| matches!(store.status(&r.run_id), RunStatus::Done | RunStatus::Diverged))
        .map(|r| r.run_id.clone())
        .collect();
    let outcomes: Vec<Result<SweepReport>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..slots)
            .map(|slot| {
                let (plan, store, source, progress, mine, trunks) =
                    (&plan, &store, source.as_ref(), &progress, &mine, &trunks);
                // Each further slot opens the device again. On CUDA, candle's Device::new_cuda launches
                // on CUDA's per-thread default stream (CU_STREAM_PER_THREAD), so each slot's thread has
                // its own stream and the K runs' kernels overlap, without cudarc's cross-stream events.
                let device = if slot == 0 {
                    Ok(device.clone())
                } else {
                    crate::device::resolve(&config.device, &config.precision)
                };
                scope.spawn(move || {
                    let device = device?;
                    let slot = (slots > 1).then_some(slot);
                    let worker = Worker { options, plan, store, device: &device, source, slot, trunks };
                    worker.run_all(mine, progress)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::Failed("a sweep thread panicked".into()))))
            .collect()
    });
    progress.finish();
    for outcome in outcomes {
        report.merge(outcome?);
    }
    report.wall_s = started.elapsed().as_secs_f64();
    store.write_summary(&plan)?;
    Ok(report)
}

/// The plan's runs checked against the data they train on: text without a document separator
/// (`checks::separator_warning`), the models' vocabulary against the data's
/// (`checks::vocab_warning`), and the runs' tokens against the training split
/// (`checks::data_warnings`, none for the synthetic language, which has no finite split).
pub fn data_warnings(plan: &Plan, source: &dyn TokenSource) -> Vec<String> {
    let mut warnings: Vec<String> =
        crate::plan::checks::separator_warning(source.separates_documents()).into_iter().collect();
    warnings.extend(crate::plan::checks::vocab_warning(&plan.runs, source.tokens_in_vocabulary()));
    warnings.extend(
        source.unique_tokens().map(|tokens| crate::plan::checks::data_warnings(&plan.runs, tokens)).unwrap_or_default(),
    );
    warnings
}

/// `plan`'s data check: local data (text, token files) is opened as the sweep opens it and the
/// runs checked against it; synthetic data has no finite split, and hub data is checked by
/// `sweep`, since opening it may download it. Err: the data does not open (the sweep refuses
/// it; `plan` says so and goes on).
pub fn local_data_warnings(config: &SweepConfig, plan: &Plan) -> Result<Vec<String>> {
    use crate::config::DataConfig;
    if matches!(config.data, DataConfig::Synthetic(_) | DataConfig::Hub(_)) {
        return Ok(Vec::new());
    }
    let source = config.data.build_source()?;
    let mut warnings = data_warnings(plan, source.as_ref());
    // `sweep` refuses this data; `plan` shows why, with the other checks.
    if let Err(message) = crate::train::run::check_data(&plan.runs, source.as_ref()) {
        warnings.insert(0, format!("`sweep` refuses this data: {message}"));
    }
    Ok(warnings)
}

/// Each warning on its own line of stderr.
pub fn print_warnings(warnings: &[String]) {
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
}

/// Reads a sweep config and expands it; errors name the file.
pub fn load_plan(path: &Path) -> Result<(SweepConfig, Plan)> {
    let config = crate::plan::load_sweep_config(path)?;
    let plan = expand(&config).map_err(|m| Error::config(path, m))?;
    Ok((config, plan))
}

struct Worker<'a> {
    options: &'a SweepOptions,
    plan: &'a Plan,
    store: &'a SweepStore,
    device: &'a ComputeDevice,
    source: &'a dyn TokenSource,
    /// Which of `--runs-per-device` threads this is (None when there is one).
    slot: Option<usize>,
    /// The WSD trunks as this process sees them, shared by its threads.
    trunks: &'a Trunks,
}

/// What became of one attempt at a run.
enum Attempt {
    /// Trained to its end here: the status and the model FLOPs (matmul_attn) of the steps this
    /// process trained (after the checkpoint it resumed from, if any).
    Finished(RunStatus, f64),
    AlreadyFinished,
    /// Held by a live worker (named, with the time since its heartbeat), or a branch whose
    /// trunk has not reached its branch point yet (None).
    Waiting(Option<(String, Duration)>),
    Failed(String),
    /// The sweep cannot go on (the disk is full): stop with this error, recording nothing.
    Stop(Error),
    /// A signal asked the sweep to stop; the run stopped after `step`, resumable from `checkpoint`.
    Interrupted {
        signal: i32,
        step: u64,
        checkpoint: Option<PathBuf>,
    },
}

impl Worker<'_> {
    /// Passes over the runs until each is finished (by this worker or another), waiting for
    /// runs held by other live workers so that a dead worker's run is taken over, not lost.
    /// A signal ends the passes: the report lists where each run in training stopped.
    fn run_all(&self, mine: &[&RunSpec], progress: &SweepProgress) -> Result<SweepReport> {
        let mut report = SweepReport { sweep_dir: self.store.dir.clone(), ..SweepReport::default() };
        let mut open: Vec<&RunSpec> = mine.to_vec();
        // Each thread starts at its own offset, so the slots do not all queue on one claim.
        let offset = self.slot.unwrap_or(0) % open.len().max(1);
        open.rotate_left(offset);
        let mut announced: Vec<String> = Vec::new();
        while !open.is_empty() {
            let mut still_open = Vec::new();
            for spec in open {
                if let Some(signal) = crate::train::stop::requested() {
                    report.signal = Some(signal);
                    return Ok(report);
                }
                let attempt = self.attempt(spec, progress)?;
                if matches!(spec.role, RunRole::Trunk { .. }) {
                    match &attempt {
                        Attempt::Finished(..) | Attempt::AlreadyFinished => self.trunks.settle(&spec.run_id, None),
                        Attempt::Failed(reason) => self.trunks.settle(&spec.run_id, Some(reason.clone())),
                        _ => {}
                    }
                }
                match attempt {
                    Attempt::Finished(status, flops) => {
                        match status {
                            RunStatus::Diverged => report.diverged.push(spec.run_id.clone()),
                            _ => report.trained.push(spec.run_id.clone()),
                        }
                        report.model_flops += flops;
                        self.store.write_summary(self.plan)?;
                    }
                    Attempt::AlreadyFinished => {}
                    Attempt::Waiting(holder) => {
                        if let Some((worker, age)) = holder {
                            if !announced.contains(&spec.run_id) {
                                announced.push(spec.run_id.clone());
                                progress.println(&format!(
                                    "waiting for run {}: worker {worker} holds it (heartbeat {:.0} s ago); \
                                     it is taken over if silent for {:.0} s (--stale-after)",
                                    spec.run_id,
                                    age.as_secs_f64(),
                                    self.options.stale_after.as_secs_f64()
                                ));
                            }
                        }
                        still_open.push(spec);
                    }
                    Attempt::Failed(reason) => {
                        progress.println(&format!("run {} failed: {reason}", spec.run_id));
                        report.failed.push((spec.run_id.clone(), reason));
                        self.store.write_summary(self.plan)?;
                    }
                    Attempt::Stop(error) => return Err(error),
                    Attempt::Interrupted { signal, step, checkpoint } => {
                        report.signal = Some(signal);
                        report.stopped.push(StoppedRun { run_id: spec.run_id.clone(), step, checkpoint });
                        return Ok(report);
                    }
                }
                progress.set_done(self.plan, self.store);
            }
            open = still_open;
            if !open.is_empty() {
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        Ok(report)
    }

    fn attempt(&self, spec: &RunSpec, progress: &SweepProgress) -> Result<Attempt> {
        let status = self.store.status(&spec.run_id);
        if matches!(status, RunStatus::Done | RunStatus::Diverged) {
            return Ok(Attempt::AlreadyFinished);
        }
        let (own_points, trunk_point) = self.start_points(spec);
        // A branch with nothing to start from waits for its trunk, or gives up on a trunk that
        // is finished without the checkpoint it needs.
        let given_up = match &spec.role {
            RunRole::Branch { trunk, from_step, .. } if own_points.is_empty() && trunk_point.is_none() => {
                match branches::give_up(self.store, self.trunks, trunk, *from_step) {
                    None => return Ok(Attempt::Waiting(None)),
                    given_up => given_up,
                }
            }
            _ => None,
        };
        let claim_config = ClaimConfig {
            worker: worker_name(self.options.worker, self.slot),
            stale_after: self.options.stale_after,
            heartbeat_every: (self.options.stale_after / 12).max(Duration::from_millis(50)),
        };
        let run_dir = self.store.run_dir(&spec.run_id);
        // A run folder that cannot be claimed (a dangling link, a file in its place) fails this
        // run only; the sweep goes on with the others.
        let claim = match try_claim(&run_dir, &claim_config) {
            Ok(ClaimOutcome::Claimed(claim)) => claim,
            Ok(ClaimOutcome::HeldByOther { worker, age }) => return Ok(Attempt::Waiting(Some((worker, age)))),
            Err(e) => return self.fail(spec, claim_error(&run_dir, e)),
        };
        let outcome = match self.store.record_state(&spec.run_id) {
            // Another worker may have finished it between our status check and the claim.
            RecordState::Readable(record) if matches!(record.status, RunStatus::Done | RunStatus::Diverged) => {
                claim.release().map_err(|e| claim_error(&run_dir, e))?;
                return Ok(Attempt::AlreadyFinished);
            }
            // A damaged record's own checkpoints are not trusted; a branch keeps its trunk's.
            RecordState::Damaged(why) => match self.store.move_aside_damaged(&spec.run_id, &why) {
                Ok(warning) => {
                    progress.println(&format!("warning: {warning}"));
                    self.run_claimed(spec, &run_dir, trunk_point.into_iter().collect(), given_up, &claim, progress)
                }
                Err(e) => Err(e),
            },
            _ => {
                let points = own_points.into_iter().chain(trunk_point).collect();
                self.run_claimed(spec, &run_dir, points, given_up, &claim, progress)
            }
        };
        let attempt = match outcome {
            Ok(end) => {
                self.clean_checkpoints(spec, &run_dir);
                Attempt::Finished(end.status, end.flops_trained_here)
            }
            Err(Error::ClaimLost { .. }) => Attempt::Waiting(None),
            Err(Error::Interrupted { signal, step, checkpoint, .. }) => {
                Attempt::Interrupted { signal, step, checkpoint }
            }
            Err(e) if e.is_storage_full() => Attempt::Stop(Error::Run {
                run: spec.run_id.clone(),
                message: format!("{e}; the sweep stopped with its records intact: free some space and rerun it"),
            }),
            Err(e) => self.fail(spec, e)?,
        };
        if claim.still_ours() {
            claim.release().map_err(|e| claim_error(&run_dir, e))?;
        }
        Ok(attempt)
    }

    /// Records a run as failed with `error`'s message; a run whose folder cannot even hold that
    /// record is reported failed all the same, with both reasons.
    fn fail(&self, spec: &RunSpec, error: Error) -> Result<Attempt> {
        if error.is_storage_full() {
            return Ok(Attempt::Stop(error));
        }
        let reason = error.to_string();
        match self.store.mark_failed(spec, &reason) {
            Ok(()) => Ok(Attempt::Failed(reason)),
            Err(e) if e.is_storage_full() => Ok(Attempt::Stop(e)),
            Err(e) => Ok(Attempt::Failed(format!("{reason} (and recording the failure failed: {e})"))),
        }
    }

    /// Trains a claimed run, or records the branch `given_up` on its trunk as failed (an error,
    /// recorded by the caller as any failure is) or diverged.
    fn run_claimed(
        &self,
        spec: &RunSpec,
        run_dir: &Path,
        start_points: Vec<StartPoint>,
        given_up: Option<GiveUp>,
        claim: &claim::Claim,
        progress: &SweepProgress,
    ) -> Result<RunEnd> {
        match given_up {
            None => self.train_claimed(spec, run_dir, start_points, claim, progress),
            Some(GiveUp::Failed(reason)) => Err(Error::Failed(reason)),
            Some(GiveUp::Diverged(reason)) => {
                self.store.mark_finished(spec, RunStatus::Diverged, &reason, &self.plan.config_hash)?;
                progress.println(&format!("diverged {}: {reason}", spec.run_id));
                Ok(RunEnd { status: RunStatus::Diverged, reason: Some(reason), result: None, flops_trained_here: 0.0 })
            }
        }
    }

    fn train_claimed(
        &self,
        spec: &RunSpec,
        run_dir: &Path,
        start_points: Vec<StartPoint>,
        claim: &claim::Claim,
        progress: &SweepProgress,
    ) -> Result<RunEnd> {
        let mut writer = RecordWriter::new(run_dir).with_config_hash(&self.plan.config_hash);
        let mut guard = DivergenceGuard::new(spec.divergence.spike_factor);
        let mut run_bar = ProgressObserver::with_bar(progress.run_bar(&spec.run_id, spec.tokens));
        let mut sweep_bar = progress.observer(self.plan, self.store, spec);
        let mut watch = ClaimWatch { claim };
        let observers: Vec<&mut dyn RunObserver> =
            vec![&mut watch, &mut writer, &mut guard, &mut run_bar, &mut sweep_bar];
        let context = RunContext {
            source: self.source,
            device: self.device,
            observers,
            checkpoint_dir: Some(run_dir.join("checkpoint")),
            start_points,
        };
        let end = train(spec, context)?;
        progress.println(&progress::finished_line(spec, &end));
        Ok(end)
    }

    /// Checkpoints to start from, best first: this run's own (newest first), and for a branch
    /// the trunk's checkpoint at the branch point (tried after its own).
    fn start_points(&self, spec: &RunSpec) -> (Vec<StartPoint>, Option<StartPoint>) {
        let run_dir = self.store.run_dir(&spec.run_id);
        let own_metrics = run_dir.join("metrics.csv");
        let own = rotating_checkpoints(&run_dir.join("checkpoint"))
            .into_iter()
            .filter(|c| c.join("state.json").exists())
            .map(|checkpoint| StartPoint { checkpoint, metrics: own_metrics.clone() })
            .collect();
        let trunk = match &spec.role {
            RunRole::Branch { trunk, from_step, .. } => {
                let trunk_dir = self.store.run_dir(trunk);
                let checkpoint = trunk_dir.join("checkpoint").join(branch_checkpoint_name(*from_step));
                checkpoint
                    .join("state.json")
                    .exists()
                    .then(|| StartPoint { checkpoint, metrics: trunk_dir.join("metrics.csv") })
            }
            _ => None,
        };
        (own, trunk)
    }

    /// A finished run's rotating checkpoints are no longer needed; a trunk keeps its branch points.
    fn clean_checkpoints(&self, spec: &RunSpec, run_dir: &Path) {
        let dir = run_dir.join("checkpoint");
        for old in rotating_checkpoints(&dir) {
            let _ = std::fs::remove_dir_all(old);
        }
        if !matches!(spec.role, RunRole::Trunk { .. }) {
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

/// A claim file's failure as an error about the run folder (an I/O failure keeps its kind).
fn claim_error(run_dir: &Path, error: claim::ClaimError) -> Error {
    match error {
        claim::ClaimError::Io { path, source, .. } => Error::Io { path, source },
        other => Error::record(run_dir, other.to_string()),
    }
}

/// "host:pid" (with "i/n" for a partitioned worker, "#k" for slot k of --runs-per-device): who
/// holds a claim.
fn worker_name(worker: Option<(usize, usize)>, slot: Option<usize>) -> String {
    let mut name = claim::default_worker_name();
    if let Some((i, n)) = worker {
        name = format!("{i}/{n}:{name}");
    }
    if let Some(slot) = slot {
        name = format!("{name}#{slot}");
    }
    name
}

/// Parses `--worker i/n`.
pub fn parse_worker(text: &str) -> std::result::Result<(usize, usize), String> {
    let (i, n) = text.split_once('/').ok_or_else(|| format!("--worker {text:?}: expected i/n, e.g. 0/4"))?;
    let i: usize = i.trim().parse().map_err(|_| format!("--worker {text:?}: i is not a number"))?;
    let n: usize = n.trim().parse().map_err(|_| format!("--worker {text:?}: n is not a number"))?;
    if n == 0 || i >= n {
        return Err(format!("--worker {text:?}: need 0 <= i < n"));
    }
    Ok((i, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_recognised_by_its_io_error() {
        let full = Error::io("runs/a/metrics.csv", std::io::Error::from_raw_os_error(28));
        assert!(full.is_storage_full());
        assert!(full.to_string().starts_with("runs/a/metrics.csv: No space left on device"));
        assert!(Error::io("x", std::io::Error::from_raw_os_error(122)).is_storage_full());
        assert!(!Error::io("x", std::io::Error::from_raw_os_error(13)).is_storage_full());
        assert!(!Error::record("x", "No space left on device").is_storage_full(), "text is not a type");
    }

    #[test]
    fn worker_flags_parse_and_refuse_out_of_range() {
        assert_eq!(parse_worker("1/4"), Ok((1, 4)));
        for bad in ["4/4", "1", "a/2", "0/0"] {
            assert!(parse_worker(bad).is_err(), "{bad}");
        }
    }
}
