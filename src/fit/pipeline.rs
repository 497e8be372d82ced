//! `fit`: runs the requested law families on a dataset, then the bootstrap and the holdout
//! backtest, and gathers everything into a `FitReport`.

use crate::fit::bootstrap::{self, Draws, Refit};
use crate::fit::chinchilla::{self, ChinchillaParams, LogPoints};
use crate::fit::data::{Dataset, Point};
use crate::fit::data_constrained::{self, fit_repetition, repeats_data};
use crate::fit::error::FitError;
use crate::fit::frontier::{fit_approach1, power_at};
use crate::fit::holdout::backtest;
use crate::fit::isoflop;
use crate::fit::kaplan::{fit_joint, fit_single, Variable};
use crate::fit::options::{FitOptions, Law};
use crate::fit::regress::Line;
use crate::fit::report::{BootstrapSummary, ChinchillaFit, FitReport, Fits, LawFit, Prediction, Values};

/// The fewest single-epoch runs the data-constrained base law is fitted on alone.
const MIN_SINGLE_EPOCH: usize = 10;

/// What the fits found that the bootstrap warm-starts from.
#[derive(Default)]
struct WarmStarts {
    chinchilla: Option<Vec<f64>>,
    kaplan_nd: Option<Vec<f64>>,
    /// (base law vector, which points the base law is fitted on, log R* vector)
    data_constrained: Option<(Vec<f64>, Vec<f64>, Vec<f64>)>,
}

/// Shared inputs of every fit.
struct Context<'a> {
    data: &'a Dataset,
    opts: &'a FitOptions,
    log_points: LogPoints,
    ones: Vec<f64>,
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
    };
    let mut report = FitReport::new(dataset);
    let mut warm = WarmStarts::default();
    for family in families(opts.law) {
        fit_family(family, &context, &mut report, &mut warm);
    }
    if report.fits.is_empty() {
        let reasons: Vec<String> = report.skipped.iter().map(|(law, why)| format!("{law}: {why}")).collect();
        return Err(FitError::NothingFitted(reasons.join("; ")));
    }
    if opts.bootstrap > 0 {
        bootstrap_all(&context, &mut report, &warm);
    }
    if opts.holdout > 0 {
        match backtest(dataset, opts) {
            Ok(holdout) => report.fits.holdout = Some(holdout),
            Err(error) => skip(&mut report, "holdout", &error),
        }
    }
    Ok(report)
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
            Ok(fit) => {
                report.warnings.extend(fit.warnings.iter().map(|w| format!("isoflop: {w}")));
                report.fits.isoflop = Some(fit);
            }
            Err(error) => skip(report, "isoflop", &error),
        },
        Law::Frontier => match fit_approach1(data, ones) {
            Ok(mut fit) => {
                fit.prediction = line_prediction(context.opts, &fit.lines);
                report.fits.frontier = Some(fit);
            }
            Err(error) => skip(report, "frontier", &error),
        },
        Law::Kaplan => fit_kaplan(context, report, warm),
        Law::DataConstrained => fit_data_constrained(context, report, warm),
        Law::All => {}
    }
}

