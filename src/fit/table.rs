//! The readable stdout table of a `FitReport`: each law's parameters with their 95%
//! intervals, the compute-optimal exponents of the three Chinchilla approaches side by
//! side, the prediction at the target compute, the holdout backtest, skipped laws, warnings.

use std::fmt::Write;

use crate::fit::bootstrap::is_scale;
use crate::fit::chinchilla;
use crate::records::fit::{FitReport, Intervals, LawFit, Prediction, Values};
use crate::records::verdict::{Assessment, Verdict};

/// A number with 4 significant digits, in scientific notation when very large or small.
pub(crate) fn number(value: f64) -> String {
    let size = value.abs();
    if value == 0.0 || (1e-3..1e5).contains(&size) {
        let decimals = (3 - size.log10().floor() as i32).clamp(0, 6) as usize;
        format!("{value:.decimals$}")
    } else {
        format!("{value:.3e}")
    }
}

fn interval(ci95: &Intervals, key: &str) -> String {
    ci95.get(key).map(|[low, high]| format!("[{}, {}]", number(*low), number(*high))).unwrap_or_default()
}

/// A parameter's interval; a positive scale parameter's (computed in log space) with the
/// factor it spans ("x/ 1.6" means [value / 1.6, value x 1.6] at the geometric centre).
fn parameter_interval(ci95: &Intervals, key: &str) -> String {
    let text = interval(ci95, key);
    match ci95.get(key) {
        Some([low, high]) if is_scale(key) && *low > 0.0 && *high > 0.0 => {
            format!("{text}  (log space, x/ {})", spread(*low, *high))
        }
        _ => text,
    }
}

/// The factor sqrt(high / low); as a power of ten where high / low overflows (an interval of
/// more than about 308 decades printed "x/ inf").
pub(crate) fn spread(low: f64, high: f64) -> String {
    let factor = (high / low).sqrt();
    if factor.is_finite() {
        number(factor)
    } else {
        format!("10^{:.1}", crate::fit::assess::decades(low, high) / 2.0)
    }
}

fn parameter_rows(out: &mut String, params: &[(&str, f64)], ci95: &Intervals) {
    for (name, value) in params {
        let _ = writeln!(out, "  {name:<10} {:>12}  {}", number(*value), parameter_interval(ci95, name));
    }
}

/// The verdict line of a law, its reasons and the fixes.
pub(crate) fn verdict_rows(out: &mut String, assessment: &Assessment) {
    let _ = writeln!(out, "  verdict: {}", assessment.verdict);
    for reason in &assessment.reasons {
        let _ = writeln!(out, "    - {reason}");
    }
    for fix in &assessment.fixes {
        let _ = writeln!(out, "    fix: {fix}");
    }
}

/// What was fixed and tied, when anything was.
fn constraint_rows(out: &mut String, fixed: &Values, tied: &[(String, String)]) {
    let mut parts: Vec<String> = fixed.iter().map(|(k, v)| format!("{k} = {} fixed", number(*v))).collect();
    parts.extend(tied.iter().map(|(f, l)| format!("{f} = {l} tied")));
    if !parts.is_empty() {
        let _ = writeln!(out, "  ({})", parts.join(", "));
    }
}

fn values_rows(out: &mut String, params: &Values, ci95: &Intervals) {
    let rows: Vec<(&str, f64)> = params.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    parameter_rows(out, &rows, ci95);
}

impl FitReport {
    /// The readable table for stdout (defined here, beside the rendering, so that the
    /// fit.json types do not depend on how they are printed).
    pub fn table(&self) -> String {
        render(self)
    }
}

