//! Nothing lost, nothing hung, nothing silently wrong: records that another config or a damaged
//! file must not replace, bad run folders and checkpoints that must not stop a sweep, tampered
//! checkpoints, ambiguous CSV headers, huge losses on an axis, signals, and the messages a user
//! reads on each failure. Every test drives the real binary.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::sweep_cli::{all_losses, run_to_end, statuses, sweep_args, sweep_config};

/// A sweep of 2 sizes × 1 budget (40 steps each, checkpoints every 4): quick to train.
fn small_sweep(name: &str) -> String {
    sweep_config(name, "").replace("tokens = [10240, 20480]", "tokens = [10240]")
}

fn train_args<'a>(config: &'a Path, results: &'a Path) -> Vec<&'a str> {
    vec!["train", config.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"]
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn train_refuses_to_replace_a_finished_run_of_another_config() {
    let dir = scratch("rel-train-other-config");
    let text = tiny_run_config("same", "").replace("tokens = 40960", "tokens = 8192");
    let config = write(&dir, "run.toml", &text);
    let results = dir.join("results");
    run_to_end(&train_args(&config, &results));
    let run_json = results.join("same/runs/same/run.json");
    let before = read(&run_json);
    let metrics = read(&results.join("same/runs/same/metrics.csv"));
    write(&dir, "run.toml", &text.replace("lr = 1e-2", "lr = 1e-4"));
    let out = run(&train_args(&config, &results));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("another config") && err.contains("run.toml"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(read(&run_json), before, "the finished run is kept");
    assert_eq!(read(&results.join("same/runs/same/metrics.csv")), metrics);
    // The config as it was: nothing to do, exit 0.
    write(&dir, "run.toml", &text);
    assert!(run_to_end(&train_args(&config, &results)).contains("run same: done"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn train_refuses_a_name_that_is_an_existing_sweeps_directory() {
    let dir = scratch("rel-train-into-sweep");
    let sweep = write(&dir, "sweep.toml", &small_sweep("shared"));
    let results = dir.join("results");
    run_to_end(&sweep_args(&sweep, &results));
    let sweep_dir = results.join("shared");
    let (toml, summary) = (read(&sweep_dir.join("sweep.toml")), read(&sweep_dir.join("summary.csv")));
    let text = tiny_run_config("shared", "").replace("tokens = 40960", "tokens = 4096");
    let config = write(&dir, "run.toml", &text);
    let out = run(&train_args(&config, &results));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("sweep") && err.contains("shared"), "{err}");
    assert_eq!(read(&sweep_dir.join("sweep.toml")), toml);
    assert_eq!(read(&sweep_dir.join("summary.csv")), summary);
    assert!(!sweep_dir.join("runs/shared").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_damaged_run_json_of_a_finished_run_is_reported_and_kept_never_silently_replaced() {
    let dir = scratch("rel-damaged-run-json");
    let config = write(&dir, "sweep.toml", &small_sweep("damaged"));
    let results = dir.join("results");
    run_to_end(&sweep_args(&config, &results));
    let sweep_dir = results.join("damaged");
    let reference = all_losses(&sweep_dir);
    let run_dir = sweep_dir.join("runs/L1-d32-D10240-s0");
    let good_json = read(&run_dir.join("run.json"));
    let damages: Vec<(&str, Vec<u8>)> = vec![
        ("bom", [b"\xef\xbb\xbf".as_slice(), &good_json].concat()),
        ("truncated", good_json[..good_json.len() / 2].to_vec()),
        (
            "nan",
            String::from_utf8(good_json.clone())
                .unwrap()
                .replacen("\"val_loss\": ", "\"val_loss\": NaN, \"x\": ", 1)
                .into_bytes(),
        ),
        (
            "missing field",
            String::from_utf8(good_json.clone()).unwrap().replacen("\"status\"", "\"statuz\"", 1).into_bytes(),
        ),
    ];
    for (what, bytes) in damages {
        let metrics = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
        std::fs::write(run_dir.join("run.json"), &bytes).unwrap();
        let out = run(&sweep_args(&config, &results));
        let err = stderr(&out);
        assert!(out.status.success(), "{what}: {err}");
        assert!(err.contains("L1-d32-D10240-s0/run.json") && err.contains("damaged"), "{what}: {err}");
        // The damaged record and the metrics it described are kept beside the run, named.
        let kept: Vec<String> = std::fs::read_dir(&run_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("damaged"))
            .collect();
        let kept_json = kept.iter().find(|n| n.starts_with("run.json")).unwrap_or_else(|| panic!("{what}: {kept:?}"));
        let kept_metrics = kept.iter().find(|n| n.starts_with("metrics.csv")).unwrap_or_else(|| panic!("{kept:?}"));
        assert!(read(&run_dir.join(kept_json)) == bytes, "{what}: the damaged run.json is kept as it was");
        assert!(std::fs::read_to_string(run_dir.join(kept_metrics)).unwrap() == metrics, "{what}: metrics kept");
        assert!(err.contains(kept_json.as_str()), "{what}: the message names where it went: {err}");
        for name in kept {
            std::fs::remove_file(run_dir.join(name)).unwrap();
        }
        // Retrained from scratch on the CPU, the run's losses are the ones it had.
        assert_eq!(all_losses(&sweep_dir), reference, "{what}");
        assert_eq!(statuses(&sweep_dir), vec!["done"; 2], "{what}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_plan_json_another_config_is_still_refused_by_sweep_toml_and_the_run_records() {
    let dir = scratch("rel-no-plan");
    let results = dir.join("results");
    let config = write(&dir, "sweep.toml", &small_sweep("ident"));
    run_to_end(&sweep_args(&config, &results));
    let sweep_dir = results.join("ident");
    let toml = read(&sweep_dir.join("sweep.toml"));
    std::fs::remove_file(sweep_dir.join("plan.json")).unwrap();
    let other = write(&dir, "other.toml", &small_sweep("ident").replace("lr = 1e-2", "lr = 9e-2"));
    let out = run(&sweep_args(&other, &results));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("belongs to another config"), "{err}");
    // The hint names the command that has --reuse (`tune` refuses with the same words).
    assert!(err.contains("`sweeplaw sweep --reuse <this directory>`"), "{err}");
    assert_eq!(read(&sweep_dir.join("sweep.toml")), toml);
    assert!(!sweep_dir.join("plan.json").exists());
    // sweep.toml gone too: the run records still say whose directory it is.
    std::fs::remove_file(sweep_dir.join("sweep.toml")).unwrap();
    let out = run(&sweep_args(&other, &results));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("belongs to another config") && err.contains("run.json"), "{err}");
    // The config the directory belongs to takes it back, with nothing to train.
    assert!(run_to_end(&sweep_args(&config, &results)).contains("trained 0, already done 2"));
    assert!(sweep_dir.join("plan.json").exists() && sweep_dir.join("sweep.toml").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn one_bad_run_folder_fails_that_run_and_the_sweep_goes_on() {
    let dir = scratch("rel-bad-run-folder");
    let config = write(&dir, "sweep.toml", &sweep_config("folders", ""));
    let results = dir.join("results");
    let runs = results.join("folders/runs");
    std::fs::create_dir_all(&runs).unwrap();
    // A dangling symlink where one run's folder goes; a directory where another's run.json goes.
    std::os::unix::fs::symlink(dir.join("nowhere"), runs.join("L1-d32-D10240-s0")).unwrap();
    std::fs::create_dir_all(runs.join("L2-d32-D10240-s0/run.json")).unwrap();
    let out = run(&sweep_args(&config, &results));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.starts_with(b"sweep "), "the sweep reports its end: {}", stdout(&out));
    assert!(stdout(&out).contains("trained 3") && stdout(&out).contains("failed 1"), "{}", stdout(&out));
    assert!(err.contains("L1-d32-D10240-s0"), "{err}");
    let status = |id: &str| {
        let summary = std::fs::read_to_string(results.join("folders/summary.csv")).unwrap();
        summary.lines().find(|l| l.starts_with(id)).unwrap().split(',').nth(1).unwrap().to_string()
    };
    assert_eq!(status("L2-d32-D10240-s0"), "done", "a run.json that is a directory is moved aside");
    assert_eq!(status("L2-d32-D20480-s0"), "done");
    assert_eq!(status("L1-d32-D20480-s0"), "done");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_checkpoint_replaced_by_a_file_or_a_directory_does_not_fail_the_run() {
    let dir = scratch("rel-bad-checkpoint");
    let config = write(&dir, "sweep.toml", &small_sweep("ckpt"));
    let (reference, broken) = (dir.join("reference"), dir.join("broken"));
    run_to_end(&sweep_args(&config, &reference));
    let checkpoints = |run: &str| broken.join("ckpt/runs").join(run).join("checkpoint");
    // A step directory replaced by a file; a checkpoint file replaced by a directory.
    std::fs::create_dir_all(checkpoints("L1-d32-D10240-s0")).unwrap();
    std::fs::write(checkpoints("L1-d32-D10240-s0").join("step-0000000004"), b"a file").unwrap();
    let step = checkpoints("L2-d32-D10240-s0").join("step-0000000008");
    std::fs::create_dir_all(step.join("model.safetensors")).unwrap();
    std::fs::write(step.join("state.json"), r#"{"format_version":1,"step":8,"tokens":2048,"elapsed_s":0.0}"#).unwrap();
    let out = run(&sweep_args(&config, &broken));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(statuses(&broken.join("ckpt")), vec!["done"; 2]);
    assert_eq!(all_losses(&broken.join("ckpt")), all_losses(&reference.join("ckpt")));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Waits for `child` up to `limit`; kills it and fails the test when it is still running.
pub fn wait_within(mut child: std::process::Child, limit: Duration, what: &str) -> std::process::Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The checkpoints in `dir` that have a state.json, oldest first.
fn complete_checkpoints(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("state.json").is_file()).collect())
        .unwrap_or_default();
    found.sort();
    found
}

/// The newest checkpoint (by step) in `dir` that has a state.json.
fn newest_checkpoint(dir: &Path) -> Option<std::path::PathBuf> {
    complete_checkpoints(dir).pop()
}

/// Spawns `args`, waits until `dir` holds `count` checkpoints with a state.json, then returns the
/// still-running child (the test fails after 60 s without them).
fn spawn_until_checkpoints(args: &[&str], dir: &Path, count: usize) -> std::process::Child {
    let mut child = crate::sweep_cli::spawn(args);
    let started = Instant::now();
    loop {
        let n = std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok()).filter(|e| e.path().join("state.json").is_file()).count())
            .unwrap_or(0);
        if n >= count {
            return child;
        }
        if started.elapsed() > Duration::from_secs(60) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("no {count} checkpoints in {} within 60 s", dir.display());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_checkpoint_whose_step_was_edited_is_corrupt_and_the_previous_one_is_used() {
    let dir = scratch("rel-edited-step");
    let config = write(&dir, "sweep.toml", &small_sweep("edited"));
    let (reference, edited) = (dir.join("reference"), dir.join("edited"));
    run_to_end(&sweep_args(&config, &reference));
    let checkpoints = edited.join("edited/runs/L1-d32-D10240-s0/checkpoint");
    let mut child = spawn_until_checkpoints(&sweep_args(&config, &edited), &checkpoints, 2);
    let _ = child.kill();
    let _ = child.wait();
    let newest = newest_checkpoint(&checkpoints).unwrap();
    let state_path = newest.join("state.json");
    let state: serde_json::Value = serde_json::from_slice(&read(&state_path)).unwrap();
    let step = state["step"].as_u64().unwrap();
    let text = String::from_utf8(read(&state_path)).unwrap();
    std::fs::write(&state_path, text.replace(&format!("\"step\": {step},"), &format!("\"step\": {},", step + 12)))
        .unwrap();
    let out = run(&sweep_args(&config, &edited));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("state.json") && err.contains(&format!("step {}", step + 12)), "{err}");
    assert_eq!(all_losses(&edited.join("edited")), all_losses(&reference.join("edited")));
    // A weight file swapped for another step's is caught by its checksum.
    std::fs::remove_dir_all(&edited).unwrap();
    let mut child = spawn_until_checkpoints(&sweep_args(&config, &edited), &checkpoints, 2);
    let _ = child.kill();
    let _ = child.wait();
    // The two newest complete checkpoints (the kill may land between a third's save and the prune).
    let complete = complete_checkpoints(&checkpoints);
    let [.., older, newer] = &complete[..] else { panic!("two complete checkpoints") };
    std::fs::write(newer.join("model.safetensors"), read(&older.join("model.safetensors"))).unwrap();
    let out = run(&sweep_args(&config, &edited));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("model.safetensors: checksum"), "{err}");
    assert_eq!(all_losses(&edited.join("edited")), all_losses(&reference.join("edited")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_huge_loss_in_the_records_does_not_hang_plot_or_report() {
    let dir = scratch("rel-huge-loss");
    let config = write(&dir, "sweep.toml", &small_sweep("huge"));
    let results = dir.join("results");
    run_to_end(&sweep_args(&config, &results));
    let sweep_dir = results.join("huge");
    let summary = std::fs::read_to_string(sweep_dir.join("summary.csv")).unwrap();
    let mut lines: Vec<String> = summary.lines().map(String::from).collect();
    let mut cells: Vec<String> = lines[1].split(',').map(String::from).collect();
    cells[13] = "1e300".into(); // val_loss
    lines[1] = cells.join(",");
    std::fs::write(sweep_dir.join("summary.csv"), lines.join("\n") + "\n").unwrap();
    let metrics = sweep_dir.join("runs/L1-d32-D10240-s0/metrics.csv");
    let text = std::fs::read_to_string(&metrics).unwrap();
    let mut rows: Vec<String> = text.lines().map(String::from).collect();
    // An evaluation row (one with a val_loss: the curve the figures draw), train_loss and
    // val_loss both huge.
    let row = (1..rows.len()).find(|&i| rows[i].split(',').nth(5).is_some_and(|v| !v.is_empty())).unwrap();
    let mut cells: Vec<String> = rows[row].split(',').map(String::from).collect();
    cells[4] = "1e300".into(); // train_loss
    cells[5] = "1e300".into(); // val_loss
    rows[row] = cells.join(",");
    std::fs::write(&metrics, rows.join("\n") + "\n").unwrap();
    for command in ["plot", "report"] {
        let child = crate::sweep_cli::spawn(&[command, sweep_dir.to_str().unwrap()]);
        let out = wait_within(child, Duration::from_secs(120), command);
        assert!(!stderr(&out).contains("panicked"), "{command}: {}", stderr(&out));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `sweep` with the default --stale-after (120 s): a rerun that waited on a stale claim would
/// take minutes.
fn sweep_default_stale<'a>(config: &'a Path, results: &'a Path) -> Vec<&'a str> {
    vec!["sweep", config.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"]
}

fn claim_files(sweep_dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for run in std::fs::read_dir(sweep_dir.join("runs")).unwrap() {
        let run = run.unwrap().path();
        if run.join("claim.json").exists() {
            found.push(run.display().to_string());
        }
    }
    found
}

fn send(signal: &str, child: &std::process::Child) {
    let status = std::process::Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill {signal}");
}

#[test]
fn sigint_and_sigterm_stop_after_a_checkpoint_and_release_the_claims_then_a_rerun_resumes_at_once() {
    let dir = scratch("rel-signals");
    let config = write(&dir, "sweep.toml", &small_sweep("signals"));
    let reference = dir.join("reference");
    run_to_end(&sweep_args(&config, &reference));
    for (signal, code) in [("-INT", 130), ("-TERM", 143)] {
        let results = dir.join(format!("results{signal}"));
        let sweep_dir = results.join("signals");
        let checkpoints = sweep_dir.join("runs/L1-d32-D10240-s0/checkpoint");
        let child = spawn_until_checkpoints(&sweep_default_stale(&config, &results), &checkpoints, 1);
        send(signal, &child);
        let out = wait_within(child, Duration::from_secs(60), "the signalled sweep");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{signal}: {err}");
        let name = if code == 130 { "SIGINT" } else { "SIGTERM" };
        assert!(err.contains(&format!("stopped by {name}")), "{err}");
        assert!(err.contains("L1-d32-D10240-s0 after step") && err.contains("checkpoint"), "{err}");
        assert!(err.contains("resume with: sweeplaw sweep"), "{err}");
        assert_eq!(claim_files(&sweep_dir), Vec::<String>::new(), "claims are released");
        let step: u64 = err.split("after step ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        let newest = newest_checkpoint(&checkpoints).expect("a checkpoint to resume from");
        assert!(newest.ends_with(format!("step-{step:010}")), "{} for step {step}", newest.display());
        let started = Instant::now();
        let out = run_to_end(&sweep_default_stale(&config, &results));
        assert!(started.elapsed() < Duration::from_secs(60), "the rerun waited: {out}");
        assert_eq!(all_losses(&sweep_dir), all_losses(&reference.join("signals")), "{signal}");
    }
    // A worker killed outright leaves its claim; on the same host the rerun takes it over at once.
    let results = dir.join("killed");
    let checkpoints = results.join("signals/runs/L1-d32-D10240-s0/checkpoint");
    let mut child = spawn_until_checkpoints(&sweep_default_stale(&config, &results), &checkpoints, 1);
    let _ = child.kill();
    let _ = child.wait();
    assert!(!claim_files(&results.join("signals")).is_empty(), "kill -9 leaves the claim");
    let started = Instant::now();
    run_to_end(&sweep_default_stale(&config, &results));
    assert!(started.elapsed() < Duration::from_secs(60), "waited on a dead worker's claim");
    assert_eq!(all_losses(&results.join("signals")), all_losses(&reference.join("signals")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_worker_waiting_on_a_live_claim_says_so() {
    let dir = scratch("rel-waiting");
    let config = write(&dir, "sweep.toml", &small_sweep("waiting"));
    let results = dir.join("results");
    let run_dir = results.join("waiting/runs/L1-d32-D10240-s0");
    std::fs::create_dir_all(&run_dir).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    // Held by this test process, alive, with a fresh heartbeat.
    let claim = serde_json::json!({
        "worker": "other:1", "pid": std::process::id(), "hostname": host, "token": "t",
        "claimed_at_unix": now, "heartbeat_unix": now + 30.0,
    });
    std::fs::write(run_dir.join("claim.json"), claim.to_string()).unwrap();
    let child = crate::sweep_cli::spawn(&sweep_default_stale(&config, &results));
    std::thread::sleep(Duration::from_secs(4));
    std::fs::remove_file(run_dir.join("claim.json")).unwrap();
    let out = wait_within(child, Duration::from_secs(120), "the waiting sweep");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("waiting for run L1-d32-D10240-s0: worker other:1 holds it"), "{err}");
    assert_eq!(err.matches("waiting for run").count(), 1, "said once: {err}");
    assert!(stdout(&out).contains("trained 2"), "{}", stdout(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_claim_whose_heartbeat_is_in_the_future_is_taken_over_once_it_stops_changing() {
    let dir = scratch("rel-future-claim");
    let config = write(&dir, "sweep.toml", &small_sweep("future"));
    let results = dir.join("results");
    let run_dir = results.join("future/runs/L1-d32-D10240-s0");
    std::fs::create_dir_all(&run_dir).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    // A worker on another host whose clock ran a day ahead, dead since.
    let claim = serde_json::json!({
        "worker": "ahead:1", "pid": 1, "hostname": "a-host-whose-clock-runs-ahead", "token": "t",
        "claimed_at_unix": now + 86_400.0, "heartbeat_unix": now + 86_400.0,
    });
    std::fs::write(run_dir.join("claim.json"), claim.to_string()).unwrap();
    let child = crate::sweep_cli::spawn(&sweep_args(&config, &results));
    let out = wait_within(child, Duration::from_secs(120), "the sweep waiting on a claim from the future");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("waiting for run L1-d32-D10240-s0: worker ahead:1 holds it"), "{err}");
    assert_eq!(statuses(&results.join("future")), vec!["done"; 2]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A folder made read-only (a read-only bind mount of itself when root, since root writes
/// through permission bits; mode 0555 otherwise), made writable again on drop.
struct ReadOnly(std::path::PathBuf, bool);

impl ReadOnly {
    fn make(path: &Path) -> Option<ReadOnly> {
        use std::os::unix::fs::PermissionsExt;
        if !crate::bad_input::is_root() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o555)).unwrap();
            return Some(ReadOnly(path.to_path_buf(), false));
        }
        let mount = |args: &[&str]| {
            std::process::Command::new("mount")
                .args(args)
                .arg(path)
                .arg(path)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !mount(&["--bind"]) {
            return None;
        }
        let guard = ReadOnly(path.to_path_buf(), true);
        mount(&["-o", "remount,bind,ro"]).then_some(guard)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.1 {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        } else {
            let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
        }
    }
}

#[test]
fn a_read_only_sweep_directory_is_one_error_before_any_training() {
    let dir = scratch("rel-read-only");
    let config = write(&dir, "sweep.toml", &small_sweep("ro"));
    let results = dir.join("results");
    // The sweep directory made (plan.json, sweep.toml, runs/) without training anything.
    let out = run(&["slurm", config.to_str().unwrap(), "--results", results.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sweep_dir = results.join("ro");
    let Some(read_only) = ReadOnly::make(&sweep_dir) else {
        let why = "a read-only results directory is a read-only bind mount, and mounting needs permission here";
        sweeplaw::requirements::skip("mount", "the read-only sweep directory test", why);
        return;
    };
    let before = crate::bad_input::snapshot(&sweep_dir);
    let out = run(&sweep_args(&config, &results));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(&format!("{}: the results directory is not writable (", sweep_dir.display())), "{err}");
    assert_eq!(err.matches("os error").count().max(err.matches("Permission denied").count()), 1, "{err}");
    assert!(!err.contains("warning") && !err.contains("failed"), "refused before the plan checks and training: {err}");
    assert_eq!(crate::bad_input::snapshot(&sweep_dir), before);
    drop(read_only);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_where_runs_or_a_run_folder_goes_is_named_once_before_any_training() {
    let dir = scratch("rel-file-for-folder");
    let config = write(&dir, "sweep.toml", &small_sweep("files"));
    let results = dir.join("results");
    let sweep_dir = results.join("files");
    let run_folder = sweep_dir.join("runs/L2-d32-D10240-s0");
    let elsewhere = write(&dir, "elsewhere.txt", "a file");
    // A file where runs/ goes, a file where a run's folder goes, a link to a file there.
    for (file, link_to) in [(sweep_dir.join("runs"), None), (run_folder.clone(), None), (run_folder, Some(&elsewhere))]
    {
        let _ = std::fs::remove_dir_all(&results);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        match link_to {
            Some(target) => std::os::unix::fs::symlink(target, &file).unwrap(),
            None => std::fs::write(&file, "a file").unwrap(),
        }
        let before = crate::bad_input::snapshot(&results);
        for command in ["sweep", "slurm"] {
            let mut args = sweep_args(&config, &results);
            args[0] = command;
            if command == "slurm" {
                args.retain(|a| *a != "--quiet");
            }
            let out = run(&args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{command}: {err}");
            assert_eq!(err.trim(), format!("error: {}: exists and is not a directory", file.display()), "{command}");
            assert_eq!(crate::bad_input::snapshot(&results), before, "{command}: nothing written");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_divergence_names_the_quantity_that_was_not_finite() {
    let dir = scratch("rel-diverge-reason");
    let text = tiny_run_config("wild", "").replace("lr = 1e-2", "lr = 1e30").replace("tokens = 40960", "tokens = 8192");
    let config = write(&dir, "run.toml", &text);
    let out = run_to_end(&train_args(&config, &dir.join("results")));
    assert!(out.contains("run wild: diverged"), "{out}");
    let reason = out.split("reason: ").nth(1).unwrap().trim();
    let (quantity, rest) = reason.split_once(" is ").unwrap_or_else(|| panic!("{reason}"));
    assert!(["training loss", "validation loss"].contains(&quantity), "{reason}");
    let value: f64 = rest.split(' ').next().unwrap().parse().unwrap();
    assert!(!value.is_finite(), "the named {quantity} is {value}, finite: {reason}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn messages_name_each_thing_once_and_point_to_the_right_command() {
    let dir = scratch("rel-messages");
    // The config path once, not "training run.toml: run.toml: ...".
    let bad = write(&dir, "run.toml", &tiny_run_config("m", "").replace("n_heads = 2", "n_heads = 3"));
    let out = run(&train_args(&bad, &dir.join("results")));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).matches("run.toml").count(), 1, "{}", stderr(&out));
    // An OS error once, not "(os error 20): ...(os error 20)".
    let good = write(&dir, "good.toml", &tiny_run_config("m", "").replace("tokens = 40960", "tokens = 4096"));
    let file = write(&dir, "a-file", "");
    let out = run(&train_args(&good, &file.join("results")));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("os error").count(), 1, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // A sweep config given to train.
    let sweep = write(&dir, "sweep.toml", &small_sweep("s"));
    let out = run(&train_args(&sweep, &dir.join("results")));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("this is a sweep config") && err.contains("sweeplaw sweep"), "{err}");
    // A name a shell would take for a flag.
    for config in
        [write(&dir, "flag.toml", &tiny_run_config("-rf", "")), write(&dir, "flag-sweep.toml", &small_sweep("-rf"))]
    {
        let command = if config.ends_with("flag.toml") { "train" } else { "sweep" };
        let out = run(&[command, config.to_str().unwrap(), "--results", dir.join("results").to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("\"-rf\"") && err.contains("'-'"), "{err}");
    }
    assert!(!dir.join("results/-rf").exists());
    // One run is "1 run".
    let results = dir.join("one");
    run_to_end(&train_args(&good, &results));
    assert!(run_to_end(&["summary", results.join("m").to_str().unwrap()]).contains("(1 run)"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_second_signal_stops_at_once() {
    let dir = scratch("rel-second-signal");
    let config = write(&dir, "sweep.toml", &small_sweep("twice"));
    let results = dir.join("results");
    let checkpoints = results.join("twice/runs/L1-d32-D10240-s0/checkpoint");
    let child = spawn_until_checkpoints(&sweep_default_stale(&config, &results), &checkpoints, 1);
    // Two different signals, microseconds apart (two of one kind could merge while pending),
    // both before the first step can finish and checkpoint: the second to be handled exits at
    // once with 128 + its number (the kernel may deliver them in either order).
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        assert_eq!(libc::kill(pid, libc::SIGINT), 0);
        assert_eq!(libc::kill(pid, libc::SIGTERM), 0);
    }
    let out = wait_within(child, Duration::from_secs(30), "the twice-signalled sweep");
    let err = stderr(&out);
    assert!(matches!(out.status.code(), Some(130 | 143)), "{:?}: {err}", out.status);
    assert!(!err.contains("resume with"), "no graceful stop: {err}");
    assert!(err.contains("second signal: stopping now"), "{err}");
    // Whatever the moment, a rerun finishes the sweep with the losses of an uninterrupted one.
    run_to_end(&sweep_default_stale(&config, &results));
    assert_eq!(statuses(&results.join("twice")), vec!["done"; 2]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_token_count_is_labelled_exactly_on_the_figures() {
    // Two budgets of 4096 and 10240 tokens: a legend rounded to two digits would read
    // "D = 4100 tokens", naming a run that does not exist.
    let dir = scratch("rel-exact-labels");
    let config = write(
        &dir,
        "sweep.toml",
        &sweep_config("labels", "").replace("tokens = [10240, 20480]", "tokens = [4096, 10240]"),
    );
    let results = dir.join("results");
    run_to_end(&sweep_args(&config, &results));
    let sweep_dir = results.join("labels");
    run_to_end(&["plot", sweep_dir.to_str().unwrap()]);
    let svg = std::fs::read_to_string(sweep_dir.join("figures/loss_vs_params.svg")).unwrap();
    let legends: Vec<&str> = svg.split('>').filter_map(|t| t.strip_prefix("D = ")).collect();
    assert!(svg.contains("D = 4096 tokens"), "the 4096-token budget's legend is exact: {legends:?}");
    assert!(!svg.contains("4100"), "no token count is rounded into another");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_corrupt_plan_json_or_summary_csv_names_the_command_that_recovers_it() {
    let dir = scratch("rel-recover");
    let results = dir.join("results");
    let config = write(&dir, "sweep.toml", &small_sweep("recover"));
    run_to_end(&sweep_args(&config, &results));
    let sweep_dir = results.join("recover");
    let sweep_dir_arg = sweep_dir.to_str().unwrap();
    // summary.csv with a header that does not parse: fit, plot and report say how to rebuild it.
    std::fs::write(sweep_dir.join("summary.csv"), b"run_id\xff,\n1\n").unwrap();
    for command in ["fit", "plot", "report"] {
        let out = run(&[command, sweep_dir_arg]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{command}: {err}");
        assert!(err.contains(&format!("`sweeplaw summary {sweep_dir_arg}`")), "{command}: {err}");
    }
    // Following the message recovers it.
    run_to_end(&["summary", sweep_dir_arg]);
    assert!(run_to_end(&["fit", sweep_dir_arg]).contains("points"));
    // plan.json that does not parse: sweep names the way back, and following it keeps the runs.
    std::fs::write(sweep_dir.join("plan.json"), "{garbage").unwrap();
    let out = run(&sweep_args(&config, &results));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("plan.json") && err.contains("move it aside and rerun `sweeplaw sweep`"), "{err}");
    std::fs::rename(sweep_dir.join("plan.json"), dir.join("plan.json.corrupt")).unwrap();
    assert!(run_to_end(&sweep_args(&config, &results)).contains("trained 0, already done 2"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fit_on_a_sweep_directory_counts_as_its_budgets_were_planned() {
    // Budgets planned under matmul_attn group into IsoFLOP sets only when fitted under it: a
    // default of 6n left a designed sweep with "0 usable" budgets. The N is the one the sweep
    // counted its tokens per parameter and seed threshold in.
    let dir = scratch("rel-fit-convention");
    let results = dir.join("results");
    let text = small_sweep("conv")
        .replace("[budget]\n", "[budget]\nflop_convention = \"matmul_attn\"\nparam_count = \"total\"\n");
    let config = write(&dir, "sweep.toml", &text);
    run_to_end(&sweep_args(&config, &results));
    let sweep_dir = results.join("conv");
    let sweep_dir_arg = sweep_dir.to_str().unwrap();
    assert!(run_to_end(&["fit", sweep_dir_arg, "--bootstrap", "0"]).contains("N = total, C = matmul_attn"));
    let json: serde_json::Value = serde_json::from_slice(&read(&sweep_dir.join("fit.json"))).expect("fit.json is JSON");
    assert_eq!((json["param_count"].as_str(), json["flop_count"].as_str()), (Some("total"), Some("matmul_attn")));
    let overridden =
        run_to_end(&["fit", sweep_dir_arg, "--bootstrap", "0", "--flops", "6n", "--params", "nonembedding"]);
    assert!(overridden.contains("N = nonembedding, C = 6n"), "{overridden}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `small_sweep` on train.bin, 20,000 u16 ids below 64 (a pattern shifted by `offset`; the last
/// tenth held out).
fn token_file_sweep(dir: &Path, name: &str, offset: usize) -> std::path::PathBuf {
    let ids: Vec<u8> = (0..20_000).flat_map(|i: usize| ((((i * 7) + offset) % 64) as u16).to_le_bytes()).collect();
    std::fs::write(dir.join("train.bin"), ids).unwrap();
    let data = "kind = \"tokens\"\ntrain = \"train.bin\"\ndtype = \"u16\"\nvocab_size = 64\nvalidation_fraction = 0.1";
    let text = small_sweep(name)
        .replace("kind = \"synthetic\"\nvocab_size = 256\nn_quanta = 512", data)
        .replace("eval_tokens = 2048", "eval_tokens = 1024");
    assert!(text.contains("train.bin"), "{text}");
    write(dir, "sweep.toml", &text)
}

#[test]
fn a_run_stopped_on_one_data_file_is_not_resumed_on_another() {
    let dir = scratch("rel-resume-changed-data");
    let config = token_file_sweep(&dir, "resume", 0);
    let original = read(&dir.join("train.bin"));
    let results = dir.join("results");
    let run_dir = results.join("resume/runs/L1-d32-D10240-s0");
    let child = spawn_until_checkpoints(&sweep_default_stale(&config, &results), &run_dir.join("checkpoint"), 1);
    send("-INT", &child);
    let out = wait_within(child, Duration::from_secs(60), "the signalled sweep");
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let checkpoint = newest_checkpoint(&run_dir.join("checkpoint")).expect("a checkpoint to resume from");
    let (run_json, metrics) = (read(&run_dir.join("run.json")), read(&run_dir.join("metrics.csv")));
    // The same number of tokens, other ids: only the file's sha256 tells them apart.
    token_file_sweep(&dir, "resume", 1);
    let out = run(&sweep_default_stale(&config, &results));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    for needle in ["run L1-d32-D10240-s0", "other data", "token_files_sha256", "restore the data", "aside"] {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    assert_eq!(read(&run_dir.join("run.json")), run_json, "the record is kept");
    assert_eq!(read(&run_dir.join("metrics.csv")), metrics);
    assert!(checkpoint.join("state.json").is_file(), "the checkpoint is kept");
    assert!(!run_dir.join("claim.json").exists(), "nothing claimed");
    // The data as it was: the run resumes and the sweep finishes, though started from another
    // working directory (so the token file is reached by another path, as a Slurm task's is).
    std::fs::write(dir.join("train.bin"), original).unwrap();
    let out =
        sweeplaw().current_dir(&dir).args(["sweep", "sweep.toml", "--results", "results", "--quiet"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("trained 2"), "{}", stdout(&out));
    assert_eq!(statuses(&results.join("resume")), ["done", "done"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
