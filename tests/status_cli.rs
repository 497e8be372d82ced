//! `sweeplaw status` on a sweep directory holding every state: a real sweep's records, then
//! copies of them edited into running, stale, pending, diverged and failed runs.

use std::path::Path;

use crate::common::*;
use crate::sweep_cli::sweep_config;

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

fn edit_record(run_dir: &Path, status: &str, reason: Option<&str>, keep_result: bool) {
    let path = run_dir.join("run.json");
    let mut record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    record["status"] = status.into();
    record["reason"] = reason.map(Into::into).unwrap_or(serde_json::Value::Null);
    if !keep_result {
        record["result"] = serde_json::Value::Null;
        record["finished_at_unix"] = serde_json::Value::Null;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&record).unwrap()).unwrap();
}

/// Keeps the header and the first `rows` rows of metrics.csv, plus half a row (a write in flight).
fn cut_metrics(run_dir: &Path, rows: usize) -> Vec<String> {
    let path = run_dir.join("metrics.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let kept: Vec<String> = lines[..=rows].iter().map(|l| l.to_string()).collect();
    let partial = &lines[rows + 1][..10];
    std::fs::write(&path, format!("{}\n{partial}", kept.join("\n"))).unwrap();
    kept
}

fn write_claim(run_dir: &Path, worker: &str, heartbeat_age_s: f64) {
    let heartbeat = now() - heartbeat_age_s;
    let claim = serde_json::json!({
        "worker": worker, "pid": 4242, "hostname": "node7", "token": format!("{worker}-token"),
        "claimed_at_unix": heartbeat - 30.0, "heartbeat_unix": heartbeat,
    });
    std::fs::write(run_dir.join("claim.json"), claim.to_string()).unwrap();
}

#[test]
fn status_shows_every_state_progress_and_an_eta() {
    let dir = scratch("status");
    let config =
        write(&dir, "sweep.toml", &sweep_config("st", "").replace("n_layers = [1, 2]", "n_layers = [1, 2, 3]"));
    let results = dir.join("results");
    let out = run(&["sweep", config.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sweep = results.join("st");
    let sweep_arg = sweep.to_str().unwrap();

    // All done: --watch draws once and returns.
    let out = run(&["status", sweep_arg, "--watch"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("6 runs: 6 done.") && stdout(&out).contains("Finished."), "{}", stdout(&out));

    let ids = ["L1-d32-D10240-s0", "L1-d32-D20480-s0", "L2-d32-D10240-s0", "L2-d32-D20480-s0", "L3-d32-D10240-s0"];
    let runs = sweep.join("runs");
    for id in ids {
        assert!(runs.join(id).join("run.json").exists(), "{id}");
    }
    // running: 30 of 80 steps, a live claim.
    edit_record(&runs.join(ids[1]), "running", None, false);
    let running_rows = cut_metrics(&runs.join(ids[1]), 30);
    write_claim(&runs.join(ids[1]), "node7-task3", 2.0);
    // stale: 10 of 40 steps, its worker's heartbeat 10 minutes old.
    edit_record(&runs.join(ids[2]), "running", None, false);
    cut_metrics(&runs.join(ids[2]), 10);
    write_claim(&runs.join(ids[2]), "node2-task1", 600.0);
    // pending: never started.
    std::fs::remove_dir_all(runs.join(ids[3])).unwrap();
    edit_record(&runs.join(ids[4]), "diverged", Some("loss 9.1 above 1.5 × its minimum"), true);
    edit_record(&runs.join(ids[0]), "failed", Some("out of memory"), true);

    let out = run(&["status", sweep_arg, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let state: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let by_id = |id: &str| state["runs"].as_array().unwrap().iter().find(|r| r["run_id"] == id).unwrap().clone();
    assert_eq!(by_id(ids[0])["state"], "failed");
    assert_eq!(by_id(ids[0])["reason"], "out of memory");
    let running = by_id(ids[1]);
    assert_eq!(running["state"], "running");
    assert_eq!(running["worker"], "node7-task3");
    let age = running["heartbeat_age_s"].as_f64().unwrap();
    assert!((1.5..30.0).contains(&age), "heartbeat age {age}");
    // Progress and throughput from the newest complete metrics row (the half row is skipped).
    let last: Vec<&str> = running_rows.last().unwrap().split(',').collect();
    assert_eq!(running["tokens"], last[1].parse::<u64>().unwrap());
    assert_eq!(running["tokens"], 30 * 8 * 32);
    assert_eq!(running["budget_tokens"], 20480);
    assert_eq!(running["tokens_per_s"].as_f64().unwrap(), last[8].parse::<f64>().unwrap());
    let last_val: f64 =
        running_rows.iter().skip(1).rev().find_map(|l| l.split(',').nth(5).unwrap().parse().ok()).unwrap();
    assert_eq!(running["val_loss"].as_f64().unwrap(), last_val);
    let stale = by_id(ids[2]);
    assert_eq!((stale["state"].as_str(), stale["worker"].as_str()), (Some("stale"), Some("node2-task1")));
    assert!(stale["heartbeat_age_s"].as_f64().unwrap() >= 600.0);
    assert_eq!(stale["tokens"], 10 * 8 * 32);
    assert_eq!(by_id(ids[3])["state"], "pending");
    assert_eq!(by_id(ids[3])["tokens"], 0);
    assert_eq!(by_id(ids[4])["state"], "diverged");
    assert_eq!(by_id("L3-d32-D20480-s0")["state"], "done");
    // Totals: finished runs count what they trained; ETA = tokens left / the running throughput.
    let tokens: u64 = [10240, 30 * 256, 10 * 256, 0, 10240, 20480].iter().sum();
    assert_eq!(state["tokens"], tokens);
    assert_eq!(state["budget_tokens"], 10240 + 20480 + 10240 + 20480 + 10240 + 20480);
    let remaining = (20480 - 30 * 256) + (10240 - 10 * 256) + 20480;
    let rate = last[8].parse::<f64>().unwrap();
    assert!((state["eta_s"].as_f64().unwrap() - remaining as f64 / rate).abs() < 1e-6 * remaining as f64 / rate);

    // The table says the same for people.
    let out = run(&["status", sweep_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let row = table.lines().find(|l| l.starts_with(ids[1])).unwrap();
    assert!(row.contains("running") && row.contains("node7-task3 (") && row.contains("7.7k/20.5k"), "{row}");
    assert!(row.contains("38%"), "{row}");
    assert!(table.contains("6 runs: 1 done, 1 running, 1 stale, 1 pending, 1 diverged, 1 failed."), "{table}");
    assert!(table.contains("ETA ") && table.contains("tokens/s"), "{table}");

    // Not a sweep directory: one line, exit 1; a bad flag value: exit 2.
    let out = run(&["status", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no plan.json"), "{}", stderr(&out));
    let out = run(&["status", sweep_arg, "--interval", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn status_without_plan_json_reads_the_run_folders_and_says_what_it_cannot_know() {
    let dir = scratch("status-no-plan");
    let results = dir.join("results");
    // A `train` folder never has a plan.json.
    let run_config = write(&dir, "run1.toml", &tiny_run_config("run1", ""));
    let out = run(&["train", run_config.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["status", results.join("run1").to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.contains("1 runs: 1 done.") && table.contains("41.0k/41.0k"), "{table}");
    assert!(table.contains("warning: ") && table.contains("no plan.json") && table.contains("not known"), "{table}");
    // A sweep whose plan.json was deleted, with one run not started: the others are listed.
    let config = write(&dir, "sweep.toml", &sweep_config("np", "").replace("n_layers = [1, 2]", "n_layers = [1]"));
    let out = run(&["sweep", config.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sweep = results.join("np");
    std::fs::remove_file(sweep.join("plan.json")).unwrap();
    std::fs::remove_dir_all(sweep.join("runs/L1-d32-D20480-s0")).unwrap();
    let out = run(&["status", sweep.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let state: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let runs = state["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{state}");
    assert_eq!((runs[0]["run_id"].as_str(), runs[0]["state"].as_str()), (Some("L1-d32-D10240-s0"), Some("done")));
    assert_eq!(runs[0]["budget_tokens"], 10240);
    assert!(state["warnings"][0].as_str().unwrap().contains("no plan.json"), "{state}");
    // A file where runs/ goes: one error naming it.
    std::fs::remove_dir_all(sweep.join("runs")).unwrap();
    std::fs::write(sweep.join("runs"), "a file").unwrap();
    let out = run(&["status", sweep.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(stderr(&out).trim(), format!("error: {}: exists and is not a directory", sweep.join("runs").display()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_where_a_run_folder_goes_is_one_warning_naming_it() {
    let dir = scratch("status-file-run");
    let config = write(&dir, "sweep.toml", &sweep_config("fr", ""));
    let results = dir.join("results");
    let out = run(&["slurm", config.to_str().unwrap(), "--results", results.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run_folder = results.join("fr/runs/L1-d32-D10240-s0");
    std::fs::write(&run_folder, "a file").unwrap();
    let out = run(&["status", results.join("fr").to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let warnings: Vec<&str> = table.lines().filter(|l| l.starts_with("warning: ")).collect();
    let expected = format!("warning: {}: exists and is not a directory", run_folder.display());
    assert_eq!(warnings, vec![expected.as_str()], "{table}");
    std::fs::remove_dir_all(&dir).unwrap();
}
