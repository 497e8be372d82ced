//! Kaplan et al. 2020: L(N) = (N_c/N)^alpha_N (eq. 1.1), L(D) = (D_c/D)^alpha_D (eq. 1.2),
//! each also with an irreducible term E + (X_c/X)^alpha; L(C) = (C_c/C)^alpha_C (eq. 1.3) on
//! the compute-efficient frontier; and the joint L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D
//! (eq. 1.5). Single-variable laws are straight lines in log-log space (least squares, or L-BFGS
//! when `--fix` holds one of their parameters); the forms with E and the joint law are fitted by
//! L-BFGS on squared log residuals.

use crate::fit::constraints::{Constraints, ParamSpec, KAPLAN_C, KAPLAN_D, KAPLAN_N};
use crate::fit::data::Dataset;
use crate::fit::error::FitError;
use crate::fit::frontier::envelope;
use crate::fit::mapping::{Constrained, Mapping};
use crate::fit::model::{log_sum_exp2, LogFit, LogModel, Penalty};
use crate::fit::optim::{distinct_ends, lowest, minimize_each, minimize_from_starts, minimize_sequential, Settings};
use crate::fit::regress::fit_line;
use crate::records::fit::{LawFit, Values};

/// Which single variable a law is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variable {
    Params,
    Tokens,
    Compute,
}

impl Variable {
    pub const ALL: [Variable; 3] = [Variable::Params, Variable::Tokens, Variable::Compute];

    /// Its place in `ALL`, which the per-variable arrays (mappings, constraints) follow.
    pub fn index(self) -> usize {
        match self {
            Variable::Params => 0,
            Variable::Tokens => 1,
            Variable::Compute => 2,
        }
    }

    /// The parameters of the law with its irreducible term: (log E, alpha, log X_c).
    pub fn specs(self) -> &'static [ParamSpec] {
        match self {
            Variable::Params => &KAPLAN_N,
            Variable::Tokens => &KAPLAN_D,
            Variable::Compute => &KAPLAN_C,
        }
    }

    /// (json key, exponent name, scale name).
    pub fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Variable::Params => ("kaplan_n", "alpha_N", "N_c"),
            Variable::Tokens => ("kaplan_d", "alpha_D", "D_c"),
            Variable::Compute => ("kaplan_c", "alpha_C", "C_c"),
        }
    }
}

/// The (log X, log L) pairs a single-variable law is fitted on: for N (D), the lowest loss
/// reached at each distinct model size (token count), the least data- (size-) limited run;
/// for C, the compute-efficient frontier. Points of weight 0 are left out.
pub(crate) fn law_points(data: &Dataset, weights: &[f64], variable: Variable) -> Vec<(f64, f64)> {
    if variable == Variable::Compute {
        return envelope(data, weights).iter().map(|p| (p.flops.ln(), p.loss.ln())).collect();
    }
    let mut best: Vec<(f64, f64)> = Vec::new();
    for (point, _) in data.points.iter().zip(weights).filter(|(_, &w)| w > 0.0) {
        let x = if variable == Variable::Params { point.params } else { point.tokens };
        match best.iter_mut().find(|(value, _)| *value == x) {
            Some(entry) => entry.1 = entry.1.min(point.loss),
            None => best.push((x, point.loss)),
        }
    }
    best.sort_by(|p, q| p.0.total_cmp(&q.0));
    best.iter().map(|(x, loss)| (x.ln(), loss.ln())).collect()
}

/// The free parameters of a single-variable law: of (X_c/X)^alpha, vector (alpha, log X_c), and
/// of E + (X_c/X)^alpha, vector (log E, alpha, log X_c).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SingleMappings {
    pub power: Mapping,
    pub irreducible: Mapping,
}

impl SingleMappings {
    pub fn new(variable: Variable, constraints: &Constraints) -> Result<SingleMappings, FitError> {
        let specs = variable.specs();
        Ok(SingleMappings {
            power: Mapping::new(&specs[1..], constraints)?,
            irreducible: Mapping::new(specs, constraints)?,
        })
    }

    /// Every parameter free.
    #[cfg(test)]
    pub fn free() -> SingleMappings {
        SingleMappings { power: Mapping::identity(2), irreducible: Mapping::identity(3) }
    }
}

