//! The published case (Besiroglu et al. 2024 refit of Hoffmann et al. 2022 Figure 4) and
//! recovery of planted parameters.

use std::path::PathBuf;
use std::sync::OnceLock;

use super::*;
use crate::fit::bootstrap::{self, Refit};
use crate::fit::data::load_points;
use crate::fit::optim::tests::numeric_gradient;
use crate::fit::options::FitOptions;
use crate::fit::tests::synth::{hoffmann, isoflop_points};
use crate::records::fit::Values;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Epoch's extraction of Hoffmann et al. 2022 Figure 4, when the reference data are present.
pub(crate) fn chinchilla_csv() -> Option<PathBuf> {
    crate::reference_data::file("chinchilla_svg_extracted.csv")
}

/// The 240 points of the published refit: 245 extracted, the 5 highest losses dropped.
/// `None` (the test skips) when the reference data are absent.
pub(crate) fn published_points() -> Result<Option<Vec<Point>>, FitError> {
    let Some(csv) = chinchilla_csv() else { return Ok(None) };
    let options = FitOptions { exclude_highest_loss: 5, ..FitOptions::default() };
    Ok(Some(load_points(&csv, &options)?.0.points))
}

/// The grid fit of the published points, computed once for all tests that need it.
fn published_fit() -> Result<Option<&'static (Vec<Point>, Approach3)>, String> {
    static FIT: OnceLock<Result<(Vec<Point>, Approach3), String>> = OnceLock::new();
    if chinchilla_csv().is_none() {
        return Ok(None);
    }
    let fit = FIT.get_or_init(|| {
        let points = published_points().map_err(|e| e.to_string())?.ok_or("reference data vanished")?;
        let fit = fit_grid(&LogPoints::new(&points), &vec![1.0; points.len()]).map_err(|e| e.to_string())?;
        Ok((points, fit))
    });
    fit.as_ref().map(Some).map_err(Clone::clone)
}

#[test]
fn gradient_matches_finite_differences() -> TestResult {
    let Some(points) = published_points()? else { return Ok(()) };
    let points = LogPoints::new(&points);
    let weights: Vec<f64> = (0..points.ln_loss.len()).map(|i| (i % 3) as f64).collect();
    let objective = HuberLse { points: &points, weights: &weights };
    let x = [6.2, 7.6, 0.6, 0.35, 0.37];
    let mut analytic = [0.0; 5];
    objective.value_and_gradient(&x, &mut analytic);
    let numeric = numeric_gradient(&objective, &x, 1e-7);
    for k in 0..5 {
        assert!((analytic[k] - numeric[k]).abs() < 1e-6 * (1.0 + numeric[k].abs()), "{k}: {analytic:?} vs {numeric:?}");
    }
    Ok(())
}

#[test]
fn published_grid_has_4500_starts() {
    let grid = published_grid();
    assert_eq!(grid.len(), 4500);
    assert_eq!(grid[0], vec![0.0, 0.0, -1.0, 0.0, 0.0]);
    assert_eq!(grid[4499], vec![25.0, 25.0, 1.0, 2.0, 2.0]);
}

#[test]
fn published_refit_reproduces_besiroglu_et_al() -> TestResult {
    let Some((points, fit)) = published_fit()? else { return Ok(()) };
    assert_eq!(points.len(), 240);
    let p = fit.params;
    assert!((p.e - 1.8172).abs() < 5e-5, "E = {}", p.e);
    assert!((p.alpha - 0.3473).abs() < 5e-5, "alpha = {}", p.alpha);
    assert!((p.beta - 0.3672).abs() < 5e-5, "beta = {}", p.beta);
    assert!((p.a - 477.8).abs() < 0.5, "A = {}", p.a);
    assert!((p.b - 2143.0).abs() < 5.0, "B = {}", p.b);
    assert!((fit.objective - 1.01827e-3).abs() < 5e-9, "objective = {:e}", fit.objective);
    Ok(())
}

#[test]
fn planted_law_is_recovered_exactly_without_noise() -> TestResult {
    let law = hoffmann();
    let points = isoflop_points(&law, &[1e18, 1e19, 1e20, 1e21, 1e22], 7, 0.0, 1);
    let fit = fit_grid(&LogPoints::new(&points), &vec![1.0; points.len()])?;
    let p = fit.params;
    for (value, truth) in [(p.e, law.e), (p.a, law.a), (p.b, law.b), (p.alpha, law.alpha), (p.beta, law.beta)] {
        assert!((value / truth - 1.0).abs() < 1e-4, "{p:?}");
    }
    assert!(fit.objective < 1e-12);
    Ok(())
}

