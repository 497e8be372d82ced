//! `sweeplaw status DIR`: where a sweep stands, read from its records while workers train.
//!
//! One row per planned run: its state (done, diverged, failed, running with the claiming worker
//! and the age of its heartbeat, stale when that heartbeat is older than `stale_after`, pending),
//! progress (tokens of the newest metrics.csv row against the run's budget), the last validation
//! loss, and the throughput of the newest row; then the sweep's total progress and an ETA from
//! the throughput of the runs training now. Without plan.json (deleted, or a `sweeplaw train`
//! folder) the runs are those with a folder under runs/, as `summary` reads them, and it says
//! that runs not started yet cannot be known. It only reads plan.json, run.json, metrics.csv and
//! claim.json (never locks or writes anything), so it never blocks a worker; a file caught
//! half-written is read as what it held before (records are replaced by rename, metrics rows
//! appended, and a cut-short last row is skipped).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::records::{parse_metrics, RunRecord, RunStatus};
use crate::sweep::claim::{inspect_claim, ClaimState};

/// The state of one run as `status` reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunState {
    pub run_id: String,
    /// done, diverged, failed, running, stale or pending.
    pub state: String,
    /// The worker holding the claim (running, stale).
    pub worker: Option<String>,
    /// Seconds since the claim's last heartbeat (running, stale).
    pub heartbeat_age_s: Option<f64>,
    /// Tokens trained (newest metrics row; the result for finished runs).
    pub tokens: u64,
    /// The run's token budget.
    pub budget_tokens: u64,
    pub val_loss: Option<f64>,
    /// Throughput of the newest metrics row (tokens/s).
    pub tokens_per_s: Option<f64>,
    /// Why it diverged or failed.
    pub reason: Option<String>,
}

/// The whole sweep.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepState {
    pub sweep_dir: PathBuf,
    pub runs: Vec<RunState>,
    pub tokens: u64,
    pub budget_tokens: u64,
    /// Number of runs in each state, in the order done, running, stale, pending, diverged, failed.
    pub counts: Vec<(String, usize)>,
    /// Sum of the running runs' newest throughputs (tokens/s).
    pub tokens_per_s: Option<f64>,
    /// Tokens still to train (runs not finished) over `tokens_per_s`: an estimate that assumes
    /// the running workers keep their measured pace; None when no run is training.
    pub eta_s: Option<f64>,
    /// Records that could not be read (each named), shown as warnings.
    pub warnings: Vec<String>,
}

impl SweepState {
    /// True once no run is running, stale or pending.
    pub fn finished(&self) -> bool {
        self.runs.iter().all(|r| matches!(r.state.as_str(), "done" | "diverged" | "failed"))
    }
}