/// Fits (X_c/X)^alpha, and E + (X_c/X)^alpha when the points outnumber its free parameters
/// (4+ distinct X when all are free), holding what `mappings` fixes or ties.
pub(crate) fn fit_single(
    data: &Dataset,
    weights: &[f64],
    variable: Variable,
    mappings: &SingleMappings,
) -> Result<LawFit, FitError> {
    let pairs = law_points(data, weights, variable);
    let (key, exponent, scale) = variable.names();
    let needed = mappings.power.free() + 1;
    let too_few = || FitError::TooFewPoints {
        law: key.to_string(),
        reason: format!("needs {needed}+ distinct values of its variable; got {}", pairs.len()),
    };
    if pairs.len() < needed {
        return Err(too_few());
    }
    let (x, y): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
    let [alpha, ln_scale] = if mappings.power.free() == 0 {
        let held = mappings.power.full(&[]);
        [held[0], held[1]]
    } else {
        // log L = alpha log X_c - alpha log X.
        let line = fit_line(&x, &y, &vec![1.0; x.len()]).ok_or_else(too_few)?;
        let free_line = [-line.slope, line.intercept / -line.slope];
        if mappings.power.is_identity() {
            free_line
        } else {
            fit_power_held(&x, &y, &vec![1.0; x.len()], &mappings.power, &free_line)
                .ok_or_else(|| FitError::NoOptimum { law: key.to_string(), starts: 1 })?
        }
    };
    let mut params = Values::new();
    params.insert(exponent.to_string(), alpha);
    params.insert(scale.to_string(), ln_scale.exp());
    let irreducible = (pairs.len() > mappings.irreducible.free().max(2))
        .then(|| fit_with_irreducible(&x, &y, &mappings.irreducible))
        .flatten()
        .map(|[e, a, c]| {
            Values::from([("E".to_string(), e.exp()), (exponent.to_string(), a), (scale.to_string(), c.exp())])
        });
    Ok(LawFit::new(params, irreducible, None, pairs.len()))
}

/// A bootstrap refit of (X_c/X)^alpha on the law's own points (`law_points` of every run),
/// each weighted by how often the resample drew it; a held fit starts from `start`, the
/// full-data (alpha, log X_c). `None` where the drawn points do not determine the free
/// parameters (one distinct X for a line).
///
/// L(N) and L(D) are resampled over these points, not over runs: a size's point is its lowest
/// loss over its runs, and the lowest loss over a resample of those runs can only be higher,
/// so every run-resampled refit moved the law the same way (with alpha_N fixed, N_c's
/// interval started exactly at its estimate and measured how much worse a size's next-best
/// run was, not how well the points pin the law).
pub(crate) fn refit_power(
    pairs: &[(f64, f64)],
    weights: &[f64],
    variable: Variable,
    mapping: &Mapping,
    start: [f64; 2],
) -> Option<Values> {
    let (x, y): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
    let [alpha, ln_scale] = if mapping.free() == 0 {
        start
    } else if mapping.is_identity() {
        let line = fit_line(&x, &y, weights)?;
        [-line.slope, line.intercept / -line.slope]
    } else {
        fit_power_held(&x, &y, weights, mapping, &start)?
    };
    let (_, exponent, scale) = variable.names();
    Some(Values::from([(exponent.to_string(), alpha), (scale.to_string(), ln_scale.exp())]))
}

/// log L = alpha (log X_c - log X), parameters (alpha, log X_c).
struct Power<'a> {
    x: &'a [f64],
    y: &'a [f64],
}

impl LogModel for Power<'_> {
    fn len(&self) -> usize {
        self.x.len()
    }
    fn target(&self, i: usize) -> f64 {
        self.y[i]
    }
    fn log_predict(&self, p: &[f64], i: usize, gradient: &mut [f64]) -> f64 {
        let gap = p[1] - self.x[i];
        gradient[0] = gap;
        gradient[1] = p[0];
        p[0] * gap
    }
}