#[test]
fn planted_law_is_recovered_with_noise() -> TestResult {
    let law = hoffmann();
    let points = isoflop_points(&law, &[1e18, 1e19, 1e20, 1e21, 1e22], 9, 0.005, 2);
    let fit = fit_grid(&LogPoints::new(&points), &vec![1.0; points.len()])?;
    let p = fit.params;
    assert!((p.alpha - law.alpha).abs() < 0.03 && (p.beta - law.beta).abs() < 0.03, "{p:?}");
    assert!((p.e - law.e).abs() < 0.05, "{p:?}");
    assert!((p.exponent_a() - law.exponent_a()).abs() < 0.02, "{p:?}");
    Ok(())
}

#[test]
fn compute_optimal_allocation_minimises_loss_on_the_isoflop() {
    let law = hoffmann();
    let flops = 5.76e23; // Gopher's and Chinchilla's budget
    let (n_opt, d_opt) = law.compute_optimal(flops);
    assert!((6.0 * n_opt * d_opt / flops - 1.0).abs() < 1e-12);
    let at = |n: f64| law.predict(n, flops / (6.0 * n));
    assert!(at(n_opt) < at(n_opt * 1.01) && at(n_opt) < at(n_opt / 1.01));
    assert!((law.exponent_a() + law.exponent_b() - 1.0).abs() < 1e-15);
    // Hoffmann et al. 2022 Table 3 (approach 3): a = 0.46, b = 0.54.
    assert!((law.exponent_a() - 0.4516).abs() < 1e-4);
}

#[test]
fn bootstrap_standard_errors_are_close_to_epochs() -> TestResult {
    let Some((points, full)) = published_fit()? else { return Ok(()) };
    let log_points = LogPoints::new(points);
    // As the pipeline refits: from the optimum and the grid search's distinct near-optimal ends.
    assert!(!full.restarts.is_empty() && full.restarts.len() <= BOOTSTRAP_STARTS + 1);
    let identity = Mapping::identity(5);
    let refit: Refit<'_> = Box::new(|w: &[f64]| {
        let p = refit_mapped(&log_points, w, &identity, &full.restarts)?.params;
        Some(Values::from([("alpha".to_string(), p.alpha), ("beta".to_string(), p.beta)]))
    });
    let draws = bootstrap::run(points.len(), 1000, 0, &[refit], false);
    assert_eq!(draws[0].failed, 0);
    let se = bootstrap::standard_errors(&draws[0]);
    // Besiroglu et al. 2024, Table 1: standard errors 0.015 (alpha) and 0.021 (beta).
    assert!((se["alpha"] / 0.015 - 1.0).abs() < 0.1, "{se:?}");
    assert!((se["beta"] / 0.021 - 1.0).abs() < 0.1, "{se:?}");
    Ok(())
}

/// Speed of the published grid and of 4,000 bootstrap refits (run with --ignored).
#[test]
#[ignore]
fn timing_published_grid_and_bootstrap() -> TestResult {
    let Some(points) = published_points()? else { return Ok(()) };
    let log_points = LogPoints::new(&points);
    let start = std::time::Instant::now();
    let full = fit_grid(&log_points, &vec![1.0; points.len()])?;
    eprintln!("4,500-start grid on {} points: {:.3} s", points.len(), start.elapsed().as_secs_f64());
    let refit: Refit<'_> = Box::new(|w: &[f64]| {
        let p = refit_mapped(&log_points, w, &Mapping::identity(5), &full.restarts)?.params;
        Some(Values::from([("alpha".to_string(), p.alpha), ("beta".to_string(), p.beta)]))
    });
    let start = std::time::Instant::now();
    let draws = bootstrap::run(points.len(), 4000, 0, &[refit], false);
    let se = bootstrap::standard_errors(&draws[0]);
    eprintln!("4,000 bootstrap refits: {:.3} s, se {se:?}", start.elapsed().as_secs_f64());
    Ok(())
}

/// The bootstrap's restart subset (optimum + distinct near-optimal grid ends) finds the same
/// optimum as the whole 4,500-start grid on resamples of the published data (to the
/// optimiser's tolerance: objectives within 1e-4 relative, alpha within 5e-3, a third of its standard error).
#[test]
fn bootstrap_restarts_find_the_full_grid_optimum_on_resamples() -> TestResult {
    let Some((points, full)) = published_fit()? else { return Ok(()) };
    let log_points = LogPoints::new(points);
    let identity = Mapping::identity(5);
    for index in 0..6 {
        let weights = bootstrap::resample_weights(points.len(), 0, index);
        let subset = refit_mapped(&log_points, &weights, &identity, &full.restarts).ok_or("no refit")?;
        let grid = fit_grid(&log_points, &weights)?;
        assert!(
            subset.objective <= grid.objective * (1.0 + 1e-4),
            "resample {index}: subset {:e} vs grid {:e}",
            subset.objective,
            grid.objective
        );
        assert!((subset.params.alpha - grid.params.alpha).abs() < 5e-3, "{:?} vs {:?}", subset.params, grid.params);
    }
    Ok(())
}