/// Reads the state of the sweep in `dir` (a sweep's results directory). The runs are those of
/// its plan.json; without one (deleted, or the folder of `sweeplaw train`), those with a folder
/// under runs/, as `summary` finds them, with a warning that runs not started are not counted.
pub fn read_state(dir: &Path, stale_after: Duration) -> Result<SweepState> {
    let runs_dir = dir.join("runs");
    if std::fs::metadata(&runs_dir).is_ok_and(|meta| !meta.is_dir()) {
        return Err(Error::record(&runs_dir, "exists and is not a directory"));
    }
    let plan_path = dir.join("plan.json");
    let mut warnings = Vec::new();
    // Each run id with its token budget (None: to be read from its run.json).
    let listed: Vec<(String, Option<u64>)> = if plan_path.exists() {
        let plan = crate::sweep::store::read_plan(&plan_path)?;
        plan.runs.iter().map(|spec| (spec.run_id.clone(), Some(spec.tokens))).collect()
    } else if runs_dir.is_dir() {
        warnings.push(format!(
            "{}: no plan.json, so the runs listed are those with a folder under runs/; runs not started yet \
             are not known, and the totals and ETA leave them out",
            dir.display()
        ));
        let ids = crate::sweep::store::run_folders(&runs_dir)?
            .into_iter()
            .filter_map(|dir| dir.file_name().map(|name| name.to_string_lossy().into_owned()));
        ids.map(|id| (id, None)).collect()
    } else {
        return Err(Error::record(
            dir,
            "not a sweep directory: no plan.json and no runs/ folder (give results/<sweep name>)",
        ));
    };
    let mut runs = Vec::with_capacity(listed.len());
    for (run_id, budget) in &listed {
        let run_dir = runs_dir.join(run_id);
        if std::fs::metadata(&run_dir).is_ok_and(|meta| !meta.is_dir()) {
            warnings.push(format!("{}: exists and is not a directory", run_dir.display()));
        }
        runs.push(run_state(&run_dir, run_id, *budget, stale_after, &mut warnings));
    }
    let tokens = runs.iter().map(|r| r.tokens.min(r.budget_tokens)).sum();
    // Finished runs count as whole (a diverged run will not train its remaining tokens).
    let budget_tokens =
        runs.iter().map(|r| if is_final(r) { r.tokens.min(r.budget_tokens) } else { r.budget_tokens }).sum();
    let running: Vec<&RunState> = runs.iter().filter(|r| r.state == "running").collect();
    let tokens_per_s = if running.is_empty() {
        None
    } else {
        Some(running.iter().filter_map(|r| r.tokens_per_s).sum::<f64>()).filter(|&t| t > 0.0)
    };
    let remaining: u64 = runs.iter().filter(|r| !is_final(r)).map(|r| r.budget_tokens.saturating_sub(r.tokens)).sum();
    let eta_s = tokens_per_s.map(|rate| remaining as f64 / rate);
    let counts = ["done", "running", "stale", "pending", "diverged", "failed"]
        .iter()
        .map(|s| (s.to_string(), runs.iter().filter(|r| r.state == *s).count()))
        .collect();
    Ok(SweepState { sweep_dir: dir.to_path_buf(), runs, tokens, budget_tokens, counts, tokens_per_s, eta_s, warnings })
}

fn is_final(run: &RunState) -> bool {
    matches!(run.state.as_str(), "done" | "diverged" | "failed")
}

/// One run's state; `budget` is its planned tokens, or None to take them from its run.json (0
/// when that cannot be read either).
fn run_state(
    run_dir: &Path,
    run_id: &str,
    budget: Option<u64>,
    stale_after: Duration,
    warnings: &mut Vec<String>,
) -> RunState {
    let mut state = RunState {
        run_id: run_id.to_string(),
        state: "pending".into(),
        worker: None,
        heartbeat_age_s: None,
        tokens: 0,
        budget_tokens: budget.unwrap_or(0),
        val_loss: None,
        tokens_per_s: None,
        reason: None,
    };
    let record_path = run_dir.join("run.json");
    let record = match std::fs::read(&record_path) {
        Ok(bytes) => match RunRecord::parse(&record_path, &bytes) {
            Ok(record) => Some(record),
            Err(e) => {
                warnings.push(e.to_string());
                None
            }
        },
        Err(_) => None,
    };
    let metrics_path = run_dir.join("metrics.csv");
    if let Ok(bytes) = std::fs::read(&metrics_path) {
        match parse_metrics(&metrics_path, &bytes) {
            Ok((rows, _)) => {
                if let Some(last) = rows.last() {
                    state.tokens = last.tokens as u64;
                    state.tokens_per_s = Some(last.tokens_per_s);
                }
                state.val_loss = rows.iter().rev().find_map(|r| r.val_loss);
            }
            Err(e) => warnings.push(e.to_string()),
        }
    }
    if let Some(record) = &record {
        if budget.is_none() {
            state.budget_tokens = record.spec.tokens;
        }
        state.reason.clone_from(&record.reason);
        if let Some(result) = &record.result {
            if matches!(record.status, RunStatus::Done | RunStatus::Diverged | RunStatus::Failed) {
                state.tokens = result.tokens;
                state.val_loss = result.val_loss.or(state.val_loss);
                state.tokens_per_s = Some(result.tokens_per_s);
            }
        }
        match record.status {
            RunStatus::Done | RunStatus::Diverged | RunStatus::Failed => {
                state.state = record.status.as_str().into();
                return state;
            }
            RunStatus::Running | RunStatus::Pending => {}
        }
    }
    match inspect_claim(run_dir, stale_after) {
        Ok(ClaimState::Live { worker, age }) => {
            state.state = "running".into();
            state.worker = Some(worker);
            state.heartbeat_age_s = Some(age.as_secs_f64());
        }
        Ok(ClaimState::Stale { worker, age }) => {
            state.state = "stale".into();
            state.worker = Some(worker);
            state.heartbeat_age_s = Some(age.as_secs_f64());
        }
        Ok(ClaimState::Free) if record.as_ref().is_some_and(|r| r.status == RunStatus::Running) => {
            // Started, and no worker holds it: interrupted; the next sweep resumes it.
            state.state = "stale".into();
        }
        Ok(ClaimState::Free) => {}
        // A file in the run folder's place is reported once, by `read_state`.
        Err(_) if std::fs::metadata(run_dir).is_ok_and(|meta| !meta.is_dir()) => {}
        Err(e) => warnings.push(e.to_string()),
    }
    state
}

