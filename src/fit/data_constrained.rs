//! The data-constrained law of Muennighoff et al. 2023 (section 3, eq. 5-6): repeated tokens
//! and excess parameters are worth less, through effective data
//! D' = U_D + U_D R*_D (1 - exp(-R_D / R*_D)), R_D = D/U_D - 1, and effective parameters
//! N' = U_N + U_N R*_N (1 - exp(-R_N / R*_N)), R_N = N/U_N - 1, U_N = min(N_opt(U_D), N),
//! inside L = E + A/N'^alpha + B/D'^beta.
//!
//! E, A, B, alpha, beta come either from approach 3 on the single-epoch runs (then R*_D and
//! R*_N are fitted on the runs that repeat data), or, as in the paper, are fixed (`--fix`,
//! the paper's base E 1.87, A 520, B 1487, alpha = beta = 0.353): then R*_D and R*_N are fitted
//! on every run, single-epoch runs with excess parameters included. R*_D and R*_N (as their
//! logarithms) are fitted by L-BFGS on the Huber loss of log L.

use crate::fit::chinchilla::HUBER_DELTA;
use crate::fit::data::Dataset;
use crate::fit::error::FitError;
use crate::fit::mapping::{Constrained, Mapping};
use crate::fit::model::{LogFit, LogModel, Penalty};
use crate::fit::optim::{distinct_ends, lowest, minimize_each, minimize_sequential, Settings};
use crate::records::fit::ChinchillaParams;
use crate::records::fit::{Fits, LawFit, Values};

/// A run repeats data when D exceeds U by more than this fraction.
const REPEATS: f64 = 1e-6;

/// Whether point `i` trained on repeated data.
pub(crate) fn repeats_data(data: &Dataset, i: usize) -> bool {
    let point = &data.points[i];
    point.unique_tokens.is_some_and(|u| point.tokens > u * (1.0 + REPEATS))
}

/// Needs runs that repeat data (among the points of positive weight).
pub(crate) fn check_supported(data: &Dataset, weights: &[f64]) -> Result<(), FitError> {
    if (0..data.points.len()).any(|i| weights[i] > 0.0 && repeats_data(data, i)) {
        return Ok(());
    }
    Err(FitError::TooFewPoints {
        law: "data_constrained".to_string(),
        reason: "needs runs that repeat data (tokens > unique_tokens); none do".to_string(),
    })
}

/// Runs outside the law's domain: a run that repeats data whose loss is above that of a run of
/// the same size on the same unique tokens with fewer tokens. Eq. 5 makes repetition worth less
/// and less, never harmful, so an overfitting run has no finite R*; it is left out of the fit.
/// Returns (overfit run, the run with fewer tokens and lower loss).
pub(crate) fn overfit_runs(data: &Dataset) -> Vec<(usize, usize)> {
    let points = &data.points;
    let same = |a: f64, b: f64| (a - b).abs() <= 1e-6 * a.abs().max(b.abs());
    (0..points.len())
        .filter(|&i| repeats_data(data, i))
        .filter_map(|i| {
            let (p, u) = (&points[i], points[i].unique_tokens?);
            let better = (0..points.len()).find(|&j| {
                let q = &points[j];
                same(q.params, p.params)
                    && q.unique_tokens.is_some_and(|v| same(u, v))
                    && q.tokens < p.tokens
                    && q.loss < p.loss
            });
            better.map(|j| (i, j))
        })
        .collect()
}

/// The effective count U (1 + R* (1 - exp(-R/R*))) and its derivative in log R* (eq. 5).
fn effective(unique: f64, repeats: f64, r_star: f64) -> (f64, f64) {
    if repeats <= 0.0 {
        return (unique, 0.0);
    }
    let ratio = repeats / r_star;
    let decay = (-ratio).exp();
    let value = unique * (1.0 + r_star * (1.0 - decay));
    (value, r_star * unique * ((1.0 - decay) - ratio * decay))
}

/// Per point: U_D, R_D, U_N, R_N and log L, for a fixed base law.
pub(crate) struct Repetition {
    base: ChinchillaParams,
    unique_tokens: Vec<f64>,
    repeats_tokens: Vec<f64>,
    unique_params: Vec<f64>,
    repeats_params: Vec<f64>,
    ln_loss: Vec<f64>,
}

