//! Tests of `plot_sweep` on fixture sweeps whose losses follow a planted law.

use std::path::Path;

use super::*;
use crate::plot::chart::{FigureSpec, Layer, LayerKind};
use crate::plot::fixture::{
    self, edit_fit, isoflop_sweep, write_fit, write_sweep, Budgets, TempDir, FLOP_BUDGETS, PLANTED,
};
use crate::plot::records::Counting;

/// Width and height from a PNG's IHDR chunk; panics unless the file is a PNG.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).expect("read png");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
    let word = |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    (word(16), word(20))
}

/// Builds one figure of the sweep in `dir` without drawing it.
fn build(dir: &Path, builder: Builder) -> Result<FigureSpec, String> {
    let sweep = Sweep::read(dir).expect("read sweep");
    let fit = FitJson::read(&dir.join("fit.json")).expect("fit.json parses");
    let counting = fit.as_ref().map(FitJson::counting).unwrap_or_default();
    let points = sweep.points(&counting).0;
    let no_fit = crate::plot::fitjson::no_fit_reason(&dir.join("fit.json"), false);
    builder(&Inputs { sweep: &sweep, fit: fit.as_ref(), no_fit, counting, points })
}

fn layer<'a>(figure: &'a FigureSpec, panel: usize, label_start: &str) -> &'a Layer {
    figure.panels[panel]
        .layers
        .iter()
        .find(|l| l.label.as_deref().is_some_and(|text| text.starts_with(label_start)))
        .unwrap_or_else(|| panic!("no layer '{label_start}' in {}", figure.name))
}

fn names(output: &PlotOutput) -> Vec<&str> {
    output.figures.iter().map(|f| f.name.as_str()).collect()
}

#[test]
fn an_isoflop_sweep_with_a_fit_gets_every_figure_but_the_token_budget_one() {
    let (dir, _) = isoflop_sweep("all");
    let output = plot_sweep(&dir.0).expect("plot");
    assert_eq!(
        names(&output),
        vec!["loss_vs_compute", "isoflop", "optimal_allocation", "residuals", "holdout", "entropy_floor"]
    );
    assert_eq!(output.skipped.len(), 1);
    assert_eq!(output.skipped[0].name, "loss_vs_params");
    assert!(output.skipped[0].reason.contains("token budget"), "{}", output.skipped[0].reason);
    assert!(output.warnings.is_empty(), "{:?}", output.warnings);
    for figure in &output.figures {
        let (width, height) = png_size(&figure.png);
        assert!(width >= 1000 && height >= 620, "{}: {width}x{height}", figure.name);
        let svg = std::fs::read_to_string(&figure.svg).expect("read svg");
        assert!(svg.starts_with("<svg") && svg.contains("sans-serif"), "{}", figure.name);
    }
}

#[test]
fn isoflop_minima_from_the_records_land_near_the_planted_optimum() {
    let (dir, _) = isoflop_sweep("minima");
    let figure = build(&dir.0, figures::isoflop).expect("isoflop figure");
    let minima = &layer(&figure, 0, "parabola minimum").points;
    assert_eq!(minima.len(), FLOP_BUDGETS.len());
    for (budget, (n_min, _)) in FLOP_BUDGETS.iter().zip(minima) {
        let optimum = PLANTED.compute_optimal(*budget).0;
        // A parabola in log N only approximates the law over the 8x window of sizes.
        assert!((n_min / optimum).ln().abs() < 0.3, "C = {budget:e}: {n_min:e} vs {optimum:e}");
    }
    let labels: Vec<String> = figure.legend().into_iter().map(|e| e.0).collect();
    assert_eq!(labels[..2], ["C = 10¹² FLOPs".to_string(), "C = 10¹³ FLOPs".to_string()]);
}

