//! Chinchilla approach 2 (Hoffmann et al. 2022, section 3.2, Figure 3) as Porian et al. 2024
//! ("Resolving Discrepancies in Compute-Optimal Scaling of Language Models", section 2) apply
//! it: runs are grouped by FLOP budget; per budget, a parabola in log N is fitted to the runs
//! at the `window` sizes nearest the size with the lowest loss (a parabola through every run
//! of a budget, losses far from the minimum included, biases its vertex); a budget whose vertex
//! lies outside the sizes the parabola was fitted to is left out with a warning naming the
//! sizes to add; N_opt ∝ C^a and D_opt ∝ C^b are straight lines through the remaining minima
//! in log-log space. The 95% intervals come from a bootstrap over the runs within each budget
//! (every budget keeps its number of runs), and the fit carries a verdict (`records::verdict`).

use rayon::prelude::*;

use crate::fit::bootstrap::{intervals, Draws};
use crate::fit::data::Dataset;
use crate::fit::error::FitError;
use crate::fit::frontier::power_at;
use crate::fit::options::FitOptions;
use crate::fit::regress::{fit_line, fit_parabola, Parabola};
use crate::records::fit::{BootstrapSummary, Intervals, Prediction, Values};
use crate::records::fit::{IsoFlopFit, IsoFlopMinimum};
use crate::records::verdict::Assessment;
use crate::rng::SplitMix64;

/// Runs whose log compute differ by less than this (about 10%) share a budget.
const SAME_BUDGET: f64 = 0.1;
pub(crate) use crate::verdict::MIN_BUDGETS;
use crate::verdict::MIN_BUDGET_SIZES as MIN_SIZES;
/// The widest 95% bootstrap interval of a (or b) that still counts as identified.
pub(crate) const WIDE_EXPONENT: f64 = 0.2;
/// The largest share of bootstrap resamples that may fail before the interval is weak.
const MAX_FAILED_SHARE: f64 = 0.1;

/// A number in a message: 3 significant digits, trailing zeros dropped ("3e11", "1.25e16").
fn short(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    if (1e-2..1e4).contains(&value.abs()) {
        let text = format!("{value:.3}");
        return text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    let text = format!("{value:.2e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            format!("{}e{exponent}", mantissa.trim_end_matches('0').trim_end_matches('.'))
        }
        None => text,
    }
}

/// Groups point indices (of positive weight) into budgets by compute (`group_by_log`).
pub(crate) fn budgets(data: &Dataset, weights: &[f64]) -> Vec<Vec<usize>> {
    let flops: Vec<f64> = data.points.iter().map(|p| p.flops).collect();
    group_by_log(&flops, (0..data.points.len()).filter(|&i| weights[i] > 0.0).collect())
}

/// `indices` into `values` grouped into budgets: sorted by value, split where neighbouring
/// log values differ by SAME_BUDGET or more (FLOP budgets here; the figures' token budgets too).
pub(crate) fn group_by_log(values: &[f64], mut indices: Vec<usize>) -> Vec<Vec<usize>> {
    indices.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut previous = f64::NEG_INFINITY;
    for i in indices {
        let ln_value = values[i].ln();
        match groups.last_mut() {
            Some(group) if ln_value - previous < SAME_BUDGET => group.push(i),
            _ => groups.push(vec![i]),
        }
        previous = ln_value;
    }
    groups
}

/// What one budget gave.
pub(crate) enum Budget {
    Minimum(IsoFlopMinimum),
    /// Too few distinct sizes for a parabola: (compute, sizes).
    TooFewSizes(f64, usize),
    /// The losses do not curve upward around the lowest one.
    NoMinimum(f64),
}

/// The weighted mean log compute of a budget, as a compute.
pub(crate) fn budget_flops(data: &Dataset, weights: &[f64], group: &[usize]) -> f64 {
    let total: f64 = group.iter().map(|&i| weights[i]).sum();
    (group.iter().map(|&i| weights[i] * data.points[i].flops.ln()).sum::<f64>() / total).exp()
}

/// The indices into `sizes` (sorted, distinct) of the `window` sizes nearest in log N to
/// `sizes[best]`, as an inclusive range.
fn nearest_sizes(sizes: &[f64], best: usize, window: usize) -> (usize, usize) {
    let (mut low, mut high) = (best, best);
    while high - low + 1 < window && (low > 0 || high + 1 < sizes.len()) {
        let below = (low > 0).then(|| sizes[best].ln() - sizes[low - 1].ln());
        let above = (high + 1 < sizes.len()).then(|| sizes[high + 1].ln() - sizes[best].ln());
        match (below, above) {
            (Some(b), Some(a)) if b <= a => low -= 1,
            (Some(_), None) => low -= 1,
            _ => high += 1,
        }
    }
    (low, high)
}

