//! `sweeplaw plan` and the checks `sweep` makes before training: runs that cannot fit memory are
//! refused with nothing written, duplicate seeds are merged, the design checks warn (and refuse
//! under `--strict`), and centred grids give each budget its own sizes.

use std::path::Path;

use crate::common::*;

/// An IsoFLOP sweep on the synthetic source with `grid`, `budget` and `train` lines.
fn isoflop_config(name: &str, top: &str, grid: &str, budget: &str, train: &str) -> String {
    format!(
        r#"name = "{name}"
device = "cpu"
{top}

[data]
kind = "synthetic"
vocab_size = 256

[model]
seq_len = 32
head_dim = 16

[grid]
{grid}

[budget]
{budget}

[train]
batch_size = 8
lr = 1e-2
eval_tokens = 2048
{train}
"#
    )
}

fn plan(config: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["plan", config.to_str().unwrap(), "--no-measure"];
    args.extend_from_slice(extra);
    run(&args)
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_model_too_big_for_memory_is_refused_before_anything_is_written() {
    if !Path::new("/proc/meminfo").exists() {
        eprintln!("skipped: no /proc/meminfo to tell the machine's memory");
        return;
    }
    let dir = scratch("plan-memory");
    let results = dir.join("results");
    // train: d_model = 1048576 (1.3e13 parameters with this vocabulary).
    let config = write(
        &dir,
        "huge.toml",
        &tiny_run_config("huge", "")
            .replace("d_model = 32", "d_model = 1048576")
            .replace("n_heads = 2", "n_heads = 8192"),
    );
    let out = run(&["train", config.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("run huge needs about ") && err.contains("TiB") && err.contains("system RAM"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(!results.exists(), "nothing written: {:?}", files_under(&results));
    // plan and sweep refuse the same way.
    let sweep = write(
        &dir,
        "sweep.toml",
        &isoflop_config("huge-sweep", "", "n_layers = [1]\nd_model = [32, 1048576]", "tokens = [10240]", ""),
    );
    let out = plan(&sweep, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("run L1-d1048576-D10240-s0 needs about "), "{}", stderr(&out));
    let out = run(&["sweep", sweep.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("run L1-d1048576-D10240-s0 needs about "), "{}", stderr(&out));
    assert!(!results.exists(), "nothing written: {:?}", files_under(&results));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn duplicate_seeds_are_merged_with_a_warning() {
    let dir = scratch("plan-seeds");
    let config = write(
        &dir,
        "s.toml",
        &isoflop_config("seeds", "seeds = [0, 0]", "n_layers = [1]\nd_model = [32]", "tokens = [10240]", ""),
    );
    let out = plan(&config, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.matches("L1-d32-D10240-s0").count(), 1, "{text}");
    assert!(text.contains("\n1 runs,") || text.contains("\n1 run,"), "{text}");
    assert!(text.contains("warning: seeds lists seed 0 more than once; its runs are planned once"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
