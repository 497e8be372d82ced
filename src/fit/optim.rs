//! The shared optimiser: argmin's L-BFGS (More-Thuente line search) on an objective with an
//! analytic gradient, run from one start or from a grid of starts in parallel (rayon).
//!
//! argmin asks for the cost and the gradient at the same point in separate calls; the
//! `Cached` adapter evaluates both in one pass and answers the second call from memory.

use std::cell::RefCell;

use argmin::core::{CostFunction, Error as ArgminError, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use rayon::prelude::*;

/// A smooth objective with its gradient, evaluated together in one pass.
pub(crate) trait Objective: Sync {
    /// Value at `x`; writes the gradient into `gradient` (same length as `x`).
    fn value_and_gradient(&self, x: &[f64], gradient: &mut [f64]) -> f64;
}

/// Stopping rules of one L-BFGS run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub max_iters: u64,
    /// Stop when the gradient's 2-norm is below this.
    pub tol_grad: f64,
    /// Stop when one iteration lowers the objective by less than this (absolute).
    pub tol_cost: f64,
    /// L-BFGS history length.
    pub memory: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { max_iters: 1000, tol_grad: 1e-10, tol_cost: 1e-13, memory: 10 }
    }
}

/// The end point of one run.
#[derive(Debug, Clone)]
pub(crate) struct Minimum {
    pub x: Vec<f64>,
    pub value: f64,
}

/// One cached evaluation: point, value, gradient.
type Evaluation = (Vec<f64>, f64, Vec<f64>);

/// Adapter from `Objective` to argmin's separate cost and gradient calls.
struct Cached<'a, O> {
    objective: &'a O,
    last: RefCell<Option<Evaluation>>,
}

impl<O: Objective> Cached<'_, O> {
    fn evaluate(&self, x: &[f64]) -> (f64, Vec<f64>) {
        if let Some((point, value, gradient)) = self.last.borrow().as_ref() {
            if point.as_slice() == x {
                return (*value, gradient.clone());
            }
        }
        let mut gradient = vec![0.0; x.len()];
        let value = self.objective.value_and_gradient(x, &mut gradient);
        *self.last.borrow_mut() = Some((x.to_vec(), value, gradient.clone()));
        (value, gradient)
    }
}

/// A non-finite point or value ends the run at its best point so far: argmin's line search
/// has no iteration limit and would loop on NaN.
fn finite(value: f64, gradient: Vec<f64>) -> Result<(f64, Vec<f64>), ArgminError> {
    if value.is_finite() && gradient.iter().all(|g| g.is_finite()) {
        Ok((value, gradient))
    } else {
        Err(ArgminError::msg("objective is not finite here"))
    }
}

impl<O: Objective> CostFunction for Cached<'_, O> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, x: &Self::Param) -> Result<f64, ArgminError> {
        let (value, gradient) = self.evaluate(x);
        Ok(finite(value, gradient)?.0)
    }
}

impl<O: Objective> Gradient for Cached<'_, O> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, x: &Self::Param) -> Result<Vec<f64>, ArgminError> {
        let (value, gradient) = self.evaluate(x);
        Ok(finite(value, gradient)?.1)
    }
}

/// Runs L-BFGS from `start`; `None` when argmin fails or the end point is not finite.
pub(crate) fn minimize<O: Objective>(objective: &O, start: &[f64], settings: &Settings) -> Option<Minimum> {
    let problem = Cached { objective, last: RefCell::new(None) };
    // Evaluating here also fills the cache that argmin's first two calls read.
    let (start_value, gradient) = problem.evaluate(start);
    if !start_value.is_finite() || gradient.iter().any(|g| !g.is_finite()) {
        return None;
    }
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), settings.memory)
        .with_tolerance_grad(settings.tol_grad)
        .ok()?
        .with_tolerance_cost(settings.tol_cost)
        .ok()?;
    // Only the start is configured: a configured cost would count as the previous
    // iteration's and end the run at once under the cost-change rule.
    let result = Executor::new(problem, solver)
        .configure(|state| state.param(start.to_vec()).max_iters(settings.max_iters))
        .timer(false)
        .run()
        .ok()?;
    let state = result.state();
    let x = state.get_best_param()?.clone();
    let value = state.get_best_cost();
    let finite = value.is_finite() && x.iter().all(|v| v.is_finite());
    finite.then_some(Minimum { x, value })
}

/// Runs L-BFGS from every start in parallel; each start's end point, in start order.
pub(crate) fn minimize_each<O: Objective>(
    objective: &O,
    starts: &[Vec<f64>],
    settings: &Settings,
) -> Vec<Option<Minimum>> {
    starts.par_iter().map(|start| minimize(objective, start, settings)).collect()
}

/// The lowest of the end points (ties: the earliest), so the answer does not depend on
/// thread scheduling.
pub(crate) fn lowest(ends: &[Option<Minimum>]) -> Option<&Minimum> {
    ends.iter().flatten().fold(None, |best: Option<&Minimum>, candidate| match best {
        Some(b) if b.value <= candidate.value => Some(b),
        _ => Some(candidate),
    })
}

