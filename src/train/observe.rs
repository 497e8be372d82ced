//! Run observers: the training loop reports start, each step (with the validation loss on eval
//! steps) and end to them. The record writer, the progress bar and the divergence guard are
//! observers; a guard may stop the run by returning `Verdict::Diverged`.

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{Error, Result};
use crate::records::{MetricsRow, MetricsWriter, RunRecord, RunResult, RunStatus};

/// One optimiser step as observers see it.
pub type StepRecord = MetricsRow;

/// What an observer says after a step.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Continue,
    /// Stop the run and record it as diverged, for this reason.
    Diverged(String),
    /// Stop at once and leave the records alone (another worker took the run over).
    Abandon(String),
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct RunEnd {
    pub status: RunStatus,
    pub reason: Option<String>,
    pub result: Option<RunResult>,
    /// Model FLOPs (matmul_attn) of the steps this call trained: the whole run's from scratch,
    /// only those after the checkpoint when it resumed (what a sweep's FLOP/s divides by its
    /// own wall time).
    pub flops_trained_here: f64,
}

pub trait RunObserver {
    /// Called once before the first step with the run's record (status `running`) and, when
    /// the run starts from a checkpoint, the metrics rows of the steps before it.
    fn on_start(&mut self, _record: &RunRecord, _history: &[StepRecord]) -> Result<()> {
        Ok(())
    }
    fn on_step(&mut self, _step: &StepRecord) -> Result<Verdict> {
        Ok(Verdict::Continue)
    }
    fn on_end(&mut self, _end: &RunEnd) -> Result<()> {
        Ok(())
    }
}

/// Writes `runs/<id>/run.json` (at start and end) and metrics.csv (a row per step).
pub struct RecordWriter {
    run_dir: PathBuf,
    record: Option<RunRecord>,
    metrics: Option<MetricsWriter>,
    config_hash: Option<String>,
}

impl RecordWriter {
    pub fn new(run_dir: &Path) -> Self {
        RecordWriter { run_dir: run_dir.to_path_buf(), record: None, metrics: None, config_hash: None }
    }

    /// Writes `hash` (the config the run belongs to) into run.json.
    pub fn with_config_hash(mut self, hash: &str) -> Self {
        self.config_hash = Some(hash.to_string());
        self
    }

    fn run_json(&self) -> PathBuf {
        self.run_dir.join("run.json")
    }
}

impl RunObserver for RecordWriter {
    fn on_start(&mut self, record: &RunRecord, history: &[StepRecord]) -> Result<()> {
        std::fs::create_dir_all(&self.run_dir).map_err(|e| Error::io(&self.run_dir, e))?;
        let mut record = record.clone();
        record.config_hash.clone_from(&self.config_hash);
        record.write(&self.run_json())?;
        self.metrics = Some(MetricsWriter::create(&self.run_dir.join("metrics.csv"), history)?);
        self.record = Some(record);
        Ok(())
    }

    fn on_step(&mut self, step: &StepRecord) -> Result<Verdict> {
        if let Some(m) = self.metrics.as_mut() {
            m.append(step)?;
        }
        Ok(Verdict::Continue)
    }

    fn on_end(&mut self, end: &RunEnd) -> Result<()> {
        let path = self.run_json();
        let record = self.record.as_mut().ok_or_else(|| Error::record(&path, "run ended before it started"))?;
        record.status = end.status;
        record.reason = end.reason.clone();
        record.result = end.result.clone();
        record.finished_at_unix = Some(crate::records::unix_now());
        record.write(&path)
    }
}

/// Ends a run whose loss is NaN or infinite, or whose smoothed training loss rises above
/// `spike_factor` × its lowest value so far.
pub struct DivergenceGuard {
    spike_factor: f64,
    smoothed: Option<f64>,
    lowest: f64,
}

impl DivergenceGuard {
    /// Weight of the newest loss in the exponential moving average.
    const SMOOTHING: f64 = 0.1;

    pub fn new(spike_factor: f64) -> Self {
        DivergenceGuard { spike_factor, smoothed: None, lowest: f64::INFINITY }
    }
}

impl RunObserver for DivergenceGuard {
    /// Replays the steps before a checkpoint, so a resumed run is judged exactly as an
    /// uninterrupted one.
    fn on_start(&mut self, _record: &RunRecord, history: &[StepRecord]) -> Result<()> {
        for step in history {
            self.on_step(step)?;
        }
        Ok(())
    }

