//! `sweeplaw sweep` end to end: kill -9 and resume with identical losses, concurrent workers,
//! a corrupt checkpoint, WSD branching, divergence, a results directory of another config.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A small sweep: 2 sizes × 2 budgets, checkpoints every 4 steps.
pub fn sweep_config(name: &str, extra: &str) -> String {
    format!(
        r#"name = "{name}"
device = "cpu"

[data]
kind = "synthetic"
vocab_size = 256
n_quanta = 512

[model]
seq_len = 32
head_dim = 16

[grid]
n_layers = [1, 2]
d_model = [32]

[budget]
tokens = [10240, 20480]

[train]
batch_size = 8
lr = 1e-2
eval_tokens = 2048
eval_every_tokens = 2048
checkpoint_every_tokens = 1024
{extra}
"#
    )
}

pub fn sweep_args<'a>(config: &'a Path, results: &'a Path) -> Vec<&'a str> {
    vec!["sweep", config.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet", "--stale-after", "0.5"]
}

pub fn spawn(args: &[&str]) -> Child {
    sweeplaw().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn sweeplaw")
}

/// step,tokens,flops,lr,train_loss,val_loss,grad_norm of every run, by run id.
pub fn all_losses(sweep_dir: &Path) -> Vec<(String, Vec<String>)> {
    let mut runs: Vec<PathBuf> =
        std::fs::read_dir(sweep_dir.join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    runs.sort();
    runs.iter()
        .map(|run| {
            let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap_or_default();
            let rows = text.lines().map(|l| l.split(',').take(7).collect::<Vec<_>>().join(",")).collect();
            (run.file_name().unwrap().to_string_lossy().into_owned(), rows)
        })
        .collect()
}

pub fn statuses(sweep_dir: &Path) -> Vec<String> {
    let summary = std::fs::read_to_string(sweep_dir.join("summary.csv")).unwrap();
    summary.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().to_string()).collect()
}

pub fn run_to_end(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// run.json of every run recorded done so far, by run id.
fn done_records(sweep_dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(sweep_dir.join("runs")) else { return Vec::new() };
    let mut done: Vec<(String, String)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path().join("run.json")).ok()?;
            text.contains("\"status\": \"done\"").then(|| (e.file_name().to_string_lossy().into_owned(), text))
        })
        .collect();
    done.sort();
    done
}

