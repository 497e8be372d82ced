//! The `sweeplaw` command line: parse arguments, call the library, print errors. `main` returns
//! an exit code: 0 on success, 1 on an error (printed on one line), 2 on bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use sweeplaw::diag::bench::{run_bench, BenchOptions};
use sweeplaw::model::{MlpKind, ModelShape};
use sweeplaw::train::single::{train_single, TrainOptions};

mod cli;
use cli::{
    BenchArgs, Cli, Command, FitArgs, LadderArgs, PlanArgs, SlurmArgs, StatusArgs, SweepArgs, SweepDirArgs, TrainArgs,
    TuneArgs,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_e`; -1 means freed pages are never returned
/// to the OS. A training step frees and reallocates the same large activation and gradient buffers,
/// and purging them made the kernel fault in and zero fresh pages every step: `sweeplaw bench` at
/// the reference shape took 630k minor faults and 7.7 s of system time in 7 steps with the default
/// delay, against 700 faults and 1.7 s with -1.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// The ops switches in the environment, applied before anything runs:
/// `SWEEPLAW_OPS=fused|composite` (composite: candle's ops only) and
/// `SWEEPLAW_CUDA_KERNELS_OFF=flash_attention,adamw` (those CUDA kernels off, their ops taking the
/// next path). A value that is not a choice is an error naming the variable and the choices.
fn apply_ops_env() -> Result<(), String> {
    let var = |name: &str| match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
    };
    match var("SWEEPLAW_OPS")?.as_deref() {
        Some("composite") => sweeplaw::ops::set_fused(false),
        Some("fused") | None => {}
        Some(other) => return Err(format!("SWEEPLAW_OPS={other:?} is not a choice: fused (the default) or composite")),
    }
    let known = || sweeplaw::ops::CudaKernel::ALL.map(|k| k.name()).join(", ");
    for name in var("SWEEPLAW_CUDA_KERNELS_OFF")?.unwrap_or_default().split(',').map(str::trim) {
        match sweeplaw::ops::CudaKernel::from_name(name) {
            Some(kernel) => sweeplaw::ops::disable_cuda_kernel(kernel),
            None if name.is_empty() => {}
            None => {
                return Err(format!("SWEEPLAW_CUDA_KERNELS_OFF names {name:?}, not a kernel; kernels: {}", known()))
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    // SAFETY: sets a plain integer option of the global allocator, before any thread starts.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    if let Err(message) = apply_ops_env() {
        eprintln!("{message}");
        return ExitCode::from(2);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            eprintln!("{} (see --help)", one_line(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    if matches!(cli.command, Command::Sweep(_) | Command::Train(_) | Command::Ladder(_)) {
        sweeplaw::train::stop::install();
    } else if !matches!(cli.command, Command::Tune(_)) {
        // Commands that only read records and print: a closed pipe (`sweeplaw fit … | head -1`)
        // ends them quietly, as it ends `cat`, instead of a panic in println!. Their files are
        // written atomically, so stopping mid-way leaves each as it was or complete.
        // SAFETY: restores the default action of one signal, before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&error_text(&e)));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// An error and its causes, each cause left out when the text so far already says it (an OS
/// error wrapped with its path prints once, not twice).
fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// 1 for an error; 2 for a bad flag value (`--workers 0`, `--time banana`), a usage error the
/// fitter found in its options (`--fix` of a parameter the law does not have) and a plan
/// `--strict` refused; 128 + the signal for a run stopped
/// by SIGINT (130) or SIGTERM (143).
fn exit_code(error: &anyhow::Error) -> u8 {
    if matches!(
        error.downcast_ref::<sweeplaw::fit::FitError>(),
        Some(sweeplaw::fit::FitError::InvalidOption { .. } | sweeplaw::fit::FitError::UnknownValue { .. })
    ) {
        return 2;
    }
    if matches!(
        error.downcast_ref::<sweeplaw::Error>(),
        Some(sweeplaw::Error::StrictRefusal(_) | sweeplaw::Error::Usage(_))
    ) {
        return 2;
    }
    let signal = match error.downcast_ref::<sweeplaw::Error>() {
        Some(sweeplaw::Error::Interrupted { signal, .. }) => Some(*signal),
        _ => error.downcast_ref::<Stopped>().map(|s| s.signal),
    };
    signal.and_then(|s| u8::try_from(128 + s).ok()).unwrap_or(1)
}

/// The error of a sweep (or a ladder's rung) that `signal` stopped: where each run stopped and
/// the command, `sweeplaw <command>` with the same arguments, that resumes it.
fn stopped_by_signal(command: &str, subject: String, signal: i32, report: &sweeplaw::sweep::SweepReport) -> Stopped {
    let runs: Vec<String> = report
        .stopped
        .iter()
        .map(|r| match &r.checkpoint {
            Some(c) => format!("{} after step {} (checkpoint {})", r.run_id, r.step, c.display()),
            None => format!("{} after step {} (no checkpoint: it starts again)", r.run_id, r.step),
        })
        .collect();
    let stopped = if runs.is_empty() { "no run was training".to_string() } else { runs.join("; ") };
    let resume = std::iter::once(format!("sweeplaw {command}"))
        .chain(std::env::args().skip(2).map(|a| shell_quote(&a)))
        .collect::<Vec<_>>()
        .join(" ");
    Stopped {
        signal,
        message: format!(
            "{subject} stopped by {} ({} trained, claims released): {stopped}; resume with: {resume}",
            sweeplaw::error::signal_name(signal),
            sweeplaw::human::plural(report.trained.len(), "run"),
        ),
    }
}

/// A sweep that a signal stopped after its runs' current steps: where each stopped, and how
/// to resume.
#[derive(Debug)]
struct Stopped {
    signal: i32,
    message: String,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Stopped {}

/// A message on one line: its lines joined, up to clap's usage and help hints.
fn one_line(message: &str) -> String {
    message
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Plan(args) => cmd_plan(args),
        Command::Sweep(args) => cmd_sweep(args),
        Command::Train(args) => cmd_train(args),
        Command::Tune(args) => cmd_tune(args),
        Command::Ladder(args) => cmd_ladder(args),
        Command::Slurm(args) => cmd_slurm(args),
        Command::Summary(args) => cmd_summary(&args.sweep_dir),
        Command::Fit(args) => cmd_fit(args),
        Command::Plot(args) => cmd_regenerate(args, false),
        Command::Report(args) => cmd_regenerate(args, true),
        Command::Bench(args) => cmd_bench(args),
        Command::Status(args) => cmd_status(args),
    }
}

fn cmd_status(args: StatusArgs) -> anyhow::Result<()> {
    let stale_after = std::time::Duration::from_secs_f64(args.stale_after);
    loop {
        let state = sweeplaw::status::read_state(&args.sweep_dir, stale_after)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&state)?);
        } else {
            if args.watch {
                // Clear the screen and go home, then draw.
                print!("\x1b[2J\x1b[H");
            }
            print!("{}", sweeplaw::status::render(&state));
        }
        if !args.watch || state.finished() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(args.interval));
    }
}

fn cmd_plan(args: PlanArgs) -> anyhow::Result<()> {
    let (config, mut plan) = sweeplaw::sweep::load_plan(&args.config)?;
    sweeplaw::plan::memory::check_fits(&plan.runs, &config.device)
        .map_err(|m| sweeplaw::Error::config(&args.config, m))?;
    match sweeplaw::sweep::local_data_warnings(&config, &plan) {
        Ok(warnings) => plan.warnings.extend(warnings),
        Err(e) => eprintln!(
            "note: the runs are not checked against the data, which does not open: {}",
            one_line(&e.to_string())
        ),
    }
    if args.strict && !plan.warnings.is_empty() {
        sweeplaw::sweep::print_warnings(&plan.warnings);
        return Err(sweeplaw::Error::StrictRefusal(plan.warnings.len()).into());
    }
    let throughputs = if let Some(rate) = args.assume_flops {
        eprintln!("times assume {rate:.3e} model FLOP/s (matmul_attn), not a measurement");
        Some(sweeplaw::sweep::estimate::assume(&plan, rate))
    } else if args.no_measure {
        None
    } else {
        let device = sweeplaw::device::resolve(&config.device, &config.precision)?;
        eprintln!("measuring throughput of each model shape on {} (skip with --no-measure)...", device.name);
        Some(sweeplaw::sweep::estimate::measure(&plan, &device)?)
    };
    print!("{}", sweeplaw::sweep::estimate::render(&plan, throughputs.as_ref()));
    use sweeplaw::plan::memory::{available_bytes, estimate_bytes, human_bytes};
    if let Some(run) = plan.runs.iter().max_by(|a, b| estimate_bytes(a).total_cmp(&estimate_bytes(b))) {
        let available = available_bytes(&config.device)
            .map(|(what, bytes)| format!(" of the {} of {what}", human_bytes(bytes)))
            .unwrap_or_else(|| " (the device's memory is not checked)".into());
        println!("largest memory estimate: {} ({}){available}", human_bytes(estimate_bytes(run)), run.run_id);
    }
    Ok(())
}

fn cmd_sweep(args: SweepArgs) -> anyhow::Result<()> {
    if args.rebuild_summary {
        let (config, _) = sweeplaw::sweep::load_plan(&args.config)?;
        return cmd_summary(&args.results.join(&config.name));
    }
    let options = sweeplaw::sweep::SweepOptions {
        config: args.config.clone(),
        results: args.results,
        worker: args.worker,
        quiet: args.quiet,
        stale_after: std::time::Duration::from_secs_f64(args.stale_after),
        runs_per_device: args.runs_per_device,
        strict: args.strict,
        reuse: args.reuse,
    };
    let report = sweeplaw::sweep::run_sweep(&options)?;
    if let Some(signal) = report.signal {
        return Err(stopped_by_signal("sweep", format!("sweep {}", report.sweep_dir.display()), signal, &report).into());
    }
    // A rate only where something trained: "0.000e0 model FLOP/s" would read as a measurement.
    let rate = if report.model_flops > 0.0 {
        format!(
            " ({:.3e} model FLOP/s, matmul_attn, {} run(s) at a time)",
            report.model_flops / report.wall_s.max(1e-9),
            args.runs_per_device
        )
    } else {
        String::new()
    };
    println!(
        "sweep {}: trained {}, already done {}, diverged {}, failed {} in {:.1} s{rate}",
        report.sweep_dir.display(),
        report.trained.len(),
        report.skipped_done.len(),
        report.diverged.len(),
        report.failed.len(),
        report.wall_s,
    );
    if !report.failed.is_empty() {
        let names: Vec<&str> = report.failed.iter().map(|(id, _)| id.as_str()).collect();
        anyhow::bail!(
            "{} run(s) failed: {} (each reason is printed above and kept in its run.json; rerun the sweep to retry)",
            names.len(),
            names.join(", ")
        );
    }
    Ok(())
}

fn cmd_train(args: TrainArgs) -> anyhow::Result<()> {
    let options = TrainOptions { config: args.config.clone(), results: args.results, quiet: args.quiet };
    let record = train_single(&options)?;
    let result = record.result.as_ref();
    let val = result.and_then(|r| r.val_loss).map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into());
    let floor = record.data.true_entropy.map(|v| format!("{v:.4}")).unwrap_or_else(|| "unknown".into());
    println!(
        "run {}: {}  val_loss {val}  (true entropy {floor})  tokens {}  wall {:.1}s{}",
        record.run_id,
        record.status.as_str(),
        result.map(|r| r.tokens).unwrap_or(0),
        result.map(|r| r.wall_s).unwrap_or(0.0),
        record.reason.as_ref().map(|r| format!("  reason: {r}")).unwrap_or_default()
    );
    Ok(())
}

fn cmd_ladder(args: LadderArgs) -> anyhow::Result<()> {
    let options = sweeplaw::ladder::LadderOptions {
        config: args.config.clone(),
        results: args.results,
        rungs: args.rungs as usize,
        step: args.step,
        bootstrap: args.bootstrap,
        quiet: args.quiet,
    };
    let outcome = sweeplaw::ladder::run_ladder(&options)?;
    print!("{}", sweeplaw::ladder::render(&outcome.record));
    if let Some((signal, report)) = outcome.stopped.as_ref().and_then(|r| Some((r.signal?, r))) {
        let subject = format!("ladder {} (in {})", outcome.dir.display(), report.sweep_dir.display());
        return Err(stopped_by_signal("ladder", subject, signal, report).into());
    }
    println!("ladder {}: {} rung(s); the record is ladder.json", outcome.dir.display(), outcome.record.rungs.len());
    Ok(())
}

fn cmd_tune(args: TuneArgs) -> anyhow::Result<()> {
    if args.dry_run {
        let tune = sweeplaw::tune::plan_tuning(&args.config, &args.results)?;
        print!("{}", sweeplaw::sweep::estimate::render(&tune.plan, None));
        println!(
            "tuning costs {:.3e} FLOPs ({}), {:.1}% of the sweep's {:.3e}; the table goes to {}",
            tune.cost.tune_flops,
            tune.config.budget.flop_convention,
            100.0 * tune.cost.fraction,
            tune.cost.sweep_flops,
            tune.table_path.display()
        );
        if let Some(refusal) = &tune.over_budget {
            eprintln!("warning: {refusal}; `sweeplaw tune` refuses to train this plan");
        }
        return Ok(());
    }
    let options = sweeplaw::tune::TuneOptions { config: args.config, results: args.results, quiet: args.quiet };
    let done = sweeplaw::tune::run_tune(&options)?;
    for w in &done.table.warnings {
        eprintln!("warning: {w}");
    }
    for s in &done.table.sizes {
        println!(
            "L{}-d{} (N = {}): best lr {:.3e}{} over {} rates",
            s.n_layers,
            s.d_model,
            s.params,
            s.lr_opt,
            if s.at_edge { " (at the edge of the scan)" } else { "" },
            s.lrs.len()
        );
    }
    let rule = &done.table.rule;
    println!(
        "lr*(N) = {:.4e} * N^{:.4} (N {}); tuning cost {:.3e} FLOPs, {:.1}% of the sweep's {:.3e}, in {:.1} s; wrote {}",
        rule.coefficient,
        rule.exponent,
        rule.param_count,
        done.table.cost.tune_flops,
        100.0 * done.table.cost.fraction,
        done.table.cost.sweep_flops,
        done.sweep.wall_s,
        done.table_path.display()
    );
    if !done.sweep.failed.is_empty() {
        anyhow::bail!(
            "{} tuning run(s) failed (each reason is printed above and kept in its run.json; rerun tune to retry)",
            done.sweep.failed.len()
        );
    }
    Ok(())
}

fn cmd_slurm(args: SlurmArgs) -> anyhow::Result<()> {
    let binary = std::env::current_exe().context("finding the sweeplaw binary for the tasks to run")?;
    let options = sweeplaw::slurm::SlurmOptions {
        config: args.config,
        results: args.results,
        workers: args.workers,
        gpus_per_task: args.gpus_per_task,
        cpus_per_task: args.cpus_per_task,
        partition: args.partition,
        time: args.time,
        out: args.out,
        binary,
        stale_after: args.stale_after,
        reuse: args.reuse,
    };
    let script = sweeplaw::slurm::write_script(&options)?;
    let job = &script.job;
    println!(
        "wrote {}: {} array task(s) for the {} run(s) of sweep {}; submit with: sbatch {}",
        script.path.display(),
        job.workers,
        job.runs,
        job.sweep,
        script.path.display()
    );
    Ok(())
}

fn cmd_summary(sweep_dir: &std::path::Path) -> anyhow::Result<()> {
    let rebuilt = sweeplaw::sweep::store::rebuild_summary(sweep_dir)?;
    for w in &rebuilt.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "rebuilt {} ({}) from the run folders",
        rebuilt.path.display(),
        sweeplaw::human::plural(rebuilt.rows, "run")
    );
    Ok(())
}

fn cmd_fit(args: FitArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    use sweeplaw::fit::{Constraints, FitOptions};
    let (planned_params, planned_flops) = sweeplaw::fit::planned_conventions(&args.path)?;
    let flops = args.flops.unwrap_or(planned_flops);
    let options = FitOptions {
        law: args.law,
        params: args.params.unwrap_or(planned_params),
        flops,
        bootstrap: args.bootstrap,
        holdout: args.holdout,
        target_flops: args.target_flops,
        seed: args.seed,
        exclude_highest_loss: args.exclude_highest_loss,
        isoflop_window: usize::try_from(args.isoflop_window).unwrap_or(usize::MAX),
        constraints: Constraints {
            fixed: args.fix.unwrap_or_default(),
            tied: args.tie.map(|t| t.0).unwrap_or_default(),
        },
        reduce: args.reduce,
        overfit: args.overfit,
        progress: std::io::stderr().is_terminal(),
    };
    let (dataset, warnings) = sweeplaw::fit::load_points(&args.path, &options)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let report = sweeplaw::fit::fit(&dataset, &options)?;
    // fit.json first: a reader that stops early (`| head`) must not cost the fit.
    let out = args.out.unwrap_or_else(|| default_fit_path(&args.path));
    report.write_json(&out)?;
    print!("{}", report.table());
    println!("wrote {}", out.display());
    Ok(())
}

/// `text` as one shell word: as it is when it is plain, single-quoted otherwise.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// `<dir>/fit.json` for a sweep directory, `<stem>.fit.json` beside a CSV.
fn default_fit_path(path: &std::path::Path) -> PathBuf {
    if path.is_dir() {
        return path.join("fit.json");
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "fit".into());
    path.with_file_name(format!("{stem}.fit.json"))
}

fn cmd_regenerate(args: SweepDirArgs, report: bool) -> anyhow::Result<()> {
    let done = sweeplaw::regenerate::regenerate(&args.sweep_dir, report)?;
    for w in &done.warnings {
        eprintln!("warning: {w}");
    }
    for line in done.lines(&args.sweep_dir) {
        println!("{line}");
    }
    Ok(())
}

fn cmd_bench(args: BenchArgs) -> anyhow::Result<()> {
    let mlp = if args.mlp == "swiglu" { MlpKind::Swiglu } else { MlpKind::Gelu };
    let shape = ModelShape {
        vocab_size: args.vocab_size,
        d_model: args.d_model,
        n_layers: args.n_layers,
        n_heads: args.n_heads,
        seq_len: args.seq_len,
        mlp,
        tie_embeddings: false,
    };
    let device = sweeplaw::device::resolve(&args.device, &args.precision)?;
    if args.composite {
        sweeplaw::ops::set_fused(false);
    }
    if args.check {
        let check = sweeplaw::diag::devcheck::check_device(&device)?;
        println!("{}", check.describe());
        anyhow::ensure!(check.passed(), "device {} disagrees with the cpu (see above)", device.name);
        return Ok(());
    }
    if args.ops {
        sweeplaw::diag::bench::check_shape(&shape, args.batch_size, args.steps, &device)?;
        let timings = sweeplaw::diag::opbench::time_ops(&shape, args.batch_size, &device, args.steps)?;
        println!("{}", sweeplaw::diag::opbench::describe(&timings));
        if args.json {
            println!("{}", serde_json::to_string(&timings)?);
        }
        return Ok(());
    }
    let options = BenchOptions { shape, batch_size: args.batch_size, steps: args.steps, warmup_steps: args.warmup };
    let result = run_bench(&options, &device)?;
    println!("{}", result.describe());
    if args.json {
        println!("{}", serde_json::to_string(&result)?);
    }
    Ok(())
}
