//! The verdict on each fitted law (identified, weak, not identified; `verdict`): the criteria
//! and their thresholds, applied after the bootstrap so that they can read the intervals.
//! docs/fitting.md lists every criterion with its threshold; a change here changes that page.
//!
//! The criteria ask whether the data pin each reported number down: an exponent's 95%
//! interval must exclude 0 and be narrow, a scale parameter's interval must span few decades,
//! a parameter must not sit at a bound or run away (E -> 0, R* -> infinity), the sweep must
//! have enough distinct sizes and token counts, Kaplan's single-variable laws must not be fed
//! runs limited by the other variable, and the three Chinchilla approaches must agree on a.
//! Each finding names the fix: what to add to the sweep.

use crate::fit::data::Dataset;
use crate::fit::data_constrained::largest_repeats;
use crate::fit::kaplan::Variable;
use crate::fit::options::FitOptions;
use crate::fit::table::number;
use crate::records::fit::ChinchillaParams;
use crate::records::fit::{ChinchillaFit, FitReport, FrontierFit, Intervals, LawFit, Values};
use crate::records::verdict::{Assessment, Verdict};

mod laws;
use laws::{chinchilla, data_constrained, frontier, kaplan_joint, kaplan_single};

/// An exponent's 95% interval wider than this is `weak`.
pub(crate) const EXPONENT_WIDTH_WEAK: f64 = 0.2;
/// ... and wider than this, `not identified`.
pub(crate) const EXPONENT_WIDTH_NOT: f64 = 1.0;
/// An exponent (alpha, beta, alpha_N, ...) above this has run away (published fits: 0.05-0.8).
pub(crate) const EXPONENT_MAX: f64 = 2.0;
/// A compute-optimal exponent's (a, b) interval wider than this is `weak` ...
pub(crate) const ALLOCATION_WIDTH_WEAK: f64 = 0.15;
/// ... and wider than this, `not identified`.
pub(crate) const ALLOCATION_WIDTH_NOT: f64 = 0.5;
/// A positive scale parameter's interval spanning more decades than this is `weak` ...
pub(crate) const SCALE_DECADES_WEAK: f64 = 1.0;
/// ... and more than this, `not identified`.
pub(crate) const SCALE_DECADES_NOT: f64 = 3.0;
/// E below this fraction of the lowest loss has run to its bound 0.
pub(crate) const E_FLOOR_FRACTION: f64 = 0.01;
pub(crate) use crate::verdict::MIN_DISTINCT;
/// The fewest distinct model sizes on the frontier approach 1 is `identified` from.
pub(crate) const MIN_FRONTIER_SIZES: usize = 4;
/// The frontier must span at least this factor of compute.
pub(crate) const MIN_COMPUTE_SPAN: f64 = 10.0;
/// R* above this multiple of the largest R in the data cannot be told from infinity.
pub(crate) const R_STAR_RUNAWAY: f64 = 10.0;
/// R* below this has run to its bound 0.
pub(crate) const R_STAR_FLOOR: f64 = 1e-2;
/// A run still improves when its loss falls by more than this fraction per doubling of the
/// other variable (tokens for L(N), model size for L(D)).
pub(crate) const STILL_IMPROVING: f64 = 0.01;
/// More than this fraction of bootstrap refits failing makes a law `weak`.
pub(crate) const FAILED_REFITS: f64 = 0.05;
/// More than this fraction failing makes it `not identified`: its interval then describes the
/// minority of resamples the law could be fitted to, not the data.
pub(crate) const MOSTLY_FAILED: f64 = 0.5;

/// Per law, how many bootstrap refits failed (by fit.json key).
pub(crate) type Failures = std::collections::BTreeMap<&'static str, usize>;

