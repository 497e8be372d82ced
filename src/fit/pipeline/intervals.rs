//! The bootstrap of every fitted law: one warm-started refit per law, run on shared
//! resamples of the runs, and the intervals each law's entry in fit.json gets from them.
//! Kaplan's L(N) and L(D) are resampled over their own points instead (each size's or token
//! count's lowest loss): a minimum over a resample of runs can only rise, which would move
//! every refit one way (`kaplan::refit_power`). Fixed parameters get no interval, nor do the
//! quantities computed from fixed parameters alone (`chinchilla_held`).

use super::{kaplan_slot, Context, WarmStarts};
use crate::fit::assess;
use crate::fit::bootstrap::{self, Draws, Refit};
use crate::fit::chinchilla;
use crate::fit::data_constrained::fit_repetition_mapped;
use crate::fit::frontier::{fit_approach1, power_at};
use crate::fit::kaplan::{fit_joint_mapped, fit_single, law_points, refit_power, Variable};
use crate::fit::regress::Line;
use crate::records::fit::{BootstrapSummary, ChinchillaParams, FitReport, Values};

/// Which law each bootstrap refit belongs to.
#[derive(Clone, Copy)]
enum Slot {
    Chinchilla,
    Kaplan(Variable),
    KaplanJoint,
    Frontier,
    DataConstrained,
}

impl Slot {
    /// The law's key in fit.json.
    fn key(self) -> &'static str {
        match self {
            Slot::Chinchilla => "chinchilla",
            Slot::Kaplan(variable) => variable.names().0,
            Slot::KaplanJoint => "kaplan_nd",
            Slot::Frontier => "frontier",
            Slot::DataConstrained => "data_constrained",
        }
    }
}

/// Runs the bootstrap of every fitted law; returns how many refits of each failed.
pub(super) fn bootstrap_all(context: &Context<'_>, report: &mut FitReport, warm: &WarmStarts) -> assess::Failures {
    let (slots, refits) = refits(context, report, warm);
    let opts = context.opts;
    let draws = bootstrap::run(context.data.points.len(), opts.bootstrap, opts.seed, &refits, opts.progress);
    let mut failures = assess::Failures::new();
    for (slot, draws) in slots.into_iter().zip(draws) {
        failures.insert(slot.key(), draws.failed);
        store_intervals(report, slot, &draws, context.opts.bootstrap);
    }
    for variable in [Variable::Params, Variable::Tokens] {
        if let Some(draws) = bootstrap_over_points(context, report, variable) {
            failures.insert(variable.names().0, draws.failed);
            store_intervals(report, Slot::Kaplan(variable), &draws, context.opts.bootstrap);
        }
    }
    failures
}

/// Kaplan's L(N) or L(D), resampled over the points it is fitted on (each size's or token
/// count's lowest loss; `kaplan::refit_power` says why not over runs), on the same seed.
fn bootstrap_over_points(context: &Context<'_>, report: &FitReport, variable: Variable) -> Option<Draws> {
    let fit = match variable {
        Variable::Params => report.fits.kaplan_n.as_ref(),
        Variable::Tokens => report.fits.kaplan_d.as_ref(),
        Variable::Compute => None,
    }?;
    let (_, exponent, scale) = variable.names();
    let start = [*fit.params.get(exponent)?, fit.params.get(scale)?.ln()];
    let pairs = law_points(context.data, &context.ones, variable);
    let mapping = &context.mappings.kaplan_single[variable.index()].power;
    let points = pairs.len();
    let refit: Refit<'_> = Box::new(move |w| refit_power(&pairs, w, variable, mapping, start));
    let opts = context.opts;
    bootstrap::run(points, opts.bootstrap, opts.seed, &[refit], false).pop()
}

/// The refit of every fitted law, warm-started where the law is fitted iteratively.
fn refits<'a>(context: &'a Context<'a>, report: &FitReport, warm: &'a WarmStarts) -> (Vec<Slot>, Vec<Refit<'a>>) {
    let (data, target) = (context.data, context.opts.target_flops);
    let mut slots = Vec::new();
    let mut refits: Vec<Refit<'a>> = Vec::new();
    let mappings = &context.mappings;
    if let Some(starts) = warm.chinchilla.as_deref() {
        slots.push(Slot::Chinchilla);
        refits.push(Box::new(move |w| {
            let fit = chinchilla::refit_mapped(&context.log_points, w, &mappings.chinchilla, starts)?;
            Some(chinchilla_values(&fit.params, target))
        }));
    }
    // L(C) is resampled over runs: its points, the compute frontier, come from the runs'
    // curves, many from one run. L(N) and L(D) are resampled over their points
    // (`bootstrap_over_points`).
    if report.fits.kaplan_c.is_some() {
        let variable = Variable::Compute;
        slots.push(Slot::Kaplan(variable));
        let mapping = &mappings.kaplan_single[variable.index()];
        refits.push(Box::new(move |w| fit_single(data, w, variable, mapping).ok().map(|f| f.params)));
    }
    if let Some(starts) = warm.kaplan_nd.as_deref() {
        slots.push(Slot::KaplanJoint);
        refits.push(Box::new(move |w| {
            fit_joint_mapped(data, w, &mappings.kaplan_nd, Some(starts)).ok().map(|f| f.0.params)
        }));
    }
    if report.fits.frontier.is_some() {
        slots.push(Slot::Frontier);
        refits.push(Box::new(move |w| {
            let (fit, loss_line) = fit_approach1(data, w).ok()?;
            let mut values = line_values(fit.a, fit.b, &fit.lines(), target);
            if let (Some(flops), Some(line)) = (target, loss_line.as_ref()) {
                values.insert("loss".to_string(), power_at(line, flops));
            }
            Some(values)
        }));
    }
    if let Some(dc) = warm.data_constrained.as_ref() {
        slots.push(Slot::DataConstrained);
        refits.push(Box::new(move |w| {
            let base = match &dc.base {
                Some(starts) => {
                    let masked: Vec<f64> = w.iter().zip(&dc.base_weights).map(|(a, b)| a * b).collect();
                    chinchilla::refit_mapped(&context.log_points, &masked, &mappings.data_constrained_base, starts)?
                        .params
                }
                None => dc.fixed_base,
            };
            let masked: Vec<f64> = w.iter().zip(&dc.repetition_weights).map(|(a, b)| a * b).collect();
            let fitted = fit_repetition_mapped(data, &masked, base, &mappings.repetition, Some(&dc.repetition));
            fitted.ok().map(|f| f.0.params)
        }));
    }
    (slots, refits)
}