    fn on_step(&mut self, step: &StepRecord) -> Result<Verdict> {
        let loss = step.train_loss;
        if !loss.is_finite() {
            return Ok(Verdict::Diverged(format!("training loss is {loss} at step {}", step.step)));
        }
        if let Some(val) = step.val_loss.filter(|v| !v.is_finite()) {
            return Ok(Verdict::Diverged(format!(
                "validation loss is {val} at step {} (training loss {loss})",
                step.step
            )));
        }
        let s = match self.smoothed {
            None => loss,
            Some(prev) => prev + Self::SMOOTHING * (loss - prev),
        };
        self.smoothed = Some(s);
        self.lowest = self.lowest.min(s);
        if s > self.spike_factor * self.lowest {
            return Ok(Verdict::Diverged(format!(
                "smoothed training loss {s:.4} at step {} exceeds {} x its lowest value {:.4}",
                step.step, self.spike_factor, self.lowest
            )));
        }
        Ok(Verdict::Continue)
    }
}

/// An indicatif bar over the run's tokens: loss, validation loss, tokens/s and ETA.
pub struct ProgressObserver {
    bar: ProgressBar,
    last_val: Option<f64>,
}

impl ProgressObserver {
    pub fn new(label: &str, total_tokens: u64, hidden: bool) -> Self {
        let bar = if hidden { ProgressBar::hidden() } else { ProgressBar::new(total_tokens) };
        bar.set_prefix(label.to_string());
        Self::with_bar(bar)
    }

    /// Uses a bar made elsewhere (a sweep's, under its overall bar); its length is the run's tokens.
    pub fn with_bar(bar: ProgressBar) -> Self {
        let style =
            ProgressStyle::with_template("{prefix:>16} [{bar:30}] {human_pos}/{human_len} tok  {msg}  eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        bar.set_style(style);
        ProgressObserver { bar, last_val: None }
    }
}

impl RunObserver for ProgressObserver {
    fn on_start(&mut self, _record: &RunRecord, history: &[StepRecord]) -> Result<()> {
        if let Some(last) = history.last() {
            self.bar.set_position(last.tokens as u64);
            self.bar.reset_eta();
        }
        Ok(())
    }

    fn on_step(&mut self, step: &StepRecord) -> Result<Verdict> {
        if step.val_loss.is_some() {
            self.last_val = step.val_loss;
        }
        let val = self.last_val.map(|v| format!(" val {v:.4}")).unwrap_or_default();
        self.bar.set_position(step.tokens as u64);
        self.bar.set_message(format!("loss {:.4}{val}  {:.0} tok/s", step.train_loss, step.tokens_per_s));
        Ok(Verdict::Continue)
    }

    fn on_end(&mut self, _end: &RunEnd) -> Result<()> {
        self.bar.finish_and_clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(step: u64, train_loss: f64) -> StepRecord {
        StepRecord {
            step,
            tokens: 0.0,
            flops: 0.0,
            lr: 0.0,
            train_loss,
            val_loss: None,
            grad_norm: 0.0,
            elapsed_s: 0.0,
            tokens_per_s: 0.0,
        }
    }

    #[test]
    fn guard_stops_on_nan_and_on_sustained_spike_only() {
        let mut g = DivergenceGuard::new(1.5);
        for (i, l) in [5.0, 4.0, 3.0, 2.5, 2.6, 2.4].into_iter().enumerate() {
            assert_eq!(g.on_step(&step(i as u64, l)).unwrap(), Verdict::Continue);
        }
        // One noisy step does not trip it; a sustained rise does.
        assert_eq!(g.on_step(&step(6, 4.5)).unwrap(), Verdict::Continue);
        let tripped = (7..60).any(|i| g.on_step(&step(i, 9.0)).unwrap() != Verdict::Continue);
        assert!(tripped);
        let mut g = DivergenceGuard::new(1.5);
        assert!(
            matches!(g.on_step(&step(0, f64::NAN)).unwrap(), Verdict::Diverged(r) if r == "training loss is NaN at step 0")
        );
        let mut g = DivergenceGuard::new(1.5);
        let bad_val = StepRecord { val_loss: Some(f64::NAN), ..step(1, 5.54) };
        let verdict = g.on_step(&bad_val).unwrap();
        assert_eq!(verdict, Verdict::Diverged("validation loss is NaN at step 1 (training loss 5.54)".into()));
    }
}
