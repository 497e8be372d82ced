//! The compute-efficient frontier and Chinchilla approach 1 (Hoffmann et al. 2022, section
//! 3.1): for each compute, the lowest loss any run reached; the model sizes and token counts
//! on the frontier give N_opt ∝ C^a and D_opt ∝ C^b.
//!
//! With validation curves (sweep directories), each run's log loss is interpolated linearly
//! in log C at 1,500 log-spaced compute values, as in the paper; without curves (a plain CSV
//! of final points) the frontier is the lower envelope of the points themselves.

use crate::fit::data::{CurvePoint, Dataset, Point};
use crate::fit::error::FitError;
use crate::fit::regress::{fit_line, Line};
use crate::records::fit::FrontierFit;

/// Compute values at which approach 1 compares runs (Hoffmann et al. 2022: 1,500).
const GRID: usize = 1500;

/// One point of the frontier: compute, the lowest loss there, the run's N and its D there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FrontierPoint {
    pub flops: f64,
    pub loss: f64,
    pub params: f64,
    pub tokens: f64,
}

/// Each point's curve, if it has one.
fn curve_of_each_point(data: &Dataset) -> Vec<&[CurvePoint]> {
    let mut curves: Vec<&[CurvePoint]> = vec![&[]; data.points.len()];
    for curve in &data.curves {
        curves[curve.point] = &curve.evals;
    }
    curves
}

/// Every evaluation of every run of positive weight (its curve and its final point).
fn all_evaluations(data: &Dataset, weights: &[f64]) -> Vec<FrontierPoint> {
    let curves = curve_of_each_point(data);
    let mut evaluations = Vec::new();
    for (index, point) in data.points.iter().enumerate() {
        if weights[index] <= 0.0 {
            continue;
        }
        for eval in run_curve(point, curves[index]) {
            evaluations.push(FrontierPoint {
                flops: eval.flops,
                loss: eval.loss,
                params: point.params,
                tokens: eval.tokens,
            });
        }
    }
    evaluations
}

/// A run's evaluations sorted by compute, ending with its final point.
fn run_curve(point: &Point, evals: &[CurvePoint]) -> Vec<CurvePoint> {
    let mut curve: Vec<CurvePoint> = evals.iter().copied().filter(|eval| eval.tokens < point.tokens).collect();
    curve.push(CurvePoint { tokens: point.tokens, flops: point.flops, loss: point.loss });
    curve.sort_by(|p, q| p.flops.total_cmp(&q.flops));
    curve
}

/// The lower envelope of loss against compute over all evaluations: the points that reach
/// a lower loss than everything with less compute (Kaplan et al. 2020, Figure 1 left).
pub(crate) fn envelope(data: &Dataset, weights: &[f64]) -> Vec<FrontierPoint> {
    let mut evaluations = all_evaluations(data, weights);
    evaluations.sort_by(|p, q| p.flops.total_cmp(&q.flops).then(p.loss.total_cmp(&q.loss)));
    let mut frontier: Vec<FrontierPoint> = Vec::new();
    for eval in evaluations {
        if frontier.last().is_none_or(|last| eval.loss < last.loss) {
            frontier.push(eval);
        }
    }
    frontier
}

/// A run's curve as (log C, log L) pairs, sorted by compute.
struct LogCurve {
    point: usize,
    ln_flops: Vec<f64>,
    ln_loss: Vec<f64>,
}

/// Approach 1 on interpolated curves: at each of GRID log-spaced computes, the run whose
/// interpolated log loss is lowest. `None` unless 2+ runs have 2+ evaluations.
fn interpolated_frontier(data: &Dataset, weights: &[f64]) -> Option<Vec<FrontierPoint>> {
    let evals = curve_of_each_point(data);
    let curves: Vec<LogCurve> = (0..data.points.len())
        .filter(|&i| weights[i] > 0.0 && !evals[i].is_empty())
        .map(|i| {
            let curve = run_curve(&data.points[i], evals[i]);
            let ln_flops = curve.iter().map(|p| p.flops.ln()).collect();
            let ln_loss = curve.iter().map(|p| p.loss.ln()).collect();
            LogCurve { point: i, ln_flops, ln_loss }
        })
        .filter(|curve| curve.ln_flops.len() >= 2)
        .collect();
    if curves.len() < 2 {
        return None;
    }
    let low = curves.iter().map(|c| c.ln_flops[0]).fold(f64::INFINITY, f64::min);
    let high = curves.iter().map(|c| c.ln_flops[c.ln_flops.len() - 1]).fold(f64::NEG_INFINITY, f64::max);
    let grid: Vec<f64> = (0..GRID).map(|k| low + (high - low) * k as f64 / (GRID - 1) as f64).collect();
    let mut best = vec![(f64::INFINITY, usize::MAX); GRID];
    for curve in &curves {
        lower_with_curve(&mut best, &grid, curve);
    }
    let frontier = grid.iter().zip(&best).filter(|(_, (_, run))| *run != usize::MAX).map(|(&ln_c, &(ln_loss, run))| {
        let point = &data.points[run];
        let flops = ln_c.exp();
        FrontierPoint { flops, loss: ln_loss.exp(), params: point.params, tokens: flops * point.tokens / point.flops }
    });
    Some(frontier.collect())
}