impl Repetition {
    pub fn new(data: &Dataset, base: ChinchillaParams) -> Repetition {
        let mut model = Repetition {
            base,
            unique_tokens: Vec::new(),
            repeats_tokens: Vec::new(),
            unique_params: Vec::new(),
            repeats_params: Vec::new(),
            ln_loss: Vec::new(),
        };
        for point in &data.points {
            let unique = point.unique_tokens.unwrap_or(point.tokens).min(point.tokens);
            // U_N: the compute-optimal size for U_D tokens, N_opt = G (U_D G)^(beta/alpha)
            // from eq. 4 with D_opt = U_D; never more than N.
            // Eq. 4's C = 6ND relation defines U_N, whatever the runs' own FLOP count.
            let six_nd = ChinchillaParams { compute: Default::default(), ..base };
            let (a, b) = (six_nd.exponent_a(), six_nd.exponent_b());
            let g = six_nd.compute_optimal(6.0).0;
            let unique_params = (g * (unique * g).powf(a / b)).min(point.params);
            model.unique_tokens.push(unique);
            model.repeats_tokens.push(point.tokens / unique - 1.0);
            model.unique_params.push(unique_params);
            model.repeats_params.push(point.params / unique_params - 1.0);
            model.ln_loss.push(point.loss.ln());
        }
        model
    }
}

impl LogModel for Repetition {
    fn len(&self) -> usize {
        self.ln_loss.len()
    }
    fn target(&self, i: usize) -> f64 {
        self.ln_loss[i]
    }
    fn log_predict(&self, x: &[f64], i: usize, gradient: &mut [f64]) -> f64 {
        let p = &self.base;
        let (d_eff, d_slope) = effective(self.unique_tokens[i], self.repeats_tokens[i], x[0].exp());
        let (n_eff, n_slope) = effective(self.unique_params[i], self.repeats_params[i], x[1].exp());
        let n_term = p.a * n_eff.powf(-p.alpha);
        let d_term = p.b * d_eff.powf(-p.beta);
        let loss = p.e + n_term + d_term;
        gradient[0] = -p.beta * d_term / d_eff * d_slope / loss;
        gradient[1] = -p.alpha * n_term / n_eff * n_slope / loss;
        loss.ln()
    }
}

/// The base law must be a usable Chinchilla fit: exponents in (0, 3) and positive A, B. With too
/// few distinct single-epoch token counts or sizes approach 3 is not identified, and eq. 5's U_N
/// (the compute-optimal size for U_D tokens) would be meaningless.
fn check_base_law(base: &ChinchillaParams) -> Result<(), FitError> {
    let usable = |x: f64| x.is_finite() && x > 0.0;
    if (0.0..3.0).contains(&base.alpha) && (0.0..3.0).contains(&base.beta) && usable(base.a) && usable(base.b) {
        return Ok(());
    }
    Err(FitError::TooFewPoints {
        law: "data_constrained".to_string(),
        reason: format!(
            "the base law fitted on the single-epoch runs is degenerate (alpha = {:.3}, beta = {:.3}, B = {:.3e}): \
             give the sweep more single-epoch token budgets and sizes",
            base.alpha, base.beta, base.b
        ),
    })
}

/// The starting grid of (log R*_D, log R*_N): R* in {1, 5, 15, 50} each.
pub(crate) fn repetition_grid() -> Vec<Vec<f64>> {
    [1.0f64, 5.0, 15.0, 50.0].iter().flat_map(|d| [1.0f64, 5.0, 15.0, 50.0].map(|n| vec![d.ln(), n.ln()])).collect()
}

/// The runs R*_D and R*_N are fitted on when the base law was fitted on the single-epoch runs:
/// those that repeat data, less the overfit ones.
pub(crate) fn repeated_weights(data: &Dataset, weights: &[f64], overfit: &[usize]) -> Vec<f64> {
    (0..data.points.len())
        .map(|i| if repeats_data(data, i) && !overfit.contains(&i) { weights[i] } else { 0.0 })
        .collect()
}