/// Renders the whole report.
pub(crate) fn render(report: &FitReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "sweeplaw fit: {} ({} points, {} excluded; N = {}, C = {})",
        report.source,
        report.points,
        report.excluded.len(),
        report.param_count,
        report.flop_count
    );
    if let Some(reduced) = &report.reduced {
        let _ = writeln!(out, "  repeated (N, D) rows: {reduced}");
    }
    if let Some(noise) = report.noise_floor {
        let _ = writeln!(out, "  noise floor (loss standard deviation between seeds): {}", number(noise));
    }
    chinchilla_section(&mut out, report);
    exponents_section(&mut out, report);
    kaplan_section(&mut out, report);
    if let Some(fit) = &report.fits.data_constrained {
        law_section(&mut out, "Data-constrained (Muennighoff et al. 2023): L(N', D')", fit);
    }
    predictions_section(&mut out, report);
    holdout_section(&mut out, report);
    for (law, reason) in &report.skipped {
        let _ = writeln!(out, "\nskipped {law}: {reason}");
    }
    if !report.warnings.is_empty() {
        let _ = writeln!(out, "\n{} warning(s):", report.warnings.len());
        for warning in &report.warnings {
            let _ = writeln!(out, "  {warning}");
        }
    }
    out
}

fn chinchilla_section(out: &mut String, report: &FitReport) {
    let Some(fit) = &report.fits.chinchilla else { return };
    let p = &fit.params;
    let _ = writeln!(
        out,
        "\nChinchilla approach 3: L = E + A/N^alpha + B/D^beta  (Huber objective {:.5e}, {} starts{})",
        fit.objective,
        fit.starts,
        match fit.grid_points {
            Some(points) =>
                format!(" on {points} of the points, the best {} finished on all", chinchilla::POLISHED_ENDS),
            None => String::new(),
        }
    );
    let _ = writeln!(out, "  {:<10} {:>12}  95% interval", "parameter", "value");
    let rows = [("E", p.e), ("A", p.a), ("B", p.b), ("alpha", p.alpha), ("beta", p.beta)];
    parameter_rows(out, &rows, &fit.ci95);
    constraint_rows(out, &fit.fixed, &fit.tied);
    if let Some(summary) = &fit.bootstrap {
        let _ = writeln!(out, "  ({} bootstrap resamples, {} failed)", summary.resamples, summary.failed);
    }
    verdict_rows(out, &fit.assessment);
}

fn exponents_section(out: &mut String, report: &FitReport) {
    let fits = &report.fits;
    let mut rows: Vec<(&str, f64, f64, &Intervals, String)> = Vec::new();
    if let Some(f) = &fits.frontier {
        rows.push(("1 (frontier)", f.a, f.b, &f.ci95, f.assessment.verdict.to_string()));
    }
    if let Some(f) = &fits.isoflop {
        rows.push(("2 (IsoFLOP parabolas)", f.a, f.b, &f.ci95, f.assessment.verdict.to_string()));
    }
    if let Some(f) = &fits.chinchilla {
        rows.push(("3 (parametric fit)", f.a, f.b, &f.ci95, f.assessment.verdict.to_string()));
    }
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nCompute-optimal exponents: N_opt ∝ C^a, D_opt ∝ C^b");
    let _ = writeln!(out, "  {:<24} {:>8} {:>22} {:>8} {:>22}  verdict", "approach", "a", "95%", "b", "95%");
    for (name, a, b, ci95, verdict) in rows {
        let (ca, cb) = (interval(ci95, "a"), interval(ci95, "b"));
        let _ = writeln!(out, "  {name:<24} {:>8} {ca:>22} {:>8} {cb:>22}  {verdict}", number(a), number(b));
    }
    if let Some(f) = &fits.frontier {
        if !f.assessment.is_identified() {
            let _ = writeln!(out, "  approach 1:");
            verdict_rows(out, &f.assessment);
        }
    }
    if let Some(f) = &fits.isoflop {
        if !f.assessment.is_identified() {
            let _ = writeln!(out, "  approach 2:");
            verdict_rows(out, &f.assessment);
        }
    }
}

