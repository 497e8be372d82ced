//! `fit --isoflop-window`, `plot` and `report` through the binary: the window's range is a
//! usage error, approach 2 names the budgets it leaves out, `plot` lists every file it wrote,
//! `report .` is titled by the directory's name, a stale fit.json whose recorded options are
//! not valid is kept and marked stale, and an unreadable one is named as such.

use crate::common::{run, scratch, stderr, stdout, write};
use crate::sweep_cli::{run_to_end, sweep_args, sweep_config};

#[test]
fn an_isoflop_window_below_three_is_a_usage_error() {
    let dir = scratch("window-usage");
    let csv = write(&dir, "points.csv", "N,D,loss\n1e6,1e8,3.0\n2e6,1e8,2.9\n");
    let out = run(&["fit", csv.to_str().unwrap(), "--isoflop-window", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--isoflop-window"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn approach_2_on_porian_et_al_names_the_budget_it_leaves_out() {
    let name = "porian2024/summary_df__rw_base_long_kaplan_standard_val.csv";
    let Some(csv) = sweeplaw::reference_data::file(name) else { return };
    let dir = scratch("window-porian");
    let out_path = dir.join("fit.json");
    let out = run(&[
        "fit",
        csv.to_str().unwrap(),
        "--law",
        "isoflop",
        "--bootstrap",
        "200",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out_path).unwrap()).unwrap();
    let isoflop = &json["fits"]["isoflop"];
    // Porian et al. 2024 publish a = 0.706 [0.691, 0.717] for this configuration.
    let a = isoflop["a"].as_f64().unwrap();
    assert!((a - 0.706).abs() < 0.03, "a = {a}");
    assert_eq!(isoflop["verdict"], "identified", "{isoflop}");
    assert_eq!(isoflop["window"], 5);
    let left_out = isoflop["minima"].as_array().unwrap().iter().filter(|m| m["inside"] == false).count();
    let warnings: Vec<&str> = json["warnings"].as_array().unwrap().iter().filter_map(|w| w.as_str()).collect();
    let named = warnings.iter().filter(|w| w.contains("sizes do not bracket the minimum at C = ")).count();
    assert!(left_out >= 1, "{isoflop}");
    assert_eq!(named, left_out, "{warnings:?}");
    assert!(stdout(&out).contains("add sizes above") || stdout(&out).contains("add sizes below"), "{}", stdout(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plot_lists_every_file_it_wrote_and_report_dot_is_titled_by_the_directory() {
    let dir = scratch("plot-files");
    let config = write(&dir, "sweep.toml", &sweep_config("listed", ""));
    let results = dir.join("results");
    run_to_end(&sweep_args(&config, &results));
    let sweep_dir = results.join("listed");
    let out = run_to_end(&["plot", sweep_dir.to_str().unwrap()]);
    let figures = sweep_dir.join("figures");
    let mut written: Vec<String> =
        std::fs::read_dir(&figures).unwrap().map(|e| e.unwrap().path().display().to_string()).collect();
    written.sort();
    assert!(written.iter().any(|f| f.ends_with(".svg")) && written.iter().any(|f| f.ends_with(".png")));
    for file in &written {
        assert!(out.contains(file.as_str()), "{file} not listed: {out}");
    }
    let report = crate::common::sweeplaw().args(["report", "."]).current_dir(&sweep_dir).output().unwrap();
    assert!(report.status.success(), "{}", stderr(&report));
    let markdown = std::fs::read_to_string(sweep_dir.join("report.md")).unwrap();
    assert!(markdown.starts_with("# Scaling-law report: listed\n"), "{}", &markdown[..80.min(markdown.len())]);
    let html = std::fs::read_to_string(sweep_dir.join("report.html")).unwrap();
    assert!(html.contains("<title>Scaling-law report: listed</title>"), "title missing");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_recorded_option_keeps_the_stale_fit_and_an_unreadable_fit_is_named() {
    let dir = scratch("plot-stale-options");
    let config = write(&dir, "sweep.toml", &sweep_config("kept", ""));
    let results = dir.join("results");
    run_to_end(&sweep_args(&config, &results));
    let sweep_dir = results.join("kept");
    let sweep_arg = sweep_dir.to_str().unwrap();
    run_to_end(&["fit", sweep_arg, "--bootstrap", "0"]);
    let fit_path = sweep_dir.join("fit.json");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&fit_path).unwrap()).unwrap();
    json["options"]["law"] = "bogus".into();
    let text = serde_json::to_string_pretty(&json).unwrap();
    std::fs::write(&fit_path, &text).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    std::fs::File::options().write(true).open(sweep_dir.join("summary.csv")).unwrap().set_modified(later).unwrap();
    // `plot` stopped with "error: unknown law 'bogus'", naming no file.
    let out = run(&["report", sweep_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    let warning = format!(
        "warning: {} is older than the records and was not refitted: its recorded `options` are not valid: unknown \
         law 'bogus'",
        fit_path.display()
    );
    assert!(stderr(&out).contains(&warning), "{}", stderr(&out));
    assert!(!stdout(&out).contains("fitted the laws"), "{}", stdout(&out));
    assert_eq!(std::fs::read_to_string(&fit_path).unwrap(), text, "fit.json is kept as it was");
    let markdown = std::fs::read_to_string(sweep_dir.join("report.md")).unwrap();
    assert!(markdown.contains("\n- stale: fit.json is older than the records and was not refitted"), "{markdown}");
    assert!(!markdown.contains("fitted by"), "{markdown}");
    // A truncated fit.json is unreadable, not missing.
    std::fs::write(&fit_path, &text[..text.len() / 2]).unwrap();
    std::fs::File::options().write(true).open(&fit_path).unwrap().set_modified(later).unwrap();
    let out = run_to_end(&["plot", sweep_arg]);
    let skipped = format!(
        "skipped figure holdout: {} is unreadable (see the warning): rerun `sweeplaw fit {sweep_arg}` to replace it",
        fit_path.display()
    );
    assert!(out.contains(&skipped), "{out}");
    assert!(!out.contains("no fit.json"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}
