//! `sweeplaw tune`: a learning-rate scan per size on a tiny synthetic sweep (seconds of
//! training), the fitted rule, the table a `hyperparameters = "tuned"` sweep reads, resumption,
//! and the cost refusal.

use std::path::Path;

use crate::common::*;

/// Three sizes, one token budget (planned only: the sweep itself is not trained here).
fn tune_config(max_cost_fraction: f64) -> String {
    format!(
        r#"name = "tiny-tune"
device = "cpu"

[data]
kind = "synthetic"
vocab_size = 256

[model]
seq_len = 32
head_dim = 16

[grid]
n_layers = [1]
d_model = [16, 32, 48]

[budget]
tokens = [2000000]

[train]
hyperparameters = "tuned"
tuned_table = "tuned.json"
batch_size = 8
lr = 1e-2
eval_tokens = 2048

[checks]
min_steps = 50

[tune]
sizes = 3
lrs = 5
tokens_per_param = 2
max_cost_fraction = {max_cost_fraction}
"#
    )
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn tune_fits_lr_per_size_and_the_sweep_reads_the_rule() {
    let dir = scratch("tune");
    let config = write(&dir, "sweep.toml", &tune_config(0.2));
    let results = dir.join("results");
    let (c, r) = (config.to_str().unwrap(), results.to_str().unwrap());
    // Before tuning, a tuned sweep cannot be planned.
    let out = run(&["plan", c, "--no-measure"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("has not been written yet: run `sweeplaw tune`"), "{}", stderr(&out));

    let out = run(&["tune", c, "--results", r, "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = json(&dir.join("tuned.json"));
    assert_eq!(table, json(&results.join("tiny-tune-tune/tuned.json")), "a copy beside the tuning records");
    let sizes = table["sizes"].as_array().unwrap();
    assert_eq!(sizes.len(), 3);
    let (mut log_n, mut log_lr) = (Vec::new(), Vec::new());
    let mut tune_flops = 0.0;
    for size in sizes {
        let lrs: Vec<f64> = size["lrs"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(lrs.len(), 5);
        // ×√2 apart, centred on train.lr.
        for pair in lrs.windows(2) {
            assert!((pair[1] / pair[0] - std::f64::consts::SQRT_2).abs() < 1e-9);
        }
        assert!((lrs[2] / 1e-2 - 1.0).abs() < 1e-12);
        let losses: Vec<f64> = size["val_losses"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        // The optimum lies between the neighbours of the best scanned rate (or is it, at an edge).
        let best = (0..5).min_by(|&a, &b| losses[a].total_cmp(&losses[b])).unwrap();
        let lr_opt = size["lr_opt"].as_f64().unwrap();
        let (lo, hi) = (lrs[best.saturating_sub(1)], lrs[(best + 1).min(4)]);
        assert!(lr_opt >= lo * (1.0 - 1e-12) && lr_opt <= hi * (1.0 + 1e-12), "{lr_opt} outside {lo}..{hi}");
        assert_eq!(size["at_edge"].as_bool().unwrap(), best == 0 || best == 4);
        // Each tuning run is recorded like a sweep's, with the loss the table reports.
        let (d, tokens) = (size["d_model"].as_u64().unwrap(), size["tokens"].as_u64().unwrap());
        for (lr, loss) in lrs.iter().zip(&losses) {
            let id = format!("L1-d{d}-D{tokens}-lr{lr:.4e}-s0");
            let record = json(&results.join("tiny-tune-tune/runs").join(&id).join("run.json"));
            assert_eq!(record["status"], "done", "{id}");
            assert_eq!(record["result"]["val_loss"].as_f64().unwrap(), *loss, "{id}");
            assert!((record["spec"]["lr"].as_f64().unwrap() / lr - 1.0).abs() < 1e-12);
            tune_flops += record["result"]["flops_6n"].as_f64().unwrap();
        }
        log_n.push((size["params"].as_f64().unwrap()).ln());
        log_lr.push(lr_opt.ln());
    }
    // The rule is the least-squares line through the optima in log-log.
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mx, my) = (mean(&log_n), mean(&log_lr));
    let slope = log_n.iter().zip(&log_lr).map(|(x, y)| (x - mx) * (y - my)).sum::<f64>()
        / log_n.iter().map(|x| (x - mx) * (x - mx)).sum::<f64>();
    let rule = &table["rule"];
    let (coefficient, exponent) = (rule["coefficient"].as_f64().unwrap(), rule["exponent"].as_f64().unwrap());
    assert!((exponent - slope).abs() < 1e-9, "{exponent} vs {slope}");
    assert!((coefficient.ln() - (my - slope * mx)).abs() < 1e-9);
    // The cost is the tuning runs' recorded FLOPs against the sweep's planned FLOPs (6n).
    let cost = &table["cost"];
    assert!((cost["tune_flops"].as_f64().unwrap() / tune_flops - 1.0).abs() < 1e-9);
    assert!(cost["fraction"].as_f64().unwrap() < 0.2);
    let text = stdout(&out);
    assert!(text.contains("lr*(N) = ") && text.contains("% of the sweep's"), "{text}");

    // The sweep now plans each size at the rule's lr.
    let out = run(&["plan", c, "--no-measure"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for line in stdout(&out).lines().filter(|l| l.starts_with("L1-d")) {
        // run_id, N_nonemb, N_total, N_matmul, tokens, FLOPs, steps, batch, lr, est (no role).
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (n, lr): (f64, f64) = (cols[1].parse().unwrap(), cols[8].parse().unwrap());
        let expected = coefficient * n.powf(exponent);
        assert!((lr / expected - 1.0).abs() < 6e-3, "{line}: lr {lr} vs rule {expected}");
    }
    // Tuning again resumes from the records: nothing retrains, the table is the same.
    let out = run(&["tune", c, "--results", r, "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&dir.join("tuned.json")), table);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tuning_that_would_cost_too_much_is_refused_before_training() {
    let dir = scratch("tune-cost");
    let config = write(&dir, "sweep.toml", &tune_config(0.01));
    let results = dir.join("results");
    let out = run(&["tune", config.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("tuning would cost") && err.contains("tune.max_cost_fraction = 0.01"), "{err}");
    assert!(!results.exists() && !dir.join("tuned.json").exists());
    // The dry run exists to show that cost: it prints the runs and the cost, and says it would
    // refuse (it refused outright before, showing nothing).
    let out = run(&["tune", config.to_str().unwrap(), "--results", results.to_str().unwrap(), "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("tuning costs") && stdout(&out).contains("-lr"), "{}", stdout(&out));
    assert!(stderr(&out).contains("tuning would cost") && stderr(&out).contains("refuses"), "{}", stderr(&out));
    assert!(!results.exists() && !dir.join("tuned.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_scan_whose_rates_leave_the_positive_numbers_is_refused_before_training() {
    let dir = scratch("tune-lr-step");
    // 5 rates a factor 1e200 apart around 1e-2: the outer ones are 0 and inf.
    let text = tune_config(0.2).replace("lrs = 5", "lrs = 5\nlr_step = 1e200");
    let config = write(&dir, "sweep.toml", &text);
    let results = dir.join("results");
    for extra in [None, Some("--dry-run")] {
        let mut args = vec!["tune", config.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"];
        args.extend(extra);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let err = stderr(&out);
        assert!(
            err.contains("sweep.toml") && err.contains("tune.lr_step = 1e200") && err.contains("lr = 0e0"),
            "{err}"
        );
        assert!(!results.exists() && !dir.join("tuned.json").exists());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn report_on_a_tuning_directory_draws_the_scan_and_quotes_the_rule() {
    let dir = scratch("tune-report");
    let config = write(&dir, "sweep.toml", &tune_config(0.2));
    let results = dir.join("results");
    let (c, r) = (config.to_str().unwrap(), results.to_str().unwrap());
    let out = run(&["tune", c, "--results", r, "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tune_dir = results.join("tiny-tune-tune");
    let out = run(&["report", tune_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    for ext in ["png", "svg"] {
        let figure = tune_dir.join(format!("figures/tune_lr.{ext}"));
        assert!(std::fs::metadata(&figure).unwrap().len() > 1000, "{}", figure.display());
    }
    let table = json(&tune_dir.join("tuned.json"));
    let gamma = format!("γ = {:.3}", table["rule"]["exponent"].as_f64().unwrap());
    let report = std::fs::read_to_string(tune_dir.join("report.md")).unwrap();
    assert!(report.contains(&gamma), "{gamma} not in\n{report}");
    assert!(report.contains("figures/tune_lr.png"), "{report}");
    // One row per tuned size with its optimum as tuned.json has it.
    for size in table["sizes"].as_array().unwrap() {
        let row = format!("| L1-d{} |", size["d_model"]);
        let line = report.lines().find(|l| l.starts_with(&row)).unwrap_or_else(|| panic!("{row} missing"));
        assert!(line.contains(&format!("{:.3e}", size["lr_opt"].as_f64().unwrap())), "{line}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
