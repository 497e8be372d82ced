//! Chinchilla approach 3 (Hoffmann et al. 2022, section 3.3): L(N, D) = E + A/N^alpha + B/D^beta,
//! fitted as log L = LSE(a - alpha log N, b - beta log D, e) (eq. 3, with A = e^a, B = e^b,
//! E = e^e) by the Huber loss (delta = 1e-3, summed over points) with L-BFGS from the
//! published grid of 4,500 starting points, and the compute-optimal allocation of eq. 4.

use crate::fit::data::Point;
use crate::fit::error::FitError;
use crate::fit::fastmath;
use crate::fit::mapping::{Constrained, Mapping};
use crate::fit::optim::{
    distinct_ends, huber, huber_slope, lowest, minimize_each, minimize_sequential, Minimum, Objective, Settings,
};
use crate::records::fit::ChinchillaParams;
use crate::records::fit::ComputeModel;

/// The Huber threshold of Hoffmann et al. 2022, section 3.3.
pub(crate) const HUBER_DELTA: f64 = 1e-3;

impl ChinchillaParams {
    /// From the optimiser's vector (a, b, e, alpha, beta) = (log A, log B, log E, alpha, beta).
    pub(crate) fn from_log_form(x: &[f64], compute: ComputeModel) -> ChinchillaParams {
        ChinchillaParams { e: x[2].exp(), a: x[0].exp(), b: x[1].exp(), alpha: x[3], beta: x[4], compute }
    }

    /// Predicted loss for N parameters trained on D tokens (eq. 2).
    pub fn predict(&self, params: f64, tokens: f64) -> f64 {
        self.e + self.a / params.powf(self.alpha) + self.b / tokens.powf(self.beta)
    }

    /// Exponent a of N_opt ∝ C^a: beta / (alpha + beta) (eq. 4), beta / (alpha + beta·c) under
    /// C = k·N^c·D (see `compute`).
    pub fn exponent_a(&self) -> f64 {
        self.beta / (self.alpha + self.beta * self.compute.params_exponent)
    }

    /// Exponent b of D_opt ∝ C^b: alpha / (alpha + beta) (eq. 4), 1 − c·a under C = k·N^c·D.
    pub fn exponent_b(&self) -> f64 {
        1.0 - self.compute.params_exponent * self.exponent_a()
    }

    /// (N_opt, D_opt) at compute C (eq. 4): G = (alpha A / (beta B))^(1/(alpha+beta)),
    /// N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b; under C = k·N^c·D, G = (αA/(βcB))^(1/(α+βc)),
    /// N_opt = G (C/k)^a and D_opt = C / (k N_opt^c).
    pub fn compute_optimal(&self, flops: f64) -> (f64, f64) {
        let c = self.compute.params_exponent;
        let g = (self.alpha * self.a / (self.beta * c * self.b)).powf(1.0 / (self.alpha + self.beta * c));
        let n_opt = g * (flops / self.compute.coefficient).powf(self.exponent_a());
        (n_opt, self.compute.tokens(flops, n_opt))
    }
}

/// log N, log D and log L of the points, stored column by column.
#[derive(Debug, Clone)]
pub(crate) struct LogPoints {
    pub ln_params: Vec<f64>,
    pub ln_tokens: Vec<f64>,
    pub ln_loss: Vec<f64>,
    /// C = k·N^c·D fitted to the points: the constraint of the compute-optimal allocation.
    pub compute: ComputeModel,
    /// (min, max) of ln_params and of ln_tokens.
    params_range: (f64, f64),
    tokens_range: (f64, f64),
}

impl LogPoints {
    pub fn new(points: &[Point]) -> LogPoints {
        let ln_params: Vec<f64> = points.iter().map(|p| p.params.ln()).collect();
        let ln_tokens: Vec<f64> = points.iter().map(|p| p.tokens.ln()).collect();
        LogPoints {
            compute: ComputeModel::fit(points),
            params_range: range(&ln_params),
            tokens_range: range(&ln_tokens),
            ln_params,
            ln_tokens,
            ln_loss: points.iter().map(|p| p.loss.ln()).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.ln_loss.len()
    }

    /// The points at `indices`, with their weights (the compute model is the whole set's).
    fn subset(&self, indices: &[usize], weights: &[f64]) -> (LogPoints, Vec<f64>) {
        let pick = |values: &[f64]| indices.iter().map(|&i| values[i]).collect::<Vec<f64>>();
        let (ln_params, ln_tokens) = (pick(&self.ln_params), pick(&self.ln_tokens));
        let subset = LogPoints {
            compute: self.compute,
            params_range: range(&ln_params),
            tokens_range: range(&ln_tokens),
            ln_params,
            ln_tokens,
            ln_loss: pick(&self.ln_loss),
        };
        (subset, pick(weights))
    }
}

fn range(values: &[f64]) -> (f64, f64) {
    values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

/// Points processed together in `HuberLse::shared_shift` (the compiler's SIMD width).
const LANES: usize = 8;

/// Sum over points of weight x Huber(LSE(a - alpha log N, b - beta log D, e) - log L).
pub(crate) struct HuberLse<'a> {
    pub points: &'a LogPoints,
    /// Per-point weights: 1 for a plain fit, resample counts for a bootstrap refit.
    pub weights: &'a [f64],
}

impl Objective for HuberLse<'_> {
    fn value_and_gradient(&self, x: &[f64], gradient: &mut [f64]) -> f64 {
        match self.shared_shift(x, gradient) {
            Some(value) => value,
            None => self.per_point_shift(x, gradient),
        }
    }
}

