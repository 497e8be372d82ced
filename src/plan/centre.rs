//! Grids centred per IsoFLOP budget: each budget gets its own sizes, log-spaced around the
//! optimum predicted for it, because sizes sampled off-centre bias the IsoFLOP minimum and with
//! it approach 2's exponents (docs/sweep-design.md "Centred grids").
//!
//! The prediction is either Chinchilla's 20 tokens per parameter (Hoffmann et al. 2022, Table 3)
//! under the sweep's own parameter and FLOP conventions, or the approach-3 law
//! L = E + A/N^α + B/D^β of an earlier sweep's fit.json, whose optimum on the budget's IsoFLOP
//! line D = C / (k·N) is N* = G·(C/k)^(β/(α+β)), G = (αA/(βB))^(1/(α+β)) (Hoffmann et al. 2022,
//! eq. 4, with C = k·N·D for the family's FLOPs per parameter k instead of 6).

use std::path::Path;

use crate::config::{CentreLaw, SweepConfig};
use crate::model::ModelShape;
use crate::plan::params_of;

/// Tokens per parameter at Chinchilla's compute optimum.
pub const CHINCHILLA_TOKENS_PER_PARAM: f64 = 20.0;
/// Default largest size / optimum.
pub const DEFAULT_SPAN: f64 = 8.0;
/// Default sizes per budget.
pub const DEFAULT_SIZES: usize = 7;

impl CentreLaw {
    /// Reads fit.json; the error names what is missing or why the law cannot place an optimum.
    /// The law's verdict comes along: `checks::centre_warnings` warns when it is not identified.
    pub fn read(path: &Path) -> Result<CentreLaw, String> {
        let mut report = crate::records::fit::read_fit(path)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{}: no such file (fit the earlier sweep first)", path.display()))?;
        // A hand-edited law (E = -5) would place optima no fit could: refuse it, naming the field.
        if let Some(bad) = report.take_impossible_laws().into_iter().find(|law| law.law == "chinchilla") {
            return Err(format!("{}: corrupt: {bad}; it cannot centre a grid (rerun `sweeplaw fit`)", path.display()));
        }
        let param_count =
            if report.param_count.is_empty() { "nonembedding".to_string() } else { report.param_count.clone() };
        if let Err(e) = param_count.parse::<crate::counting::ParamCount>() {
            if param_count == "as given" {
                return Err(format!(
                    "{}: param_count is \"as given\": a fit of a CSV counts N as the CSV gave it, not in one of this \
                     model family's parameter counts, so its law cannot predict sizes of this family; centre on the \
                     fit.json of a sweep directory (`sweeplaw fit DIR`) or on \"chinchilla\"",
                    path.display()
                ));
            }
            return Err(format!("{}: param_count: {e}", path.display()));
        }
        let fit = report.fits.chinchilla.as_ref().ok_or_else(|| {
            format!("{}: fits.chinchilla is missing (fit the sweep with approach 3 first)", path.display())
        })?;
        let p = &fit.params;
        // fit.json stores a NaN or infinite parameter as null, which reads as NaN, as does one left out.
        let given = |name: &str, value: f64| {
            if value.is_finite() {
                Ok(value)
            } else {
                Err(format!(
                    "{}: approach 3 has no finite fitted {name} (fits.chinchilla.params.{name} is null or missing): \
                     it cannot centre a grid; centre on \"chinchilla\" or on a fit whose approach 3 converged",
                    path.display()
                ))
            }
        };
        let law = CentreLaw {
            e: given("E", p.e)?,
            a: given("A", p.a)?,
            b: given("B", p.b)?,
            alpha: given("alpha", p.alpha)?,
            beta: given("beta", p.beta)?,
            param_count,
            assessment: fit.assessment.clone(),
        };
        if !(law.a > 0.0 && law.b > 0.0 && law.alpha > 0.0 && law.beta > 0.0) {
            return Err(format!(
                "{}: the approach-3 law (A = {}, B = {}, alpha = {}, beta = {}) needs positive A, B, alpha and beta \
                 to have a compute optimum; centre on \"chinchilla\" instead",
                path.display(),
                law.a,
                law.b,
                law.alpha,
                law.beta
            ));
        }
        Ok(law)
    }
}

/// The parameter count the grid's N is in: the law's for a fit.json centre, else the sweep's.
pub fn centre_param_count(config: &SweepConfig) -> &str {
    config.grid.centre_law.as_ref().map_or(config.budget.param_count.as_str(), |l| l.param_count.as_str())
}