/// Fills in the verdict of every fitted law.
pub(crate) fn assess_all(report: &mut FitReport, data: &Dataset, opts: &FitOptions, failures: &Failures) {
    let span = Span::of(data);
    let resamples = opts.bootstrap;
    let fits = &mut report.fits;
    if let Some(fit) = fits.chinchilla.as_mut() {
        fit.assessment = chinchilla(fit, &span);
    }
    if let Some(fit) = fits.frontier.as_mut() {
        fit.assessment = frontier(fit, &span);
    }
    for (variable, fit) in [
        (Variable::Params, fits.kaplan_n.as_mut()),
        (Variable::Tokens, fits.kaplan_d.as_mut()),
        (Variable::Compute, fits.kaplan_c.as_mut()),
    ] {
        if let Some(fit) = fit {
            fit.assessment = kaplan_single(fit, variable, data, &span);
        }
    }
    if let Some(fit) = fits.kaplan_nd.as_mut() {
        fit.assessment = kaplan_joint(fit, &span);
    }
    if let Some(fit) = fits.data_constrained.as_mut() {
        fit.assessment = data_constrained(fit, data, &span);
    }
    if let Some(fit) = fits.chinchilla.as_mut() {
        nothing_fitted(&mut fit.assessment, ["E", "A", "B", "alpha", "beta"].into_iter(), &fit.fixed);
    }
    for fit in
        [&mut fits.kaplan_n, &mut fits.kaplan_d, &mut fits.kaplan_c, &mut fits.kaplan_nd, &mut fits.data_constrained]
            .into_iter()
            .flatten()
    {
        nothing_fitted(&mut fit.assessment, fit.params.keys().map(String::as_str), &fit.fixed);
    }
    cross_approaches(report);
    let fits = &mut report.fits;
    let laws: [(&str, Option<&mut Assessment>); 7] = [
        ("chinchilla", fits.chinchilla.as_mut().map(|f| &mut f.assessment)),
        ("frontier", fits.frontier.as_mut().map(|f| &mut f.assessment)),
        ("kaplan_n", fits.kaplan_n.as_mut().map(|f| &mut f.assessment)),
        ("kaplan_d", fits.kaplan_d.as_mut().map(|f| &mut f.assessment)),
        ("kaplan_c", fits.kaplan_c.as_mut().map(|f| &mut f.assessment)),
        ("kaplan_nd", fits.kaplan_nd.as_mut().map(|f| &mut f.assessment)),
        ("data_constrained", fits.data_constrained.as_mut().map(|f| &mut f.assessment)),
    ];
    for (key, assessment) in laws {
        let Some(assessment) = assessment else { continue };
        bootstrap_findings(assessment, resamples, failures.get(key).copied());
        if let Some(noise) = report.noise_floor {
            noise_findings(assessment, key, noise, data);
        }
    }
}

/// What the sweep covers: distinct sizes and token counts, the largest N, D, C, the lowest loss.
pub(crate) struct Span {
    pub sizes: usize,
    pub token_counts: usize,
    pub max_params: f64,
    pub max_tokens: f64,
    pub max_flops: f64,
    pub min_flops: f64,
    pub lowest_loss: f64,
}

fn distinct(values: impl Iterator<Item = f64>) -> usize {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.dedup_by(|a, b| (*a / *b - 1.0).abs() < 1e-9);
    v.len()
}

impl Span {
    pub fn of(data: &Dataset) -> Span {
        let top = |f: &dyn Fn(&crate::fit::data::Point) -> f64| data.points.iter().map(f).fold(0.0f64, f64::max);
        Span {
            sizes: distinct(data.points.iter().map(|p| p.params)),
            token_counts: distinct(data.points.iter().map(|p| p.tokens)),
            max_params: top(&|p| p.params),
            max_tokens: top(&|p| p.tokens),
            max_flops: top(&|p| p.flops),
            min_flops: data.points.iter().map(|p| p.flops).fold(f64::INFINITY, f64::min),
            lowest_loss: data.points.iter().map(|p| p.loss).fold(f64::INFINITY, f64::min),
        }
    }

    pub(crate) fn sizes_fix(&self) -> String {
        match times(4.0, self.max_params) {
            Some(above) => format!("add model sizes above {above}"),
            None => unrepresentable("N"),
        }
    }

