//! The training loop for one run, in a fixed order per step: learning rate, batch, forward,
//! backward, clip + AdamW, evaluation when due, observers, checkpoint when due. It trains exactly
//! the spec's steps, evaluates the fixed validation set every `eval_every_steps` steps and at the
//! last step, and can start from a checkpoint (its own, to resume; a trunk's, for a WSD branch).
//! A WSD branch with no cooldown step starts at its last step: it is evaluated right after the
//! restore, so its final validation loss too is measured at its own last step.
//! Batches are addressed by step index and nothing else is random, so a resumed run continues
//! bit-exactly on the CPU.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Tensor};

use crate::data::{Batch, TokenSource, ValidationSet};
use crate::device::ComputeDevice;
use crate::error::{Error, Result};
use crate::model::{FlopsPerToken, Model};
use crate::plan::{RunRole, RunSpec};
use crate::records::{read_metrics, Counts, DataInfo, RunRecord, RunResult, RunStatus, Versions};
use crate::train::checkpoint::{self, CheckpointState};
use crate::train::observe::{RunEnd, RunObserver, StepRecord, Verdict};
use crate::train::optim::AdamW;
use crate::train::schedule::Schedule;

/// A checkpoint a run may start from, with the metrics.csv holding the steps before it.
#[derive(Clone, Debug)]
pub struct StartPoint {
    pub checkpoint: PathBuf,
    pub metrics: PathBuf,
}

/// Everything a run needs besides its spec.
pub struct RunContext<'a> {
    pub source: &'a dyn TokenSource,
    pub device: &'a ComputeDevice,
    pub observers: Vec<&'a mut dyn RunObserver>,
    /// Where this run's checkpoints go (`runs/<id>/checkpoint`); None = no checkpoints.
    pub checkpoint_dir: Option<PathBuf>,
    /// Checkpoints to try, best first; the first that loads is used, a corrupt one is skipped
    /// with a warning. Empty = from scratch.
    pub start_points: Vec<StartPoint>,
}

/// The record a run starts with: spec, counts and data facts, status `running`, on the device
/// named `device` ("cpu", "cuda:0", ...).
pub fn start_record(spec: &RunSpec, data: DataInfo, device: &str) -> RunRecord {
    let s = &spec.shape;
    RunRecord {
        format_version: crate::records::FORMAT_VERSION,
        run_id: spec.run_id.clone(),
        status: RunStatus::Running,
        reason: None,
        spec: spec.clone(),
        counts: Counts {
            params_nonembedding: s.params_nonembedding(),
            params_total: s.params_total(),
            params_matmul: s.params_matmul(),
            flops_per_token: s.flops_per_token(),
        },
        data,
        result: None,
        device: device.to_string(),
        ops: String::new(),
        versions: Versions::default(),
        started_at_unix: crate::records::unix_now(),
        finished_at_unix: None,
        config_hash: None,
        reused_from: None,
    }
}

/// The learning-rate schedule of a run, trunks and branches included.
pub fn schedule_for(spec: &RunSpec) -> Schedule {
    match &spec.role {
        RunRole::Independent => Schedule::new(spec.schedule.clone(), spec.lr, spec.steps),
        RunRole::Trunk { warmup_steps, .. } => {
            Schedule::wsd_explicit(spec.schedule.clone(), spec.lr, *warmup_steps, spec.steps, spec.steps)
        }
        RunRole::Branch { from_step, warmup_steps, .. } => {
            Schedule::wsd_explicit(spec.schedule.clone(), spec.lr, *warmup_steps, *from_step, spec.steps)
        }
    }
}

/// Model, optimiser and data of a run in progress.
struct Trainer<'a> {
    spec: &'a RunSpec,
    source: &'a dyn TokenSource,
    device: &'a ComputeDevice,
    model: Model,
    optimizer: AdamW,
    schedule: Schedule,
    validation: ValidationSet,
    flops_per_token: FlopsPerToken,
}