#[test]
fn a_token_budget_sweep_gets_one_series_per_budget_with_the_fitted_curves() {
    let dir = TempDir::new("tokens");
    let tokens = [1e6, 4e6, 1.6e7];
    let runs = write_sweep(&dir.0, &Budgets::Tokens(tokens.to_vec()));
    write_fit(&dir.0, &runs, &FLOP_BUDGETS);
    let figure = build(&dir.0, figures::loss_vs_params).expect("loss_vs_params");
    let labels: Vec<String> = figure.legend().into_iter().map(|e| e.0).collect();
    assert_eq!(labels[..3], ["D = 10⁶ tokens", "D = 4×10⁶ tokens", "D = 1.6×10⁷ tokens"]);
    assert!(labels.iter().any(|l| l.starts_with("approach 3")) && labels.iter().any(|l| l.starts_with("Kaplan")));
    // The planted law passes through every run, so each budget's approach-3 curve (the solid
    // line of the budget's colour) meets its runs, interpolated linearly in log N.
    let panel = &figure.panels[0];
    for markers in panel.layers.iter().filter(|l| matches!(l.kind, LayerKind::Markers { .. })) {
        let curve = panel
            .layers
            .iter()
            .find(|l| l.color == markers.color && l.kind == (LayerKind::Line { width: 2, dashed: false }))
            .expect("curve of the budget");
        for (n, loss) in &markers.points {
            let at = curve.points.partition_point(|p| p.0 < *n);
            let ((n0, l0), (n1, l1)) = (curve.points[at - 1], curve.points[at]);
            let t = (n.ln() - n0.ln()) / (n1.ln() - n0.ln());
            assert!(((l0 + t * (l1 - l0)) / loss - 1.0).abs() < 2e-3);
        }
    }
    let output = plot_sweep(&dir.0).expect("plot");
    assert!(names(&output).contains(&"loss_vs_params"));
}

#[test]
fn corrupt_lines_are_skipped_with_warnings_naming_file_and_line() {
    let (dir, runs) = isoflop_sweep("corrupt");
    let metrics = dir.0.join("runs").join(&runs[0].id).join("metrics.csv");
    let mut text = std::fs::read_to_string(&metrics).expect("read");
    text.push_str("21,abc,1\n22,100,600,0.003,2.0,notanumber,1,1,1\n23,100,6");
    std::fs::write(&metrics, text).expect("write");
    std::fs::write(dir.0.join("runs").join(&runs[1].id).join("run.json"), "{\"spec\": ").expect("write");
    let summary = dir.0.join("summary.csv");
    let mut text = std::fs::read_to_string(&summary).expect("read");
    text.push_str("truncated-run,done,1,32");
    std::fs::write(&summary, text).expect("write");
    let output = plot_sweep(&dir.0).expect("plot still works");
    let warned = |needle: &str| output.warnings.iter().any(|w| w.contains(needle));
    assert!(warned("metrics.csv: line 23 has 3 fields"), "{:?}", output.warnings);
    assert!(warned("metrics.csv: line 24: val_loss 'notanumber'"), "{:?}", output.warnings);
    assert!(warned("metrics.csv: line 25 has 3 fields"), "{:?}", output.warnings);
    assert!(warned("run.json line 1: not valid JSON"), "{:?}", output.warnings);
    let summary_line = runs.len() + 2;
    assert!(warned(&format!("summary.csv line {summary_line}: has 4 fields")), "{:?}", output.warnings);
    assert_eq!(output.figures.len(), 6);
}

#[test]
fn without_fit_json_the_fit_figures_are_skipped_and_stale_files_removed() {
    let (dir, _) = isoflop_sweep("nofit");
    plot_sweep(&dir.0).expect("plot with fit");
    assert!(dir.0.join("figures/holdout.png").exists());
    std::fs::remove_file(dir.0.join("fit.json")).expect("remove fit.json");
    let output = plot_sweep(&dir.0).expect("plot without fit");
    assert_eq!(names(&output), vec!["loss_vs_compute", "isoflop"]);
    for skipped in output.skipped.iter().filter(|s| s.name != "loss_vs_params") {
        assert!(skipped.reason.contains("fit.json"), "{}: {}", skipped.name, skipped.reason);
    }
    assert!(!dir.0.join("figures/holdout.png").exists() && !dir.0.join("figures/holdout.svg").exists());
}

#[test]
fn runs_not_done_are_warned_about_and_left_out() {
    let (dir, runs) = isoflop_sweep("status");
    let summary = dir.0.join("summary.csv");
    let text = std::fs::read_to_string(&summary).expect("read");
    let diverged = format!("{},diverged,", runs[2].id);
    let text = text.replacen(&format!("{},done,", runs[2].id), &diverged, 1);
    std::fs::write(&summary, text).expect("write");
    let output = plot_sweep(&dir.0).expect("plot");
    let expected = format!("1 run(s) not done, not plotted: {} (diverged)", runs[2].id);
    assert!(output.warnings.iter().any(|w| w.contains(&expected)), "{:?}", output.warnings);
    let figure = build(&dir.0, figures::loss_vs_compute).expect("figure 1");
    let curves = figure.panels[0].layers.iter().filter(|l| l.label.as_deref().is_some_and(|t| t.starts_with("N = ")));
    assert_eq!(curves.count(), runs.len() - 1);
}

