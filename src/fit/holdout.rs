//! The holdout backtest of `--holdout K`: refit without the K largest-compute runs and
//! compare what the law predicts for them with what they reached. The refit honours
//! `--fix` / `--tie` as the full fit does: it fits the same free parameters.

use crate::fit::assess::EXPONENT_MAX;
use crate::fit::chinchilla::{check_supported_free, fit_mapped, LogPoints};
use crate::fit::data::{Dataset, Point};
use crate::fit::error::FitError;
use crate::fit::kaplan::{fit_joint_mapped, Joint};
use crate::fit::mapping::Mapping;
use crate::fit::options::{FitOptions, Law};
use crate::records::fit::{ChinchillaParams, HeldOut, HoldoutReport, Values};

/// A refitted law's loss prediction for a run.
type Predictor = Box<dyn Fn(&Point) -> f64>;

/// Indices of the `count` points with the largest compute.
fn largest_compute(data: &Dataset, count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..data.points.len()).collect();
    order.sort_by(|&i, &j| data.points[j].flops.total_cmp(&data.points[i].flops));
    order.truncate(count);
    order
}

/// Refits the parametric law (Kaplan's joint law for `--law kaplan`, approach 3 otherwise)
/// without the held-out runs and predicts them; `chinchilla` and `kaplan` are the laws'
/// free parameters under `--fix` / `--tie`.
pub(crate) fn backtest(
    data: &Dataset,
    opts: &FitOptions,
    chinchilla: &Mapping,
    kaplan: &Mapping,
) -> Result<HoldoutReport, FitError> {
    let count = opts.holdout;
    if count >= data.points.len() {
        return Err(FitError::TooFewPoints {
            law: "holdout".to_string(),
            reason: format!("cannot hold out {count} of {} runs", data.points.len()),
        });
    }
    let held = largest_compute(data, count);
    let weights: Vec<f64> = (0..data.points.len()).map(|i| if held.contains(&i) { 0.0 } else { 1.0 }).collect();
    let (law, params, predict): (&str, Values, Predictor) = if opts.law == Law::Kaplan {
        let (fit, x, _) = fit_joint_mapped(data, &weights, kaplan, None)?;
        ("kaplan_nd", fit.params, Box::new(move |p: &Point| Joint::predict(&x, p.params, p.tokens)))
    } else {
        let kept: Vec<Point> =
            (0..data.points.len()).filter(|&i| weights[i] > 0.0).map(|i| data.points[i].clone()).collect();
        check_supported_free(&kept, chinchilla.free())?;
        let fit = fit_mapped(&LogPoints::new(&data.points), &weights, chinchilla)?;
        let p = fit.params;
        if let Some(what) = degenerate(&p) {
            return Err(FitError::TooFewPoints {
                law: "holdout".to_string(),
                reason: format!(
                    "the law refitted without the {count} largest-compute runs is degenerate ({what}; \
                     alpha = {:.4}, beta = {:.4}): the {} runs left do not pin it, so it predicts nothing",
                    p.alpha,
                    p.beta,
                    data.points.len() - count
                ),
            });
        }
        let params = Values::from([
            ("E".to_string(), p.e),
            ("A".to_string(), p.a),
            ("B".to_string(), p.b),
            ("alpha".to_string(), p.alpha),
            ("beta".to_string(), p.beta),
        ]);
        ("chinchilla", params, Box::new(move |p: &Point| fit.params.predict(p.params, p.tokens)))
    };
    let held_out: Vec<HeldOut> = held.iter().map(|&i| held_out(&data.points[i], predict(&data.points[i]))).collect();
    let max_rel_error = largest_error(&held_out)?;
    Ok(HoldoutReport { law: law.to_string(), fitted_on: data.points.len() - count, params, held_out, max_rel_error })
}

/// Why a refitted approach-3 law predicts nothing, if it does not: a parameter that is not a
/// finite number, or an exponent that ran away (not positive, or above the verdicts'
/// `EXPONENT_MAX`: A/N^alpha with alpha = 37 is a constant, whatever A is).
fn degenerate(p: &ChinchillaParams) -> Option<String> {
    let all = [("E", p.e), ("A", p.a), ("B", p.b), ("alpha", p.alpha), ("beta", p.beta)];
    if let Some((name, value)) = all.into_iter().find(|(_, v)| !v.is_finite()) {
        return Some(format!("{name} = {value}"));
    }
    [("alpha", p.alpha), ("beta", p.beta)]
        .into_iter()
        .find(|(_, v)| *v <= 0.0 || *v > EXPONENT_MAX)
        .map(|(name, value)| format!("{name} = {value:.4} ran away (outside (0, {EXPONENT_MAX}])"))
}

