//! The command line's definition: every subcommand and flag, with the help text `sweeplaw help`
//! prints. Parsing only; `main.rs` runs the commands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use sweeplaw::diag::bench::reference_shape;
use sweeplaw::sweep::claim::ClaimConfig;

#[derive(Parser)]
#[command(
    name = "sweeplaw",
    version,
    about = "Measure neural scaling laws: train a grid of transformers, record loss vs compute, fit the laws"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Print a sweep's run table and estimated time without training.
    Plan(PlanArgs),
    /// Train every run of a sweep not yet done, resuming interrupted ones.
    Sweep(SweepArgs),
    /// Train one run described by a single-run TOML config.
    Train(TrainArgs),
    /// Tune the learning rate per size for a sweep: short runs at log-spaced rates, the rule
    /// lr*(N) = c·N^γ written to the table `hyperparameters = "tuned"` reads.
    Tune(TuneArgs),
    /// Climb a ladder of IsoFLOP sweeps: each rung's budgets a step up, its sizes centred on the
    /// law of the rungs below, its N_opt and loss predicted before it trains and checked after.
    Ladder(LadderArgs),
    /// Write an sbatch script for a Slurm job array whose tasks are the sweep's workers.
    Slurm(SlurmArgs),
    /// Rebuild a sweep's summary.csv from its run folders (runs/<id>/run.json).
    Summary(SweepDirArgs),
    /// Fit the scaling laws to a sweep's records or to a CSV of N, D, loss.
    Fit(FitArgs),
    /// Draw the figures of a sweep from its records (fitting first if fit.json is missing or stale).
    Plot(SweepDirArgs),
    /// Write report.md and report.html with the fit tables and figures (plotting first).
    Report(SweepDirArgs),
    /// Measure training throughput of one model shape on random tokens.
    Bench(BenchArgs),
    /// Show where a sweep stands: each run's state, progress, last validation loss, and an ETA.
    Status(StatusArgs),
}

#[derive(Args)]
pub(crate) struct StatusArgs {
    /// The sweep's results directory (results/<name>).
    pub(crate) sweep_dir: PathBuf,
    /// Redraw every few seconds until every run has finished (Ctrl-C to stop).
    #[arg(long)]
    pub(crate) watch: bool,
    /// Seconds between redraws with --watch.
    #[arg(long, default_value_t = 5.0, value_parser = parse_interval)]
    pub(crate) interval: f64,
    /// Print the same as JSON, for scripts.
    #[arg(long)]
    pub(crate) json: bool,
    /// Seconds without a heartbeat after which a claim counts as stale (as in `sweep`).
    #[arg(long, default_value_t = ClaimConfig::DEFAULT_STALE_AFTER.as_secs_f64(), value_parser = parse_stale_after)]
    pub(crate) stale_after: f64,
}

#[derive(Args)]
pub(crate) struct PlanArgs {
    /// The sweep's TOML config.
    pub(crate) config: PathBuf,
    /// Skip the short throughput measurement (no time estimate).
    #[arg(long)]
    pub(crate) no_measure: bool,
    /// Estimate times from this model FLOP rate (matmul_attn FLOP/s) instead of measuring, e.g.
    /// 2.4e14 for an H100 at 30% of its bf16 peak.
    #[arg(long, value_parser = parse_flop_rate, conflicts_with = "no_measure")]
    pub(crate) assume_flops: Option<f64>,
    /// Refuse the plan (exit 2) when a plan check warns.
    #[arg(long)]
    pub(crate) strict: bool,
}

#[derive(Args)]
pub(crate) struct LadderArgs {
    /// The IsoFLOP sweep config of rung 1 ([budget] flops, [grid] aspect_ratio).
    pub(crate) config: PathBuf,
    /// Rungs to climb, rung 1 included.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) rungs: u64,
    /// Each rung's FLOP budgets are the previous rung's times this (above 1).
    #[arg(long, default_value_t = 4.0, value_parser = parse_step)]
    pub(crate) step: f64,
    /// Bootstrap resamples behind each forecast's 95% interval.
    #[arg(long, default_value_t = 1000)]
    pub(crate) bootstrap: usize,
    /// Directory the ladder goes under (as <results>/<name>-ladder/).
    #[arg(long, default_value = "results")]
    pub(crate) results: PathBuf,
    /// No progress bars.
    #[arg(long)]
    pub(crate) quiet: bool,
}