impl Trainer<'_> {
    /// One optimiser step on training batch `step` (0-based), evaluating when due.
    fn step(&mut self, step: u64, elapsed_before: f64, started: Instant) -> Result<StepRecord> {
        let spec = self.spec;
        let step_started = Instant::now();
        let lr = self.schedule.lr(step);
        let batch = self.source.train_batch(step, spec.batch_size, spec.shape.seq_len)?;
        let (ids, targets) = batch_tensors(&batch, self.device)?;
        let loss = self.model.loss(&ids, &targets)?;
        let train_loss = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        let grad_norm = if train_loss.is_finite() {
            let grads = loss.backward()?;
            self.optimizer.step(self.model.params(), &grads, lr)?
        } else {
            f64::NAN
        };
        let tokens = (step + 1) * (spec.batch_size * spec.shape.seq_len) as u64;
        let eval_due = (step + 1).is_multiple_of(spec.eval_every_steps) || step + 1 == spec.steps;
        let val_loss = if eval_due && train_loss.is_finite() {
            Some(evaluate(&self.model, &self.validation, spec.batch_size, self.device)?)
        } else {
            None
        };
        Ok(StepRecord {
            step: step + 1,
            tokens: tokens as f64,
            flops: self.flops_per_token.six_n * tokens as f64,
            lr,
            train_loss,
            val_loss,
            grad_norm,
            elapsed_s: elapsed_before + started.elapsed().as_secs_f64(),
            tokens_per_s: (batch.batch_size * batch.seq_len) as f64 / step_started.elapsed().as_secs_f64(),
        })
    }

    /// Loads the first start point that works; returns its state and the metrics rows before it.
    fn restore(&mut self, points: &[StartPoint]) -> Option<(CheckpointState, Vec<StepRecord>)> {
        for point in points {
            match checkpoint::load(&point.checkpoint, &self.model, &mut self.optimizer, &self.device.device) {
                Ok(state) if state.step <= self.spec.steps => {
                    let (rows, _) = read_metrics(&point.metrics).unwrap_or_default();
                    let history = rows.into_iter().filter(|r| r.step <= state.step).collect();
                    return Some((state, history));
                }
                Ok(state) => warn(&format!(
                    "{}: checkpoint at step {} is past the run's {} steps; not used",
                    point.checkpoint.display(),
                    state.step,
                    self.spec.steps
                )),
                Err(e) => warn(&format!("{e}; trying the previous checkpoint")),
            }
        }
        if !points.is_empty() && !matches!(self.spec.role, RunRole::Branch { .. }) {
            warn(&format!("run {}: no checkpoint could be used; it starts again from step 0", self.spec.run_id));
        }
        None
    }

    fn save(&self, dir: &Path, step: u64, elapsed_s: f64) -> Result<()> {
        let tokens = step * (self.spec.batch_size * self.spec.shape.seq_len) as u64;
        let state = CheckpointState::at(step, tokens, elapsed_s);
        checkpoint::save(dir, &self.model, &self.optimizer, &state)
    }
}

fn warn(message: &str) {
    eprintln!("warning: {message}");
}

/// Trains one run (from scratch or from a start point), reporting to the observers. Returns how
/// it ended; an observer's `Verdict::Abandon` returns an error and leaves the records as they are.
pub fn train(spec: &RunSpec, ctx: RunContext<'_>) -> Result<RunEnd> {
    let RunContext { source, device, mut observers, checkpoint_dir, start_points } = ctx;
    let limited = run_source(spec, source)?;
    let source: &dyn TokenSource = limited.as_deref().unwrap_or(source);
    if source.vocab_size() > spec.shape.vocab_size {
        return Err(Error::Run {
            run: spec.run_id.clone(),
            message: format!(
                "the data has {} tokens but the model's vocabulary is {}",
                source.vocab_size(),
                spec.shape.vocab_size
            ),
        });
    }
    crate::ops::check::verify_cuda_kernels_once(&device.device);
    let model = Model::new(&spec.shape, spec.seed, DType::F32, device.matmul_dtype, &device.device)?;
    let optimizer = AdamW::new(model.params(), spec.optimizer.clone())?;
    let validation = source.validation_set(spec.eval_sequences, spec.shape.seq_len)?;
    let data = describe_data(source, &validation);
    let mut record = start_record(spec, data, &device.name);
    record.ops = crate::ops::ops_in_use(&device.device);
    let flops_per_token = record.counts.flops_per_token;
    let schedule = schedule_for(spec);
    let mut trainer = Trainer { spec, source, device, model, optimizer, schedule, validation, flops_per_token };
    let (first_step, elapsed_before, mut history) = match trainer.restore(&start_points) {
        Some((state, history)) => (state.step, state.elapsed_s, history),
        None if matches!(spec.role, RunRole::Branch { .. }) => {
            return Err(Error::Run {
                run: spec.run_id.clone(),
                message: "no usable trunk checkpoint to branch from".into(),
            })
        }
        None => (0, 0.0, Vec::new()),
    };
    // A run that starts at its last step (a WSD branch with no cooldown step) trains nothing: its
    // last step's row is evaluated here, on the restored model, and reported as a step, so that
    // its final val_loss is measured at its own last step as every run's is.
    let restored_last = match history.last() {
        Some(row) if first_step > 0 && first_step == spec.steps && row.step == first_step => history.pop(),
        _ => None,
    };
    for o in observers.iter_mut() {
        o.on_start(&record, &history)?;
    }
    let started = Instant::now();
    let mut last = history.last().cloned();
    let mut last_val = history.iter().rev().find_map(|r| r.val_loss);
    let mut stop: Option<String> = None;
    if let Some(mut row) = restored_last {
        row.val_loss = if row.train_loss.is_finite() {
            Some(evaluate(&trainer.model, &trainer.validation, spec.batch_size, device)?)
        } else {
            None
        };
        last_val = row.val_loss.or(last_val);
        report_step(spec, &mut observers, &row, &mut stop)?;
        last = Some(row);
    }
    for step in first_step..spec.steps {
        let row = trainer.step(step, elapsed_before, started)?;
        last_val = row.val_loss.or(last_val);
        report_step(spec, &mut observers, &row, &mut stop)?;
        let elapsed = row.elapsed_s;
        last = Some(row);
        if stop.is_some() {
            break;
        }
        let saved = match &checkpoint_dir {
            Some(dir) => save_when_due(&trainer, dir, step + 1, elapsed)?,
            None => None,
        };
        if let Some(signal) = crate::train::stop::requested().filter(|_| step + 1 < spec.steps) {
            return Err(interrupted(&trainer, checkpoint_dir.as_deref(), saved, step + 1, elapsed, signal));
        }
    }
    let wall_s = elapsed_before + started.elapsed().as_secs_f64();
    let tokens_before = first_step * (spec.batch_size * spec.shape.seq_len) as u64;
    let mut end = finish(flops_per_token, last, last_val, stop, wall_s, tokens_before);
    if let (Some(result), Some(unique)) = (end.result.as_mut(), source.unique_tokens()) {
        result.epochs = Some(crate::counting::epochs(result.tokens, unique));
    }
    for o in observers.iter_mut() {
        o.on_end(&end)?;
    }
    Ok(end)
}

