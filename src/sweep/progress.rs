//! The sweep's progress display: an overall bar (runs done, FLOPs done, ETA) above each run's own
//! bar, or one line per finished run when the output is not a terminal; and the observer that
//! abandons a run whose claim another worker took over.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::Result;
use crate::model::FlopConvention;
use crate::plan::RunSpec;
use crate::plan::{run_flops, Plan};
use crate::records::RunStatus;
use crate::sweep::claim::Claim;
use crate::sweep::store::SweepStore;
use crate::train::observe::{RunEnd, RunObserver, StepRecord, Verdict};

pub struct SweepProgress {
    multi: MultiProgress,
    overall: ProgressBar,
    hidden: bool,
}

impl SweepProgress {
    pub fn new(plan: &Plan, quiet: bool) -> Self {
        let hidden = quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr());
        let multi =
            if hidden { MultiProgress::with_draw_target(ProgressDrawTarget::hidden()) } else { MultiProgress::new() };
        // Positions are in GFLOPs (6n) so that the ETA follows compute, not run count.
        let total = (plan.total_flops(FlopConvention::SixN) / 1e9).ceil() as u64;
        let overall = multi.add(ProgressBar::new(total.max(1)));
        let style = ProgressStyle::with_template("{prefix:>16} [{bar:30}] {msg}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("## ");
        overall.set_style(style);
        overall.set_prefix(plan.sweep.clone());
        SweepProgress { multi, overall, hidden }
    }

    /// A bar for one run, under the overall one.
    pub fn run_bar(&self, run_id: &str, tokens: u64) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(tokens));
        bar.set_prefix(run_id.to_string());
        bar
    }

    /// Sets the overall bar from the records: runs finished and their compute.
    pub fn set_done(&self, plan: &Plan, store: &SweepStore) {
        let (finished, flops) = finished_work(plan, store);
        self.overall.set_position((flops / 1e9) as u64);
        self.overall.set_message(format!("runs {finished}/{}  {:.3e} FLOPs done", plan.runs.len(), flops));
    }

    /// An observer that advances the overall bar while a run trains.
    pub fn observer(&self, plan: &Plan, store: &SweepStore, spec: &RunSpec) -> OverallObserver {
        let (finished, flops) = finished_work(plan, store);
        OverallObserver {
            bar: self.overall.clone(),
            finished,
            total_runs: plan.runs.len(),
            flops_before: flops,
            per_token: spec.shape.flops_per_token_for(FlopConvention::SixN),
        }
    }

    /// Prints a line above the bars (or plainly when they are hidden).
    pub fn println(&self, line: &str) {
        if self.hidden {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }

    pub fn finish(&self) {
        self.overall.finish();
    }
}

fn finished_work(plan: &Plan, store: &SweepStore) -> (usize, f64) {
    let mut finished = 0;
    let mut flops = 0.0;
    for spec in &plan.runs {
        if let Some(record) = store.record(&spec.run_id) {
            if matches!(record.status, RunStatus::Done | RunStatus::Diverged) {
                finished += 1;
                flops += record.result.map(|r| r.flops_6n).unwrap_or_else(|| run_flops(spec, FlopConvention::SixN));
            }
        }
    }
    (finished, flops)
}

/// Advances the overall bar by each step's compute.
pub struct OverallObserver {
    bar: ProgressBar,
    finished: usize,
    total_runs: usize,
    flops_before: f64,
    per_token: f64,
}

impl RunObserver for OverallObserver {
    fn on_step(&mut self, step: &StepRecord) -> Result<Verdict> {
        let flops = self.flops_before + self.per_token * step.tokens;
        self.bar.set_position((flops / 1e9) as u64);
        self.bar.set_message(format!("runs {}/{}  {:.3e} FLOPs done", self.finished, self.total_runs, flops));
        Ok(Verdict::Continue)
    }
}

/// Stops a run whose claim is no longer ours (we were frozen past the timeout and another
/// worker took it over): training on would race the new owner.
pub struct ClaimWatch<'a> {
    pub claim: &'a Claim,
}

impl RunObserver for ClaimWatch<'_> {
    fn on_step(&mut self, step: &StepRecord) -> Result<Verdict> {
        if self.claim.still_ours() {
            Ok(Verdict::Continue)
        } else {
            Ok(Verdict::Abandon(format!("claim lost at step {}: another worker took the run over", step.step)))
        }
    }
}

/// One line for a finished run.
pub fn finished_line(spec: &RunSpec, end: &RunEnd) -> String {
    let result = end.result.as_ref();
    let val = result.and_then(|r| r.val_loss).map(|v| format!("val_loss {v:.4}")).unwrap_or_default();
    let wall = result.map(|r| format!("{:.1}s", r.wall_s)).unwrap_or_default();
    let reason = end.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
    format!("{} {}: {val} {wall}{reason}", end.status.as_str(), spec.run_id)
}