/// The power law on weighted points with some of (alpha, log X_c) held: `line`'s values (the
/// least-squares line's, or the full-data fit's) for the free ones to start from.
fn fit_power_held(x: &[f64], y: &[f64], weights: &[f64], mapping: &Mapping, line: &[f64; 2]) -> Option<[f64; 2]> {
    let model = Power { x, y };
    let objective = LogFit { model: &model, weights, penalty: Penalty::Squared };
    let constrained = Constrained { inner: &objective, mapping };
    let start = mapping.project(line);
    let best = minimize_from_starts(&constrained, &[start], &Settings::default())?;
    let held = mapping.full(&best.x);
    Some([held[0], held[1]])
}

/// log L = log(E + (X_c/X)^alpha) = LSE(e, alpha (c - log X)), parameters (e = log E, alpha,
/// c = log X_c).
struct Saturating<'a> {
    x: &'a [f64],
    y: &'a [f64],
}

impl LogModel for Saturating<'_> {
    fn len(&self) -> usize {
        self.x.len()
    }
    fn target(&self, i: usize) -> f64 {
        self.y[i]
    }
    fn log_predict(&self, p: &[f64], i: usize, gradient: &mut [f64]) -> f64 {
        let gap = p[2] - self.x[i];
        let (value, w_e, w_power) = log_sum_exp2(p[0], p[1] * gap);
        gradient[0] = w_e;
        gradient[1] = w_power * gap;
        gradient[2] = w_power * p[1];
        value
    }
}

/// Starts from straight-line fits of log(L - E0) for E0 at fractions of the lowest loss; the
/// parameters `mapping` holds keep their values. Returns (log E, alpha, log X_c).
fn fit_with_irreducible(x: &[f64], y: &[f64], mapping: &Mapping) -> Option<[f64; 3]> {
    let lowest = y.iter().copied().fold(f64::INFINITY, f64::min).exp();
    let full_starts: Vec<Vec<f64>> = [0.0, 0.3, 0.6, 0.9, 0.97]
        .iter()
        .filter_map(|fraction| {
            let floor = fraction * lowest;
            let shifted: Vec<f64> = y.iter().map(|v| (v.exp() - floor).ln()).collect();
            let line = fit_line(x, &shifted, &vec![1.0; x.len()])?;
            let alpha = -line.slope;
            (alpha > 0.0).then(|| vec![floor.max(1e-3 * lowest).ln(), alpha, line.intercept / alpha])
        })
        .collect();
    let weights = vec![1.0; x.len()];
    let model = Saturating { x, y };
    let objective = LogFit { model: &model, weights: &weights, penalty: Penalty::Squared };
    let constrained = Constrained { inner: &objective, mapping };
    let best = if mapping.free() == 0 {
        Some(mapping.full(&[]))
    } else {
        minimize_from_starts(&constrained, &mapping.starts(&full_starts), &Settings::default())
            .map(|b| mapping.full(&b.x))
    }?;
    let [e, alpha, c] = [best[0], best[1], best[2]];
    (alpha > 0.0 && best.iter().all(|v| v.is_finite())).then_some([e, alpha, c])
}

/// The joint law in log form: log L = alpha_D LSE((alpha_N/alpha_D)(n_c - log N), d_c - log D),
/// parameters (alpha_N, alpha_D, n_c = log N_c, d_c = log D_c).
pub(crate) struct Joint {
    pub ln_params: Vec<f64>,
    pub ln_tokens: Vec<f64>,
    pub ln_loss: Vec<f64>,
}

impl Joint {
    pub fn new(data: &Dataset) -> Joint {
        Joint {
            ln_params: data.points.iter().map(|p| p.params.ln()).collect(),
            ln_tokens: data.points.iter().map(|p| p.tokens.ln()).collect(),
            ln_loss: data.points.iter().map(|p| p.loss.ln()).collect(),
        }
    }

    /// Predicted loss (eq. 1.5) for parameters (alpha_N, alpha_D, log N_c, log D_c).
    pub fn predict(p: &[f64], params: f64, tokens: f64) -> f64 {
        let u = p[0] / p[1] * (p[2] - params.ln());
        let v = p[3] - tokens.ln();
        (p[1] * log_sum_exp2(u, v).0).exp()
    }
}