fn human_tokens(tokens: u64) -> String {
    let t = tokens as f64;
    if t >= 1e9 {
        format!("{:.2}B", t / 1e9)
    } else if t >= 1e6 {
        format!("{:.2}M", t / 1e6)
    } else if t >= 1e3 {
        format!("{:.1}k", t / 1e3)
    } else {
        format!("{tokens}")
    }
}

/// The table for people.
pub fn render(state: &SweepState) -> String {
    let mut lines = vec![vec![
        "run".to_string(),
        "state".into(),
        "worker (heartbeat)".into(),
        "tokens".into(),
        "progress".into(),
        "val_loss".into(),
        "tokens/s".into(),
    ]];
    for run in &state.runs {
        let worker = match (&run.worker, run.heartbeat_age_s) {
            (Some(w), Some(age)) => format!("{w} ({} ago)", crate::human::duration(age)),
            (Some(w), None) => w.clone(),
            _ => "-".into(),
        };
        let share = if run.budget_tokens > 0 { 100.0 * run.tokens as f64 / run.budget_tokens as f64 } else { 0.0 };
        lines.push(vec![
            run.run_id.clone(),
            run.state.clone(),
            worker,
            format!("{}/{}", human_tokens(run.tokens), human_tokens(run.budget_tokens)),
            format!("{share:.0}%"),
            run.val_loss.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into()),
            run.tokens_per_s.map(|t| format!("{t:.0}")).unwrap_or_else(|| "-".into()),
        ]);
    }
    let widths: Vec<usize> =
        (0..lines[0].len()).map(|c| lines.iter().map(|l| l[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line.iter().zip(&widths).map(|(cell, &w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    let counts: Vec<String> = state.counts.iter().filter(|(_, n)| *n > 0).map(|(s, n)| format!("{n} {s}")).collect();
    let share = if state.budget_tokens > 0 { 100.0 * state.tokens as f64 / state.budget_tokens as f64 } else { 100.0 };
    out.push_str(&format!(
        "\n{} runs: {}. Tokens {} of {} ({share:.1}%).",
        state.runs.len(),
        counts.join(", "),
        human_tokens(state.tokens),
        human_tokens(state.budget_tokens)
    ));
    match (state.tokens_per_s, state.eta_s) {
        (Some(rate), Some(eta)) => out.push_str(&format!(
            " ETA {} at the running workers' measured {rate:.0} tokens/s (assumes they keep that pace).\n",
            crate::human::duration(eta)
        )),
        _ if state.finished() => out.push_str(" Finished.\n"),
        _ => out.push_str(" No ETA: no run is training now.\n"),
    }
    for warning in &state.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human_tokens(40_960), "41.0k");
        assert_eq!(human_tokens(2_500_000), "2.50M");
    }
}