/// Fits the repetition parameters `mapping` leaves free on the points of positive
/// `fit_weights` (the caller chooses them), from the grid or from each of `starts` (free
/// coordinates); returns the report entry, the full (log R*_D, log R*_N) and, after a grid
/// search, the distinct near-optimal end points bootstrap refits restart from.
pub(crate) fn fit_repetition_mapped(
    data: &Dataset,
    fit_weights: &[f64],
    base: ChinchillaParams,
    mapping: &Mapping,
    starts: Option<&[Vec<f64>]>,
) -> Result<crate::fit::report::MappedFit, FitError> {
    check_base_law(&base)?;
    let fitted_on = fit_weights.iter().filter(|&&w| w > 0.0).count();
    if fitted_on <= mapping.free() {
        return Err(FitError::TooFewPoints {
            law: "data_constrained".to_string(),
            reason: format!("needs more runs than free repetition parameters ({}); got {fitted_on}", mapping.free()),
        });
    }
    let model = Repetition::new(data, base);
    let objective = LogFit { model: &model, weights: fit_weights, penalty: Penalty::Huber(HUBER_DELTA) };
    let constrained = Constrained { inner: &objective, mapping };
    let grid = mapping.starts(&repetition_grid());
    // The Huber terms are tiny near a good fit: stop on the gradient, not the cost change.
    let settings = Settings { tol_cost: 1e-30, tol_grad: 1e-14, ..Settings::default() };
    let (best, restarts) = match starts {
        Some(starts) => (minimize_sequential(&constrained, starts, &settings), Vec::new()),
        None => {
            let ends = minimize_each(&constrained, &grid, &settings);
            (lowest(&ends).cloned(), distinct_ends(&ends, grid.len(), 1.5, 0.05))
        }
    };
    let best = best.ok_or(FitError::NoOptimum { law: "data_constrained".to_string(), starts: grid.len() })?;
    let x = mapping.full(&best.x);
    let params = Values::from([
        ("R_D_star".to_string(), x[0].exp()),
        ("R_N_star".to_string(), x[1].exp()),
        ("E".to_string(), base.e),
        ("A".to_string(), base.a),
        ("B".to_string(), base.b),
        ("alpha".to_string(), base.alpha),
        ("beta".to_string(), base.beta),
    ]);
    Ok((LawFit::new(params, None, Some(best.value), fitted_on), x, restarts))
}

/// The largest R_D and R_N among the points of positive weight (how far the data reach
/// into repetition and into excess parameters), for the verdict on R*.
pub(crate) fn largest_repeats(data: &Dataset, weights: &[f64], base: ChinchillaParams) -> (f64, f64) {
    let model = Repetition::new(data, base);
    let mut top = (0.0f64, 0.0f64);
    for (i, _) in weights.iter().enumerate().take(data.points.len()).filter(|(_, &w)| w > 0.0) {
        top.0 = top.0.max(model.repeats_tokens[i]);
        top.1 = top.1.max(model.repeats_params[i]);
    }
    top
}

/// A label on the laws that take every token as fresh (approaches 1-3, Kaplan's, the holdout's
/// refit) when some of the runs they were fitted on repeat data: those runs' losses are above
/// what the same tokens fresh would give (Muennighoff et al. 2023), so the laws are biased
/// towards less gain from data. The data-constrained law is the one that models them.
pub(crate) fn repetition_warning(data: &Dataset, fits: &Fits) -> Option<String> {
    let repeating: Vec<usize> = (0..data.points.len()).filter(|&i| repeats_data(data, i)).collect();
    let fresh_laws: Vec<&str> = [
        ("chinchilla", fits.chinchilla.is_some()),
        ("isoflop", fits.isoflop.is_some()),
        ("frontier", fits.frontier.is_some()),
        (
            "kaplan",
            fits.kaplan_n.is_some() || fits.kaplan_d.is_some() || fits.kaplan_c.is_some() || fits.kaplan_nd.is_some(),
        ),
    ]
    .into_iter()
    .filter_map(|(law, fitted)| fitted.then_some(law))
    .collect();
    if repeating.is_empty() || fresh_laws.is_empty() {
        return None;
    }
    let most = repeating
        .iter()
        .map(|&i| &data.points[i])
        .map(|p| (p.tokens / p.unique_tokens.unwrap_or(p.tokens), &p.run_id))
        .max_by(|a, b| a.0.total_cmp(&b.0))?;
    Some(format!(
        "{}: fitted on all {} runs, {} of which repeat data (up to {:.2} epochs, {}), taken as fresh tokens; \
         these laws hold for single-epoch data, and the data_constrained law is the one that models repetition",
        fresh_laws.join(", "),
        data.points.len(),
        repeating.len(),
        most.0,
        most.1
    ))
}

#[cfg(test)]
mod tests;