#[derive(Args)]
pub(crate) struct TuneArgs {
    /// The sweep's TOML config (its [tune] section, or the defaults).
    pub(crate) config: PathBuf,
    /// Directory the tuning runs go under (as <results>/<name>-tune/).
    #[arg(long, default_value = "results")]
    pub(crate) results: PathBuf,
    /// No progress bars.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Print the tuning runs and their cost without training.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Args)]
pub(crate) struct SweepArgs {
    /// The sweep's TOML config.
    pub(crate) config: PathBuf,
    /// Directory the sweep's records go under (as <results>/<name>/).
    #[arg(long, default_value = "results")]
    pub(crate) results: PathBuf,
    /// Train only this worker's share of the runs: i/n takes runs whose index % n == i.
    #[arg(long, value_parser = sweeplaw::sweep::parse_worker)]
    pub(crate) worker: Option<(usize, usize)>,
    /// Seconds without a heartbeat after which another worker's claim is taken over.
    #[arg(long, default_value_t = ClaimConfig::DEFAULT_STALE_AFTER.as_secs_f64(), value_parser = parse_stale_after)]
    pub(crate) stale_after: f64,
    /// No progress bars.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Only rebuild <results>/<name>/summary.csv from the run folders; train nothing.
    #[arg(long)]
    pub(crate) rebuild_summary: bool,
    /// Runs trained at once on the device, one thread each (each its own CUDA stream on a GPU).
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub(crate) runs_per_device: usize,
    /// Refuse to train (exit 2) when a plan check warns.
    #[arg(long)]
    pub(crate) strict: bool,
    /// Another sweep directory (repeatable): its finished runs that this plan also has, with the
    /// same spec and data, are copied in instead of trained again.
    #[arg(long, value_name = "DIR")]
    pub(crate) reuse: Vec<PathBuf>,
}

#[derive(Args)]
pub(crate) struct SlurmArgs {
    /// The sweep's TOML config.
    pub(crate) config: PathBuf,
    /// The results directory every task shares (as <results>/<name>/); on a shared filesystem.
    #[arg(long, default_value = "results")]
    pub(crate) results: PathBuf,
    /// Array tasks, each one worker (`--worker i/N`); default: one per run.
    #[arg(long)]
    pub(crate) workers: Option<usize>,
    /// GPUs each task asks for (#SBATCH --gpus-per-task; 0 = none).
    #[arg(long, default_value_t = 0)]
    pub(crate) gpus_per_task: usize,
    /// CPUs each task asks for (#SBATCH --cpus-per-task).
    #[arg(long)]
    pub(crate) cpus_per_task: Option<usize>,
    /// Slurm partition (#SBATCH --partition).
    #[arg(long)]
    pub(crate) partition: Option<String>,
    /// Time limit per task (#SBATCH --time), e.g. 2:00:00.
    #[arg(long)]
    pub(crate) time: Option<String>,
    /// Where the script goes (default: <results>/<name>/slurm/<name>.sbatch).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Seconds without a heartbeat after which a dead task's claim is taken over.
    #[arg(long, default_value_t = ClaimConfig::DEFAULT_STALE_AFTER.as_secs_f64(), value_parser = parse_stale_after)]
    pub(crate) stale_after: f64,
    /// Another sweep directory (repeatable): its finished runs that this plan also has are copied
    /// in now, as `sweep --reuse` does, so the tasks train only the rest.
    #[arg(long, value_name = "DIR")]
    pub(crate) reuse: Vec<PathBuf>,
}

#[derive(Args)]
pub(crate) struct TrainArgs {
    /// The run's TOML config.
    pub(crate) config: PathBuf,
    /// Directory the run's records go under (as <results>/<name>/).
    #[arg(long, default_value = "results")]
    pub(crate) results: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
}

#[derive(Args)]
pub(crate) struct FitArgs {
    /// A sweep directory (summary.csv + runs/) or a CSV with N|params, D|tokens, loss|val_loss columns.
    pub(crate) path: PathBuf,
    /// chinchilla | kaplan | isoflop | frontier | data-constrained | all
    #[arg(long, default_value = "all", value_parser = |s: &str| s.parse::<sweeplaw::fit::Law>().map_err(|e| e.to_string()))]
    pub(crate) law: sweeplaw::fit::Law,
    /// Where fit.json goes (default: <sweep dir>/fit.json, or <csv stem>.fit.json beside a CSV).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Which N: nonembedding | total | matmul [default: a sweep directory's budget.param_count, else nonembedding]
    #[arg(long, value_parser = |s: &str| s.parse::<sweeplaw::fit::ParamCount>().map_err(|e| e.to_string()))]
    pub(crate) params: Option<sweeplaw::fit::ParamCount>,
    /// Which C: 6n | matmul_attn | chinchilla [default: a sweep directory's budget.flop_convention, else 6n]
    #[arg(long, value_parser = |s: &str| s.parse::<sweeplaw::fit::FlopCount>().map_err(|e| e.to_string()))]
    pub(crate) flops: Option<sweeplaw::fit::FlopCount>,
    /// Bootstrap resamples over runs for the 95% intervals (0 = none).
    #[arg(long, default_value_t = 1000)]
    pub(crate) bootstrap: usize,
    /// Refit without the K largest-compute runs and report how well the law predicts them.
    #[arg(long, default_value_t = 0)]
    pub(crate) holdout: usize,
    /// Compute budget (FLOPs) at which to predict N_opt, D_opt and the loss.
    #[arg(long)]
    pub(crate) target_flops: Option<f64>,
    /// Seed of the bootstrap resampling.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Drop the N highest-loss points first (Besiroglu et al. 2024 drop 5 of Chinchilla's 245).
    #[arg(long, default_value_t = 0)]
    pub(crate) exclude_highest_loss: usize,
    /// Approach 2: fit each budget's parabola to the runs at the K sizes nearest its lowest loss.
    #[arg(long, value_name = "K", default_value_t = 5, value_parser = clap::value_parser!(u64).range(3..))]
    pub(crate) isoflop_window: u64,
    /// Hold parameters at given values: NAME=VALUE,... (E, A, B, alpha, beta, alpha_N, alpha_D, alpha_C, N_c, D_c, C_c,
    /// R_D_star, R_N_star); LAW.NAME=VALUE holds one law's parameter (e.g. kaplan_n.alpha_N=0.076).
    #[arg(long, value_parser = sweeplaw::fit::Constraints::parse_fixed)]
    pub(crate) fix: Option<std::collections::BTreeMap<String, f64>>,
    /// Hold parameters equal: NAME=NAME,... (for example alpha=beta); names may be qualified as in --fix.
    #[arg(long, value_parser = |s: &str| sweeplaw::fit::Constraints::parse_tied(s).map(TiedList))]
    pub(crate) tie: Option<TiedList>,
    /// Rows sharing (N, D): auto (lowest loss over hyperparameters, mean over seeds) | min | mean | none
    #[arg(long, default_value = "auto", value_parser = |s: &str| s.parse::<sweeplaw::fit::Reduce>().map_err(|e| e.to_string()))]
    pub(crate) reduce: sweeplaw::fit::Reduce,
    /// Data-constrained runs that overfit: auto (left out only when the base law is fitted) | drop | keep
    #[arg(long, default_value = "auto", value_parser = |s: &str| s.parse::<sweeplaw::fit::Overfit>().map_err(|e| e.to_string()))]
    pub(crate) overfit: sweeplaw::fit::Overfit,
}

/// The pairs of `--tie` (a named type: clap reads a bare Vec as a repeated flag).
#[derive(Clone)]
pub(crate) struct TiedList(pub(crate) Vec<(String, String)>);

#[derive(Args)]
pub(crate) struct SweepDirArgs {
    /// The sweep's results directory (results/<name>).
    pub(crate) sweep_dir: PathBuf,
}

#[derive(Args)]
pub(crate) struct BenchArgs {
    #[arg(long, default_value_t = reference_shape().d_model)]
    pub(crate) d_model: usize,
    #[arg(long, default_value_t = reference_shape().n_layers)]
    pub(crate) n_layers: usize,
    #[arg(long, default_value_t = reference_shape().n_heads)]
    pub(crate) n_heads: usize,
    #[arg(long, default_value_t = reference_shape().seq_len)]
    pub(crate) seq_len: usize,
    #[arg(long, default_value_t = reference_shape().vocab_size)]
    pub(crate) vocab_size: usize,
    #[arg(long, default_value_t = 16)]
    pub(crate) batch_size: usize,
    /// Timed steps (after --warmup untimed ones).
    #[arg(long, default_value_t = 10)]
    pub(crate) steps: usize,
    #[arg(long, default_value_t = 2)]
    pub(crate) warmup: usize,
    #[arg(long, value_parser = ["gelu", "swiglu"], default_value = "gelu")]
    pub(crate) mlp: String,
    /// auto | cpu | cuda:N | metal
    #[arg(long, default_value = "auto", value_parser = |s: &str| sweeplaw::device::check_spec(s, "auto").map(|()| s.to_string()))]
    pub(crate) device: String,
    /// auto | f32 | bf16 (auto: bf16 matmuls on CUDA, f32 elsewhere)
    #[arg(long, default_value = "auto", value_parser = ["auto", "f32", "bf16"])]
    pub(crate) precision: String,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub(crate) json: bool,
    /// Instead of timing, check the device against the CPU: finite-difference gradients, an f32
    /// training run, (on CUDA) a bf16 run, and every fused op against its composite op; exits 1
    /// when a check fails.
    #[arg(long)]
    pub(crate) check: bool,
    /// Time candle's composite ops instead of the fused CPU ops or CUDA kernels (to compare).
    #[arg(long)]
    pub(crate) composite: bool,
    /// Instead of whole steps, time each op (forward + backward) at this shape's sizes, fused and
    /// composite: the profile of a step.
    #[arg(long)]
    pub(crate) ops: bool,
}

/// A ladder's step: a finite number above 1.
/// Seconds in `[lowest, highest]`: `Duration` holds no more than about 1.8e19 s, and a value
/// that cannot become one would panic where it is used.
fn parse_seconds(text: &str, lowest: f64, highest: f64) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(seconds) if (lowest..=highest).contains(&seconds) => Ok(seconds),
        _ => Err(format!("'{text}' is not a number of seconds from {lowest} to {highest:e}")),
    }
}

/// `--stale-after`: at least 0.1 s (a claim's heartbeat comes every stale_after / 12, but at
/// most every 50 ms, and must come twice within it) and at most 1e9 s (31 years: never).
fn parse_stale_after(text: &str) -> Result<f64, String> {
    parse_seconds(text, 0.1, 1e9)
}

/// `status --interval`: between redraws, 0.1 s to 1e9 s.
fn parse_interval(text: &str) -> Result<f64, String> {
    parse_seconds(text, 0.1, 1e9)
}

/// `plan --assume-flops`: a device's model FLOP rate, 1e3 to 1e21 FLOP/s (a laptop CPU runs
/// about 1e10, an H100 about 4e14); outside, the time estimates are typos' consequences.
fn parse_flop_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if (1e3..=1e21).contains(&rate) => Ok(rate),
        _ => Err(format!("'{text}' is not a FLOP rate from 1e3 to 1e21 FLOP/s")),
    }
}

fn parse_step(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(step) if step.is_finite() && step > 1.0 => Ok(step),
        _ => Err(format!("'{text}' is not a number above 1 (each rung's budgets are the previous rung's times it)")),
    }
}