/// One budget's parabolas: the loss against log N and against log D, fitted to its runs at
/// the `window` sizes nearest the size with the lowest loss (`None` where singular).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BudgetParabolas {
    pub flops: f64,
    pub ln_n: Option<Parabola>,
    pub ln_d: Option<Parabola>,
    /// The smallest and largest size fitted.
    pub sizes: [f64; 2],
}

/// The parabolas of one budget (see `BudgetParabolas`), or why it has none.
pub(crate) fn budget_parabolas(
    data: &Dataset,
    weights: &[f64],
    group: &[usize],
    window: usize,
) -> Result<BudgetParabolas, Budget> {
    let flops = budget_flops(data, weights, group);
    let mut sizes: Vec<f64> = group.iter().map(|&i| data.points[i].params).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    if sizes.len() < MIN_SIZES {
        return Err(Budget::TooFewSizes(flops, sizes.len()));
    }
    let lowest = group.iter().copied().min_by(|&i, &j| data.points[i].loss.total_cmp(&data.points[j].loss));
    let Some(best) = lowest.and_then(|i| sizes.iter().position(|&n| n == data.points[i].params)) else {
        return Err(Budget::NoMinimum(flops));
    };
    let (low, high) = nearest_sizes(&sizes, best, window.max(MIN_SIZES));
    let (smallest, largest) = (sizes[low], sizes[high]);
    let used: Vec<usize> =
        group.iter().copied().filter(|&i| (smallest..=largest).contains(&data.points[i].params)).collect();
    let column = |f: &dyn Fn(usize) -> f64| used.iter().map(|&i| f(i)).collect::<Vec<f64>>();
    let w = column(&|i| weights[i]);
    let loss = column(&|i| data.points[i].loss);
    let ln_n = fit_parabola(&column(&|i| data.points[i].params.ln()), &loss, &w);
    let ln_d = fit_parabola(&column(&|i| data.points[i].tokens.ln()), &loss, &w);
    Ok(BudgetParabolas { flops, ln_n, ln_d, sizes: [smallest, largest] })
}

/// The parabola minimum of one budget (`budget_parabolas`); the D parabola uses the same runs.
fn budget_minimum(data: &Dataset, weights: &[f64], group: &[usize], window: usize) -> Budget {
    let parabolas = match budget_parabolas(data, weights, group, window) {
        Ok(parabolas) => parabolas,
        Err(budget) => return budget,
    };
    let BudgetParabolas { flops, sizes: [smallest, largest], .. } = parabolas;
    let minimum = |parabola: Option<Parabola>| parabola.and_then(|p| p.minimum());
    let (Some((ln_n_opt, loss_min)), Some((ln_d_opt, _))) = (minimum(parabolas.ln_n), minimum(parabolas.ln_d)) else {
        return Budget::NoMinimum(flops);
    };
    Budget::Minimum(IsoFlopMinimum {
        flops,
        n_opt: ln_n_opt.exp(),
        d_opt: ln_d_opt.exp(),
        loss: loss_min,
        runs: group.len(),
        inside: ln_n_opt >= smallest.ln() && ln_n_opt <= largest.ln(),
        sizes: [smallest, largest],
    })
}

/// The warning and the fix for a budget whose minimum lies outside its fitted sizes.
fn outside_message(minimum: &IsoFlopMinimum, window: usize) -> (String, String) {
    let c = short(minimum.flops);
    let [smallest, largest] = minimum.sizes;
    let fix = if minimum.n_opt > largest {
        format!("add sizes above {} at C = {c}", short(largest))
    } else {
        format!("add sizes below {} at C = {c}", short(smallest))
    };
    let warning = format!(
        "sizes do not bracket the minimum at C = {c}: the parabola through the {window} sizes nearest the lowest \
         loss ({}..{}) has its vertex at N = {}; budget left out of approach 2 ({fix})",
        short(smallest),
        short(largest),
        short(minimum.n_opt)
    );
    (warning, fix)
}

/// Where to add budgets so that the usable ones (their computes, increasing) become MIN_BUDGETS: above the largest usable
/// budget, spaced like the usable ones (a factor 10 when there is only one).
fn budgets_fix(usable: &[f64]) -> Option<String> {
    let need = MIN_BUDGETS.checked_sub(usable.len()).filter(|&n| n > 0)?;
    // `usable` is in increasing compute, as the budgets are.
    let (&low, &high) = (usable.first()?, usable.last()?);
    let ratio = if usable.len() >= 2 && high > low { (high / low).powf(1.0 / (usable.len() - 1) as f64) } else { 10.0 };
    let at: Vec<String> = (1..=need).map(|k| short(high * ratio.powi(k as i32))).collect();
    Some(format!(
        "add {need} FLOP budget{} at about C = {}, each with sizes on both sides of its minimum",
        if need == 1 { "" } else { "s" },
        at.join(", ")
    ))
}

