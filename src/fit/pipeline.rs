//! `fit`: runs the requested law families on a dataset, then the bootstrap and the holdout
//! backtest, and gathers everything into a `FitReport`, with a warning where `--target-flops`
//! asks for a prediction more than a decade outside the compute the laws were fitted on.

use crate::fit::assess;
use crate::fit::chinchilla::{self, LogPoints};
use crate::fit::constraints::{Constraints, ParamSpec, CHINCHILLA, DATA_CONSTRAINED, KAPLAN_JOINT, REPETITION};
use crate::fit::data::{Dataset, Point};
use crate::fit::data_constrained::{self, fit_repetition_mapped, repeated_weights, repeats_data};
use crate::fit::error::FitError;
use crate::fit::frontier::{fit_approach1, power_at};
use crate::fit::holdout::backtest;
use crate::fit::isoflop;
use crate::fit::kaplan::{fit_joint_mapped, fit_single, SingleMappings, Variable};
use crate::fit::mapping::Mapping;
use crate::fit::options::{FitOptions, Law, Overfit};
use crate::fit::regress::Line;
use crate::fit::table::number;
use crate::records::fit::ChinchillaParams;
use crate::records::fit::{ChinchillaFit, FitReport, Fits, LawFit, Prediction};

mod intervals;

/// The fewest single-epoch runs the data-constrained base law is fitted on alone.
const MIN_SINGLE_EPOCH: usize = 10;

/// Where the bootstrap refits of each iteratively fitted law start (free coordinates: the
/// full-data optimum first, then distinct near-optimal end points of its grid search).
#[derive(Default)]
struct WarmStarts {
    chinchilla: Option<Vec<Vec<f64>>>,
    kaplan_nd: Option<Vec<Vec<f64>>>,
    data_constrained: Option<DataConstrainedStarts>,
}

/// The data-constrained law's refit: the base law (fitted or fixed) and R*.
struct DataConstrainedStarts {
    /// Restarts of the base law's refit; `None` when the base law is fixed.
    base: Option<Vec<Vec<f64>>>,
    /// The base law when it is fixed.
    fixed_base: ChinchillaParams,
    /// Which points the base law is fitted on.
    base_weights: Vec<f64>,
    /// Which points R* is fitted on (1 or 0; multiplied by the resample's weights).
    repetition_weights: Vec<f64>,
    repetition: Vec<Vec<f64>>,
}

/// The free parameters of each law under `--fix` / `--tie`.
struct Mappings {
    chinchilla: Mapping,
    /// The data-constrained law's base law (approach 3's parameters).
    data_constrained_base: Mapping,
    kaplan_nd: Mapping,
    /// L(N), L(D), L(C).
    kaplan_single: [SingleMappings; 3],
    repetition: Mapping,
    /// The constraints of each, for fit.json.
    chinchilla_constraints: Constraints,
    kaplan_constraints: Constraints,
    kaplan_single_constraints: [Constraints; 3],
    data_constrained_constraints: Constraints,
}

impl Mappings {
    fn new(opts: &FitOptions) -> Result<Mappings, FitError> {
        let c = &opts.constraints;
        let mut laws: Vec<(&str, &[ParamSpec])> = Vec::new();
        if opts.law.includes(Law::Chinchilla) {
            laws.push(("chinchilla", &CHINCHILLA));
        }
        if opts.law.includes(Law::Kaplan) {
            for variable in Variable::ALL {
                laws.push((variable.names().0, variable.specs()));
            }
            laws.push(("kaplan_nd", &KAPLAN_JOINT));
        }
        if opts.law.includes(Law::DataConstrained) {
            laws.push(("data_constrained", &DATA_CONSTRAINED));
        }
        c.check_against(&laws)?;
        // The data-constrained base law: its own qualified names, or approach 3's plain ones.
        let data_constrained = c.for_law("data_constrained", &DATA_CONSTRAINED);
        let single = |variable: Variable| c.for_law(variable.names().0, variable.specs());
        let kaplan_single_constraints = Variable::ALL.map(single);
        let [n, d, flops] = &kaplan_single_constraints;
        let kaplan_single = [
            SingleMappings::new(Variable::Params, n)?,
            SingleMappings::new(Variable::Tokens, d)?,
            SingleMappings::new(Variable::Compute, flops)?,
        ];
        let kaplan_constraints = c.for_law("kaplan_nd", &KAPLAN_JOINT);
        let chinchilla_constraints = c.for_law("chinchilla", &CHINCHILLA);
        Ok(Mappings {
            chinchilla: Mapping::new(&CHINCHILLA, &chinchilla_constraints)?,
            data_constrained_base: Mapping::new(&CHINCHILLA, &data_constrained)?,
            kaplan_nd: Mapping::new(&KAPLAN_JOINT, &kaplan_constraints)?,
            kaplan_single,
            repetition: Mapping::new(&REPETITION, &data_constrained)?,
            chinchilla_constraints,
            kaplan_constraints,
            kaplan_single_constraints,
            data_constrained_constraints: data_constrained,
        })
    }
}