/// Gives `row` to every observer; the first divergence verdict goes into `stop` (the run ends
/// after this step), and an observer that abandons the run ends it at once, records untouched.
fn report_step(
    spec: &RunSpec,
    observers: &mut [&mut dyn RunObserver],
    row: &StepRecord,
    stop: &mut Option<String>,
) -> Result<()> {
    for o in observers.iter_mut() {
        match o.on_step(row)? {
            Verdict::Continue => {}
            Verdict::Diverged(reason) => {
                stop.get_or_insert(reason);
            }
            Verdict::Abandon(reason) => return Err(Error::ClaimLost { run: spec.run_id.clone(), reason }),
        }
    }
    Ok(())
}

/// What a run's record says about its data: the source it trains on and its validation set.
fn describe_data(source: &dyn TokenSource, validation: &ValidationSet) -> DataInfo {
    DataInfo {
        source: source.describe(),
        vocab_size: source.vocab_size(),
        unique_tokens: source.unique_tokens(),
        true_entropy: validation.true_entropy,
        unigram_entropy: Some(validation.unigram_entropy),
        eval_tokens: (validation.batch.batch_size * validation.batch.seq_len) as u64,
        data_seed: source.data_seed(),
        validation_sample: validation.sample.clone(),
        token_files_sha256: source.token_files(),
    }
}

/// The data record `spec` would get if it trained on `source` now, without training it: what
/// `sweep --reuse` compares a finished run's record with.
pub fn data_info(spec: &RunSpec, source: &dyn TokenSource) -> Result<DataInfo> {
    let limited = run_source(spec, source)?;
    let source: &dyn TokenSource = limited.as_deref().unwrap_or(source);
    let validation = source.validation_set(spec.eval_sequences, spec.shape.seq_len)?;
    Ok(describe_data(source, &validation))
}

/// The source a run trains on: for data with a known number of unique tokens (text), the
/// view cut into rows of the run's seq_len and limited to the run's `unique_tokens`, so that the
/// record's unique tokens and epochs are exact; None = the source as it is.
fn run_source<'a>(spec: &RunSpec, source: &'a dyn TokenSource) -> Result<Option<Box<dyn TokenSource + 'a>>> {
    let limit = match (spec.unique_tokens, source.unique_tokens()) {
        (Some(u), _) | (None, Some(u)) => u,
        (None, None) => return Ok(None),
    };
    Ok(Some(crate::data::limit_unique(source, limit, spec.shape.seq_len, spec.seed)?))
}