/// Tying alpha to beta leaves 4 free parameters and 900 distinct starts; the tied fit of a
/// planted law with alpha = beta recovers it.
#[test]
fn a_tied_law_is_recovered() -> TestResult {
    let law = ChinchillaParams { alpha: 0.3, beta: 0.3, ..crate::fit::tests::synth::hoffmann() };
    let points = isoflop_points(&law, &[1e18, 1e19, 1e20, 1e21], 7, 0.0, 4);
    let constraints = crate::fit::Constraints { tied: vec![("alpha".into(), "beta".into())], ..Default::default() };
    let mapping = Mapping::new(&crate::fit::constraints::CHINCHILLA, &constraints)?;
    let fit = fit_mapped(&LogPoints::new(&points), &vec![1.0; points.len()], &mapping)?;
    let p = fit.params;
    assert_eq!(p.alpha, p.beta);
    for (value, truth) in [(p.e, law.e), (p.a, law.a), (p.b, law.b), (p.alpha, law.alpha)] {
        assert!((value / truth - 1.0).abs() < 1e-4, "{p:?}");
    }
    // Fixing E as well: 3 free parameters.
    let constraints = crate::fit::Constraints { fixed: [("E".to_string(), 1.69)].into(), ..constraints };
    let mapping = Mapping::new(&crate::fit::constraints::CHINCHILLA, &constraints)?;
    assert_eq!(mapping.free(), 3);
    let fit = fit_mapped(&LogPoints::new(&points), &vec![1.0; points.len()], &mapping)?;
    assert!((fit.params.e - 1.69).abs() < 1e-12 && (fit.params.alpha / 0.3 - 1.0).abs() < 1e-4, "{:?}", fit.params);
    Ok(())
}

#[test]
fn a_large_input_searches_the_grid_on_a_subsample_and_finishes_on_every_point() -> TestResult {
    let law = hoffmann();
    let budgets: Vec<f64> = (0..10).map(|k| 1e18 * 10f64.powf(f64::from(k) * 0.4)).collect();
    let points = isoflop_points(&law, &budgets, 250, 0.005, 3);
    assert!(points.len() > GRID_SEARCH_POINTS);
    let log_points = LogPoints::new(&points);
    let weights = vec![1.0; points.len()];
    let fit = fit_grid(&log_points, &weights)?;
    assert_eq!(fit.grid_points, Some(1250));
    let p = fit.params;
    assert!((p.alpha - law.alpha).abs() < 0.01 && (p.beta - law.beta).abs() < 0.01, "{p:?}");
    // No lower minimum on the whole input: a descent from the planted law ends no lower.
    let truth = [law.a.ln(), law.b.ln(), law.e.ln(), law.alpha, law.beta];
    let from_truth = refit_mapped(&log_points, &weights, &Mapping::identity(5), &[truth.to_vec()]).ok_or("no end")?;
    assert!(fit.objective <= from_truth.objective * (1.0 + 1e-9), "{} > {}", fit.objective, from_truth.objective);
    Ok(())
}

#[test]
fn a_refit_leaves_undrawn_runs_out_of_the_sums_with_the_same_answer() -> TestResult {
    let law = hoffmann();
    let points = isoflop_points(&law, &[1e18, 1e19, 1e20, 1e21], 7, 0.01, 4);
    let weights: Vec<f64> = (0..points.len()).map(|i| (i % 3) as f64).collect();
    let drawn: Vec<Point> = points.iter().zip(&weights).filter(|(_, &w)| w > 0.0).map(|(p, _)| p.clone()).collect();
    let drawn_weights: Vec<f64> = weights.iter().copied().filter(|&w| w > 0.0).collect();
    let start = vec![vec![law.a.ln(), law.b.ln(), law.e.ln(), law.alpha, law.beta]];
    let identity = Mapping::identity(5);
    let with_zeros = refit_mapped(&LogPoints::new(&points), &weights, &identity, &start).ok_or("no end")?;
    let without = refit_mapped(&LogPoints::new(&drawn), &drawn_weights, &identity, &start).ok_or("no end")?;
    assert!((with_zeros.objective - without.objective).abs() <= 1e-12 * without.objective.abs().max(1e-300));
    assert!((with_zeros.params.alpha - without.params.alpha).abs() < 1e-9, "{with_zeros:?} {without:?}");
    Ok(())
}