/// Shared inputs of every fit.
struct Context<'a> {
    data: &'a Dataset,
    opts: &'a FitOptions,
    log_points: LogPoints,
    ones: Vec<f64>,
    mappings: Mappings,
}

/// Fits the laws `opts.law` names (see `Law`), with bootstrap intervals and the holdout
/// backtest when asked. Laws the data cannot support are listed under `skipped`; an error
/// only when no law could be fitted.
pub fn fit(dataset: &Dataset, opts: &FitOptions) -> Result<FitReport, FitError> {
    opts.validate()?;
    let context = Context {
        data: dataset,
        opts,
        log_points: LogPoints::new(&dataset.points),
        ones: vec![1.0; dataset.points.len()],
        mappings: Mappings::new(opts)?,
    };
    let mut report = FitReport::new(dataset);
    report.options = Some(opts.settings());
    let mut warm = WarmStarts::default();
    for family in families(opts.law) {
        fit_family(family, &context, &mut report, &mut warm);
    }
    if let Some(warning) = data_constrained::repetition_warning(dataset, &report.fits) {
        report.warnings.push(warning);
    }
    if let Some(warning) = opts.target_flops.and_then(|target| extrapolation_warning(dataset, target)) {
        report.warnings.push(warning);
    }
    if report.fits.is_empty() {
        let reasons: Vec<String> = report.skipped.iter().map(|(law, why)| format!("{law}: {why}")).collect();
        return Err(FitError::NothingFitted(reasons.join("; ")));
    }
    let failures =
        if opts.bootstrap > 0 { intervals::bootstrap_all(&context, &mut report, &warm) } else { Default::default() };
    if opts.holdout > 0 {
        match backtest(dataset, opts, &context.mappings.chinchilla, &context.mappings.kaplan_nd) {
            Ok(holdout) => {
                report.warnings.extend(crate::fit::holdout::shared_budget_note(dataset, &holdout));
                report.fits.holdout = Some(holdout);
            }
            Err(error) => skip(&mut report, "holdout", &error),
        }
    }
    assess::assess_all(&mut report, dataset, opts, &failures);
    Ok(report)
}

/// A `--target-flops` more than this factor beyond the compute of the runs is an
/// extrapolation: one decade, the step the verdicts' fixes ask a sweep to add ("add a FLOP
/// budget above 10x the largest C").
pub(crate) const EXTRAPOLATION_FACTOR: f64 = 10.0;

/// The warning for a `--target-flops` more than EXTRAPOLATION_FACTOR above the largest or
/// below the smallest compute of the runs fitted, naming their range: the predictions there
/// extend the fitted power laws past anything measured, and their intervals assume the laws
/// still hold.
pub(crate) fn extrapolation_warning(data: &Dataset, target: f64) -> Option<String> {
    let (low, high) = data
        .points
        .iter()
        .map(|p| p.flops)
        .filter(|c| c.is_finite() && *c > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(low, high), c| (low.min(c), high.max(c)));
    if low > high {
        return None;
    }
    let (decades, side) = if target > EXTRAPOLATION_FACTOR * high {
        (assess::decades(high, target), "above the largest")
    } else if target < low / EXTRAPOLATION_FACTOR {
        (assess::decades(target, low), "below the smallest")
    } else {
        return None;
    };
    Some(format!(
        "--target-flops {}: {decades:.1} decades {side} compute of the runs fitted (C = {} to {}); predictions \
         more than a decade outside the data extrapolate the fitted laws, and their intervals assume the laws hold \
         there",
        number(target),
        number(low),
        number(high)
    ))
}

/// The families a `--law` value stands for; "chinchilla" brings approaches 1 and 2 along
/// for the side-by-side table of a and b.
fn families(law: Law) -> Vec<Law> {
    match law {
        Law::All => vec![Law::Chinchilla, Law::IsoFlop, Law::Frontier, Law::Kaplan, Law::DataConstrained],
        Law::Chinchilla => vec![Law::Chinchilla, Law::IsoFlop, Law::Frontier],
        single => vec![single],
    }
}

