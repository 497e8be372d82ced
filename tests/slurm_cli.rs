//! `sweeplaw slurm`: the sbatch script, and a real job array on a single-node Slurm cluster on
//! localhost when slurmctld, slurmd, munged and sbatch are installed (Debian's slurm-wlm and
//! munge) and the tests run as root; skipped with a message otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::sweep_cli::{statuses, sweep_config};

#[test]
fn the_script_runs_the_sweep_workers_as_an_array_over_the_shared_results() {
    let dir = scratch("slurm-script");
    let config = write(&dir, "sweep.toml", &sweep_config("array", ""));
    let results = dir.join("shared");
    let args = [
        "slurm",
        config.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--workers",
        "3",
        "--gpus-per-task",
        "1",
        "--partition",
        "gpu",
        "--time",
        "1:00:00",
    ];
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let script_path = results.join("array/slurm/array.sbatch");
    assert!(stdout(&out).contains(&format!("sbatch {}", script_path.display())), "{}", stdout(&out));
    let script = std::fs::read_to_string(&script_path).unwrap();
    let sweep_dir = results.join("array");
    for line in [
        "#SBATCH --array=0-2".to_string(),
        "#SBATCH --gpus-per-task=1".to_string(),
        "#SBATCH --partition=gpu".to_string(),
        "#SBATCH --time=1:00:00".to_string(),
        format!("#SBATCH --output={}/slurm/%A_%a.out", sweep_dir.display()),
        format!(
            "exec \"$SWEEPLAW\" sweep '{}' --results '{}' --worker \"$SLURM_ARRAY_TASK_ID/3\" \
             --stale-after 120 --quiet",
            config.display(),
            results.display()
        ),
    ] {
        assert!(script.lines().any(|l| l == line), "{line:?} not in\n{script}");
    }
    // The sweep directory is claimed for this config before anything is submitted.
    assert!(sweep_dir.join("plan.json").is_file() && sweep_dir.join("sweep.toml").is_file());
    let other = write(&dir, "other.toml", &sweep_config("array", "").replace("[10240, 20480]", "[5120]"));
    let out = run(&["slurm", other.to_str().unwrap(), "--results", results.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("belongs to another config"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs array task `task` of `script` as Slurm would start it, from another working directory.
fn run_task(script: &Path, task: usize) -> std::process::Output {
    Command::new("bash")
        .arg(script)
        .current_dir("/")
        .env("SLURM_ARRAY_TASK_ID", task.to_string())
        .env("SWEEPLAW", env!("CARGO_BIN_EXE_sweeplaw"))
        .output()
        .unwrap()
}

#[test]
fn the_tasks_find_the_files_the_config_names_by_relative_paths_and_refuse_it_once_edited() {
    use crate::data_formats::{text_sweep_config, write_corpus};
    let dir = scratch("slurm-relative");
    let project = dir.join("project");
    write_corpus(&project, 24);
    // files = ["corpus/*.txt"] and cache_dir = "cache": relative to the config's folder.
    write(&project, "tx.toml", &text_sweep_config("tx", "tokens = [512]", ""));
    let out = sweeplaw()
        .current_dir(&project)
        .args(["slurm", "tx.toml", "--results", "shared", "--workers", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let sweep_dir = project.join("shared/tx");
    let script = sweep_dir.join("slurm/tx.sbatch");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains(&format!("sweep '{}'", project.join("tx.toml").display())), "{text}");
    let out = run_task(&script, 0);
    assert!(out.status.success(), "the task failed: {}", stderr(&out));
    assert_eq!(statuses(&sweep_dir), vec!["done"]);
    assert!(project.join("cache").is_dir() && !sweep_dir.join("cache").exists(), "cache_dir beside the config");
    // The config edited after submission: the tasks refuse it rather than split the sweep.
    write(&project, "tx.toml", &text_sweep_config("tx", "tokens = [1024]", ""));
    let out = run_task(&script, 0);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("belongs to another config"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn impossible_sbatch_values_are_refused_with_one_line() {
    let dir = scratch("slurm-bad");
    let config = write(&dir, "sweep.toml", &sweep_config("bad", ""));
    let results = dir.join("shared");
    for (flag, value, says) in [
        ("--time", "banana", "not a Slurm time limit"),
        ("--time", "1:75", "not a Slurm time limit"),
        ("--cpus-per-task", "0", "--cpus-per-task must be at least 1"),
        ("--workers", "0", "--workers must be at least 1"),
    ] {
        let out = run(&["slurm", config.to_str().unwrap(), "--results", results.to_str().unwrap(), flag, value]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: a bad flag value is a usage error");
        assert!(err.contains(says) && err.trim().lines().count() == 1, "{flag} {value}: {err}");
    }
    let bogus = dir.join("not-a-sweep");
    let out = run(&[
        "slurm",
        config.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--reuse",
        bogus.to_str().unwrap(),
    ]);
    assert!(stderr(&out).contains("--reuse: not a sweep directory"), "{}", stderr(&out));
    assert!(!results.exists(), "nothing written for refused flags");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_out_that_would_replace_a_record_the_config_or_another_file_is_refused_before_anything_is_written() {
    let dir = scratch("slurm-out");
    let config = write(&dir, "sweep.toml", &sweep_config("out", ""));
    let config_text = std::fs::read_to_string(&config).unwrap();
    let slurm = |results: &Path, out: &Path| {
        run(&[
            "slurm",
            config.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    // Nothing written, not even the sweep directory, for an --out that is the results directory.
    let fresh = dir.join("fresh");
    let out = slurm(&fresh, &fresh);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("give the path of the script file"), "{}", stderr(&out));
    assert!(!fresh.exists(), "checked before anything is written");
    // A sweep directory with a record in it, and a script of an earlier `slurm`.
    let results = dir.join("shared");
    let out = run(&["slurm", config.to_str().unwrap(), "--results", results.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sweep_dir = results.join("out");
    let record = sweep_dir.join("runs/L1-d32-D10240-s0/run.json");
    std::fs::create_dir_all(record.parent().unwrap()).unwrap();
    std::fs::write(&record, "{\"a finished run\": true}").unwrap();
    let notes = write(&dir, "notes.txt", "mine");
    let kept: Vec<(PathBuf, String)> = [&record, &sweep_dir.join("plan.json"), &config, &notes]
        .iter()
        .map(|path| (path.to_path_buf(), std::fs::read_to_string(path).unwrap()))
        .collect();
    for (target, says) in [
        (record.clone(), "lies inside the sweep directory"),
        (sweep_dir.join("plan.json"), "lies inside the sweep directory"),
        (sweep_dir.join("slurm/../plan.json"), "lies inside the sweep directory"),
        (sweep_dir.join("runs/new.sbatch"), "lies inside the sweep directory"),
        (config.clone(), "is the config"),
        (dir.join(".").join("sweep.toml"), "is the config"),
        (notes.clone(), "exists and is not an sbatch script written by `sweeplaw slurm`"),
        (results.clone(), "give the path of the script file"),
        (sweep_dir.join("slurm"), "give the path of the script file"),
    ] {
        let out = slurm(&results, &target);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "--out {}: {err}", target.display());
        assert!(err.contains(says) && err.contains("--out ") && err.trim().lines().count() == 1, "{err}");
    }
    for (path, text) in &kept {
        assert_eq!(&std::fs::read_to_string(path).unwrap(), text, "{} was overwritten", path.display());
    }
    assert_eq!(std::fs::read_to_string(&config).unwrap(), config_text);
    // An earlier script is rewritten, in its place or anywhere outside the records.
    let default_script = sweep_dir.join("slurm/out.sbatch");
    let elsewhere = dir.join("jobs/out.sbatch");
    for target in [&default_script, &elsewhere, &elsewhere] {
        let out = slurm(&results, target);
        assert!(out.status.success(), "--out {}: {}", target.display(), stderr(&out));
        assert!(std::fs::read_to_string(target).unwrap().contains("#SBATCH --array=0-3"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_cluster_guide_points_to_status_for_progress() {
    let guide = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cluster.md")).unwrap();
    let text = guide.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("`sweeplaw status <results>/<name>` shows where the sweep stands"), "{text}");
    assert!(!text.contains("`sweeplaw summary <results>/<name>` shows"), "summary only rebuilds summary.csv");
    // The command it names exists and reads a sweep directory.
    let out = run(&["status", "--help"]);
    assert!(out.status.success() && stdout(&out).contains("--watch"), "{}", stdout(&out));
}

/// A local cluster started by scripts/slurm-local-cluster.sh, stopped on drop.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

impl Cluster {
    fn start(dir: &Path) -> Result<Cluster, String> {
        let missing: Vec<&str> =
            ["slurmctld", "slurmd", "munged", "sbatch"].into_iter().filter(|tool| !on_path(tool)).collect();
        if !missing.is_empty() {
            return Err(format!("{} not installed (apt-get install slurm-wlm munge)", missing.join(", ")));
        }
        if !crate::bad_input::is_root() {
            return Err("the local cluster's daemons run as root".into());
        }
        let out = Command::new(script()).arg("start").arg(dir).output().map_err(|e| e.to_string())?;
        let cluster = Cluster { dir: dir.to_path_buf(), conf: dir.join("slurm.conf") };
        if !out.status.success() {
            return Err(format!("the cluster did not start: {}", stderr(&out)));
        }
        Ok(cluster)
    }

    /// Submits `script` and waits for the whole array to end (at most 90 s).
    fn submit_and_wait(&self, script: &Path) {
        let out = Command::new("timeout")
            .args(["90", "sbatch", "--wait", "--quiet"])
            .arg(script)
            .env("SLURM_CONF", &self.conf)
            .env("SWEEPLAW", env!("CARGO_BIN_EXE_sweeplaw"))
            .output()
            .unwrap();
        assert!(out.status.success(), "sbatch --wait: {} {}", stdout(&out), stderr(&out));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm-local-cluster.sh")
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        || Path::new("/usr/sbin").join(tool).is_file()
}

/// The task logs (slurm/*.out), concatenated.
fn task_logs(sweep_dir: &Path) -> String {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(sweep_dir.join("slurm"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "out"))
        .collect();
    logs.sort();
    logs.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
}

#[test]
fn a_job_array_on_a_local_slurm_cluster_trains_the_sweep_and_a_resubmission_only_what_is_missing() {
    let dir = scratch("slurm-cluster");
    let cluster = match Cluster::start(&dir.join("cluster")) {
        Ok(cluster) => cluster,
        Err(why) => {
            sweeplaw::requirements::skip("slurm", "the Slurm cluster test", &why);
            return;
        }
    };
    let config = write(&dir, "sweep.toml", &sweep_config("cluster", ""));
    let results = dir.join("shared");
    let args = ["slurm", config.to_str().unwrap(), "--results", results.to_str().unwrap(), "--workers", "2"];
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let sweep_dir = results.join("cluster");
    let script = sweep_dir.join("slurm/cluster.sbatch");
    cluster.submit_and_wait(&script);
    assert_eq!(statuses(&sweep_dir), vec!["done"; 4], "{}", task_logs(&sweep_dir));
    assert_eq!(task_logs(&sweep_dir).matches("trained 2, already done 0").count(), 2, "{}", task_logs(&sweep_dir));
    // A lost run (as if its task had died before recording it): resubmitting trains it alone.
    std::fs::remove_dir_all(sweep_dir.join("runs/L2-d32-D10240-s0")).unwrap();
    for log in std::fs::read_dir(sweep_dir.join("slurm")).unwrap() {
        let path = log.unwrap().path();
        if path.extension().is_some_and(|e| e == "out") {
            std::fs::remove_file(path).unwrap();
        }
    }
    cluster.submit_and_wait(&script);
    assert_eq!(statuses(&sweep_dir), vec!["done"; 4]);
    let logs = task_logs(&sweep_dir);
    assert!(logs.contains("trained 1, already done 1"), "{logs}");
    assert!(logs.contains("trained 0, already done 2"), "{logs}");
    drop(cluster);
    // The daemons may still be writing their state as they exit.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reuse_at_submission_copies_the_shared_finished_runs_so_the_tasks_train_only_the_rest() {
    let dir = scratch("slurm-reuse");
    let results = dir.join("shared");
    let first = write(&dir, "first.toml", &sweep_config("first", "").replace("n_layers = [1, 2]", "n_layers = [1]"));
    let out = run(&["sweep", first.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first_dir = results.join("first");
    let second = write(
        &dir,
        "second.toml",
        &sweep_config("second", "")
            .replace("n_layers = [1, 2]", "n_layers = [1]")
            .replace("tokens = [10240, 20480]", "tokens = [10240, 20480, 30720]"),
    );
    let out = run(&[
        "slurm",
        second.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--reuse",
        first_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("reused 2 finished run(s) from "), "{}", stderr(&out));
    let runs = results.join("second/runs");
    for id in ["L1-d32-D10240-s0", "L1-d32-D20480-s0"] {
        let record = std::fs::read_to_string(runs.join(id).join("run.json")).unwrap();
        assert!(record.contains("\"status\": \"done\"") && record.contains("\"reused_from\""), "{id}: {record}");
    }
    assert!(!runs.join("L1-d32-D30720-s0/run.json").exists(), "the new run is the tasks' to train");
    std::fs::remove_dir_all(&dir).unwrap();
}
