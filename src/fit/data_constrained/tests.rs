use super::*;
use crate::fit::data::Point;
use crate::fit::options::{FitOptions, Law};
use crate::fit::tests::synth::{hoffmann, isoflop_points, log_spaced, noisy, point};
use crate::rng::SplitMix64;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Muennighoff et al. 2023's fitted values (section 5): R*_D = 15.4, R*_N = 5.3.
const R_D_STAR: f64 = 15.4;
const R_N_STAR: f64 = 5.3;

/// The data-constrained loss, written out independently of the module (eq. 5-6).
fn planted_loss(params: f64, tokens: f64, unique: f64) -> f64 {
    let law = hoffmann();
    let effective = |unique: f64, repeats: f64, star: f64| unique + unique * star * (1.0 - (-repeats / star).exp());
    let g = (law.alpha * law.a / (law.beta * law.b)).powf(1.0 / (law.alpha + law.beta));
    let unique_params = (g * (unique * g).powf(law.beta / law.alpha)).min(params);
    let d_eff = effective(unique, tokens / unique - 1.0, R_D_STAR);
    let n_eff = effective(unique_params, params / unique_params - 1.0, R_N_STAR);
    law.e + law.a / n_eff.powf(law.alpha) + law.b / d_eff.powf(law.beta)
}

/// Single-epoch IsoFLOP runs plus runs of 5 sizes repeating 1B or 4B unique tokens 2-64 times.
fn planted_points(noise: f64) -> Vec<Point> {
    let mut rng = SplitMix64::new(31);
    let mut points = isoflop_points(&hoffmann(), &[1e18, 1e19, 1e20, 1e21], 7, noise, 32);
    for unique in [1e9, 4e9] {
        for params in log_spaced(1e8, 1e10, 5) {
            for epochs in [2.0, 4.0, 8.0, 16.0, 32.0, 64.0] {
                let tokens = unique * epochs;
                let loss = noisy(planted_loss(params, tokens, unique), noise, &mut rng);
                let mut p = point(format!("u{unique:e}-n{params:e}-x{epochs}"), params, tokens, loss);
                p.unique_tokens = Some(unique);
                points.push(p);
            }
        }
    }
    points
}

fn fit_planted(noise: f64) -> Result<Values, FitError> {
    let data = Dataset::from_points("planted", planted_points(noise));
    let options = FitOptions { law: Law::DataConstrained, bootstrap: 0, ..FitOptions::default() };
    let report = crate::fit::fit(&data, &options)?;
    Ok(report.fits.data_constrained.map(|f| f.params).unwrap_or_default())
}

#[test]
fn recovers_planted_r_star_without_noise() -> TestResult {
    let params = fit_planted(0.0)?;
    assert!((params["R_D_star"] / R_D_STAR - 1.0).abs() < 1e-3, "{params:?}");
    assert!((params["R_N_star"] / R_N_STAR - 1.0).abs() < 1e-3, "{params:?}");
    assert!((params["alpha"] - 0.34).abs() < 1e-5 && (params["E"] - 1.69).abs() < 1e-5, "{params:?}");
    Ok(())
}

#[test]
fn recovers_planted_r_star_with_noise() -> TestResult {
    let params = fit_planted(0.003)?;
    assert!((params["R_D_star"] / R_D_STAR - 1.0).abs() < 0.15, "{params:?}");
    assert!((params["R_N_star"] / R_N_STAR - 1.0).abs() < 0.25, "{params:?}");
    Ok(())
}

#[test]
fn effective_count_derivative_matches_finite_differences() {
    let (unique, repeats, star) = (2.0, 7.0, 4.0);
    let (value, slope) = effective(unique, repeats, star);
    let step = 1e-6;
    let up = effective(unique, repeats, (star.ln() + step).exp()).0;
    let down = effective(unique, repeats, (star.ln() - step).exp()).0;
    assert!((slope - (up - down) / (2.0 * step)).abs() < 1e-6, "{slope}");
    // Few repeats are worth almost as much as new data; many saturate at U (1 + R*).
    assert!((value - unique * (1.0 + star * (1.0 - (-repeats / star).exp()))).abs() < 1e-12);
    assert_eq!(effective(unique, 0.0, star), (unique, 0.0));
}

#[test]
fn data_without_repetition_is_skipped_with_the_reason() -> TestResult {
    let data = Dataset::from_points("p", isoflop_points(&hoffmann(), &[1e19, 1e20], 5, 0.0, 3));
    let options = FitOptions { law: Law::All, bootstrap: 0, ..FitOptions::default() };
    let report = crate::fit::fit(&data, &options)?;
    assert!(report.fits.data_constrained.is_none());
    assert!(report.skipped["data_constrained"].contains("repeat data"), "{:?}", report.skipped);
    Ok(())
}

#[test]
fn an_overfitting_run_is_left_out_with_a_warning_and_the_planted_law_still_fits() -> TestResult {
    let mut points = planted_points(0.0);
    // 64 epochs of 1B tokens made this size worse than 32 epochs did: outside eq. 5's domain.
    let smallest = points.iter().filter(|p| p.unique_tokens.is_some()).map(|p| p.params).fold(f64::INFINITY, f64::min);
    let run =
        |epochs: f64| move |p: &Point| p.unique_tokens == Some(1e9) && p.tokens == 1e9 * epochs && p.params == smallest;
    let worse = points.iter().position(run(64.0)).ok_or("no 64-epoch run")?;
    let first = points.iter().position(run(2.0)).ok_or("no 2-epoch run")?;
    points[worse].loss += 1.0;
    let (worse_id, first_id) = (points[worse].run_id.clone(), points[first].run_id.clone());
    let data = Dataset::from_points("planted", points);
    let overfit = overfit_runs(&data);
    assert_eq!(overfit.len(), 1, "{overfit:?}");
    assert_eq!(
        (data.points[overfit[0].0].run_id.as_str(), data.points[overfit[0].1].run_id.as_str()),
        (worse_id.as_str(), first_id.as_str())
    );
    let options = FitOptions { law: Law::DataConstrained, bootstrap: 0, ..FitOptions::default() };
    let report = crate::fit::fit(&data, &options)?;
    assert!(
        report.warnings.iter().any(|w| w.contains(&worse_id) && w.contains("overfitting")),
        "{:?}",
        report.warnings
    );
    let params = report.fits.data_constrained.map(|f| f.params).unwrap_or_default();
    assert!((params["R_D_star"] / R_D_STAR - 1.0).abs() < 1e-3, "{params:?}");
    Ok(())
}

#[test]
fn a_degenerate_base_law_is_a_clear_error() {
    let degenerate = ChinchillaParams { beta: 13.2, b: 8.7e74, ..hoffmann() };
    let error = check_base_law(&degenerate).unwrap_err().to_string();
    assert!(error.contains("degenerate") && error.contains("beta = 13.200"), "{error}");
    assert!(check_base_law(&hoffmann()).is_ok());
}