#[test]
fn figures_use_the_counting_conventions_of_the_fit() {
    let (dir, runs) = isoflop_sweep("counting");
    let path = dir.0.join("fit.json");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, text.replace("\"6n\"", "\"matmul_attn\"")).expect("write");
    let figure = build(&dir.0, figures::loss_vs_compute).expect("figure 1");
    assert!(figure.panels[0].x.label.contains("matmul + attention"));
    let run = &runs[0];
    let matmul = run.params + 256.0 * run.d_model as f64;
    let expected = (6.0 * matmul + 6.0 * run.n_layers as f64 * 64.0 * run.d_model as f64) * run.tokens;
    let first_curve = figure.panels[0].layers.first().expect("a curve");
    let last = first_curve.points.last().expect("final point");
    assert!((last.0 / expected - 1.0).abs() < 1e-12, "{} vs {expected}", last.0);
    // Curve points are rescaled from metrics.csv's 6n compute by the same factor.
    let six_n_final = 6.0 * run.params * run.tokens;
    let ratio = expected / six_n_final;
    let half = first_curve.points.iter().find(|p| p.0 < last.0 * 0.55 && p.0 > last.0 * 0.45).expect("mid point");
    let six_n_half = 6.0 * run.params * run.tokens * 0.5;
    assert!((half.0 / (six_n_half * ratio) - 1.0).abs() < 1e-9);
    assert_eq!(Counting::default().flops_column(), "flops_6n");
}

#[test]
fn residuals_are_zero_for_the_planted_law_and_known_for_a_shifted_e() {
    let (dir, runs) = isoflop_sweep("residuals");
    let figure = build(&dir.0, fit_figures::residuals).expect("residuals");
    for panel in 0..2 {
        let points = &layer(&figure, panel, "runs in the fit").points;
        assert_eq!(points.len(), runs.len());
        assert!(points.iter().all(|(_, r)| r.abs() < 1e-9), "{points:?}");
    }
    let path = dir.0.join("fit.json");
    let mut fit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    fit["fits"]["chinchilla"]["params"]["E"] = serde_json::json!(PLANTED.e + 0.1);
    std::fs::write(&path, fit.to_string()).expect("write");
    let figure = build(&dir.0, fit_figures::residuals).expect("residuals");
    let points = &layer(&figure, 0, "runs in the fit").points;
    for (run, (n, residual)) in runs.iter().zip(points) {
        assert_eq!(*n, run.params);
        assert!((residual - 100.0 * (run.loss / (run.loss + 0.1) - 1.0)).abs() < 1e-9);
    }
}

/// Slope of a layer's line in log-log.
fn log_slope(points: &[(f64, f64)]) -> f64 {
    let ((x0, y0), (x1, y1)) = (points[0], points[points.len() - 1]);
    (y1 / y0).ln() / (x1 / x0).ln()
}

#[test]
fn optimal_allocation_draws_approach_3_its_band_and_the_reference_slopes() {
    let (dir, _) = isoflop_sweep("allocation");
    let figure = build(&dir.0, fit_figures::optimal_allocation).expect("figure 4");
    let (a, b) = (PLANTED.exponent_a(), PLANTED.exponent_b());
    assert!((log_slope(&layer(&figure, 0, "approach 3 fit").points) - a).abs() < 1e-9);
    assert!((log_slope(&layer(&figure, 1, "approach 3 fit").points) - b).abs() < 1e-9);
    assert!((log_slope(&layer(&figure, 0, "Kaplan et al. 2020").points) - 0.73).abs() < 1e-9);
    assert!((log_slope(&layer(&figure, 1, "Kaplan et al. 2020").points) - 0.27).abs() < 1e-9);
    assert!((log_slope(&layer(&figure, 0, "Hoffmann et al. 2022").points) - 0.50).abs() < 1e-9);
    let line = &layer(&figure, 0, "approach 3 fit").points;
    let band = layer(&figure, 0, "approach 3: 95%");
    let LayerKind::Band { upper } = &band.kind else { panic!("not a band") };
    for ((low, high), (c, n)) in band.points.iter().zip(upper).zip(line) {
        assert!(low.1 <= n * (1.0 + 1e-12) && high.1 >= n * (1.0 - 1e-12) && low.0 == *c);
    }
    // Approach 2's minima are fit.json's, at the planted optimum.
    let minima = &layer(&figure, 0, "approach 2: IsoFLOP minima").points;
    let expected = PLANTED.compute_optimal(FLOP_BUDGETS[1]).0;
    assert!((minima[1].1 / expected - 1.0).abs() < 1e-12);
    // The x range reaches the target compute of the prediction (1e16).
    assert!(figure.panels[0].coord_range(true).1 >= 16.0);
}