/// Refuses runs the data cannot serve: each run's training rows (at least one sequence of its
/// seq_len within its `unique_tokens`) and each (eval_sequences, seq_len) of `runs` checked
/// against the validation split of a finite source (text, token files, hub data), so that
/// `sweep` and `train` say so before writing anything instead of recording the run `failed`
/// (and the config, once fixed, being refused as another's). The message names the data's size
/// and what to change. Synthetic data generates any validation set.
pub fn check_data(runs: &[RunSpec], source: &dyn TokenSource) -> std::result::Result<(), String> {
    let mut rows_checked: Vec<(usize, Option<u64>)> = Vec::new();
    for spec in runs {
        let key = (spec.shape.seq_len, spec.unique_tokens);
        if !rows_checked.contains(&key) {
            rows_checked.push(key);
            run_source(spec, source).map_err(|e| e.to_string())?;
        }
    }
    if source.unique_tokens().is_none() {
        return Ok(());
    }
    let mut checked: Vec<(usize, usize)> = Vec::new();
    for spec in runs {
        let key = (spec.eval_sequences, spec.shape.seq_len);
        if checked.contains(&key) {
            continue;
        }
        checked.push(key);
        source.validation_set(key.0, key.1).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Saves a rotating checkpoint every `checkpoint_every_steps` (keeping the newest two) and, for a
/// trunk, a permanent one at each branch point. Returns the rotating checkpoint it wrote.
fn save_when_due(trainer: &Trainer<'_>, dir: &Path, done: u64, elapsed_s: f64) -> Result<Option<PathBuf>> {
    let spec = trainer.spec;
    if let RunRole::Trunk { branch_points, .. } = &spec.role {
        if branch_points.contains(&done) {
            trainer.save(&dir.join(branch_checkpoint_name(done)), done, elapsed_s)?;
        }
    }
    let every = spec.checkpoint_every_steps;
    if every > 0 && done.is_multiple_of(every) && done < spec.steps {
        let path = dir.join(rotating_checkpoint_name(done));
        trainer.save(&path, done, elapsed_s)?;
        prune_checkpoints(dir, 2)?;
        return Ok(Some(path));
    }
    Ok(None)
}

/// Directory name of a rotating checkpoint after `done` steps.
fn rotating_checkpoint_name(done: u64) -> String {
    format!("step-{done:010}")
}

/// A stop asked for by a signal after step `done`: writes the checkpoint the run resumes from
/// (unless one was just written, or the run keeps none) and says where it is.
fn interrupted(
    trainer: &Trainer<'_>,
    dir: Option<&Path>,
    saved: Option<PathBuf>,
    done: u64,
    elapsed_s: f64,
    signal: i32,
) -> Error {
    let run = trainer.spec.run_id.clone();
    let checkpoint = match (dir, saved) {
        (_, Some(path)) => Ok(Some(path)),
        (Some(dir), None) if done < trainer.spec.steps => {
            let path = dir.join(rotating_checkpoint_name(done));
            trainer.save(&path, done, elapsed_s).and_then(|()| prune_checkpoints(dir, 2)).map(|()| Some(path))
        }
        _ => Ok(None),
    };
    match checkpoint {
        Ok(checkpoint) => Error::Interrupted { run, signal, step: done, checkpoint },
        Err(e) => Error::Run {
            run,
            message: format!("stopped by a signal after step {done}, but its checkpoint failed: {e}"),
        },
    }
}

/// Directory name of a trunk's checkpoint at a branch point.
pub fn branch_checkpoint_name(step: u64) -> String {
    format!("branch-{step:010}")
}

/// The rotating checkpoints in `dir`, newest first.
pub fn rotating_checkpoints(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("step-")))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.reverse();
    found
}

/// Removes all but the newest `keep` rotating checkpoints (whatever they are: a stray file named
/// like one goes too).
fn prune_checkpoints(dir: &Path, keep: usize) -> Result<()> {
    for old in rotating_checkpoints(dir).into_iter().skip(keep) {
        checkpoint::remove_any(&old)?;
    }
    Ok(())
}

fn finish(
    flops_per_token: FlopsPerToken,
    last: Option<StepRecord>,
    last_val: Option<f64>,
    stop: Option<String>,
    wall_s: f64,
    tokens_before: u64,
) -> RunEnd {
    let result = last.map(|r| RunResult {
        steps: r.step,
        // The runner's rows count whole tokens, below 2^53: the cast is exact.
        tokens: r.tokens as u64,
        flops_6n: flops_per_token.six_n * r.tokens,
        flops_matmul_attn: flops_per_token.matmul_attn * r.tokens,
        flops_chinchilla: flops_per_token.chinchilla * r.tokens,
        val_loss: last_val,
        train_loss: Some(r.train_loss),
        wall_s,
        tokens_per_s: r.tokens / wall_s.max(1e-9),
        epochs: None,
    });
    let status = if stop.is_some() { RunStatus::Diverged } else { RunStatus::Done };
    let tokens_here = result.as_ref().map_or(0.0, |r| r.tokens.saturating_sub(tokens_before) as f64);
    RunEnd { status, reason: stop, result, flops_trained_here: flops_per_token.matmul_attn * tokens_here }
}