/// The reason to list under "skipped".
fn skip(report: &mut FitReport, law: &str, error: &FitError) {
    let reason = match error {
        FitError::TooFewPoints { reason, .. } => reason.clone(),
        other => other.to_string(),
    };
    report.skipped.insert(law.to_string(), reason);
}

fn fit_family(family: Law, context: &Context<'_>, report: &mut FitReport, warm: &mut WarmStarts) {
    let (data, ones) = (context.data, &context.ones);
    match family {
        Law::Chinchilla => match fit_chinchilla(context) {
            Ok((fit, x)) => {
                report.fits.chinchilla = Some(fit);
                warm.chinchilla = Some(x);
            }
            Err(error) => skip(report, "chinchilla", &error),
        },
        // Approach 2 resamples within budgets, so it runs its own bootstrap.
        Law::IsoFlop => match isoflop::fit(data, context.opts) {
            Ok((fit, warnings)) => {
                report.warnings.extend(warnings.iter().map(|w| format!("isoflop: {w}")));
                report.fits.isoflop = Some(fit);
            }
            Err(error) => skip(report, "isoflop", &error),
        },
        Law::Frontier => match fit_approach1(data, ones) {
            Ok((mut fit, loss_line)) => {
                fit.prediction = line_prediction(context.opts, &fit.lines());
                if let (Some(prediction), Some(line)) = (fit.prediction.as_mut(), loss_line.as_ref()) {
                    prediction.loss = Some(power_at(line, prediction.flops));
                }
                report.fits.frontier = Some(fit);
            }
            Err(error) => skip(report, "frontier", &error),
        },
        Law::Kaplan => fit_kaplan(context, report, warm),
        Law::DataConstrained => fit_data_constrained(context, report, warm),
        Law::All => {}
    }
}

fn fit_chinchilla(context: &Context<'_>) -> Result<(ChinchillaFit, Vec<Vec<f64>>), FitError> {
    let mapping = &context.mappings.chinchilla;
    chinchilla::check_supported_free(&context.data.points, mapping.free())?;
    let fit = chinchilla::fit_mapped(&context.log_points, &context.ones, mapping)?;
    let p = fit.params;
    let prediction = context.opts.target_flops.map(|flops| {
        let (n_opt, d_opt) = p.compute_optimal(flops);
        Prediction { flops, n_opt, d_opt, loss: Some(p.predict(n_opt, d_opt)), ci95: Default::default() }
    });
    let report = ChinchillaFit {
        params: p,
        ci95: Default::default(),
        se: Default::default(),
        se_log10: Default::default(),
        objective: fit.objective,
        a: p.exponent_a(),
        b: p.exponent_b(),
        starts: mapping.starts(&chinchilla::published_grid()).len(),
        grid_points: fit.grid_points,
        prediction,
        bootstrap: None,
        fixed: context.mappings.chinchilla_constraints.fixed.clone(),
        tied: context.mappings.chinchilla_constraints.tied.clone(),
        assessment: Default::default(),
    };
    Ok((report, fit.restarts))
}

/// N_opt and D_opt at the target compute from approach 1 or 2's power laws.
fn line_prediction(opts: &FitOptions, lines: &(Line, Line)) -> Option<Prediction> {
    opts.target_flops.map(|flops| Prediction {
        flops,
        n_opt: power_at(&lines.0, flops),
        d_opt: power_at(&lines.1, flops),
        loss: None,
        ci95: Default::default(),
    })
}

fn fit_kaplan(context: &Context<'_>, report: &mut FitReport, warm: &mut WarmStarts) {
    for (k, variable) in Variable::ALL.into_iter().enumerate() {
        let (key, _, _) = variable.names();
        match fit_single(context.data, &context.ones, variable, &context.mappings.kaplan_single[k]) {
            Ok(mut fit) => {
                fit.constrained_by(&context.mappings.kaplan_single_constraints[k]);
                fit.basis = match variable {
                    Variable::Params => Some("each model size's lowest loss over its token counts".to_string()),
                    Variable::Tokens => Some("each token count's lowest loss over its model sizes".to_string()),
                    Variable::Compute => Some("the compute-efficient frontier".to_string()),
                };
                *kaplan_slot(&mut report.fits, variable) = Some(fit);
            }
            Err(error) => skip(report, key, &error),
        }
    }
    match fit_joint_mapped(context.data, &context.ones, &context.mappings.kaplan_nd, None) {
        Ok((mut fit, _, restarts)) => {
            fit.constrained_by(&context.mappings.kaplan_constraints);
            report.fits.kaplan_nd = Some(fit);
            warm.kaplan_nd = Some(restarts);
        }
        Err(error) => skip(report, "kaplan_nd", &error),
    }
}