/// Lowers `best[k]` (log loss, run) to the curve's log loss at `grid[k]` wherever the curve
/// covers it, interpolating linearly in log-log; one pass over grid and curve together.
fn lower_with_curve(best: &mut [(f64, usize)], grid: &[f64], curve: &LogCurve) {
    let (x, y) = (&curve.ln_flops, &curve.ln_loss);
    let mut segment = 1;
    for (k, &ln_c) in grid.iter().enumerate() {
        if ln_c < x[0] {
            continue;
        }
        while segment < x.len() && x[segment] < ln_c {
            segment += 1;
        }
        if segment == x.len() {
            break;
        }
        let (x0, x1) = (x[segment - 1], x[segment]);
        let t = if x1 > x0 { (ln_c - x0) / (x1 - x0) } else { 1.0 };
        let ln_loss = y[segment - 1] + t * (y[segment] - y[segment - 1]);
        if ln_loss < best[k].0 {
            best[k] = (ln_loss, curve.point);
        }
    }
}

/// The frontier approach 1 fits its exponents on, and how it was found: the interpolated
/// curves' (or the final points' lower envelope), without the points of the edge sizes.
pub(crate) fn approach1_frontier(data: &Dataset, weights: &[f64]) -> (Vec<FrontierPoint>, &'static str) {
    let (frontier, method) = match interpolated_frontier(data, weights) {
        Some(frontier) => (frontier, "interpolated curves"),
        None => (envelope(data, weights), "lower envelope of final points"),
    };
    (without_edge_sizes(data, weights, frontier), method)
}

/// Fits N_opt ∝ C^a and D_opt ∝ C^b on the frontier; with log L against log C along it (for
/// the loss of the predicted allocation), when it has one.
pub(crate) fn fit_approach1(data: &Dataset, weights: &[f64]) -> Result<(FrontierFit, Option<Line>), FitError> {
    let (frontier, method) = approach1_frontier(data, weights);
    let sizes = distinct_sizes(&frontier);
    let too_few = || FitError::TooFewPoints {
        law: "frontier".to_string(),
        reason: format!("needs 3+ model sizes on the compute frontier; found {sizes}"),
    };
    if sizes < 3 {
        return Err(too_few());
    }
    let ln_c: Vec<f64> = frontier.iter().map(|p| p.flops.ln()).collect();
    let ones = vec![1.0; frontier.len()];
    let fit = |values: Vec<f64>| fit_line(&ln_c, &values, &ones);
    let n_line = fit(frontier.iter().map(|p| p.params.ln()).collect()).ok_or_else(too_few)?;
    let d_line = fit(frontier.iter().map(|p| p.tokens.ln()).collect()).ok_or_else(too_few)?;
    let fit_result = FrontierFit::new(n_line, d_line, frontier.len(), sizes, method);
    // The frontier's loss as a power law of compute, L = (C_c/C)^alpha_C (Kaplan et al. 2020
    // eq. 1.3), for the loss of the predicted allocation.
    let loss_line = fit(frontier.iter().map(|p| p.loss.ln()).collect());
    Ok((fit_result, loss_line))
}

fn distinct_sizes(frontier: &[FrontierPoint]) -> usize {
    let mut sizes: Vec<f64> = frontier.iter().map(|p| p.params).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    sizes.len()
}

/// Drops the frontier points won by the sweep's smallest or largest model: there the
/// optimum may lie outside the sizes tried, which would flatten the fitted exponent. Keeps
/// everything when fewer than 3 sizes would remain.
fn without_edge_sizes(data: &Dataset, weights: &[f64], frontier: Vec<FrontierPoint>) -> Vec<FrontierPoint> {
    let sizes = data.points.iter().zip(weights).filter(|(_, &w)| w > 0.0).map(|(p, _)| p.params);
    let (smallest, largest) = sizes.fold((f64::INFINITY, 0.0f64), |(lo, hi), n| (lo.min(n), hi.max(n)));
    let interior: Vec<FrontierPoint> =
        frontier.iter().filter(|p| p.params != smallest && p.params != largest).copied().collect();
    if distinct_sizes(&interior) >= 3 {
        interior
    } else {
        frontier
    }
}

/// N_opt (or D_opt) at compute C from a fitted line in log-log space.
pub(crate) fn power_at(line: &Line, flops: f64) -> f64 {
    (line.intercept + line.slope * flops.ln()).exp()
}

#[cfg(test)]
mod tests;