fn fit_chinchilla(context: &Context<'_>) -> Result<(ChinchillaFit, Vec<f64>), FitError> {
    chinchilla::check_supported(&context.data.points)?;
    let fit = chinchilla::fit_grid(&context.log_points, &context.ones)?;
    let p = fit.params;
    let prediction = context.opts.target_flops.map(|flops| {
        let (n_opt, d_opt) = p.compute_optimal(flops);
        Prediction { flops, n_opt, d_opt, loss: Some(p.predict(n_opt, d_opt)), ci95: Default::default() }
    });
    let report = ChinchillaFit {
        params: p,
        ci95: Default::default(),
        se: Default::default(),
        objective: fit.objective,
        a: p.exponent_a(),
        b: p.exponent_b(),
        starts: chinchilla::published_grid().len(),
        prediction,
        bootstrap: None,
    };
    Ok((report, fit.x))
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
    for variable in [Variable::Params, Variable::Tokens, Variable::Compute] {
        let (key, _, _) = variable.names();
        match fit_single(context.data, &context.ones, variable) {
            Ok(fit) => *kaplan_slot(&mut report.fits, variable) = Some(fit),
            Err(error) => skip(report, key, &error),
        }
    }
    match fit_joint(context.data, &context.ones, None) {
        Ok((fit, x)) => {
            report.fits.kaplan_nd = Some(fit);
            warm.kaplan_nd = Some(x);
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

/// The base law on the single-epoch runs, then R*_D and R*_N (Muennighoff et al. 2023).
fn fit_data_constrained(context: &Context<'_>, report: &mut FitReport, warm: &mut WarmStarts) {
    let data = context.data;
    for (run, better) in data_constrained::overfit_runs(data) {
        let (p, q) = (&data.points[run], &data.points[better]);
        report.warnings.push(format!(
            "data_constrained: {} left out: its loss {:.4} is above {:.4} of {} with fewer tokens of the same unique \
             data (overfitting; the law assumes repetition never hurts)",
            p.run_id, p.loss, q.loss, q.run_id
        ));
    }
    let fitted = data_constrained::check_supported(data, &context.ones).and_then(|()| {
        let base_weights = base_law_runs(context, &mut report.warnings);
        let base = chinchilla::fit_grid(&context.log_points, &base_weights)?;
        let (fit, x) = fit_repetition(data, &context.ones, base.params, None)?;
        Ok((fit, (base.x, base_weights, x)))
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
    if single_points.len() >= MIN_SINGLE_EPOCH && chinchilla::check_supported(&single_points).is_ok() {
        return single;
    }
    warnings.push(format!(
        "data_constrained: only {} single-epoch runs; the base law is fitted on all runs",
        single_points.len()
    ));
    context.ones.clone()
}

/// Which law each bootstrap refit belongs to.
#[derive(Clone, Copy)]
enum Slot {
    Chinchilla,
    Kaplan(Variable),
    KaplanJoint,
    Frontier,
    DataConstrained,
}

fn bootstrap_all(context: &Context<'_>, report: &mut FitReport, warm: &WarmStarts) {
    let (slots, refits) = refits(context, report, warm);
    let draws = bootstrap::run(context.data.points.len(), context.opts.bootstrap, context.opts.seed, &refits);
    for (slot, draws) in slots.into_iter().zip(draws) {
        store_intervals(report, slot, &draws, context.opts.bootstrap);
    }
}

/// The refit of every fitted law, warm-started where the law is fitted iteratively.
fn refits<'a>(context: &'a Context<'a>, report: &FitReport, warm: &'a WarmStarts) -> (Vec<Slot>, Vec<Refit<'a>>) {
    let (data, target) = (context.data, context.opts.target_flops);
    let mut slots = Vec::new();
    let mut refits: Vec<Refit<'a>> = Vec::new();
    if let Some(x) = warm.chinchilla.as_deref() {
        slots.push(Slot::Chinchilla);
        refits.push(Box::new(move |w| {
            let fit = chinchilla::refit_from(&context.log_points, w, x)?;
            Some(chinchilla_values(&fit.params, target))
        }));
    }
    for variable in [Variable::Params, Variable::Tokens, Variable::Compute] {
        let fitted = match variable {
            Variable::Params => report.fits.kaplan_n.is_some(),
            Variable::Tokens => report.fits.kaplan_d.is_some(),
            Variable::Compute => report.fits.kaplan_c.is_some(),
        };
        if fitted {
            slots.push(Slot::Kaplan(variable));
            refits.push(Box::new(move |w| fit_single(data, w, variable).ok().map(|f| f.params)));
        }
    }
    if let Some(x) = warm.kaplan_nd.as_deref() {
        slots.push(Slot::KaplanJoint);
        refits.push(Box::new(move |w| fit_joint(data, w, Some(x)).ok().map(|f| f.0.params)));
    }
    if report.fits.frontier.is_some() {
        slots.push(Slot::Frontier);
        refits.push(Box::new(move |w| fit_approach1(data, w).ok().map(|f| line_values(f.a, f.b, &f.lines, target))));
    }
    if let Some((base_x, base_weights, x)) = warm.data_constrained.as_ref() {
        slots.push(Slot::DataConstrained);
        refits.push(Box::new(move |w| {
            let masked: Vec<f64> = w.iter().zip(base_weights).map(|(a, b)| a * b).collect();
            let base = chinchilla::refit_from(&context.log_points, &masked, base_x)?;
            fit_repetition(data, w, base.params, Some(x)).ok().map(|f| f.0.params)
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

/// Puts a law's intervals in its report entry; prediction values go to its prediction.
fn store_intervals(report: &mut FitReport, slot: Slot, draws: &Draws, resamples: usize) {
    let mut ci95 = bootstrap::intervals(draws);
    let predicted: Vec<(String, [f64; 2])> =
        ["N_opt", "D_opt", "loss"].iter().filter_map(|key| ci95.remove_entry(*key)).collect();
    let fits = &mut report.fits;
    let prediction = match slot {
        Slot::Chinchilla => fits.chinchilla.as_mut().and_then(|fit| {
            fit.ci95 = ci95;
            fit.se = bootstrap::standard_errors(draws);
            fit.se.retain(|key, _| !["N_opt", "D_opt", "loss"].contains(&key.as_str()));
            fit.bootstrap = Some(BootstrapSummary { resamples, failed: draws.failed });
            fit.prediction.as_mut()
        }),
        Slot::Frontier => fits.frontier.as_mut().and_then(|fit| {
            fit.ci95 = ci95;
            fit.prediction.as_mut()
        }),
        Slot::Kaplan(variable) => {
            if let Some(fit) = kaplan_slot(fits, variable).as_mut() {
                fit.ci95 = ci95;
            }
            None
        }
        Slot::KaplanJoint | Slot::DataConstrained => {
            let fit = if matches!(slot, Slot::KaplanJoint) { &mut fits.kaplan_nd } else { &mut fits.data_constrained };
            if let Some(fit) = fit.as_mut() {
                fit.ci95 = ci95;
            }
            None
        }
    };
    if let Some(prediction) = prediction {
        prediction.ci95 = predicted.into_iter().collect();
    }
}