#[test]
fn holdout_and_entropy_figures_show_the_recorded_values() {
    let (dir, _) = isoflop_sweep("holdout");
    let figure = build(&dir.0, fit_figures::holdout).expect("figure 6");
    let held = &layer(&figure, 0, "held-out runs").points;
    assert_eq!(held.len(), 2);
    assert!(held.iter().all(|(actual, predicted)| (predicted / actual - 1.02).abs() < 1e-12));
    assert!(figure.title.contains("2.00%"));
    assert_eq!(figure.panels[0].x.range, figure.panels[0].y.range);
    let figure = build(&dir.0, fit_figures::entropy_floor).expect("figure 7");
    let floor = &layer(&figure, 0, "true entropy").points;
    assert!(floor.iter().all(|(_, h)| (h - fixture::TRUE_ENTROPY).abs() < 1e-12));
    let fitted = &layer(&figure, 0, "fitted E").points;
    assert!(fitted.iter().all(|(_, e)| *e == PLANTED.e));
}

#[test]
fn a_sweep_with_no_done_run_is_an_error_naming_summary_csv() {
    let dir = TempDir::new("empty");
    let header = "run_id,status,params_nonembedding,tokens,val_loss\nr1,pending,,,\n";
    std::fs::write(dir.0.join("summary.csv"), header).expect("write");
    let error = plot_sweep(&dir.0).expect_err("nothing to plot");
    assert!(error.to_string().contains("summary.csv") && error.to_string().contains("no run is done"), "{error}");
    let missing = plot_sweep(&dir.0.join("nowhere")).expect_err("no directory");
    assert!(missing.to_string().contains("nowhere"), "{missing}");
}

#[test]
fn figures_mark_a_law_that_is_not_identified_and_the_budgets_approach_2_left_out() {
    let (dir, _) = isoflop_sweep("verdicts");
    edit_fit(&dir.0, |json| {
        json["fits"]["chinchilla"]["verdict"] = "not identified".into();
        json["fits"]["chinchilla"]["reasons"] = serde_json::json!(["E ran to its bound 0"]);
        json["fits"]["isoflop"]["minima"][3]["inside"] = false.into();
    });
    let figure = build(&dir.0, fit_figures::optimal_allocation).expect("allocation figure");
    assert!(figure.title.ends_with("(approach 3 not identified: E ran to its bound 0)"), "{}", figure.title);
    let three = layer(&figure, 0, "approach 3 fit");
    assert!(three.label.as_deref().is_some_and(|l| l.ends_with(" [not identified]")), "{:?}", three.label);
    assert!(matches!(three.kind, LayerKind::Line { dashed: true, width: 1 }), "{:?}", three.kind);
    assert!(!layer(&figure, 0, "approach 2 fit").label.as_deref().unwrap_or_default().contains('['));
    assert_eq!(layer(&figure, 0, "approach 2: minima outside").points.len(), 1);
    assert_eq!(layer(&figure, 0, "approach 2: IsoFLOP minima").points.len(), 3);
    let residuals = build(&dir.0, fit_figures::residuals).expect("residuals");
    assert!(residuals.title.contains("approach 3 not identified"), "{}", residuals.title);
    let isoflop = build(&dir.0, figures::isoflop).expect("isoflop figure");
    assert!(isoflop.title.starts_with("IsoFLOP curves (4 budgets, 1 left out of approach 2)"), "{}", isoflop.title);
    let left_out = layer(&isoflop, 0, "C = 10¹⁵ FLOPs (left out of approach 2");
    assert!(matches!(left_out.kind, LayerKind::Markers { filled: false, .. }), "{:?}", left_out.kind);
    assert_eq!(layer(&isoflop, 0, "minimum outside the sampled sizes").points.len(), 1);
    assert_eq!(layer(&isoflop, 0, "parabola minimum").points.len(), 3);
    // An identified law and a fit.json without verdicts draw as before.
    let (plain, _) = isoflop_sweep("verdicts-none");
    let figure = build(&plain.0, fit_figures::optimal_allocation).expect("allocation figure");
    assert!(figure.title.ends_with("Dₒₚₜ ∝ Cᵇ"), "{}", figure.title);
    assert!(matches!(layer(&figure, 0, "approach 3 fit").kind, LayerKind::Line { dashed: false, width: 3 }));
}

