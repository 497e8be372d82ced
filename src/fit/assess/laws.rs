//! The criteria of each law in turn (approach 3 and the data-constrained base law's
//! parameters, approach 1's frontier, Kaplan's single-variable and joint laws, the
//! data-constrained R* terms), built from the shared checks and thresholds of the parent module.

use super::*;

/// Approach 3 (and the data-constrained base law): E, A, B, alpha, beta.
fn chinchilla_parameters(
    assessment: &mut Assessment,
    p: &ChinchillaParams,
    ci95: &Intervals,
    fixed: &Values,
    tied: &[(String, String)],
    span: &Span,
) {
    let free = |name: &str| !fixed.contains_key(name) && !tied.iter().any(|(follower, _)| follower == name);
    if free("alpha") {
        exponent(assessment, "alpha", p.alpha, ci95.get("alpha"), &span.sizes_fix());
    }
    if free("beta") {
        exponent(assessment, "beta", p.beta, ci95.get("beta"), &span.tokens_fix());
    }
    if free("A") {
        scale(assessment, "A", p.a, ci95.get("A"), &span.sizes_fix());
    }
    if free("B") {
        scale(assessment, "B", p.b, ci95.get("B"), &span.tokens_fix());
    }
    if free("E") {
        floor(assessment, p.e, ci95.get("E"), span);
    }
}

pub(super) fn chinchilla(fit: &ChinchillaFit, span: &Span) -> Assessment {
    let mut assessment = Assessment::identified();
    coverage(&mut assessment, span, "approach 3");
    chinchilla_parameters(&mut assessment, &fit.params, &fit.ci95, &fit.fixed, &fit.tied, span);
    allocation(&mut assessment, "a", fit.a, fit.ci95.get("a"), &span.budget_fix());
    assessment
}

pub(super) fn frontier(fit: &FrontierFit, span: &Span) -> Assessment {
    let mut assessment = Assessment::identified();
    allocation(&mut assessment, "a", fit.a, fit.ci95.get("a"), &span.budget_fix());
    allocation(&mut assessment, "b", fit.b, fit.ci95.get("b"), &span.budget_fix());
    if span.max_flops < MIN_COMPUTE_SPAN * span.min_flops {
        assessment.weak(
            format!(
                "the runs span a compute factor of {:.1} (less than {MIN_COMPUTE_SPAN})",
                span.max_flops / span.min_flops
            ),
            Some(span.budget_fix()),
        );
    }
    if fit.sizes < MIN_FRONTIER_SIZES {
        assessment.weak(
            format!("only {} model sizes on the compute frontier (fewer than {MIN_FRONTIER_SIZES})", fit.sizes),
            Some(span.sizes_fix()),
        );
    }
    assessment
}

/// Kaplan's L(N) and L(D) assume runs not limited by the other variable; each size's (token
/// count's) lowest loss is used, and this counts the points that were still improving with
/// more tokens (larger models): (still improving, could be checked, points).
pub(super) fn limited_points(data: &Dataset, variable: Variable) -> (usize, usize, usize) {
    let points = &data.points;
    let key = |i: usize| if variable == Variable::Params { points[i].params } else { points[i].tokens };
    let other = |i: usize| if variable == Variable::Params { points[i].tokens } else { points[i].params };
    let mut values: Vec<f64> = (0..points.len()).map(key).collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    let (mut limited, mut checked) = (0, 0);
    for value in &values {
        let group: Vec<usize> = (0..points.len()).filter(|&i| key(i) == *value).collect();
        let Some(&best) = group.iter().min_by(|&&i, &&j| points[i].loss.total_cmp(&points[j].loss)) else { continue };
        // The same size's (token count's) run with the most of the other variable below the best run's.
        let below = group.iter().filter(|&&j| other(j) < other(best)).max_by(|&&i, &&j| other(i).total_cmp(&other(j)));
        let mut rate = below.map(|&j| (points[j].loss / points[best].loss - 1.0) / (other(best) / other(j)).log2());
        if rate.is_none() && variable == Variable::Params {
            // Without a shorter run of the same size, its own curve near half its tokens.
            let curve = data.curves.iter().find(|c| c.point == best);
            let half = curve.and_then(|c| {
                let tokens = points[best].tokens;
                c.evals
                    .iter()
                    .filter(|e| e.tokens >= 0.3 * tokens && e.tokens <= 0.7 * tokens)
                    .min_by(|p, q| (p.tokens / tokens - 0.5).abs().total_cmp(&(q.tokens / tokens - 0.5).abs()))
                    .copied()
            });
            rate = half.map(|e| (e.loss / points[best].loss - 1.0) / (points[best].tokens / e.tokens).log2());
        }
        if let Some(rate) = rate {
            checked += 1;
            if rate > STILL_IMPROVING {
                limited += 1;
            }
        }
    }
    (limited, checked, values.len())
}