fn kaplan_slot(fits: &mut Fits, variable: Variable) -> &mut Option<LawFit> {
    match variable {
        Variable::Params => &mut fits.kaplan_n,
        Variable::Tokens => &mut fits.kaplan_d,
        Variable::Compute => &mut fits.kaplan_c,
    }
}

/// Muennighoff et al. 2023: the base law (fitted on the single-epoch runs, or fixed by
/// `--fix`), then R*_D and R*_N. With the base fitted, R* is fitted on the runs that repeat
/// data and overfitting runs are left out (`--overfit auto`); with the base fixed, as in the
/// paper, R* is fitted on every run, single-epoch runs with excess parameters included, and
/// overfitting runs are kept unless `--overfit drop`. Every run left out is named.
fn fit_data_constrained(context: &Context<'_>, report: &mut FitReport, warm: &mut WarmStarts) {
    let data = context.data;
    let base_mapping = &context.mappings.data_constrained_base;
    let base_fixed = base_mapping.free() == 0;
    let drop_overfit = match context.opts.overfit {
        Overfit::Auto => !base_fixed,
        Overfit::Drop => true,
        Overfit::Keep => false,
    };
    let mut overfit = Vec::new();
    for (run, better) in data_constrained::overfit_runs(data) {
        let (p, q) = (&data.points[run], &data.points[better]);
        let what = if drop_overfit { "left out" } else { "kept (--overfit keep or a fixed base law)" };
        report.warnings.push(format!(
            "data_constrained: {} {what}: its loss {:.4} is above {:.4} of {} with fewer tokens of the same unique \
             data (overfitting; the law assumes repetition never hurts)",
            p.run_id, p.loss, q.loss, q.run_id
        ));
        if drop_overfit {
            overfit.push(run);
        }
    }
    let fitted = data_constrained::check_supported(data, &context.ones).and_then(|()| {
        let (base_params, base_restarts, base_weights) = if base_fixed {
            let x = base_mapping.full(&[]);
            (ChinchillaParams::from_log_form(&x, context.log_points.compute), None, vec![0.0; data.points.len()])
        } else {
            let base_weights = base_law_runs(context, &mut report.warnings);
            let base = chinchilla::fit_mapped(&context.log_points, &base_weights, base_mapping)?;
            (base.params, Some(base.restarts), base_weights)
        };
        let repetition_weights = if base_fixed {
            (0..data.points.len()).map(|i| if overfit.contains(&i) { 0.0 } else { 1.0 }).collect()
        } else {
            repeated_weights(data, &context.ones, &overfit)
        };
        let (mut fit, _, restarts) =
            fit_repetition_mapped(data, &repetition_weights, base_params, &context.mappings.repetition, None)?;
        fit.constrained_by(&context.mappings.data_constrained_constraints);
        fit.basis = Some(if base_fixed && context.mappings.repetition.free() == 0 {
            "nothing: every parameter fixed".to_string()
        } else if base_fixed {
            "every run (base law fixed), R*_D and R*_N fitted".to_string()
        } else {
            "base law on the single-epoch runs, R*_D and R*_N on the runs that repeat data".to_string()
        });
        let starts = DataConstrainedStarts {
            base: base_restarts,
            fixed_base: base_params,
            base_weights,
            repetition_weights,
            repetition: restarts,
        };
        Ok((fit, starts))
    });
    match fitted {
        Ok((fit, starts)) => {
            report.fits.data_constrained = Some(fit);
            warm.data_constrained = Some(starts);
        }
        Err(error) => skip(report, "data_constrained", &error),
    }
}

/// Weights selecting the runs the base law is fitted on: the single-epoch runs, or every
/// run (with a warning) when there are too few of them.
fn base_law_runs(context: &Context<'_>, warnings: &mut Vec<String>) -> Vec<f64> {
    let data = context.data;
    let single: Vec<f64> = (0..data.points.len()).map(|i| if repeats_data(data, i) { 0.0 } else { 1.0 }).collect();
    let single_points: Vec<Point> =
        data.points.iter().zip(&single).filter(|(_, &w)| w > 0.0).map(|(p, _)| p.clone()).collect();
    let free = context.mappings.data_constrained_base.free();
    if single_points.len() >= MIN_SINGLE_EPOCH && chinchilla::check_supported_free(&single_points, free).is_ok() {
        return single;
    }
    warnings.push(format!(
        "data_constrained: only {} single-epoch runs; the base law is fitted on all runs",
        single_points.len()
    ));
    context.ones.clone()
}