/// Runs L-BFGS from every start in parallel and keeps the lowest end point (ties: the
/// earliest start), so the answer does not depend on thread scheduling.
pub(crate) fn minimize_from_starts<O: Objective>(
    objective: &O,
    starts: &[Vec<f64>],
    settings: &Settings,
) -> Option<Minimum> {
    lowest(&minimize_each(objective, starts, settings)).cloned()
}

/// Runs L-BFGS from each start in turn (no threads: bootstrap refits are already run in
/// parallel) and keeps the lowest end point.
pub(crate) fn minimize_sequential<O: Objective>(
    objective: &O,
    starts: &[Vec<f64>],
    settings: &Settings,
) -> Option<Minimum> {
    let ends: Vec<Option<Minimum>> = starts.iter().map(|start| minimize(objective, start, settings)).collect();
    lowest(&ends).cloned()
}

/// Up to `count` end points of a multi-start search to restart bootstrap refits from: the
/// lowest first, then, in order of objective, each end whose objective is within `ratio` of
/// the lowest and which differs from every end already taken by more than `distance` in
/// some coordinate (distinct basins, or distant points of one flat valley).
pub(crate) fn distinct_ends(ends: &[Option<Minimum>], count: usize, ratio: f64, distance: f64) -> Vec<Vec<f64>> {
    let mut sorted: Vec<&Minimum> = ends.iter().flatten().collect();
    sorted.sort_by(|p, q| p.value.total_cmp(&q.value));
    let Some(best) = sorted.first() else { return Vec::new() };
    let limit = best.value.abs() * ratio + 1e-300;
    let mut taken: Vec<Vec<f64>> = Vec::new();
    for end in sorted {
        if taken.len() >= count || end.value > limit {
            break;
        }
        let far = |x: &Vec<f64>| x.iter().zip(&end.x).any(|(a, b)| (a - b).abs() > distance);
        if taken.iter().all(far) {
            taken.push(end.x.clone());
        }
    }
    taken
}

/// The Huber loss of a residual (Huber 1964), as in Hoffmann et al. 2022 eq. 3.
pub(crate) fn huber(residual: f64, delta: f64) -> f64 {
    let size = residual.abs();
    if size <= delta {
        0.5 * residual * residual
    } else {
        delta * (size - 0.5 * delta)
    }
}

/// The derivative of `huber` with respect to the residual.
pub(crate) fn huber_slope(residual: f64, delta: f64) -> f64 {
    residual.clamp(-delta, delta)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Central finite differences of `objective` at `x`.
    pub(crate) fn numeric_gradient<O: Objective>(objective: &O, x: &[f64], step: f64) -> Vec<f64> {
        let mut scratch = vec![0.0; x.len()];
        (0..x.len())
            .map(|k| {
                let mut up = x.to_vec();
                let mut down = x.to_vec();
                up[k] += step;
                down[k] -= step;
                let f_up = objective.value_and_gradient(&up, &mut scratch);
                let f_down = objective.value_and_gradient(&down, &mut scratch);
                (f_up - f_down) / (2.0 * step)
            })
            .collect()
    }

    /// Rosenbrock's function, minimum 0 at (1, 1).
    struct Rosenbrock;
    impl Objective for Rosenbrock {
        fn value_and_gradient(&self, x: &[f64], gradient: &mut [f64]) -> f64 {
            let (p, q) = (x[0], x[1]);
            gradient[0] = -2.0 * (1.0 - p) - 400.0 * p * (q - p * p);
            gradient[1] = 200.0 * (q - p * p);
            (1.0 - p).powi(2) + 100.0 * (q - p * p).powi(2)
        }
    }

    #[test]
    fn lbfgs_finds_the_rosenbrock_minimum_from_every_start() -> Result<(), String> {
        let starts = vec![vec![-1.2, 1.0], vec![2.0, -1.0], vec![0.0, 0.0]];
        for start in &starts {
            let end = minimize(&Rosenbrock, start, &Settings::default()).ok_or("no minimum")?;
            assert!((end.x[0] - 1.0).abs() < 1e-6, "from {start:?}: {:?}", end.x);
            assert!((end.x[1] - 1.0).abs() < 1e-6, "from {start:?}: {:?}", end.x);
        }
        let best = minimize_from_starts(&Rosenbrock, &starts, &Settings::default());
        assert!(best.ok_or("no minimum")?.value < 1e-12);
        let at_minimum = numeric_gradient(&Rosenbrock, &[1.0, 1.0], 1e-6);
        assert!(at_minimum.iter().all(|g| g.abs() < 1e-6));
        Ok(())
    }

    #[test]
    fn huber_is_quadratic_inside_delta_and_linear_outside() {
        assert_eq!(huber(0.5e-3, 1e-3), 0.125e-6);
        assert!((huber(-0.01, 1e-3) - 1e-3 * (0.01 - 0.5e-3)).abs() < 1e-18);
        assert_eq!(huber_slope(0.5, 1e-3), 1e-3);
        assert_eq!(huber_slope(-0.5e-3, 1e-3), -0.5e-3);
    }
}