/// Fits approach 2 on the runs of positive weight; `window` sizes per parabola. Needs 2+
/// budgets with a bracketed minimum; with fewer than MIN_BUDGETS the verdict is
/// `not identified`. Returns the fit and the warnings about budgets left out (which `fit`
/// copies into the report's warnings).
pub(crate) fn fit_approach2(
    data: &Dataset,
    weights: &[f64],
    window: usize,
) -> Result<(IsoFlopFit, Vec<String>), FitError> {
    let groups = budgets(data, weights);
    let mut minima = Vec::new();
    let mut warnings = Vec::new();
    for group in &groups {
        match budget_minimum(data, weights, group, window) {
            Budget::Minimum(minimum) => minima.push(minimum),
            Budget::TooFewSizes(flops, sizes) => warnings.push(format!(
                "the budget at C = {} has {sizes} model size(s), fewer than the {MIN_SIZES} a parabola needs; left out \
                 of approach 2 (add sizes at C = {})",
                short(flops),
                short(flops)
            )),
            Budget::NoMinimum(flops) => warnings.push(format!(
                "the losses at C = {} do not curve upward around their lowest value (no parabola minimum); left out \
                 of approach 2",
                short(flops)
            )),
        }
    }
    let mut assessment = Assessment::identified();
    let mut bracket_fixes = Vec::new();
    for minimum in minima.iter().filter(|m| !m.inside) {
        let (warning, fix) = outside_message(minimum, window);
        warnings.push(warning);
        bracket_fixes.push(fix);
    }
    let used: Vec<&IsoFlopMinimum> = minima.iter().filter(|m| m.inside).collect();
    let too_few = || FitError::TooFewPoints {
        law: "isoflop".to_string(),
        reason: format!(
            "needs 2+ FLOP budgets with {MIN_SIZES}+ model sizes and a parabola minimum inside them; found {} \
             budget(s), {} usable{}",
            groups.len(),
            used.len(),
            if bracket_fixes.is_empty() { String::new() } else { format!(" ({})", bracket_fixes.join("; ")) }
        ),
    };
    if used.len() < 2 {
        return Err(too_few());
    }
    let ln_c: Vec<f64> = used.iter().map(|m| m.flops.ln()).collect();
    let ones = vec![1.0; used.len()];
    let line = |f: &dyn Fn(&IsoFlopMinimum) -> f64| {
        fit_line(&ln_c, &used.iter().map(|m| f(m).ln()).collect::<Vec<_>>(), &ones).ok_or_else(too_few)
    };
    let n_line = line(&|m| m.n_opt)?;
    let d_line = line(&|m| m.d_opt)?;
    if used.len() < MIN_BUDGETS {
        let computes: Vec<f64> = used.iter().map(|m| m.flops).collect();
        let reason = format!(
            "only {} of {} FLOP budgets have a minimum inside their sampled sizes; a line through {} minima fits \
             them exactly and says nothing about its error (needs {MIN_BUDGETS}+)",
            used.len(),
            groups.len(),
            used.len()
        );
        // A left-out budget whose sizes are extended counts as well as a new one.
        for fix in bracket_fixes.iter().cloned().map(Some).chain([budgets_fix(&computes)]) {
            assessment.not_identified(reason.clone(), fix);
        }
    }
    for (name, slope) in [("a", n_line.slope), ("b", d_line.slope)] {
        if !(slope > 0.0 && slope < 1.0) {
            assessment.not_identified(
                format!(
                    "{name} = {} is outside (0, 1): the optimal {} would {} as compute grows",
                    short(slope),
                    if name == "a" { "model size" } else { "token count" },
                    if slope <= 0.0 { "shrink" } else { "grow faster than compute" }
                ),
                Some("add budgets, each with sizes on both sides of its minimum".to_string()),
            );
        }
    }
    let budgets = used.len();
    let fit = IsoFlopFit {
        a: n_line.slope,
        b: d_line.slope,
        minima,
        intercepts: [n_line.intercept, d_line.intercept],
        budgets,
        window,
        ci95: Intervals::new(),
        prediction: None,
        bootstrap: None,
        assessment,
    };
    Ok((fit, warnings))
}

