//! load_points + fit on files written here: a sweep directory and plain CSVs.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::synth::{hoffmann, log_spaced};
use crate::fit::{fit, load_points, FitError, FitOptions, FlopCount, Law, ParamCount};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const HEADER: &str = "run_id,status,n_layers,d_model,n_heads,seq_len,vocab_size,params_nonembedding,\
params_total,params_matmul,tokens,unique_tokens,flops,val_loss,train_loss,wall_s,seed,\
flops_6n,flops_matmul_attn,flops_chinchilla";

/// A fresh directory under the system temp dir, removed when dropped.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Result<Scratch, std::io::Error> {
    let dir = std::env::temp_dir().join(format!("sweeplaw-fit-{}-{name}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(Scratch(dir))
}

/// One summary row of a done run; total = N + 1e6, matmul = N + 5e5, C_6n = 6ND.
fn summary_row(run: &str, params: f64, tokens: f64, loss: f64) -> String {
    let flops = 6.0 * params * tokens;
    format!(
        "{run},done,4,256,4,128,1000,{params},{},{},{tokens},,{flops},{loss},{loss},1.0,0,{flops},{},{}",
        params + 1e6,
        params + 5e5,
        1.1 * flops,
        1.2 * flops
    )
}

/// An IsoFLOP sweep on Hoffmann et al.'s law: 6 budgets x 7 sizes, each run with a
/// metrics.csv of 40 evaluations (and steps without one), plus rows that must be skipped.
fn write_sweep(dir: &Path) -> Result<(), std::io::Error> {
    let law = hoffmann();
    let mut summary = format!("{HEADER}\n");
    for (b, flops) in log_spaced(1e18, 1e21, 6).into_iter().enumerate() {
        let (n_opt, _) = law.compute_optimal(flops);
        for k in 0..7 {
            let params = n_opt * (-1.5 + 0.5 * k as f64).exp();
            let tokens = flops / (6.0 * params);
            let run = format!("b{b}n{k}");
            let _ = writeln!(summary, "{}", summary_row(&run, params, tokens, law.predict(params, tokens)));
            write_metrics(&dir.join("runs").join(&run), params, tokens)?;
        }
    }
    summary.push_str("bad1,diverged,4,256,4,128,1000,1e7,2e7,1.5e7,1e9,,6e16,9.9,9.9,1,0,6e16,6e16,6e16\n");
    summary.push_str("bad2,done,4,256,4,128,1000,1e7,2e7,1.5e7,1e9,,6e16,nan,3,1,0,6e16,6e16,6e16\n");
    summary.push_str("bad3,done,4,256,4,128,1000,ten,2e7,1.5e7,1e9,,6e16,3.0,3,1,0,6e16,6e16,6e16\n");
    summary.push_str("bad4,done,4,256\n");
    summary.push_str("bad5,done,4,256,4,128,1000,1e7,2e7,1.5e7,1e9,,6e16,,3,1,0,6e16,6e16,6e16\n");
    std::fs::write(dir.join("summary.csv"), summary)
}

fn write_metrics(run_dir: &Path, params: f64, final_tokens: f64) -> Result<(), std::io::Error> {
    std::fs::create_dir_all(run_dir)?;
    let law = hoffmann();
    let mut text = String::from("step,tokens,flops,lr,train_loss,val_loss,grad_norm,elapsed_s,tokens_per_s\n");
    for (step, tokens) in log_spaced(final_tokens / 300.0, final_tokens, 40).into_iter().enumerate() {
        let loss = law.predict(params, tokens);
        let _ = writeln!(text, "{step},{tokens},{},1e-3,{loss},,1.0,1.0,1e5", 6.0 * params * tokens);
        let _ = writeln!(text, "{step},{tokens},{},1e-3,{loss},{loss},1.0,1.0,1e5", 6.0 * params * tokens);
    }
    std::fs::write(run_dir.join("metrics.csv"), text)
}

#[test]
fn sweep_rows_that_cannot_be_used_are_skipped_with_file_and_line() -> TestResult {
    let dir = scratch("skips")?;
    write_sweep(&dir)?;
    let (data, warnings) = load_points(&dir, &FitOptions::default())?;
    assert_eq!(data.points.len(), 42);
    assert_eq!(data.curves.len(), 42);
    assert!(data.curves.iter().all(|c| c.evals.len() == 40));
    let skipped: Vec<&str> = data.excluded.iter().map(|e| e.run.as_str()).collect();
    assert_eq!(skipped.len(), 5, "{skipped:?}");
    for (line, what) in [
        (44, "diverged"),
        (45, "val_loss is NaN"),
        (46, "'ten' is not a number"),
        (47, "does not parse"),
        (48, "val_loss is empty"),
    ] {
        let expected = format!("summary.csv line {line}");
        let found = warnings.iter().any(|w| w.contains(&expected) && w.contains(what));
        assert!(found, "no warning for line {line} ({what}): {warnings:#?}");
    }
    Ok(())
}

#[test]
fn counting_conventions_pick_their_columns() -> TestResult {
    let dir = scratch("counts")?;
    write_sweep(&dir)?;
    let options = FitOptions { params: ParamCount::Total, flops: FlopCount::Chinchilla, ..FitOptions::default() };
    let (data, _) = load_points(&dir, &options)?;
    let (plain, _) = load_points(&dir, &FitOptions::default())?;
    let (p, q) = (&data.points[0], &plain.points[0]);
    assert_eq!(p.params, q.params + 1e6);
    assert!((p.flops / q.flops - 1.2).abs() < 1e-12);
    assert_eq!((data.param_count.as_str(), data.flop_count.as_str()), ("total", "chinchilla"));
    // Under another convention, intermediate computes scale with the run's FLOPs per token.
    let (c, d) = (&data.curves[0].evals[0], &plain.curves[0].evals[0]);
    assert!((c.flops / d.flops - 1.2).abs() < 1e-12);
    Ok(())
}

#[test]
fn three_approaches_agree_on_one_law_and_the_holdout_predicts_it() -> TestResult {
    let dir = scratch("agree")?;
    write_sweep(&dir)?;
    let options = FitOptions {
        law: Law::Chinchilla,
        bootstrap: 20,
        holdout: 3,
        target_flops: Some(1e22),
        ..FitOptions::default()
    };
    let (data, _) = load_points(&dir, &options)?;
    let report = fit(&data, &options)?;
    let truth = hoffmann().exponent_a();
    let three = report.fits.chinchilla.as_ref().ok_or("no approach 3")?;
    let two = report.fits.isoflop.as_ref().ok_or("no approach 2")?;
    let one = report.fits.frontier.as_ref().ok_or("no approach 1")?;
    assert!((three.a - truth).abs() < 1e-4, "approach 3 a = {}", three.a);
    assert!((two.a - three.a).abs() < 0.01, "approach 2 a = {} vs {}", two.a, three.a);
    assert!((one.a - three.a).abs() < 0.02, "approach 1 a = {} vs {}", one.a, three.a);
    let holdout = report.fits.holdout.as_ref().ok_or("no holdout")?;
    assert_eq!(holdout.held_out.len(), 3);
    assert!(holdout.max_rel_error < 1e-4, "{holdout:?}");
    let prediction = three.prediction.as_ref().ok_or("no prediction")?;
    assert!(prediction.ci95.contains_key("N_opt") && three.ci95.contains_key("alpha"));
    assert!(report.table().contains("3 (parametric fit)"));
    Ok(())
}

#[test]
fn fit_json_has_the_documented_keys() -> TestResult {
    let dir = scratch("json")?;
    write_sweep(&dir)?;
    let options = FitOptions { law: Law::All, bootstrap: 5, holdout: 2, ..FitOptions::default() };
    let (data, _) = load_points(&dir, &options)?;
    let json = fit(&data, &options)?.to_json()?;
    let keys = |value: &serde_json::Value| -> BTreeSet<String> {
        value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
    };
    let top = ["excluded", "fits", "flop_count", "options", "param_count", "points", "skipped", "source", "warnings"];
    assert_eq!(keys(&json), top.iter().map(|s| s.to_string()).collect());
    assert_eq!((json["options"]["holdout"].as_u64(), json["options"]["bootstrap"].as_u64()), (Some(2), Some(5)));
    let fits = &json["fits"];
    let expected = ["chinchilla", "frontier", "holdout", "isoflop", "kaplan_c", "kaplan_d", "kaplan_n", "kaplan_nd"];
    assert_eq!(keys(fits), expected.iter().map(|s| s.to_string()).collect());
    assert_eq!(
        keys(&fits["chinchilla"]["params"]),
        ["A", "B", "E", "alpha", "beta", "compute"].map(String::from).into()
    );
    assert_eq!(fits["chinchilla"]["params"]["compute"]["coefficient"], 6.0, "the CSV has no C: C = 6ND");
    assert_eq!(keys(&fits["kaplan_n"]["params"]), ["N_c", "alpha_N"].map(String::from).into());
    for key in ["ci95", "objective", "a", "b"] {
        assert!(fits["chinchilla"].get(key).is_some(), "no chinchilla.{key}");
    }
    assert!(fits["isoflop"]["minima"].is_array() && fits["frontier"]["a"].is_number());
    assert!(fits["holdout"]["max_rel_error"].is_number());
    assert!(json["skipped"]["data_constrained"].is_string());
    assert_eq!(json["param_count"], "nonembedding");
    assert_eq!(json["points"], 42);
    // fit.json reads back into the types it was written from, every key and value kept (the
    // text parsed both ways: serde_json's float parsing may differ from the value in the last bit).
    let text = json.to_string();
    let back = crate::records::fit::parse_fit(&dir.join("fit.json"), text.as_bytes())?;
    assert_eq!(serde_json::to_value(&back)?, serde_json::from_str::<serde_json::Value>(&text)?);
    Ok(())
}

#[test]
fn plain_csv_without_compute_assumes_six_n_d() -> TestResult {
    let dir = scratch("plain")?;
    let path = dir.join("points.csv");
    std::fs::write(&path, "N,D,Loss\n1e8,2e9,3.1\n2e8,4e9,2.9\n-5,1e9,3\n3e8,1e10,nan\n")?;
    let (data, warnings) = load_points(&path, &FitOptions::default())?;
    assert_eq!(data.points.len(), 2);
    assert_eq!(data.points[1].flops, 6.0 * 2e8 * 4e9);
    assert_eq!(data.flop_count, "6n");
    assert!(warnings.iter().any(|w| w.contains("C = 6 N D")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("line 4") && w.contains("N is -5")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("line 5") && w.contains("loss is NaN")), "{warnings:?}");
    Ok(())
}

#[test]
fn published_csv_loads_with_d_from_c() -> TestResult {
    let Some(path) = crate::fit::chinchilla::tests::chinchilla_csv() else { return Ok(()) };
    let (data, warnings) = load_points(&path, &FitOptions::default())?;
    assert_eq!(data.points.len(), 245);
    let p = &data.points[0];
    assert!((p.tokens * 6.0 * p.params / p.flops - 1.0).abs() < 1e-12);
    assert!(warnings.iter().any(|w| w.contains("D = C / (6 N)")), "{warnings:?}");
    Ok(())
}

#[test]
fn missing_columns_and_paths_are_errors_naming_them() -> TestResult {
    let dir = scratch("missing")?;
    let path = dir.join("points.csv");
    std::fs::write(&path, "params,tokens\n1e8,1e9\n")?;
    let error = load_points(&path, &FitOptions::default()).err().ok_or("no error")?;
    assert!(matches!(error, FitError::MissingColumn { .. }), "{error}");
    assert!(error.to_string().contains("points.csv") && error.to_string().contains("loss"), "{error}");
    let error = load_points(&dir.join("nowhere"), &FitOptions::default()).err().ok_or("no error")?;
    assert!(error.to_string().contains("nowhere"), "{error}");
    Ok(())
}

#[test]
fn too_few_points_is_a_clear_error() -> TestResult {
    let dir = scratch("few")?;
    let path = dir.join("points.csv");
    std::fs::write(&path, "N,D,loss\n1e8,2e9,3.1\n2e8,4e9,2.9\n")?;
    let (data, _) = load_points(&path, &FitOptions::default())?;
    let options = FitOptions { law: Law::Chinchilla, ..FitOptions::default() };
    let error = fit(&data, &options).err().ok_or("no error")?.to_string();
    assert!(error.contains("no law could be fitted") && error.contains("at least 6 points"), "{error}");
    Ok(())
}

/// Speed and output of a whole `fit` (every law, 1,000 resamples, holdout 5) on the
/// published points (run with --ignored --nocapture).
#[test]
#[ignore]
fn timing_whole_fit_on_published_data() -> TestResult {
    let Some(path) = crate::fit::chinchilla::tests::chinchilla_csv() else { return Ok(()) };
    let options =
        FitOptions { exclude_highest_loss: 5, holdout: 5, target_flops: Some(5.76e23), ..FitOptions::default() };
    let (data, _) = load_points(&path, &options)?;
    let start = std::time::Instant::now();
    let report = fit(&data, &options)?;
    eprintln!("whole fit: {:.3} s", start.elapsed().as_secs_f64());
    eprintln!("{}", report.table());
    let out = std::env::temp_dir().join("sweeplaw-fit-published.json");
    report.write_json(&out)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// Speed of a whole `fit` (every law, 1,000 resamples) on a 42-run sweep with curves.
#[test]
#[ignore]
fn timing_whole_fit_on_a_sweep() -> TestResult {
    let dir = scratch("sweep-timing")?;
    write_sweep(&dir)?;
    let options = FitOptions { holdout: 3, target_flops: Some(1e22), ..FitOptions::default() };
    let (data, _) = load_points(&dir, &options)?;
    let start = std::time::Instant::now();
    let report = fit(&data, &options)?;
    eprintln!("whole fit of a 42-run sweep: {:.3} s", start.elapsed().as_secs_f64());
    eprintln!("{}", report.table());
    Ok(())
}

#[test]
fn compute_is_derived_from_the_counts_when_its_column_is_absent() -> TestResult {
    let dir = scratch("derive")?;
    let header = "run_id,status,n_layers,d_model,n_heads,seq_len,vocab_size,params_nonembedding,\
                  params_total,params_matmul,tokens,unique_tokens,flops,val_loss,train_loss,wall_s,seed";
    let row = "r1,done,2,64,4,32,100,98304,111104,104704,1000,,589824000,3.5,3.4,1,0";
    std::fs::write(dir.join("summary.csv"), format!("{header}\n{row}\n"))?;
    let (six_n, _) = load_points(&dir, &FitOptions::default())?;
    assert_eq!(six_n.points[0].flops, 589_824_000.0);
    let options = FitOptions { flops: FlopCount::MatmulAttn, ..FitOptions::default() };
    let (matmul, warnings) = load_points(&dir, &options)?;
    // (6 x 104704 + 6 x 2 x 32 x 64) x 1000 tokens.
    assert_eq!(matmul.points[0].flops, (6.0 * 104_704.0 + 6.0 * 2.0 * 32.0 * 64.0) * 1000.0);
    assert!(warnings.iter().any(|w| w.contains("no flops_matmul_attn column")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("no metrics.csv")), "{warnings:?}");
    Ok(())
}

#[test]
fn a_summary_missing_finished_runs_says_so_and_names_the_rebuild_command() -> TestResult {
    let dir = scratch("truncated")?;
    write_sweep(&dir)?;
    for run in ["b0n0", "late1", "late2"] {
        std::fs::create_dir_all(dir.join("runs").join(run))?;
        std::fs::write(dir.join("runs").join(run).join("run.json"), "{\"status\": \"done\"}")?;
    }
    let (_, warnings) = load_points(&dir, &FitOptions::default())?;
    let note = warnings.iter().find(|w| w.contains("more finished run")).ok_or_else(|| format!("{warnings:#?}"))?;
    assert!(note.contains("2 more finished run(s) (late1, late2)"), "{note}");
    assert!(note.contains(&format!("sweeplaw summary {}", dir.display())), "{note}");
    Ok(())
}

#[test]
fn a_loss_above_the_vocabulary_ceiling_is_called_implausible() -> TestResult {
    let dir = scratch("implausible")?;
    write_sweep(&dir)?;
    let mut summary = std::fs::read_to_string(dir.join("summary.csv"))?;
    summary.push_str(&summary_row("huge", 1e7, 1e9, 1e300));
    summary.push('\n');
    std::fs::write(dir.join("summary.csv"), summary)?;
    let (_, warnings) = load_points(&dir, &FitOptions::default())?;
    let note = warnings.iter().find(|w| w.contains("run huge")).ok_or_else(|| format!("{warnings:#?}"))?;
    assert!(note.contains("implausible") && note.contains("ln(vocab_size 1000)"), "{note}");
    assert_eq!(warnings.iter().filter(|w| w.contains("is implausible")).count(), 1, "{warnings:#?}");
    Ok(())
}

#[test]
fn the_holdout_refit_keeps_a_fixed_parameter() -> TestResult {
    let dir = scratch("holdout-fixed")?;
    write_sweep(&dir)?;
    // E = 1.5 is off the planted 1.69: a refit that ignored --fix would return 1.69.
    let constraints = crate::fit::constraints::Constraints {
        fixed: std::collections::BTreeMap::from([("E".to_string(), 1.5)]),
        ..Default::default()
    };
    let options = FitOptions { law: Law::Chinchilla, holdout: 3, constraints, ..FitOptions::default() };
    let (data, _) = load_points(&dir, &options)?;
    let report = fit(&data, &options)?;
    let holdout = report.fits.holdout.as_ref().ok_or("no holdout")?;
    assert_eq!(holdout.params.get("E").copied(), Some(1.5), "{holdout:?}");
    let alpha = holdout.params.get("alpha").copied().ok_or("no alpha")?;
    assert!(alpha.is_finite() && alpha > 0.0, "{holdout:?}");
    Ok(())
}

/// A sweep's summary.csv has no lr column: runs at one (N, D) with different learning rates in
/// their run.json (a tuning scan) keep the best, and only runs differing in seed alone are
/// averaged into the noise floor.
#[test]
fn runs_differing_in_lr_are_settings_and_runs_differing_in_seed_are_seeds() -> TestResult {
    let dir = scratch("lr-vs-seed")?;
    write_sweep(&dir)?;
    let mut summary = std::fs::read_to_string(dir.join("summary.csv"))?;
    // (N, D) = (2e6, 5e8): lr 1e-3 at seeds 0 and 1 (3.00, 3.02), lr 4e-3 at seed 0 (3.50).
    for (run, lr, seed, loss) in [("scan-a", 1e-3, 0, 3.00), ("scan-b", 1e-3, 1, 3.02), ("scan-c", 4e-3, 0, 3.50)] {
        let row = summary_row(run, 2e6, 5e8, loss).replacen(",1.0,0,", &format!(",1.0,{seed},"), 1);
        let _ = writeln!(summary, "{row}");
        let run_dir = dir.join("runs").join(run);
        std::fs::create_dir_all(&run_dir)?;
        let json = format!("{{\"status\": \"done\", \"spec\": {{\"lr\": {lr}, \"batch_size\": 8}}}}");
        std::fs::write(run_dir.join("run.json"), json)?;
    }
    std::fs::write(dir.join("summary.csv"), summary)?;
    let (data, _) = load_points(&dir, &FitOptions::default())?;
    let kept: Vec<f64> = data.points.iter().filter(|p| p.params == 2e6).map(|p| p.loss).collect();
    assert_eq!(kept.len(), 1, "one point for the (N, D) group");
    assert!((kept[0] - 3.01).abs() < 1e-12, "the best lr's seed mean, not the mean over lrs: {}", kept[0]);
    let reduced = data.reduced.as_deref().unwrap_or("");
    assert!(
        reduced.contains("lowest loss over hyperparameter settings in 1 group(s), mean over seeds in 1"),
        "{reduced}"
    );
    let noise = data.noise_floor.ok_or("a noise floor from the two seeds")?;
    assert!((noise - 0.02 / 2f64.sqrt()).abs() < 1e-12, "pooled over seed 0 and 1 of lr 1e-3 only: {noise}");
    Ok(())
}

/// Rewrites cell `column` (0-based) of summary.csv's line `line` (1-based, the header is line 1).
fn set_cell(dir: &Path, line: usize, column: usize, value: &str) -> TestResult {
    let text = std::fs::read_to_string(dir.join("summary.csv"))?;
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut cells: Vec<&str> = lines[line - 1].split(',').collect();
    cells[column] = value;
    lines[line - 1] = cells.join(",");
    std::fs::write(dir.join("summary.csv"), lines.join("\n") + "\n")?;
    Ok(())
}

/// A run.json that exists but does not parse is warned about, naming it and its line (as `plot`
/// does), and under `--reduce auto` its run is left out: without its learning rate, the runs of
/// a tuning scan at one size were averaged as seeds of each other, their spread reported as
/// the noise floor. Under `--reduce min` the settings are not needed and the run is kept.
#[test]
fn an_unreadable_run_json_is_warned_about_and_its_run_left_out() -> TestResult {
    let dir = scratch("bad-run-json")?;
    write_sweep(&dir)?;
    let mut summary = std::fs::read_to_string(dir.join("summary.csv"))?;
    // Two learning rates at (N, D) = (2e6, 5e8), both seed 0; their run.json cut off mid-spec.
    for (run, loss) in [("scan-a", 3.00), ("scan-b", 3.50)] {
        let _ = writeln!(summary, "{}", summary_row(run, 2e6, 5e8, loss));
        let run_dir = dir.join("runs").join(run);
        std::fs::create_dir_all(&run_dir)?;
        std::fs::write(run_dir.join("run.json"), "{\n  \"status\": \"done\",\n  \"spec\": {\"lr\": 1e-3")?;
    }
    std::fs::write(dir.join("summary.csv"), summary)?;
    let (data, warnings) = load_points(&dir, &FitOptions::default())?;
    assert!(data.points.iter().all(|p| p.params != 2e6), "left out, not averaged: {:?}", data.points.last());
    assert_eq!((data.noise_floor, data.reduced.as_deref()), (None, None), "no seeds were averaged");
    let warning = warnings.iter().find(|w| w.contains("scan-a")).ok_or_else(|| format!("{warnings:#?}"))?;
    let expected = format!(
        "{} line 49: run scan-a skipped: {} line 3: not valid JSON",
        dir.join("summary.csv").display(),
        dir.join("runs").join("scan-a").join("run.json").display()
    );
    assert!(warning.starts_with(&expected), "{warning}");
    assert!(warning.contains("learning rate and batch size are unknown"), "{warning}");
    let options = FitOptions { reduce: crate::fit::Reduce::Min, ..FitOptions::default() };
    let (data, warnings) = load_points(&dir, &options)?;
    let kept: Vec<f64> = data.points.iter().filter(|p| p.params == 2e6).map(|p| p.loss).collect();
    assert_eq!(kept, [3.0], "--reduce min keeps the lowest loss of the group");
    let warning = warnings.iter().find(|w| w.contains("scan-b")).ok_or_else(|| format!("{warnings:#?}"))?;
    assert!(warning.ends_with("not needed under --reduce min"), "{warning}");
    Ok(())
}

/// A run listed twice in summary.csv is one run: the repeat is dropped with a warning naming
/// the line, the first line and the run (it was averaged with itself as a second seed: 43 rows,
/// a reduced group and a noise floor of 0).
#[test]
fn a_run_listed_twice_in_summary_csv_is_counted_once() -> TestResult {
    let dir = scratch("repeated-run")?;
    write_sweep(&dir)?;
    let mut summary = std::fs::read_to_string(dir.join("summary.csv"))?;
    let first = summary.lines().nth(1).ok_or("no first row")?.to_string();
    summary.push_str(&first);
    summary.push('\n');
    std::fs::write(dir.join("summary.csv"), summary)?;
    let (data, warnings) = load_points(&dir, &FitOptions::default())?;
    assert_eq!(data.points.len(), 42);
    assert_eq!((data.noise_floor, data.reduced.as_deref()), (None, None));
    let expected = format!(
        "{} line 49: run b0n0 skipped: run b0n0 is listed again (first on line 2)",
        dir.join("summary.csv").display()
    );
    assert!(warnings.contains(&expected), "{warnings:#?}");
    Ok(())
}

/// A compute cell that is empty, infinite (1e400) or not positive is named with its line and
/// value; the column exists, so "no flops_matmul_attn column" was wrong. C comes from the counts.
#[test]
fn a_bad_compute_cell_is_named_by_its_line_and_value() -> TestResult {
    let dir = scratch("bad-compute-cell")?;
    write_sweep(&dir)?;
    // flops_matmul_attn is column 19 (index 18).
    for (line, value) in [(2, "1e400"), (3, ""), (4, "-5")] {
        set_cell(&dir, line, 18, value)?;
    }
    let options = FitOptions { flops: FlopCount::MatmulAttn, ..FitOptions::default() };
    let (data, warnings) = load_points(&dir, &options)?;
    let summary = dir.join("summary.csv").display().to_string();
    for (line, what) in [(2, "is inf, not a finite number"), (3, "is empty"), (4, "is -5, not a positive number")] {
        let expected = format!("{summary} line {line}: flops_matmul_attn {what}: C derived from the model counts");
        assert!(warnings.iter().any(|w| w.starts_with(&expected)), "{expected}: {warnings:#?}");
    }
    assert!(!warnings.iter().any(|w| w.contains("no flops_matmul_attn column")), "{warnings:#?}");
    // (6 params_matmul + 6 n_layers seq_len d_model) tokens, params_matmul = N + 5e5.
    let point = &data.points[0];
    let derived = (6.0 * (point.params + 5e5) + 6.0 * 4.0 * 128.0 * 256.0) * point.tokens;
    assert!((point.flops / derived - 1.0).abs() < 1e-12, "{} vs {derived}", point.flops);
    Ok(())
}

/// vocab_size 0 is not a vocabulary: it is named with its line, never made a ceiling of
/// ln(0) + 1 = -inf that called every loss implausible.
#[test]
fn an_invalid_vocabulary_size_is_named_not_used_as_a_ceiling() -> TestResult {
    let dir = scratch("vocab-zero")?;
    write_sweep(&dir)?;
    set_cell(&dir, 2, 6, "0")?;
    let (_, warnings) = load_points(&dir, &FitOptions::default())?;
    let expected = format!(
        "{} line 2: run b0n0: vocab_size 0 is not a vocabulary size (a whole number of at least 2)",
        dir.join("summary.csv").display()
    );
    assert!(warnings.iter().any(|w| w.starts_with(&expected)), "{warnings:#?}");
    assert!(!warnings.iter().any(|w| w.contains("implausible")), "{warnings:#?}");
    Ok(())
}