/// The largest relative error of the held-out runs; an error naming the run when one is not a
/// finite number (`f64::max` would pass over a NaN and report the others' largest).
fn largest_error(held_out: &[HeldOut]) -> Result<f64, FitError> {
    let mut largest: f64 = 0.0;
    for h in held_out {
        if !h.rel_error.is_finite() {
            return Err(FitError::TooFewPoints {
                law: "holdout".to_string(),
                reason: format!(
                    "the refitted law predicts {} for held-out run {} (actual {}); the backtest has no finite error",
                    h.predicted, h.run, h.actual
                ),
            });
        }
        largest = largest.max(h.rel_error);
    }
    Ok(largest)
}

/// A note when the held-out runs share their FLOP budget (grouped as approach 2 groups them)
/// with runs the refit keeps, as in an IsoFLOP sweep whose top budget has more sizes than K:
/// the backtest then predicts runs at a compute the refit has seen, chosen among that budget by
/// their exact FLOPs. It names the `--holdout` that holds out the whole budget.
pub(crate) fn shared_budget_note(data: &Dataset, report: &HoldoutReport) -> Option<String> {
    let ones = vec![1.0; data.points.len()];
    let top = crate::fit::isoflop::budgets(data, &ones).pop()?;
    let held: Vec<&str> = report.held_out.iter().map(|h| h.run.as_str()).collect();
    let kept = top.iter().filter(|&&i| !held.contains(&data.points[i].run_id.as_str())).count();
    if kept == 0 || !top.iter().any(|&i| held.contains(&data.points[i].run_id.as_str())) {
        return None;
    }
    let flops = data.points[top[0]].flops;
    Some(format!(
        "holdout: the {} held-out runs are {} of the {} runs of the top budget (C ≈ {flops:.3e}); the refit kept \
         the other {kept}, so this backtest does not extrapolate in compute (--holdout {} holds out that whole budget)",
        report.held_out.len(),
        report.held_out.len(),
        top.len(),
        top.len()
    ))
}

fn held_out(point: &Point, predicted: f64) -> HeldOut {
    HeldOut {
        run: point.run_id.clone(),
        params: point.params,
        tokens: point.tokens,
        flops: point.flops,
        actual: point.loss,
        predicted,
        rel_error: (predicted - point.loss).abs() / point.loss,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::tests::synth::point;

    fn held(predicted: &[f64]) -> Vec<HeldOut> {
        predicted.iter().enumerate().map(|(k, &p)| held_out(&point(format!("run{k}"), 1e6, 1e8, 3.0), p)).collect()
    }

    #[test]
    fn holding_out_part_of_the_top_budget_is_said_and_the_whole_budget_is_not() {
        let law = crate::fit::tests::synth::hoffmann();
        let points = crate::fit::tests::synth::isoflop_points(&law, &[1e18, 1e19, 1e20], 5, 0.0, 1);
        let data = Dataset::from_points("isoflop", points);
        for (holdout, note) in [(3, true), (5, false)] {
            let options = FitOptions { law: Law::Chinchilla, bootstrap: 0, holdout, ..FitOptions::default() };
            let report = crate::fit::fit(&data, &options).unwrap();
            assert_eq!(report.fits.holdout.as_ref().map(|h| h.held_out.len()), Some(holdout));
            let found = report.warnings.iter().find(|w| w.starts_with("holdout: "));
            match (note, found) {
                (true, Some(w)) => assert!(
                    w.contains("are 3 of the 5 runs of the top budget (C ≈ 1.000e20)")
                        && w.contains("the refit kept the other 2")
                        && w.contains("--holdout 5 holds out that whole budget"),
                    "{w}"
                ),
                (false, None) => {}
                _ => panic!("--holdout {holdout}: {:?}", report.warnings),
            }
        }
    }

    #[test]
    fn the_largest_error_is_the_largest_and_a_non_finite_prediction_fails() {
        let largest = largest_error(&held(&[3.3, 2.4, 3.0])).ok();
        assert!(largest.is_some_and(|e| (e - 0.2).abs() < 1e-12), "{largest:?}");
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let error = largest_error(&held(&[3.3, bad, 3.0])).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains("held-out run run1") && error.contains("no finite error"), "{bad}: {error}");
        }
    }

    #[test]
    fn a_refit_with_a_runaway_exponent_or_a_non_finite_parameter_is_degenerate() {
        let good =
            ChinchillaParams { e: 1.69, a: 406.4, b: 410.7, alpha: 0.34, beta: 0.28, compute: Default::default() };
        assert_eq!(degenerate(&good), None);
        let runaway = ChinchillaParams { a: 4.18e127, alpha: 36.67, ..good };
        assert_eq!(degenerate(&runaway).as_deref(), Some("alpha = 36.6700 ran away (outside (0, 2])"));
        let flat = ChinchillaParams { beta: -0.01, ..good };
        assert!(degenerate(&flat).is_some_and(|w| w.starts_with("beta = -0.0100")));
        let overflow = ChinchillaParams { a: f64::INFINITY, alpha: 585.0, ..good };
        assert_eq!(degenerate(&overflow).as_deref(), Some("A = inf"));
    }
}