/// One point's Huber term, its gradient terms (a, b, e, alpha, beta) and the LSE sum.
#[inline(always)]
fn point_terms(x: &[f64; 5], shift: f64, e_term: f64, ln_n: f64, ln_d: f64, ln_l: f64, w: f64) -> [f64; 7] {
    let (a, b, alpha, beta) = (x[0], x[1], x[3], x[4]);
    let n_term = fastmath::exp(a - shift - alpha * ln_n);
    let d_term = fastmath::exp(b - shift - beta * ln_d);
    let sum = n_term + d_term + e_term;
    let residual = shift + fastmath::ln(sum) - ln_l;
    let clipped = residual.clamp(-HUBER_DELTA, HUBER_DELTA);
    // Huber(r) = c (r - c/2) with c = r clipped to [-delta, delta].
    let loss = w * clipped * (residual - 0.5 * clipped);
    let slope = w * clipped / sum;
    let (gn, gd) = (slope * n_term, slope * d_term);
    [loss, gn, gd, slope * e_term, -gn * ln_n, -gd * ln_d, sum]
}

/// `point_terms` for LANES points at once, added into `acc` lane by lane.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lanes_terms(
    x: &[f64; 5],
    shift: f64,
    e_term: f64,
    ln_n: &[f64; LANES],
    ln_d: &[f64; LANES],
    ln_l: &[f64; LANES],
    w: &[f64; LANES],
    acc: &mut [[f64; LANES]; 7],
) {
    let mut terms = [[0.0; 7]; LANES];
    for l in 0..LANES {
        terms[l] = point_terms(x, shift, e_term, ln_n[l], ln_d[l], ln_l[l], w[l]);
    }
    for l in 0..LANES {
        for k in 0..6 {
            acc[k][l] += terms[l][k];
        }
        acc[6][l] = acc[6][l].min(terms[l][6]);
    }
}