    pub(crate) fn tokens_fix(&self) -> String {
        match times(4.0, self.max_tokens) {
            Some(above) => format!("add token counts above {above}"),
            None => unrepresentable("D"),
        }
    }

    pub(crate) fn budget_fix(&self) -> String {
        match times(10.0, self.max_flops) {
            Some(above) => format!("add a FLOP budget above {above}"),
            None => unrepresentable("C"),
        }
    }
}

/// How many decades [low, high] spans (0 < low <= high), as log10(high) - log10(low), which
/// stays finite where high / low overflows.
pub(crate) fn decades(low: f64, high: f64) -> f64 {
    high.log10() - low.log10()
}

/// `factor` x `largest` for a fix, written as a power of ten where the product overflows
/// (inputs near 1e308); `None` where `largest` itself is not finite (C = 6 N D of such
/// inputs), so that a fix never names inf or NaN.
fn times(factor: f64, largest: f64) -> Option<String> {
    let value = factor * largest;
    if value.is_finite() {
        return Some(number(value));
    }
    let log10 = factor.log10() + largest.log10();
    log10.is_finite().then(|| format!("10^{log10:.1}"))
}

/// The fix where the data's largest value cannot be named: the inputs' units.
fn unrepresentable(what: &str) -> String {
    format!(
        "give N, D and C in larger units: the largest {what} of the runs is not a finite 64-bit number, so no \
         larger one can be named"
    )
}

/// The exponent criteria: positive, below EXPONENT_MAX, interval excluding 0 and narrow.
pub(crate) fn exponent(assessment: &mut Assessment, name: &str, value: f64, ci: Option<&[f64; 2]>, fix: &str) {
    let fix = Some(fix.to_string());
    if !value.is_finite() || value <= 0.0 {
        assessment.not_identified(format!("{name} = {} is not positive", number(value)), fix.clone());
    } else if value > EXPONENT_MAX {
        assessment.not_identified(
            format!("{name} = {} ran away (above {EXPONENT_MAX}; published fits lie in 0.05-0.8)", number(value)),
            fix.clone(),
        );
    }
    let Some(&[low, high]) = ci else { return };
    if low <= 0.0 {
        // "includes 0" only where it does: an interval wholly below 0 is a loss that rises.
        let relation = if high < 0.0 { "lies below 0" } else { "includes 0" };
        assessment.not_identified(
            format!("{name}'s 95% interval [{}, {}] {relation}", number(low), number(high)),
            fix.clone(),
        );
    }
    let width = high - low;
    if width > EXPONENT_WIDTH_NOT {
        assessment
            .not_identified(format!("{name}'s 95% interval spans {width:.2} (more than {EXPONENT_WIDTH_NOT})"), fix);
    } else if width > EXPONENT_WIDTH_WEAK {
        assessment.weak(format!("{name}'s 95% interval spans {width:.2} (more than {EXPONENT_WIDTH_WEAK})"), fix);
    }
}

/// The compute-optimal exponents a and b: inside (0, 1), interval inside it and narrow.
fn allocation(assessment: &mut Assessment, name: &str, value: f64, ci: Option<&[f64; 2]>, fix: &str) {
    let fix = Some(fix.to_string());
    if !(value > 0.0 && value < 1.0) {
        assessment.not_identified(format!("{name} = {} is outside (0, 1)", number(value)), fix.clone());
    }
    let Some(&[low, high]) = ci else { return };
    if low <= 0.0 || high >= 1.0 {
        assessment.not_identified(
            format!("{name}'s 95% interval [{}, {}] leaves (0, 1)", number(low), number(high)),
            fix.clone(),
        );
    }
    let width = high - low;
    if width > ALLOCATION_WIDTH_NOT {
        assessment
            .not_identified(format!("{name}'s 95% interval spans {width:.2} (more than {ALLOCATION_WIDTH_NOT})"), fix);
    } else if width > ALLOCATION_WIDTH_WEAK {
        assessment.weak(format!("{name}'s 95% interval spans {width:.2} (more than {ALLOCATION_WIDTH_WEAK})"), fix);
    }
}