/// (inputs, targets) as u32 tensors of shape (B, T) on the run's device.
pub fn batch_tensors(batch: &Batch, device: &ComputeDevice) -> Result<(Tensor, Tensor)> {
    let shape = (batch.batch_size, batch.seq_len);
    let ids = Tensor::from_slice(&batch.inputs, shape, &device.device)?;
    let targets = Tensor::from_slice(&batch.targets, shape, &device.device)?;
    Ok((ids, targets))
}

/// Mean validation loss (nats per token) over the whole fixed validation set, in chunks of
/// `chunk` sequences.
pub fn evaluate(model: &Model, validation: &ValidationSet, chunk: usize, device: &ComputeDevice) -> Result<f64> {
    let v = &validation.batch;
    let mut total = 0.0;
    let mut start = 0;
    while start < v.batch_size {
        let rows = chunk.min(v.batch_size - start);
        let range = start * v.seq_len..(start + rows) * v.seq_len;
        let part = Batch {
            inputs: v.inputs[range.clone()].to_vec(),
            targets: v.targets[range].to_vec(),
            batch_size: rows,
            seq_len: v.seq_len,
        };
        let (ids, targets) = batch_tensors(&part, device)?;
        let loss = model.loss(&ids, &targets)?.detach().to_dtype(DType::F64)?.to_scalar::<f64>()?;
        total += loss * rows as f64;
        start += rows;
    }
    Ok(total / v.batch_size as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context<'a>(
        source: &'a dyn TokenSource,
        device: &'a ComputeDevice,
        checkpoint_dir: &Path,
        start_points: Vec<StartPoint>,
    ) -> RunContext<'a> {
        RunContext {
            source,
            device,
            observers: Vec::new(),
            checkpoint_dir: Some(checkpoint_dir.to_path_buf()),
            start_points,
        }
    }

    #[test]
    fn a_resumed_run_counts_only_the_flops_of_the_steps_it_trained() {
        let dir = crate::data::text::tests::TempDir::new("resume-flops");
        let config_path = dir.0.join("sweep.toml");
        std::fs::write(
            &config_path,
            "name = \"f\"\ndevice = \"cpu\"\n[data]\nkind = \"synthetic\"\nvocab_size = 256\nn_quanta = 512\n\
             [model]\nseq_len = 16\nhead_dim = 8\n[grid]\nn_layers = [1]\nd_model = [16]\n[budget]\n\
             tokens = [1280]\n[train]\nbatch_size = 4\nlr = 1e-3\neval_tokens = 64\ncheckpoint_every_tokens = 256\n",
        )
        .unwrap();
        let (config, plan) = crate::sweep::load_plan(&config_path).unwrap();
        let spec = &plan.runs[0];
        assert_eq!((spec.steps, spec.checkpoint_every_steps), (20, 4));
        let source = config.data.build_source().unwrap();
        let device = crate::device::resolve("cpu", "auto").unwrap();
        let checkpoints = dir.0.join("checkpoint");
        let whole = train(spec, context(source.as_ref(), &device, &checkpoints, Vec::new())).unwrap();
        let whole_flops = whole.result.as_ref().unwrap().flops_matmul_attn;
        assert_eq!(whole.flops_trained_here, whole_flops, "from scratch: every step");
        // The newest rotating checkpoint is after step 16 of 20: resuming trains the last 4.
        let newest = rotating_checkpoints(&checkpoints)[0].clone();
        assert!(newest.ends_with("step-0000000016"), "{}", newest.display());
        let point = StartPoint { checkpoint: newest, metrics: dir.0.join("metrics.csv") };
        let resumed = train(spec, context(source.as_ref(), &device, &checkpoints, vec![point])).unwrap();
        assert_eq!(resumed.result.as_ref().unwrap().flops_matmul_attn, whole_flops, "the run's own total");
        let per_token = spec.shape.flops_per_token().matmul_attn;
        assert_eq!(resumed.flops_trained_here, per_token * (4 * 4 * 16) as f64);
        let _ = std::fs::remove_dir_all(&dir.0);
    }
}