/// The values of an approach-3 refit: parameters, a, b and the prediction at the target.
fn chinchilla_values(p: &ChinchillaParams, target: Option<f64>) -> Values {
    let mut values = Values::from([
        ("E".to_string(), p.e),
        ("A".to_string(), p.a),
        ("B".to_string(), p.b),
        ("alpha".to_string(), p.alpha),
        ("beta".to_string(), p.beta),
        ("a".to_string(), p.exponent_a()),
        ("b".to_string(), p.exponent_b()),
    ]);
    if let Some(flops) = target {
        let (n_opt, d_opt) = p.compute_optimal(flops);
        values.insert("N_opt".to_string(), n_opt);
        values.insert("D_opt".to_string(), d_opt);
        values.insert("loss".to_string(), p.predict(n_opt, d_opt));
    }
    values
}

/// a, b and the prediction at the target of approach 1 or 2.
fn line_values(a: f64, b: f64, lines: &(Line, Line), target: Option<f64>) -> Values {
    let mut values = Values::from([("a".to_string(), a), ("b".to_string(), b)]);
    if let Some(flops) = target {
        values.insert("N_opt".to_string(), power_at(&lines.0, flops));
        values.insert("D_opt".to_string(), power_at(&lines.1, flops));
    }
    values
}

/// The approach-3 parameters a reported quantity is computed from: a and b from alpha and beta,
/// N_opt and D_opt from those and A, B (Hoffmann et al. 2022, eq. 4), the loss at them from all
/// five (eq. 2). A quantity whose every input is fixed gets no interval: its refits all hold one
/// value, which says nothing about the data.
fn chinchilla_inputs(key: &str) -> &[&str] {
    match key {
        "a" | "b" => &["alpha", "beta"],
        "N_opt" | "D_opt" => &["alpha", "beta", "A", "B"],
        "loss" => &["E", "A", "B", "alpha", "beta"],
        "E" => &["E"],
        "A" => &["A"],
        "B" => &["B"],
        "alpha" => &["alpha"],
        "beta" => &["beta"],
        _ => &[],
    }
}

/// Whether the approach-3 quantity `key` is computed from fixed parameters alone.
pub(crate) fn chinchilla_held(key: &str, fixed: &Values) -> bool {
    let inputs = chinchilla_inputs(key);
    !inputs.is_empty() && inputs.iter().all(|name| fixed.contains_key(*name))
}

/// Puts a law's intervals in its report entry; prediction values go to its prediction.
fn store_intervals(report: &mut FitReport, slot: Slot, draws: &Draws, resamples: usize) {
    let mut ci95 = bootstrap::intervals(draws);
    let mut predicted: Vec<(String, [f64; 2])> =
        ["N_opt", "D_opt", "loss"].iter().filter_map(|key| ci95.remove_entry(*key)).collect();
    let fits = &mut report.fits;
    let prediction = match slot {
        Slot::Chinchilla => fits.chinchilla.as_mut().and_then(|fit| {
            ci95.retain(|key, _| !chinchilla_held(key, &fit.fixed));
            predicted.retain(|(key, _)| !chinchilla_held(key, &fit.fixed));
            fit.ci95 = ci95;
            let wanted =
                |key: &String| !["N_opt", "D_opt", "loss"].contains(&key.as_str()) && !chinchilla_held(key, &fit.fixed);
            fit.se = bootstrap::standard_errors(draws);
            fit.se.retain(|key, _| wanted(key));
            fit.se_log10 = bootstrap::log10_standard_errors(draws);
            fit.se_log10.retain(|key, _| wanted(key));
            fit.bootstrap = Some(BootstrapSummary { resamples, failed: draws.failed });
            fit.prediction.as_mut()
        }),
        Slot::Frontier => fits.frontier.as_mut().and_then(|fit| {
            fit.ci95 = ci95;
            fit.prediction.as_mut()
        }),
        Slot::Kaplan(variable) => {
            if let Some(fit) = kaplan_slot(fits, variable).as_mut() {
                // Fixed parameters have no interval (their refits all hold the one value).
                ci95.retain(|key, _| !fit.fixed.contains_key(key));
                fit.ci95 = ci95;
            }
            None
        }
        Slot::KaplanJoint | Slot::DataConstrained => {
            let fit = if matches!(slot, Slot::KaplanJoint) { &mut fits.kaplan_nd } else { &mut fits.data_constrained };
            if let Some(fit) = fit.as_mut() {
                // Fixed parameters have no interval; the data-constrained base law is fixed whole
                // or fitted, and `fixed` lists what was held.
                ci95.retain(|key, _| !fit.fixed.contains_key(key));
                fit.ci95 = ci95;
            }
            None
        }
    };
    if let Some(prediction) = prediction {
        prediction.ci95 = predicted.into_iter().collect();
    }
}