#[test]
fn sigkill_at_20_random_moments_then_resume_gives_identical_losses() {
    let dir = scratch("sweep-kill");
    let config = write(&dir, "sweep.toml", &sweep_config("kill", ""));
    let (reference, killed) = (dir.join("reference"), dir.join("killed"));
    let started = Instant::now();
    run_to_end(&sweep_args(&config, &reference));
    // Kill moments spread over about one uninterrupted sweep, drawn by a fixed LCG.
    let span_ms = (started.elapsed().as_millis() as u64).clamp(200, 3000);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut finished = Vec::new();
    for _ in 0..20 {
        let mut child = spawn(&sweep_args(&config, &killed));
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(20 + (state >> 33) % span_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // A run once done is never trained or rewritten again.
        let now = done_records(&killed.join("kill"));
        for record in &finished {
            assert!(now.contains(record), "{} changed after it was done", record.0);
        }
        finished = now;
    }
    let out = run_to_end(&sweep_args(&config, &killed));
    let trained: usize = out.split("trained ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    assert_eq!(trained + finished.len(), 4, "each run done once: {out}");
    assert_eq!(statuses(&killed.join("kill")), vec!["done"; 4]);
    assert_eq!(all_losses(&killed.join("kill")), all_losses(&reference.join("kill")));
    for run in ["L1-d32-D10240-s0", "L2-d32-D20480-s0"] {
        assert!(!killed.join("kill/runs").join(run).join("checkpoint").exists(), "{run} keeps no checkpoint");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn two_concurrent_workers_train_each_run_once() {
    let dir = scratch("sweep-two-workers");
    let config = write(&dir, "sweep.toml", &sweep_config("two", ""));
    let results = dir.join("results");
    let args = sweep_args(&config, &results);
    let children = [spawn(&args), spawn(&args)];
    let mut trained = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let line = stdout(&out);
        let n: usize = line.split("trained ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
        trained += n;
    }
    assert_eq!(trained, 4, "each of the 4 runs trained exactly once");
    assert_eq!(statuses(&results.join("two")), vec!["done"; 4]);
    // Partitioned workers (--worker i/n) split the runs between them.
    let part = dir.join("part");
    let mut a = sweep_args(&config, &part);
    a.extend(["--worker", "0/2"]);
    let out = run_to_end(&a);
    assert!(out.contains("trained 2"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn runs_per_device_trains_each_run_once_with_the_losses_of_one_at_a_time() {
    let dir = scratch("sweep-runs-per-device");
    let config = write(&dir, "sweep.toml", &sweep_config("slots", ""));
    let (one, three) = (dir.join("one"), dir.join("three"));
    run_to_end(&sweep_args(&config, &one));
    let mut args = sweep_args(&config, &three);
    args.extend(["--runs-per-device", "3"]);
    let out = run_to_end(&args);
    assert!(out.contains("trained 4, already done 0") && out.contains("3 run(s) at a time"), "{out}");
    assert!(out.contains("model FLOP/s"), "{out}");
    assert_eq!(statuses(&three.join("slots")), vec!["done"; 4]);
    assert_eq!(all_losses(&three.join("slots")), all_losses(&one.join("slots")));
    // Started again, every run is already done and nothing trains.
    let again = run_to_end(&args);
    assert!(again.contains("trained 0, already done 4"), "{again}");
    assert!(!again.contains("FLOP/s"), "no rate when nothing trained: {again}");
    let mut zero = sweep_args(&config, &three);
    zero.extend(["--runs-per-device", "0"]);
    let out = run(&zero);
    assert!(!out.status.success() && stderr(&out).contains("--runs-per-device"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn corrupt_newest_checkpoint_resumes_from_the_previous_good_one() {
    let dir = scratch("sweep-corrupt");
    let config = write(&dir, "sweep.toml", &sweep_config("corrupt", ""));
    let (reference, broken) = (dir.join("reference"), dir.join("broken"));
    run_to_end(&sweep_args(&config, &reference));
    // Kill the first run once it holds two checkpoints, then corrupt the newest complete one (the
    // kill may land while a third is half written: one without state.json is never resumed from).
    let checkpoints = broken.join("corrupt/runs/L1-d32-D10240-s0/checkpoint");
    let complete = || {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&checkpoints)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.join("state.json").exists()).collect())
            .unwrap_or_default();
        dirs.sort();
        dirs
    };
    let mut newest = None;
    // A loaded machine may finish the run before the kill lands; then try again from scratch.
    for _attempt in 0..3 {
        let _ = std::fs::remove_dir_all(&broken);
        let mut child = spawn(&sweep_args(&config, &broken));
        let started = Instant::now();
        while complete().len() < 2 && started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
        let first_done = done_records(&broken.join("corrupt")).iter().any(|(id, _)| id == "L1-d32-D10240-s0");
        newest = complete().pop().filter(|_| !first_done);
        if newest.is_some() {
            break;
        }
    }
    let newest = newest.expect("in 3 tries, the first run was never caught holding a complete checkpoint");
    std::fs::write(newest.join("model.safetensors"), b"truncated garbage").unwrap();
    let out = run(&sweep_args(&config, &broken));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("model.safetensors"), "the corrupt file is named: {}", stderr(&out));
    assert_eq!(all_losses(&broken.join("corrupt")), all_losses(&reference.join("corrupt")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn wsd_branches_share_a_trunk_and_the_smallest_equals_an_independent_run() {
    let dir = scratch("sweep-wsd");
    let wsd = "[train.schedule]\nkind = \"wsd\"\nwarmup_fraction = 0.1\ncooldown_fraction = 0.25\n";
    let branched = write(
        &dir,
        "branched.toml",
        &sweep_config("branched", wsd).replace("[budget]", "[budget]\nwsd_branching = true"),
    );
    let independent = write(&dir, "independent.toml", &sweep_config("independent", wsd));
    let plan = run_to_end(&["plan", branched.to_str().unwrap(), "--no-measure"]);
    assert!(plan.contains("trunk") && plan.contains("WSD branching saves"), "{plan}");
    let results = dir.join("results");
    run_to_end(&sweep_args(&branched, &results));
    run_to_end(&sweep_args(&independent, &results));
    let b = results.join("branched/runs");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("L1-d32-D20480-s0/run.json")).unwrap()).unwrap();
    assert_eq!(record["spec"]["role"]["trunk"], "L1-d32-trunk-s0");
    let summary = std::fs::read_to_string(results.join("branched/summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 5, "4 branches, no trunk: {summary}");
    let losses = |p: PathBuf| {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| l.split(',').take(7).collect::<Vec<_>>().join(","))
            .collect::<Vec<_>>()
    };
    // The smallest budget's warmup and cooldown are those of an independent WSD run: bit-identical.
    let small = "L1-d32-D10240-s0/metrics.csv";
    assert_eq!(losses(b.join(small)), losses(results.join("independent/runs").join(small)));
    // The larger branch (80 steps of 256 tokens) starts with the trunk's rows up to its branch
    // point, 80 − 25% = step 60, then cools down on its own.
    let trunk = losses(b.join("L1-d32-trunk-s0/metrics.csv"));
    let large = losses(b.join("L1-d32-D20480-s0/metrics.csv"));
    assert_eq!((trunk.len(), large.len()), (61, 81));
    assert_eq!(large[..61], trunk[..61]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `sweep_config` with one size (L1-d32), WSD branching and `schedule` (a [train.schedule] section).
fn branched_config(name: &str, schedule: &str) -> String {
    sweep_config(name, schedule)
        .replace("n_layers = [1, 2]", "n_layers = [1]")
        .replace("[budget]", "[budget]\nwsd_branching = true")
}

/// Runs `args` to its end, which must come within two minutes (a sweep here takes seconds): a
/// sweep that waits forever fails the test instead of hanging it.
fn run_within_limit(args: &[&str]) -> std::process::Output {
    crate::reliability::wait_within(spawn(args), Duration::from_secs(120), &args.join(" "))
}

fn record(sweep_dir: &Path, run_id: &str) -> serde_json::Value {
    let path = sweep_dir.join("runs").join(run_id).join("run.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn a_wsd_trunk_that_diverges_before_its_branch_points_ends_the_sweep_with_its_branches_diverged() {
    let dir = scratch("sweep-wsd-trunk-diverges");
    let wsd = "[train.schedule]\nkind = \"wsd\"\nwarmup_fraction = 0.1\ncooldown_fraction = 0.25\n";
    let text = branched_config("trunkdiv", wsd).replace("lr = 1e-2", "lr = 50.0");
    let config = write(&dir, "sweep.toml", &text);
    let results = dir.join("results");
    let sweep_dir = results.join("trunkdiv");
    // A rerun finds everything finished; one whose branch records were lost records them again.
    for pass in 0..3 {
        if pass == 2 {
            std::fs::remove_dir_all(sweep_dir.join("runs/L1-d32-D20480-s0")).unwrap();
        }
        let out = run_within_limit(&sweep_args(&config, &results));
        assert!(out.status.success(), "pass {pass}: {}", stderr(&out));
        assert_eq!(statuses(&sweep_dir), vec!["diverged"; 2], "pass {pass}");
    }
    let trunk = record(&sweep_dir, "L1-d32-trunk-s0");
    assert_eq!(trunk["status"], "diverged");
    let at = trunk["result"]["steps"].as_u64().unwrap();
    assert!(at < 30, "the trunk diverges before the first branch point (step 30), at step {at}");
    for (run, from) in [("L1-d32-D10240-s0", 30), ("L1-d32-D20480-s0", 60)] {
        let branch = record(&sweep_dir, run);
        let reason = branch["reason"].as_str().unwrap();
        assert!(reason.starts_with(&format!("its trunk L1-d32-trunk-s0 diverged at step {at} (")), "{run}: {reason}");
        assert!(
            reason.ends_with(&format!("before this branch's branch point, step {from}: the branch is not trainable")),
            "{run}: {reason}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failed_wsd_trunk_fails_its_branches_and_a_rerun_retries_the_trunk_and_then_them() {
    let dir = scratch("sweep-wsd-trunk-fails");
    let wsd = "[train.schedule]\nkind = \"wsd\"\nwarmup_fraction = 0.1\ncooldown_fraction = 0.25\n";
    let config = write(&dir, "sweep.toml", &branched_config("trunkfail", wsd));
    let results = dir.join("results");
    let sweep_dir = results.join("trunkfail");
    // A file where the trunk's checkpoints go: its first checkpoint (step 4) fails it.
    let trunk_dir = sweep_dir.join("runs/L1-d32-trunk-s0");
    std::fs::create_dir_all(&trunk_dir).unwrap();
    std::fs::write(trunk_dir.join("checkpoint"), b"not a folder").unwrap();
    let out = run_within_limit(&sweep_args(&config, &results));
    assert_eq!(out.status.code(), Some(1), "failed runs fail the sweep: {}", stderr(&out));
    assert_eq!(record(&sweep_dir, "L1-d32-trunk-s0")["status"], "failed");
    assert_eq!(statuses(&sweep_dir), vec!["failed"; 2]);
    for (run, from) in [("L1-d32-D10240-s0", 30), ("L1-d32-D20480-s0", 60)] {
        let branch = record(&sweep_dir, run);
        let reason = branch["reason"].as_str().unwrap();
        assert!(reason.starts_with("its trunk L1-d32-trunk-s0 failed ("), "{run}: {reason}");
        assert!(reason.contains(&format!("before this branch's branch point, step {from}; rerun")), "{reason}");
        assert!(stderr(&out).contains(&format!("run {run} failed: its trunk")), "{}", stderr(&out));
    }
    // Once the cause is gone, a rerun retries the trunk and then the branches. A claim on the
    // trunk (a file that does not parse, held until 5 s old) makes the rerun reach the branches
    // before the failed trunk is retried: they wait for it rather than fail again.
    std::fs::remove_file(trunk_dir.join("checkpoint")).unwrap();
    std::fs::write(trunk_dir.join("claim.json"), b"held").unwrap();
    let (config_arg, results_arg) = (config.to_str().unwrap(), results.to_str().unwrap());
    let out = run_within_limit(&["sweep", config_arg, "--results", results_arg, "--quiet", "--stale-after", "5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(record(&sweep_dir, "L1-d32-trunk-s0")["status"], "done");
    assert_eq!(statuses(&sweep_dir), vec!["done"; 2]);
    let rows = |run: &str| std::fs::read_to_string(sweep_dir.join("runs").join(run).join("metrics.csv")).unwrap();
    assert_eq!((rows("L1-d32-D10240-s0").lines().count(), rows("L1-d32-D20480-s0").lines().count()), (41, 81));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_wsd_branch_without_cooldown_steps_records_the_val_loss_of_its_own_last_step() {
    let dir = scratch("sweep-wsd-no-cooldown");
    let wsd = "[train.schedule]\nkind = \"wsd\"\nwarmup_fraction = 0.1\ncooldown_fraction = 0.0\n";
    // Evaluations every 12 steps: the trunk does not evaluate at the smaller branch's point, 40.
    let cadence = |text: String| text.replace("eval_every_tokens = 2048", "eval_every_tokens = 3072");
    let branched = write(&dir, "branched.toml", &cadence(branched_config("branched", wsd)));
    let independent = write(
        &dir,
        "independent.toml",
        &cadence(sweep_config("independent", wsd).replace("n_layers = [1, 2]", "n_layers = [1]")),
    );
    let results = dir.join("results");
    run_to_end(&sweep_args(&branched, &results));
    run_to_end(&sweep_args(&independent, &results));
    let trunk = std::fs::read_to_string(results.join("branched/runs/L1-d32-trunk-s0/metrics.csv")).unwrap();
    let row_40 = trunk.lines().find(|l| l.starts_with("40,")).unwrap();
    assert_eq!(row_40.split(',').nth(5), Some(""), "the trunk has no evaluation at step 40: {row_40}");
    // The smallest budget's branch shares the warmup of an independent run of its budget.
    let run = "L1-d32-D10240-s0";
    let (b, i) = (record(&results.join("branched"), run), record(&results.join("independent"), run));
    assert_eq!(b["spec"]["role"]["kind"], "branch");
    assert_eq!(b["result"]["steps"], i["result"]["steps"], "{run}");
    assert_eq!(b["result"]["train_loss"], i["result"]["train_loss"], "{run}: the training is bit-identical");
    assert!(b["result"]["val_loss"].is_f64(), "{run}: {b}");
    assert_eq!(b["result"]["val_loss"], i["result"]["val_loss"], "{run}: evaluated at its own last step");
    let last_row = |sweep: &str| {
        let text = std::fs::read_to_string(results.join(sweep).join("runs").join(run).join("metrics.csv")).unwrap();
        text.lines().last().unwrap().split(',').take(7).collect::<Vec<_>>().join(",")
    };
    assert_eq!(last_row("branched"), last_row("independent"), "{run}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_diverging_run_is_recorded_and_the_sweep_goes_on() {
    let dir = scratch("sweep-diverge");
    let table = "[[train.table]]\nd_model = 32\nn_layers = 1\nlr = 1e-2\nbatch_size = 8\n\
                 [[train.table]]\nd_model = 32\nn_layers = 2\nlr = 1e3\nbatch_size = 8\n";
    let text = sweep_config("diverge", table).replace("batch_size = 8\nlr = 1e-2\n", "hyperparameters = \"table\"\n");
    let config = write(&dir, "sweep.toml", &text);
    let results = dir.join("results");
    run_to_end(&sweep_args(&config, &results));
    let summary = std::fs::read_to_string(results.join("diverge/summary.csv")).unwrap();
    let status = |id: &str| summary.lines().find(|l| l.starts_with(id)).unwrap().split(',').nth(1).unwrap().to_string();
    assert_eq!(status("L1-d32-D10240-s0"), "done");
    assert_eq!(status("L2-d32-D10240-s0"), "diverged");
    let record = std::fs::read_to_string(results.join("diverge/runs/L2-d32-D10240-s0/run.json")).unwrap();
    assert!(record.contains("\"reason\""), "{record}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_results_directory_of_another_config_is_refused() {
    let dir = scratch("sweep-other-config");
    let results = dir.join("results");
    let first =
        write(&dir, "first.toml", &sweep_config("same", "").replace("tokens = [10240, 20480]", "tokens = [2560]"));
    run_to_end(&sweep_args(&first, &results));
    let second =
        write(&dir, "second.toml", &sweep_config("same", "").replace("tokens = [10240, 20480]", "tokens = [5120]"));
    let out = run(&sweep_args(&second, &results));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("belongs to another config"), "{err}");
    assert!(err.contains("differs from this config at budget.tokens ([2560] there, [5120] here)"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(std::fs::read_to_string(results.join("same/sweep.toml")).unwrap().contains("tokens = [2560]"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reuse_copies_the_finished_runs_another_config_shares_and_trains_the_rest() {
    let dir = scratch("sweep-reuse");
    let results = dir.join("results");
    let first = write(&dir, "first.toml", &sweep_config("first", "").replace("n_layers = [1, 2]", "n_layers = [1]"));
    run_to_end(&sweep_args(&first, &results));
    let first_dir = results.join("first");
    // A budget added: its two runs of 10240 and 20480 tokens are the first sweep's, the third new.
    let second = write(
        &dir,
        "second.toml",
        &sweep_config("second", "")
            .replace("n_layers = [1, 2]", "n_layers = [1]")
            .replace("tokens = [10240, 20480]", "tokens = [10240, 20480, 30720]"),
    );
    let mut args = sweep_args(&second, &results);
    args.extend(["--reuse", first_dir.to_str().unwrap()]);
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("reused 2 finished run(s) from {}", first_dir.display())),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("trained 1, already done 2"), "{}", stdout(&out));
    let second_dir = results.join("second");
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(second_dir.join("plan.json")).unwrap()).unwrap();
    for id in ["L1-d32-D10240-s0", "L1-d32-D20480-s0"] {
        let copied = std::fs::read_to_string(second_dir.join("runs").join(id).join("run.json")).unwrap();
        let record: serde_json::Value = serde_json::from_str(&copied).unwrap();
        assert_eq!(record["config_hash"], plan["config_hash"], "{id}");
        assert!(record["reused_from"].as_str().unwrap().starts_with(first_dir.to_str().unwrap()), "{id}");
        let original = std::fs::read_to_string(first_dir.join("runs").join(id).join("metrics.csv")).unwrap();
        assert_eq!(std::fs::read_to_string(second_dir.join("runs").join(id).join("metrics.csv")).unwrap(), original);
    }
    let trained: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(second_dir.join("runs/L1-d32-D30720-s0/run.json")).unwrap())
            .unwrap();
    assert!(trained.get("reused_from").is_none());
    assert_eq!(std::fs::read_to_string(second_dir.join("summary.csv")).unwrap().matches(",done,").count(), 3);
    // Another learning rate, or another language, is another measurement: trained.
    for (name, from, to, why) in [
        ("lr", "lr = 1e-2", "lr = 5e-3", "spec differs at lr (0.01 there, 0.005 here)"),
        ("data", "n_quanta = 512", "n_quanta = 256", "spec differs at data.n_quanta (512 there, 256 here)"),
    ] {
        let config = write(
            &dir,
            &format!("{name}.toml"),
            &sweep_config(name, "").replace("n_layers = [1, 2]", "n_layers = [1]").replace(from, to),
        );
        let mut args = sweep_args(&config, &results);
        args.extend(["--reuse", first_dir.to_str().unwrap()]);
        let out = run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("reused 0 finished run(s)") && err.contains("2 not reused, trained here instead"),
            "{err}"
        );
        assert!(err.contains(&format!("L1-d32-D10240-s0 ({why}")), "{err}");
        assert!(stdout(&out).contains("trained 2, already done 0"), "{}", stdout(&out));
    }
    // A directory that is not a sweep's is refused before anything trains.
    let mut args = sweep_args(&second, &results);
    args.extend(["--reuse", dir.to_str().unwrap()]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--reuse: not a sweep directory"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reuse_skips_a_source_run_whose_records_do_not_read_fully_and_never_half_copies_one() {
    let dir = scratch("sweep-reuse-damaged");
    let results = dir.join("results");
    let one_layer = |name: &str| {
        sweep_config(name, "")
            .replace("n_layers = [1, 2]", "n_layers = [1]")
            .replace("[10240, 20480]", "[5120, 10240, 20480]")
    };
    let first = write(&dir, "first.toml", &one_layer("first"));
    run_to_end(&sweep_args(&first, &results));
    let runs = results.join("first/runs");
    // One run lost its metrics.csv; another has a folder in its place; the third is whole.
    std::fs::remove_file(runs.join("L1-d32-D5120-s0/metrics.csv")).unwrap();
    std::fs::remove_file(runs.join("L1-d32-D10240-s0/metrics.csv")).unwrap();
    std::fs::create_dir(runs.join("L1-d32-D10240-s0/metrics.csv")).unwrap();
    let second = write(&dir, "second.toml", &one_layer("second"));
    let mut args = sweep_args(&second, &results);
    let first_dir = results.join("first");
    args.extend(["--reuse", first_dir.to_str().unwrap()]);
    let out = run(&args);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let line = err.lines().find(|l| l.starts_with("reused ")).unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.starts_with("reused 1 finished run(s)") && line.contains("2 not reused, trained here instead"),
        "{err}"
    );
    assert!(
        line.contains("L1-d32-D5120-s0 (its metrics.csv does not read: ") && line.contains("No such file"),
        "{err}"
    );
    assert!(
        line.contains("L1-d32-D10240-s0 (its metrics.csv does not read: ") && line.contains("Is a directory"),
        "{err}"
    );
    assert_eq!(err.matches("metrics.csv does not read").count(), 2, "said once each: {err}");
    assert!(stdout(&out).contains("trained 2, already done 1"), "{}", stdout(&out));
    let second_runs = results.join("second/runs");
    for (id, reused) in [("L1-d32-D5120-s0", false), ("L1-d32-D10240-s0", false), ("L1-d32-D20480-s0", true)] {
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(second_runs.join(id).join("run.json")).unwrap()).unwrap();
        assert_eq!(record.get("reused_from").is_some_and(|r| !r.is_null()), reused, "{id}");
        assert!(second_runs.join(id).join("metrics.csv").is_file(), "{id}: a run with its metrics");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&second_runs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reuse_trains_again_a_run_whose_corpus_changed_under_the_same_spec() {
    let dir = scratch("sweep-reuse-data");
    let results = dir.join("results");
    let documents = crate::data_formats::write_corpus(&dir, 24);
    let config = |name: &str| crate::data_formats::text_sweep_config(name, "tokens = [512]", "");
    let first = write(&dir, "first.toml", &config("first"));
    run_to_end(&sweep_args(&first, &results));
    // Same config text under another name, the corpus edited: the spec is equal, the data not.
    write(&dir, "corpus/doc03.txt", &format!("{} and one more line", documents[3]));
    let second = write(&dir, "second.toml", &config("second"));
    let mut args = sweep_args(&second, &results);
    let first_dir = results.join("first");
    args.extend(["--reuse", first_dir.to_str().unwrap()]);
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("reused 0 finished run(s)") && err.contains("L1-d16-D512-s0 (data differs at source ("),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stale_fit_json_is_refitted_with_the_options_it_records_or_else_kept() {
    // `report` refitted a stale fit.json with the defaults, so a user's --holdout, --params or
    // --fix vanished whenever summary.csv was rebuilt (or a checkout made it look newer).
    let dir = scratch("sweep-stale-fit");
    let config = write(&dir, "sweep.toml", &sweep_config("stale", ""));
    let results = dir.join("results");
    run_to_end(&sweep_args(&config, &results));
    let sweep_dir = results.join("stale");
    let sweep_arg = sweep_dir.to_str().unwrap();
    run_to_end(&["fit", sweep_arg, "--params", "total", "--bootstrap", "0", "--seed", "3"]);
    let fit_path = sweep_dir.join("fit.json");
    let read_json = || -> serde_json::Value { serde_json::from_slice(&std::fs::read(&fit_path).unwrap()).unwrap() };
    assert_eq!(read_json()["options"]["params"], "total", "fit.json records its options");
    let make_records_newer = || {
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        let summary = std::fs::File::options().write(true).open(sweep_dir.join("summary.csv")).unwrap();
        summary.set_modified(later).unwrap();
    };
    make_records_newer();
    let out = run_to_end(&["report", sweep_arg]);
    assert!(out.contains("fitted the laws (with --params total --bootstrap 0 --seed 3)"), "{out}");
    let refitted = read_json();
    assert_eq!((refitted["param_count"].as_str(), refitted["options"]["seed"].as_u64()), (Some("total"), Some(3)));
    // A fit.json from before the options were recorded is kept, with a warning.
    let mut old = refitted.clone();
    old.as_object_mut().unwrap().remove("options");
    let old_text = serde_json::to_string_pretty(&old).unwrap();
    std::fs::write(&fit_path, &old_text).unwrap();
    make_records_newer();
    let out = run(&["plot", sweep_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("fitted the laws"), "{}", stdout(&out));
    assert!(stderr(&out).contains("does not say which options it was fitted with"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&fit_path).unwrap(), old_text, "the fit.json is kept as it was");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plot_and_report_regenerate_from_the_records_alone() {
    let dir = scratch("sweep-report");
    let config = write(&dir, "sweep.toml", &sweep_config("figs", ""));
    let results = dir.join("results");
    run_to_end(&sweep_args(&config, &results));
    let sweep_dir = results.join("figs");
    let out = run_to_end(&["report", sweep_dir.to_str().unwrap()]);
    assert!(out.contains("fitted the laws"), "fit.json was missing, so report fits first: {out}");
    for file in ["fit.json", "figures/loss_vs_compute.png", "figures/loss_vs_compute.svg", "report.md", "report.html"] {
        assert!(sweep_dir.join(file).is_file(), "{file} missing; output: {out}");
    }
    // fit.json is now newer than the records: plotting again does not refit.
    let out = run_to_end(&["plot", sweep_dir.to_str().unwrap()]);
    assert!(!out.contains("fitted the laws"), "{out}");
    // A corrupt metrics line still plots, with a warning naming the file.
    let metrics = sweep_dir.join("runs/L1-d32-D10240-s0/metrics.csv");
    let mut text = std::fs::read_to_string(&metrics).unwrap();
    text.push_str("12,garbage\n");
    std::fs::write(&metrics, text).unwrap();
    let result = run(&["plot", sweep_dir.to_str().unwrap()]);
    assert!(result.status.success(), "{}", stderr(&result));
    assert!(stderr(&result).contains("metrics.csv"), "{}", stderr(&result));
    let out = run(&["plot", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no summary.csv"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_evaluation_larger_than_the_validation_split_is_refused_before_anything_is_written() {
    let dir = scratch("sweep-small-validation");
    let ids: Vec<u8> = (0..20_000).flat_map(|i: usize| (((i * 7) % 64) as u16).to_le_bytes()).collect();
    std::fs::write(dir.join("train.bin"), ids).unwrap();
    let data =
        "kind = \"tokens\"\ntrain = \"train.bin\"\ndtype = \"u16\"\nvocab_size = 64\nvalidation_fraction = 0.001";
    let text = sweep_config("tiny-val", "").replace("kind = \"synthetic\"\nvocab_size = 256\nn_quanta = 512", data);
    let config = write(&dir, "sweep.toml", &text);
    let results = dir.join("results");
    let out = run(&sweep_args(&config, &results));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    for needle in ["sweep.toml", "train.eval_tokens", "the validation split holds 20 tokens"] {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    assert!(!results.join("tiny-val").exists(), "nothing written");
    // `plan` shows it among its checks.
    let out = run(&["plan", config.to_str().unwrap()]);
    let shown = format!("{}{}", stdout(&out), stderr(&out));
    assert!(shown.contains("`sweep` refuses this data") && shown.contains("train.eval_tokens"), "{shown}");
    // `train` refuses its single run the same way.
    let text = tiny_run_config("tiny-val-run", "").replace("kind = \"synthetic\"", data);
    let config = write(&dir, "run.toml", &text);
    let out = run(&["train", config.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("run.toml") && err.contains("train.eval_tokens"), "{err}");
    assert!(!results.exists(), "nothing written");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_reuse_directory_that_is_not_a_sweep_is_refused_before_anything_is_written() {
    let dir = scratch("sweep-reuse-missing");
    let config = write(&dir, "sweep.toml", &sweep_config("reuse-missing", ""));
    let results = dir.join("results");
    let missing = dir.join("nonexistent");
    let mut args = sweep_args(&config, &results);
    args.extend(["--reuse", missing.to_str().unwrap()]);
    let out = run(&args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("nonexistent") && err.contains("not a sweep directory"), "{err}");
    assert!(!results.join("reuse-missing").exists(), "nothing written");
    std::fs::remove_dir_all(&dir).unwrap();
}