impl HuberLse<'_> {
    /// `shared_shift_lanes` compiled for the widest SIMD this CPU has (checked at run time).
    fn shared_shift(&self, x: &[f64], gradient: &mut [f64]) -> Option<f64> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512dq") && std::arch::is_x86_feature_detected!("avx512vl") {
                // SAFETY: the CPU supports AVX-512F/DQ/VL (and so AVX2 and FMA), checked above.
                return unsafe { self.shared_shift_avx512(x, gradient) };
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports AVX2 and FMA, checked above.
                return unsafe { self.shared_shift_avx2(x, gradient) };
            }
        }
        self.shared_shift_lanes(x, gradient)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
    fn shared_shift_avx512(&self, x: &[f64], gradient: &mut [f64]) -> Option<f64> {
        self.shared_shift_lanes(x, gradient)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn shared_shift_avx2(&self, x: &[f64], gradient: &mut [f64]) -> Option<f64> {
        self.shared_shift_lanes(x, gradient)
    }

    /// The LSE shifted by one constant for all points, the largest exponent over the data
    /// (known from the ranges of log N and log D): no exp can overflow, and the loop runs
    /// LANES points at a time. `None` when some point's sum underflows.
    #[inline(always)]
    fn shared_shift_lanes(&self, x: &[f64], gradient: &mut [f64]) -> Option<f64> {
        let x: &[f64; 5] = x.try_into().ok()?;
        let p = self.points;
        let top_n = x[0] - x[3] * if x[3] >= 0.0 { p.params_range.0 } else { p.params_range.1 };
        let top_d = x[1] - x[4] * if x[4] >= 0.0 { p.tokens_range.0 } else { p.tokens_range.1 };
        let shift = top_n.max(top_d).max(x[2]);
        let e_term = (x[2] - shift).exp();
        let mut acc = [[0.0; LANES]; 7];
        acc[6] = [f64::INFINITY; LANES];
        let n = p.len();
        let full = n - n % LANES;
        for base in (0..full).step_by(LANES) {
            let ln_n: &[f64; LANES] = p.ln_params[base..base + LANES].try_into().ok()?;
            let ln_d: &[f64; LANES] = p.ln_tokens[base..base + LANES].try_into().ok()?;
            let ln_l: &[f64; LANES] = p.ln_loss[base..base + LANES].try_into().ok()?;
            let w: &[f64; LANES] = self.weights[base..base + LANES].try_into().ok()?;
            lanes_terms(x, shift, e_term, ln_n, ln_d, ln_l, w, &mut acc);
        }
        for i in full..n {
            let terms = point_terms(x, shift, e_term, p.ln_params[i], p.ln_tokens[i], p.ln_loss[i], self.weights[i]);
            for k in 0..6 {
                acc[k][0] += terms[k];
            }
            acc[6][0] = acc[6][0].min(terms[6]);
        }
        let smallest = acc[6].iter().fold(f64::INFINITY, |m, &v| m.min(v));
        if smallest.is_nan() || smallest <= 1e-300 {
            return None;
        }
        for k in 0..5 {
            gradient[k] = acc[k + 1].iter().sum();
        }
        let total: f64 = acc[0].iter().sum();
        total.is_finite().then_some(total)
    }

    /// The LSE shifted by each point's own largest exponent (slower, never underflows).
    fn per_point_shift(&self, x: &[f64], gradient: &mut [f64]) -> f64 {
        let (a, b, e, alpha, beta) = (x[0], x[1], x[2], x[3], x[4]);
        let p = self.points;
        let mut total = 0.0;
        let mut g = [0.0; 5];
        for i in 0..p.len() {
            let (ln_n, ln_d, w) = (p.ln_params[i], p.ln_tokens[i], self.weights[i]);
            let u = a - alpha * ln_n;
            let v = b - beta * ln_d;
            let top = u.max(v).max(e);
            let (eu, ev, ee) = ((u - top).exp(), (v - top).exp(), (e - top).exp());
            let sum = eu + ev + ee;
            let residual = top + sum.ln() - p.ln_loss[i];
            total += w * huber(residual, HUBER_DELTA);
            let slope = w * huber_slope(residual, HUBER_DELTA) / sum;
            g[0] += slope * eu;
            g[1] += slope * ev;
            g[2] += slope * ee;
            g[3] -= slope * eu * ln_n;
            g[4] -= slope * ev * ln_d;
        }
        gradient.copy_from_slice(&g);
        total
    }
}

/// The grid of Hoffmann et al. 2022 (as run by Besiroglu et al. 2024): alpha, beta in
/// {0, 0.5, ..., 2}, e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25}; 4,500 starts,
/// each as (a, b, e, alpha, beta).
pub(crate) fn published_grid() -> Vec<Vec<f64>> {
    let halves = |from: i32, to: i32| (from..=to).map(|k| f64::from(k) * 0.5).collect::<Vec<_>>();
    let exponents = halves(0, 4);
    let offsets = halves(-2, 2);
    let scales: Vec<f64> = (0..6).map(|k| f64::from(k) * 5.0).collect();
    let mut grid = Vec::with_capacity(4500);
    for &alpha in &exponents {
        for &beta in &exponents {
            for &e in &offsets {
                for &a in &scales {
                    for &b in &scales {
                        grid.push(vec![a, b, e, alpha, beta]);
                    }
                }
            }
        }
    }
    grid
}

/// The approach-3 fit: parameters, objective, the optimiser's vector.
#[derive(Debug, Clone)]
pub(crate) struct Approach3 {
    pub params: ChinchillaParams,
    pub objective: f64,
    /// The size of the subsample the grid was searched on, if it was one.
    pub grid_points: Option<usize>,
    /// Where bootstrap refits start, in free coordinates: the optimum first, then distinct
    /// near-optimal end points of the grid search (`BOOTSTRAP_STARTS`).
    pub restarts: Vec<Vec<f64>>,
}

/// Bootstrap refits of approach 3 start from the full-data optimum and from up to this many
/// further end points of the full-data grid search, each within `RESTART_RATIO` of the lowest
/// objective and more than `RESTART_DISTANCE` from the others in some coordinate (log A, log B,
/// log E, alpha or beta); the lowest end wins. A flat direction leaves distant ends of nearly
/// equal objective, so resamples can wander along it and the interval shows it.
pub(crate) const BOOTSTRAP_STARTS: usize = 4;
pub(crate) const RESTART_RATIO: f64 = 1.5;
pub(crate) const RESTART_DISTANCE: f64 = 0.05;

/// The settings of every approach-3 run.
pub(crate) fn settings() -> Settings {
    Settings::default()
}

fn distinct(values: impl Iterator<Item = f64>) -> usize {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v.len()
}