/// The scale criteria: positive and finite, interval spanning few decades.
pub(crate) fn scale(assessment: &mut Assessment, name: &str, value: f64, ci: Option<&[f64; 2]>, fix: &str) {
    let fix = Some(fix.to_string());
    if !(value.is_finite() && value > 0.0) {
        assessment.not_identified(format!("{name} = {} is not a positive number", number(value)), fix.clone());
        return;
    }
    let Some(&[low, high]) = ci else { return };
    if !(low > 0.0) {
        assessment.not_identified(format!("{name}'s 95% interval reaches {}", number(low)), fix);
        return;
    }
    // The difference of the logarithms: high / low overflows where the interval spans more
    // than about 308 decades (it printed "spans inf decades").
    let decades = decades(low, high);
    let reason = |limit: f64| {
        format!(
            "{name}'s 95% interval [{}, {}] spans {decades:.2} decades (more than {limit})",
            number(low),
            number(high)
        )
    };
    if decades > SCALE_DECADES_NOT {
        assessment.not_identified(reason(SCALE_DECADES_NOT), fix);
    } else if decades > SCALE_DECADES_WEAK {
        assessment.weak(reason(SCALE_DECADES_WEAK), fix);
    }
}

/// E must stay clear of its bound 0 (the irreducible loss running away to nothing).
fn floor(assessment: &mut Assessment, value: f64, ci: Option<&[f64; 2]>, span: &Span) {
    let bound = E_FLOOR_FRACTION * span.lowest_loss;
    if value < bound {
        assessment.not_identified(
            format!("E = {} ran to its bound 0 (below {E_FLOOR_FRACTION} of the lowest loss)", number(value)),
            Some(span.budget_fix()),
        );
    } else if ci.is_some_and(|[low, _]| *low < bound) {
        assessment.weak("E's 95% interval reaches its bound 0", Some(span.budget_fix()));
    }
}

/// Too few distinct sizes or token counts for a law of N and D.
fn coverage(assessment: &mut Assessment, span: &Span, law: &str) {
    if span.sizes < MIN_DISTINCT {
        assessment.not_identified(
            format!("only {} distinct model size(s); {law} needs {MIN_DISTINCT}+", span.sizes),
            Some(span.sizes_fix()),
        );
    }
    if span.token_counts < MIN_DISTINCT {
        assessment.not_identified(
            format!("only {} distinct token count(s); {law} needs {MIN_DISTINCT}+", span.token_counts),
            Some(span.tokens_fix()),
        );
    }
}

/// A law whose every parameter (`names`) is held by `--fix` was not fitted to the data: its
/// values are the ones given and its predictions follow from them alone, whatever the runs say,
/// so it is `not identified` (shown as a diagnosis, never as a result), saying why.
fn nothing_fitted<'a>(assessment: &mut Assessment, names: impl Iterator<Item = &'a str>, fixed: &Values) {
    let names: Vec<&str> = names.collect();
    if names.is_empty() || !names.iter().all(|name| fixed.contains_key(*name)) {
        return;
    }
    assessment.not_identified(
        format!(
            "every parameter ({}) is fixed by --fix: nothing was fitted to the data, so its values and predictions \
             are the given ones, not measurements",
            names.join(", ")
        ),
        Some("leave the parameters to measure out of --fix".to_string()),
    );
}