fn law_section(out: &mut String, title: &str, fit: &LawFit) {
    let _ = writeln!(out, "\n{title}  ({})", crate::human::plural(fit.points, "point"));
    if let Some(basis) = &fit.basis {
        let _ = writeln!(out, "  fitted on {basis}");
    }
    values_rows(out, &fit.params, &fit.ci95);
    constraint_rows(out, &fit.fixed, &fit.tied);
    if let Some(irreducible) = &fit.irreducible {
        // A side fit, not bootstrapped: its values are point estimates, and the verdict below
        // judges the plain law, not this form.
        let _ = writeln!(out, "  with an irreducible term E (point estimate, no interval, not judged by the verdict):");
        values_rows(out, irreducible, &Intervals::new());
    }
    verdict_rows(out, &fit.assessment);
}

fn kaplan_section(out: &mut String, report: &FitReport) {
    let fits = &report.fits;
    let laws = [
        ("Kaplan L(N) = (N_c/N)^alpha_N", &fits.kaplan_n),
        ("Kaplan L(D) = (D_c/D)^alpha_D", &fits.kaplan_d),
        ("Kaplan L(C) = (C_c/C)^alpha_C on the compute frontier", &fits.kaplan_c),
        ("Kaplan L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D", &fits.kaplan_nd),
    ];
    for (title, fit) in laws {
        if let Some(fit) = fit {
            law_section(out, title, fit);
        }
    }
}

/// One approach's prediction; an approach whose law is not `identified` carries its verdict,
/// since its prediction is no better than the law (see the verdict above).
fn prediction_row(out: &mut String, name: &str, p: &Prediction, verdict: Verdict) {
    // A value and its interval; none where the value follows from fixed parameters alone.
    let value = |key: &str, value: f64| match interval(&p.ci95, key) {
        ci if ci.is_empty() => format!("{key} {}", number(value)),
        ci => format!("{key} {} {ci}", number(value)),
    };
    let loss = match p.loss {
        Some(loss) => value("loss", loss),
        None => "loss not predicted".to_string(),
    };
    let label = if verdict == Verdict::Identified { String::new() } else { format!("  verdict: {verdict}") };
    let row = format!("  {name:<24} {}  {}  {loss}", value("N_opt", p.n_opt), value("D_opt", p.d_opt));
    let _ = writeln!(out, "{}{label}", row.trim_end());
}

fn predictions_section(out: &mut String, report: &FitReport) {
    let fits = &report.fits;
    fn entry<'a>(prediction: Option<&'a Prediction>, assessment: &Assessment) -> Option<(&'a Prediction, Verdict)> {
        prediction.map(|p| (p, assessment.verdict))
    }
    let rows = [
        ("approach 1", fits.frontier.as_ref().and_then(|f| entry(f.prediction.as_ref(), &f.assessment))),
        ("approach 2", fits.isoflop.as_ref().and_then(|f| entry(f.prediction.as_ref(), &f.assessment))),
        ("approach 3", fits.chinchilla.as_ref().and_then(|f| entry(f.prediction.as_ref(), &f.assessment))),
    ];
    let mut header = false;
    for (name, prediction) in rows {
        let Some((p, verdict)) = prediction else { continue };
        if !header {
            let _ = writeln!(out, "\nCompute-optimal allocation at C = {}:", number(p.flops));
            header = true;
        }
        prediction_row(out, name, p, verdict);
    }
}

fn holdout_section(out: &mut String, report: &FitReport) {
    let Some(holdout) = &report.fits.holdout else { return };
    let _ = writeln!(
        out,
        "\nHoldout: {} refitted on {} runs, predicting the {} largest-compute runs",
        holdout.law,
        holdout.fitted_on,
        holdout.held_out.len()
    );
    let _ = writeln!(out, "  {:<20} {:>10} {:>10} {:>10} {:>10}", "run", "C", "actual", "predicted", "rel.err");
    for h in &holdout.held_out {
        let _ = writeln!(
            out,
            "  {:<20} {:>10} {:>10} {:>10} {:>9.2}%",
            h.run,
            number(h.flops),
            number(h.actual),
            number(h.predicted),
            100.0 * h.rel_error
        );
    }
    let _ = writeln!(out, "  max relative error {:.2}%", 100.0 * holdout.max_rel_error);
}