#[test]
fn approach_lines_go_through_the_intercepts_fit_json_records() {
    let (dir, _) = isoflop_sweep("intercepts");
    edit_fit(&dir.0, |json| {
        json["fits"]["frontier"]["intercepts"] = serde_json::json!([0.0, 1.0]);
        json["fits"]["isoflop"]["intercepts"] = serde_json::json!([2.0, 0.5]);
    });
    let figure = build(&dir.0, fit_figures::optimal_allocation).expect("allocation figure");
    let fit = FitJson::read(&dir.0.join("fit.json")).expect("fit.json parses").expect("fit.json");
    for (law, label, (n0, d0)) in
        [("frontier", "approach 1 fit", (0.0, 1.0)), ("isoflop", "approach 2 fit", (2.0, 0.5))]
    {
        let (a, b) = fit.exponents(law).expect("exponents");
        for (panel, (slope, intercept)) in [(0, (a, n0)), (1, (b, d0))] {
            let &(c, y) = layer(&figure, panel, label).points.first().expect("a line");
            assert!((y.ln() - (intercept + slope * c.ln())).abs() < 1e-9, "{law} panel {panel}: {y} at C = {c}");
        }
    }
}

#[test]
fn an_unreadable_fit_json_is_named_in_the_skipped_figures_not_called_missing() {
    let (dir, _) = isoflop_sweep("unreadable-fit");
    std::fs::write(dir.0.join("fit.json"), "{ \"fits\": { \"chinchilla\": ").expect("truncate fit.json");
    let output = plot_sweep(&dir.0).expect("plot");
    let path = dir.0.join("fit.json");
    let expected = format!(
        "{} is unreadable (see the warning): rerun `sweeplaw fit {}` to replace it",
        path.display(),
        dir.0.display()
    );
    let fit_figures = ["optimal_allocation", "residuals", "holdout", "entropy_floor"];
    for name in fit_figures {
        let skipped = output.skipped.iter().find(|s| s.name == name).expect("skipped");
        assert_eq!(skipped.reason, expected, "{name}");
    }
    let warned = format!("{} line 1: not valid JSON", path.display());
    assert!(output.warnings.iter().any(|w| w.starts_with(&warned)), "{:?}", output.warnings);
}

#[test]
fn a_law_holding_values_no_fit_produces_is_unusable_and_not_drawn_naming_the_field() {
    let (dir, _) = isoflop_sweep("impossible-law");
    edit_fit(&dir.0, |json| {
        json["fits"]["chinchilla"]["params"]["E"] = (-5.0).into();
        json["fits"]["chinchilla"]["params"]["alpha"] = 1e308.into();
    });
    let output = plot_sweep(&dir.0).expect("plot");
    let path = dir.0.join("fit.json");
    let warning = format!(
        "{}: corrupt: fits.chinchilla.params.E = -5 is negative, and the fit holds this parameter as its \
         logarithm; fits.chinchilla.params.alpha = 1e308 is beyond ±100, an exponent no fit produces; approach 3 is \
         unusable and left out of the figures and the report (rerun `sweeplaw fit` to replace the file)",
        path.display()
    );
    assert_eq!(output.warnings, vec![warning]);
    for name in ["residuals", "entropy_floor"] {
        let skipped = output.skipped.iter().find(|s| s.name == name).expect("skipped");
        assert!(
            skipped.reason.starts_with(
                "fit.json's approach 3 (chinchilla) is unusable, corrupt: fits.chinchilla.params.E = -5 is negative"
            ),
            "{name}: {}",
            skipped.reason
        );
    }
    // Approaches 1 and 2 are drawn, approach 3 is not.
    let figure = build(&dir.0, fit_figures::optimal_allocation).expect("figure 4");
    let labels: Vec<&str> = figure.panels[0].layers.iter().filter_map(|l| l.label.as_deref()).collect();
    assert!(labels.iter().any(|l| l.starts_with("approach 2")), "{labels:?}");
    assert!(!labels.iter().any(|l| l.starts_with("approach 3")), "{labels:?}");
}