impl LogModel for Joint {
    fn len(&self) -> usize {
        self.ln_loss.len()
    }
    fn target(&self, i: usize) -> f64 {
        self.ln_loss[i]
    }
    fn log_predict(&self, p: &[f64], i: usize, gradient: &mut [f64]) -> f64 {
        let (alpha_n, alpha_d) = (p[0], p[1]);
        let gap_n = p[2] - self.ln_params[i];
        let u = alpha_n / alpha_d * gap_n;
        let (lse, w_n, w_d) = log_sum_exp2(u, p[3] - self.ln_tokens[i]);
        gradient[0] = w_n * gap_n;
        gradient[1] = lse - w_n * alpha_n / alpha_d * gap_n;
        gradient[2] = w_n * alpha_n;
        gradient[3] = alpha_d * w_d;
        alpha_d * lse
    }
}

/// Starting grid of the joint law around the data's largest N and D.
fn joint_starts(model: &Joint) -> Vec<Vec<f64>> {
    let top = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (n_top, d_top) = (top(&model.ln_params), top(&model.ln_tokens));
    let exponents = [0.05, 0.1, 0.3, 0.6];
    let offsets = [0.0, 5.0, 15.0, 30.0];
    let mut starts = Vec::new();
    for &alpha_n in &exponents {
        for &alpha_d in &exponents {
            for &dn in &offsets {
                for &dd in &offsets {
                    starts.push(vec![alpha_n, alpha_d, n_top + dn, d_top + dd]);
                }
            }
        }
    }
    starts
}

/// Fits the joint law (eq. 1.5); from the grid, or from `start` (bootstrap refits).
#[cfg(test)]
pub(crate) fn fit_joint(
    data: &Dataset,
    weights: &[f64],
    start: Option<&[f64]>,
) -> Result<(LawFit, Vec<f64>), FitError> {
    let starts = start.map(|x| vec![x.to_vec()]);
    let fitted = fit_joint_mapped(data, weights, &Mapping::identity(4), starts.as_deref())?;
    Ok((fitted.0, fitted.1))
}

/// Fits the parameters of the joint law that `mapping` leaves free; from the grid (then also
/// returning the distinct near-optimal end points bootstrap refits restart from), or from
/// each of `starts` (free coordinates). Returns the entry and the full vector.
pub(crate) fn fit_joint_mapped(
    data: &Dataset,
    weights: &[f64],
    mapping: &Mapping,
    starts: Option<&[Vec<f64>]>,
) -> Result<crate::fit::report::MappedFit, FitError> {
    let model = Joint::new(data);
    let distinct = |v: &[f64]| v.windows(2).any(|w| w[0] != w[1]);
    let needed = (mapping.free() + 1).max(2);
    if model.len() < needed || !distinct(&model.ln_params) || !distinct(&model.ln_tokens) {
        return Err(FitError::TooFewPoints {
            law: "kaplan_nd".to_string(),
            reason: format!("needs {needed}+ points over 2+ sizes and 2+ token counts; got {}", model.len()),
        });
    }
    let objective = LogFit { model: &model, weights, penalty: Penalty::Squared };
    let constrained = Constrained { inner: &objective, mapping };
    let grid = mapping.starts(&joint_starts(&model));
    let (best, restarts) = match starts {
        Some(starts) => (minimize_sequential(&constrained, starts, &Settings::default()), Vec::new()),
        None => {
            let ends = minimize_each(&constrained, &grid, &Settings::default());
            (lowest(&ends).cloned(), distinct_ends(&ends, JOINT_RESTARTS, 1.5, 0.05))
        }
    };
    let best = best.ok_or(FitError::NoOptimum { law: "kaplan_nd".to_string(), starts: grid.len() })?;
    let x = mapping.full(&best.x);
    let params = Values::from([
        ("alpha_N".to_string(), x[0]),
        ("alpha_D".to_string(), x[1]),
        ("N_c".to_string(), x[2].exp()),
        ("D_c".to_string(), x[3].exp()),
    ]);
    Ok((LawFit::new(params, None, Some(best.value), model.len()), x, restarts))
}

/// Bootstrap refits of the joint law start from the optimum and up to 4 further distinct
/// near-optimal end points of the grid search (as approach 3's do).
const JOINT_RESTARTS: usize = 5;

#[cfg(test)]
mod tests;