pub(super) fn kaplan_single(fit: &LawFit, variable: Variable, data: &Dataset, span: &Span) -> Assessment {
    let mut assessment = Assessment::identified();
    let (_, exponent_name, scale_name) = variable.names();
    let fix = match variable {
        Variable::Params => span.sizes_fix(),
        Variable::Tokens => span.tokens_fix(),
        Variable::Compute => span.budget_fix(),
    };
    // A fixed parameter is the user's, not a measurement: only the free ones are judged.
    let free = |name: &str| !fit.fixed.contains_key(name);
    if let (true, Some(&value)) = (free(exponent_name), fit.params.get(exponent_name)) {
        exponent(&mut assessment, exponent_name, value, fit.ci95.get(exponent_name), &fix);
    }
    if let (true, Some(&value)) = (free(scale_name), fit.params.get(scale_name)) {
        scale(&mut assessment, scale_name, value, fit.ci95.get(scale_name), &fix);
    }
    if variable == Variable::Compute {
        return assessment;
    }
    let (limited, checked, total) = limited_points(data, variable);
    let (what, other, fix) = match variable {
        Variable::Params => ("model sizes", "tokens", "train each size on more tokens, until its loss stops falling"),
        _ => ("token counts", "parameters", "add larger models at each token count, until the loss stops falling"),
    };
    if checked == 0 {
        let fewer = if variable == Variable::Params { "fewer tokens (or has a curve)" } else { "a smaller model" };
        assessment.weak(
            format!(
                "cannot tell whether the runs are limited by {other}: none of the {what} was also run with {fewer}"
            ),
            Some(fix.to_string()),
        );
    } else if 2 * limited > checked {
        assessment.weak(
            format!(
                "{limited} of {checked} checked {what} (of {total}) still lost more than {:.0}% per doubling of \
                 {other} at their lowest loss: the law assumes runs not limited by {other}",
                100.0 * STILL_IMPROVING
            ),
            Some(fix.to_string()),
        );
    }
    assessment
}

pub(super) fn kaplan_joint(fit: &LawFit, span: &Span) -> Assessment {
    let mut assessment = Assessment::identified();
    coverage(&mut assessment, span, "Kaplan's L(N, D)");
    let free = |name: &str| !fit.fixed.contains_key(name) && !fit.tied.iter().any(|(f, _)| f == name);
    for (name, fix) in [("alpha_N", span.sizes_fix()), ("alpha_D", span.tokens_fix())] {
        if let (true, Some(&value)) = (free(name), fit.params.get(name)) {
            exponent(&mut assessment, name, value, fit.ci95.get(name), &fix);
        }
    }
    for (name, fix) in [("N_c", span.sizes_fix()), ("D_c", span.tokens_fix())] {
        if let (true, Some(&value)) = (free(name), fit.params.get(name)) {
            scale(&mut assessment, name, value, fit.ci95.get(name), &fix);
        }
    }
    assessment
}

pub(super) fn data_constrained(fit: &LawFit, data: &Dataset, span: &Span) -> Assessment {
    let mut assessment = Assessment::identified();
    let get = |name: &str| fit.params.get(name).copied().unwrap_or(f64::NAN);
    let base = ChinchillaParams {
        e: get("E"),
        a: get("A"),
        b: get("B"),
        alpha: get("alpha"),
        beta: get("beta"),
        compute: Default::default(),
    };
    chinchilla_parameters(&mut assessment, &base, &fit.ci95, &fit.fixed, &fit.tied, span);
    let (top_d, top_n) = largest_repeats(data, &vec![1.0; data.points.len()], base);
    let cases = [
        (
            "R_D_star",
            "R*_D",
            top_d,
            "R_D (epochs - 1)",
            format!("add runs repeating data more (above {:.0} epochs)", 2.0 * (top_d + 1.0)),
        ),
        (
            "R_N_star",
            "R*_N",
            top_n,
            "R_N (excess parameters)",
            "add runs with more excess parameters (models larger than compute-optimal for their unique data)"
                .to_string(),
        ),
    ];
    for (key, name, top, what, fix) in cases {
        if fit.fixed.contains_key(key) {
            continue;
        }
        let value = get(key);
        let limit = R_STAR_RUNAWAY * top.max(R_STAR_FLOOR);
        if !(value.is_finite() && value < limit) {
            assessment.not_identified(
                format!(
                    "{name} = {} ran away (above {R_STAR_RUNAWAY}x the largest {what} in the data, {}): \
                     the data cannot tell it from no loss of value",
                    number(value),
                    number(top)
                ),
                Some(fix.clone()),
            );
        } else if value < R_STAR_FLOOR {
            assessment.not_identified(format!("{name} = {} ran to its bound 0", number(value)), Some(fix.clone()));
        }
        if let Some(&[low, high]) = fit.ci95.get(key) {
            if high >= limit {
                assessment.not_identified(
                    format!(
                        "{name}'s 95% interval [{}, {}] is unbounded above (beyond {})",
                        number(low),
                        number(high),
                        number(limit)
                    ),
                    Some(fix.clone()),
                );
            }
        }
        scale(&mut assessment, name, value, fit.ci95.get(key), &fix);
    }
    assessment
}