/// How often each run is drawn in resample `index`: within every budget, as many runs as
/// the budget has, with replacement (its own random stream per resample).
fn resample_within_budgets(groups: &[Vec<usize>], n: usize, seed: u64, index: usize) -> Vec<f64> {
    let mut rng = SplitMix64::stream(seed, index as u64);
    let mut weights = vec![0.0; n];
    for group in groups {
        for _ in 0..group.len() {
            weights[group[rng.below(group.len() as u64) as usize]] += 1.0;
        }
    }
    weights
}

/// a, b and the allocation at the target compute of one fit.
fn values(fit: &IsoFlopFit, target: Option<f64>) -> Values {
    let mut values = Values::from([("a".to_string(), fit.a), ("b".to_string(), fit.b)]);
    if let Some(flops) = target {
        values.insert("N_opt".to_string(), power_at(&fit.lines().0, flops));
        values.insert("D_opt".to_string(), power_at(&fit.lines().1, flops));
    }
    values
}

/// Refits approach 2 on `resamples` resamples of the runs within each budget.
fn bootstrap(data: &Dataset, window: usize, resamples: usize, seed: u64, target: Option<f64>) -> Draws {
    let ones = vec![1.0; data.points.len()];
    let groups = budgets(data, &ones);
    let outcomes: Vec<Option<Values>> = (0..resamples)
        .into_par_iter()
        .map(|index| {
            let weights = resample_within_budgets(&groups, data.points.len(), seed, index);
            fit_approach2(data, &weights, window).ok().map(|(fit, _)| values(&fit, target))
        })
        .collect();
    let mut draws = Draws::default();
    for outcome in outcomes {
        match outcome {
            Some(v) if v.values().all(|x| x.is_finite()) => draws.values.push(v),
            _ => draws.failed += 1,
        }
    }
    draws
}

/// Approach 2 with everything `fit` reports: the prediction at `--target-flops`, the
/// bootstrap intervals (`--bootstrap` resamples within budgets) and the verdict; with the
/// warnings about budgets left out.
pub(crate) fn fit(data: &Dataset, opts: &FitOptions) -> Result<(IsoFlopFit, Vec<String>), FitError> {
    let ones = vec![1.0; data.points.len()];
    let (mut fit, warnings) = fit_approach2(data, &ones, opts.isoflop_window)?;
    fit.prediction = opts.target_flops.map(|flops| Prediction {
        flops,
        n_opt: power_at(&fit.lines().0, flops),
        d_opt: power_at(&fit.lines().1, flops),
        loss: None,
        ci95: Intervals::new(),
    });
    if opts.bootstrap == 0 {
        return Ok((fit, warnings));
    }
    let draws = bootstrap(data, opts.isoflop_window, opts.bootstrap, opts.seed, opts.target_flops);
    let mut ci95 = intervals(&draws);
    if let Some(prediction) = fit.prediction.as_mut() {
        prediction.ci95 = ["N_opt", "D_opt"].iter().filter_map(|key| ci95.remove_entry(*key)).collect();
    }
    fit.ci95 = ci95;
    fit.bootstrap = Some(BootstrapSummary { resamples: opts.bootstrap, failed: draws.failed });
    assess_intervals(&mut fit, opts.bootstrap, draws.failed);
    Ok((fit, warnings))
}

/// The verdict's interval criteria: a bootstrap that mostly fails, or an exponent whose 95%
/// interval is wider than WIDE_EXPONENT or reaches outside (0, 1).
fn assess_intervals(fit: &mut IsoFlopFit, resamples: usize, failed: usize) {
    let more_budgets = "add budgets, or sizes around each budget's minimum".to_string();
    if let Some(verdict) = crate::fit::assess::failed_refits_verdict(failed, resamples, MAX_FAILED_SHARE) {
        let reason = format!(
            "{failed} of {resamples} bootstrap resamples left fewer than 2 budgets with a bracketed minimum; the \
             interval rests on the rest"
        );
        fit.assessment.add(verdict, reason, Some(more_budgets.clone()));
    }
    for name in ["a", "b"] {
        let Some(&[low, high]) = fit.ci95.get(name) else {
            fit.assessment.weak(format!("no bootstrap interval for {name}: too few resamples could be refitted"), None);
            continue;
        };
        if low <= 0.0 || high >= 1.0 {
            fit.assessment.not_identified(
                format!("{name}'s 95% interval [{}, {}] reaches outside (0, 1)", short(low), short(high)),
                Some(more_budgets.clone()),
            );
        } else if high - low > WIDE_EXPONENT {
            fit.assessment.weak(
                format!("{name}'s 95% interval [{}, {}] is wider than {WIDE_EXPONENT}", short(low), short(high)),
                Some(more_budgets.clone()),
            );
        }
    }
}

#[cfg(test)]
mod tests;