/// The compute-optimal N (in `centre_param_count`) predicted for budget `flops` (in the sweep's
/// FLOP convention): the centre's law, or 20 tokens per parameter without one.
pub fn predicted_optimum(config: &SweepConfig, flops: f64) -> Result<f64, String> {
    let count = centre_param_count(config);
    let convention = config.budget.flop_convention;
    // k(N): the family's FLOPs per token per parameter near N; a fixed point in log N.
    // Without an aspect ratio (a grid of widths × depths), k comes from the grid's nearest size.
    let listed = match config.grid.aspect_ratio {
        Some(_) => Vec::new(),
        None => crate::plan::model_sizes(config)?,
    };
    let flops_per_param = |n: f64| -> Result<f64, String> {
        let shape = match listed.iter().min_by(|a, b| log_gap(a, n, count).total_cmp(&log_gap(b, n, count))) {
            Some(nearest) => nearest.clone(),
            None => shape_for(config, n)?,
        };
        Ok(shape.flops_per_token_for(convention) / params_of(&shape, count)? as f64)
    };
    let optimum_at = |k: f64| match &config.grid.centre_law {
        Some(l) => {
            let g = (l.alpha * l.a / (l.beta * l.b)).powf(1.0 / (l.alpha + l.beta));
            g * (flops / k).powf(l.beta / (l.alpha + l.beta))
        }
        None => (flops / (k * CHINCHILLA_TOKENS_PER_PARAM)).sqrt(),
    };
    let mut log_n = optimum_at(6.0).ln();
    for _ in 0..60 {
        let next = optimum_at(flops_per_param(log_n.exp())?).ln();
        log_n = 0.5 * (log_n + next);
    }
    Ok(log_n.exp())
}

/// |ln(N(shape) / n)|, infinite for an unknown count.
fn log_gap(shape: &ModelShape, n: f64, count: &str) -> f64 {
    params_of(shape, count).map_or(f64::INFINITY, |p| (p as f64 / n).ln().abs())
}

/// The target sizes of one budget: `sizes` values log-spaced from N*/span to N*·span.
pub fn target_sizes(config: &SweepConfig, flops: f64) -> Result<Vec<f64>, String> {
    let n_opt = predicted_optimum(config, flops)?;
    let span = config.grid.span.unwrap_or(DEFAULT_SPAN);
    let count = config.grid.sizes.unwrap_or(DEFAULT_SIZES);
    Ok((0..count).map(|i| n_opt * span.powf(2.0 * i as f64 / (count - 1) as f64 - 1.0)).collect())
}

/// The valid shape of the family nearest `target` parameters (in `centre_param_count`), in log:
/// the depth whose aspect-ratio shape comes nearest, then the multiple of head_dim as width that
/// brings the count nearest the target.
pub fn shape_for(config: &SweepConfig, target: f64) -> Result<ModelShape, String> {
    let ratio = config.grid.aspect_ratio.ok_or("grid.centre needs grid.aspect_ratio")?;
    let count = centre_param_count(config);
    let f = &config.model;
    let vocab_size = config.data.vocab_size()?;
    let make = |d_model: usize, n_layers: usize| crate::plan::family_shape(config, vocab_size, d_model, n_layers);
    let distance =
        |shape: &ModelShape| -> Result<f64, String> { Ok((params_of(shape, count)? as f64 / target).ln().abs()) };
    let mut best: Option<(f64, ModelShape)> = None;
    for n_layers in 1..=256 {
        let shape = make((ratio * n_layers).div_ceil(f.head_dim) * f.head_dim, n_layers);
        let gap = distance(&shape)?;
        if best.as_ref().is_none_or(|(g, _)| gap < *g) {
            best = Some((gap, shape));
        }
    }
    let (_, rule) = best.ok_or("grid: no depth")?;
    let mut best: Option<(f64, ModelShape)> = None;
    for heads in 1..=(4 * rule.d_model / f.head_dim + 4) {
        let shape = make(heads * f.head_dim, rule.n_layers);
        let gap = distance(&shape)?;
        if best.as_ref().is_none_or(|(g, _)| gap < *g) {
            best = Some((gap, shape));
        }
    }
    let (_, shape) = best.ok_or("grid: no width")?;
    shape.validate()?;
    Ok(shape)
}

/// The distinct shapes of one budget's centred sizes, smallest first (two targets that round to
/// one shape are one size).
pub fn centred_shapes(config: &SweepConfig, flops: f64) -> Result<Vec<ModelShape>, String> {
    let mut shapes: Vec<ModelShape> = Vec::new();
    for target in target_sizes(config, flops)? {
        let shape = shape_for(config, target)?;
        if !shapes.contains(&shape) {
            shapes.push(shape);
        }
    }
    Ok(shapes)
}