/// Approaches 1-3 must agree on a: two whose 95% intervals of a do not overlap make each
/// other `weak`. (Approach 2 is compared through its a and interval.)
fn cross_approaches(report: &mut FitReport) {
    let fits = &report.fits;
    let mut estimates: Vec<(&str, f64, [f64; 2])> = Vec::new();
    if let Some(f) = &fits.frontier {
        if f.assessment.verdict != Verdict::NotIdentified {
            if let Some(ci) = f.ci95.get("a") {
                estimates.push(("approach 1", f.a, *ci));
            }
        }
    }
    if let Some(f) = &fits.isoflop {
        if f.assessment.verdict != Verdict::NotIdentified {
            if let Some(ci) = f.ci95.get("a") {
                estimates.push(("approach 2", f.a, *ci));
            }
        }
    }
    if let Some(f) = &fits.chinchilla {
        if f.assessment.verdict != Verdict::NotIdentified {
            if let Some(ci) = f.ci95.get("a") {
                estimates.push(("approach 3", f.a, *ci));
            }
        }
    }
    let mut findings: Vec<(&str, String)> = Vec::new();
    for (i, (name_i, a_i, ci_i)) in estimates.iter().enumerate() {
        for (name_j, a_j, ci_j) in estimates.iter().skip(i + 1) {
            if ci_i[1] < ci_j[0] || ci_j[1] < ci_i[0] {
                let reason = format!(
                    "{name_i} and {name_j} disagree on a: {} [{}, {}] against {} [{}, {}]",
                    number(*a_i),
                    number(ci_i[0]),
                    number(ci_i[1]),
                    number(*a_j),
                    number(ci_j[0]),
                    number(ci_j[1])
                );
                findings.push((name_i, reason.clone()));
                findings.push((name_j, reason));
            }
        }
    }
    let fix = "add FLOP budgets and sizes around each budget's minimum, so the approaches can agree".to_string();
    for (name, reason) in findings {
        let target = match name {
            "approach 1" => report.fits.frontier.as_mut().map(|f| &mut f.assessment),
            "approach 2" => report.fits.isoflop.as_mut().map(|f| &mut f.assessment),
            "approach 3" => report.fits.chinchilla.as_mut().map(|f| &mut f.assessment),
            _ => None,
        };
        if let Some(assessment) = target {
            assessment.weak(reason, Some(fix.clone()));
        }
    }
}

/// Without a bootstrap no interval is checked; many failed refits make the intervals suspect.
pub(crate) fn bootstrap_findings(assessment: &mut Assessment, resamples: usize, failed: Option<usize>) {
    if resamples == 0 {
        assessment.weak(
            "no bootstrap (--bootstrap 0): the intervals were not checked",
            Some("rerun with --bootstrap 1000".to_string()),
        );
        return;
    }
    let Some(failed) = failed else { return };
    if let Some(verdict) = failed_refits_verdict(failed, resamples, FAILED_REFITS) {
        let (share, why, fix) = if verdict == Verdict::NotIdentified {
            (
                MOSTLY_FAILED,
                ": the interval rests on the few resamples the law could be fitted to",
                Some("add sizes and budgets spanning a wider range of loss".to_string()),
            )
        } else {
            (FAILED_REFITS, "", None)
        };
        assessment.add(
            verdict,
            format!("{failed} of {resamples} bootstrap refits failed (more than {:.0}%){why}", 100.0 * share),
            fix,
        );
    }
}

/// The verdict a share of failed bootstrap resamples earns: `weak` above `weak_above` (each
/// law's own tolerance), `not identified` above MOSTLY_FAILED, where the interval describes the
/// few resamples that could be fitted rather than the data.
pub(crate) fn failed_refits_verdict(failed: usize, resamples: usize, weak_above: f64) -> Option<Verdict> {
    let share = failed as f64 / resamples.max(1) as f64;
    if share > MOSTLY_FAILED {
        Some(Verdict::NotIdentified)
    } else if share > weak_above {
        Some(Verdict::Weak)
    } else {
        None
    }
}

/// Points whose loss differences are within the seeds' spread cannot pin a law down; a law
/// whose whole range of loss is within 3 noise standard deviations is `not identified`.
fn noise_findings(assessment: &mut Assessment, key: &str, noise: f64, data: &Dataset) {
    let (low, high) = data.points.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| (lo.min(p.loss), hi.max(p.loss)));
    if high - low < 3.0 * noise {
        assessment.not_identified(
            format!(
                "{key}: the losses span {} while the seeds' noise floor is {}: differences are within the noise",
                number(high - low),
                number(noise)
            ),
            Some("add sizes and budgets spanning a wider range of loss".to_string()),
        );
    }
}
