//! Corrupt records: fit, plot and report skip truncated or garbage lines of summary.csv and
//! metrics.csv and unreadable run.json files, with a warning naming the file and line, and
//! `sweeplaw summary DIR` (or `sweep CONFIG --rebuild-summary`) rebuilds summary.csv from the
//! run folders.

use crate::common::*;
use crate::sweep_cli::{run_to_end, statuses, sweep_args, sweep_config};

#[test]
fn corrupt_lines_are_skipped_with_warnings_and_the_summary_rebuilds() {
    let dir = scratch("corrupt-records");
    let config = write(&dir, "sweep.toml", &sweep_config("corrupt", ""));
    let results = dir.join("results");
    run_to_end(&sweep_args(&config, &results));
    let sweep_dir = results.join("corrupt");
    let sweep = sweep_dir.to_str().unwrap();
    let summary = sweep_dir.join("summary.csv");
    let good = std::fs::read(&summary).unwrap();

    // Rebuilt from the run folders, summary.csv is what the sweep wrote, both ways.
    std::fs::remove_file(&summary).unwrap();
    assert!(run_to_end(&["summary", sweep]).contains("(4 runs)"));
    assert_eq!(std::fs::read(&summary).unwrap(), good);
    std::fs::write(&summary, b"garbage").unwrap();
    let mut rebuild = sweep_args(&config, &results);
    rebuild.push("--rebuild-summary");
    run_to_end(&rebuild);
    assert_eq!(std::fs::read(&summary).unwrap(), good);

    // A truncated row and a garbage row in summary.csv (lines 6 and 7), a row cut short in a
    // metrics.csv, and a run.json that is not JSON.
    let mut text = String::from_utf8(good.clone()).unwrap();
    text.push_str("L9-d32-D10240-s0,done,9,32\n\u{0}\u{1}garbage,,\n");
    std::fs::write(&summary, &text).unwrap();
    let metrics = sweep_dir.join("runs/L1-d32-D20480-s0/metrics.csv");
    let mut rows = std::fs::read_to_string(&metrics).unwrap();
    rows.push_str("81,20736,1.3");
    std::fs::write(&metrics, rows).unwrap();
    let run_json = sweep_dir.join("runs/L2-d32-D10240-s0/run.json");
    std::fs::write(&run_json, "{\n  \"format_version\": 1,\n  garbage").unwrap();

    for command in ["fit", "plot", "report"] {
        let out = run(&[command, sweep]);
        let err = stderr(&out);
        assert!(out.status.success(), "{command}: {err}");
        assert!(!err.contains("panicked"), "{command}: {err}");
        assert!(err.contains("summary.csv line 6"), "{command} names the truncated line: {err}");
        assert!(err.contains("metrics.csv") && err.contains("line 82"), "{command}: {err}");
        if command != "fit" {
            assert!(err.contains("L2-d32-D10240-s0/run.json line 3"), "{command} names run.json: {err}");
        }
    }

    // Rebuilding again: the unreadable run.json is named with its line, and its run is pending.
    let out = run(&["summary", sweep]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("run.json: not a valid run.json") && stderr(&out).contains("line 3"));
    assert_eq!(statuses(&sweep_dir), vec!["done", "done", "pending", "done"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