/// Needs more points than free parameters (`free` + 1), over at least two N and two D.
pub(crate) fn check_supported_free(points: &[Point], free: usize) -> Result<(), FitError> {
    let sizes = distinct(points.iter().map(|p| p.params));
    let tokens = distinct(points.iter().map(|p| p.tokens));
    let needed = free + 1;
    if points.len() < needed || sizes < 2 || tokens < 2 {
        return Err(FitError::TooFewPoints {
            law: "chinchilla".to_string(),
            reason: format!(
                "needs at least {needed} points ({free} free parameters + 1) over 2+ model sizes and 2+ token \
                 counts; got {} points, {sizes} sizes, {tokens} token counts",
                points.len()
            ),
        });
    }
    Ok(())
}

/// Fits approach 3 from the whole published grid.
#[cfg(test)]
pub(crate) fn fit_grid(points: &LogPoints, weights: &[f64]) -> Result<Approach3, FitError> {
    fit_mapped(points, weights, &Mapping::identity(5))
}

/// Above this many points the grid search runs on an evenly strided subsample of about this
/// many, and L-BFGS then continues on every point from the `POLISHED_ENDS` best distinct end
/// points it found: the shape of the objective (its basins and flat valleys) is set by where
/// the runs lie, not by how many there are, so 4,500 starts on every point of a 100,000-row
/// input would only repeat the same descent at 50 times the cost. Inputs up to this size (every
/// published dataset sweeplaw is checked on) are searched from every start on every point.
pub(crate) const GRID_SEARCH_POINTS: usize = 2000;
pub(crate) const POLISHED_ENDS: usize = 20;

/// Runs L-BFGS from each start on `points` (through `mapping` where it holds parameters).
fn descend_each(points: &LogPoints, weights: &[f64], mapping: &Mapping, starts: &[Vec<f64>]) -> Vec<Option<Minimum>> {
    let objective = HuberLse { points, weights };
    if mapping.is_identity() {
        minimize_each(&objective, starts, &settings())
    } else {
        minimize_each(&Constrained { inner: &objective, mapping }, starts, &settings())
    }
}

/// Fits approach 3 with the parameters `mapping` leaves free, from the published grid
/// projected onto them (a tied or fixed law runs fewer distinct starts); above
/// `GRID_SEARCH_POINTS` points the grid is searched on a subsample first.
pub(crate) fn fit_mapped(points: &LogPoints, weights: &[f64], mapping: &Mapping) -> Result<Approach3, FitError> {
    let starts = mapping.starts(&published_grid());
    let no_optimum = || FitError::NoOptimum { law: "chinchilla".to_string(), starts: starts.len() };
    let mut grid_points = None;
    let ends = if points.len() > GRID_SEARCH_POINTS {
        let stride = points.len().div_ceil(GRID_SEARCH_POINTS);
        let indices: Vec<usize> = (0..points.len()).step_by(stride).collect();
        let (sample, sample_weights) = points.subset(&indices, weights);
        grid_points = Some(sample.len());
        let sample_ends = descend_each(&sample, &sample_weights, mapping, &starts);
        // Every distinct end, however far above the lowest: the subsample only ranks them.
        let polish = distinct_ends(&sample_ends, POLISHED_ENDS, f64::INFINITY, RESTART_DISTANCE);
        descend_each(points, weights, mapping, &polish)
    } else {
        descend_each(points, weights, mapping, &starts)
    };
    let best = lowest(&ends).ok_or_else(no_optimum)?;
    let restarts = distinct_ends(&ends, BOOTSTRAP_STARTS + 1, RESTART_RATIO, RESTART_DISTANCE);
    let x = mapping.full(&best.x);
    let params = ChinchillaParams::from_log_form(&x, points.compute);
    Ok(Approach3 { params, objective: best.value, grid_points, restarts })
}

/// Refits from each of `starts` (free coordinates) in turn and keeps the lowest end.
pub(crate) fn refit_mapped(
    points: &LogPoints,
    weights: &[f64],
    mapping: &Mapping,
    starts: &[Vec<f64>],
) -> Option<Approach3> {
    // A resample leaves about a third of the runs undrawn (weight 0): drop them from the sums.
    let drawn: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] != 0.0).collect();
    let compacted = (drawn.len() < weights.len()).then(|| points.subset(&drawn, weights));
    let (points, weights) = match &compacted {
        Some((subset, subset_weights)) => (subset, subset_weights.as_slice()),
        None => (points, weights),
    };
    let objective = HuberLse { points, weights };
    let end = if mapping.is_identity() {
        minimize_sequential(&objective, starts, &settings())
    } else {
        minimize_sequential(&Constrained { inner: &objective, mapping }, starts, &settings())
    }?;
    let x = mapping.full(&end.x);
    let params = ChinchillaParams::from_log_form(&x, points.compute);
    Some(Approach3 { params, objective: end.value, grid_points: None, restarts: Vec::new() })
}

#[cfg(test)]
pub(crate) mod tests;
