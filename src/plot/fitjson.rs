//! fit.json (written by `sweeplaw fit`, docs/DESIGN.md "Results") as the figures and the
//! report use it: read by `crate::records::fit` into the fitter's own types, where any law may
//! be absent and any field missing (a number reads as NaN), and viewed here as the numbers each
//! figure needs, `None` where fit.json does not give them, so the figures and the report draw
//! what there is and say what is not there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::plot::records::Counting;
use crate::records::fit::{FitReport, Intervals, LawFit, Values};
use crate::records::verdict::Assessment;

/// Approach 3 of Hoffmann et al. 2022: L(N, D) = E + A/N^alpha + B/D^beta (eq. 2), the
/// fitter's own parameter type (prediction and compute-optimal allocation included).
pub(crate) type Chinchilla = crate::fit::ChinchillaParams;

/// Kaplan et al. 2020 eq. 1.5: L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct KaplanJoint {
    pub alpha_n: f64,
    pub alpha_d: f64,
    pub n_c: f64,
    pub d_c: f64,
}

impl KaplanJoint {
    pub fn predict(&self, params: f64, tokens: f64) -> f64 {
        ((self.n_c / params).powf(self.alpha_n / self.alpha_d) + self.d_c / tokens).powf(self.alpha_d)
    }
}

/// A prediction at a target compute (fit.json "prediction").
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Prediction {
    pub flops: f64,
    pub n_opt: f64,
    pub d_opt: f64,
    pub loss: Option<f64>,
    pub ci95: BTreeMap<String, (f64, f64)>,
}

/// One IsoFLOP parabola minimum (fit.json isoflop.minima).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Minimum {
    pub flops: f64,
    pub n_opt: f64,
    pub d_opt: f64,
    pub loss: Option<f64>,
    /// Whether the vertex lies inside the budget's fitted sizes; a budget whose vertex does not
    /// is left out of the exponents (true when fit.json does not say).
    pub inside: bool,
}

/// One held-out run of the backtest.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HeldOut {
    pub run: String,
    pub params: Option<f64>,
    pub tokens: Option<f64>,
    pub flops: Option<f64>,
    pub actual: f64,
    pub predicted: f64,
}

/// The holdout backtest (fit.json fits.holdout).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Holdout {
    pub law: String,
    pub fitted_on: Option<f64>,
    pub held_out: Vec<HeldOut>,
    pub max_rel_error: f64,
}

/// A readable name of a law key of fit.json ("chinchilla" is approach 3).
pub(crate) fn law_name(law: &str) -> String {
    match law {
        "chinchilla" => "approach 3".to_string(),
        "kaplan_nd" => "Kaplan L(N, D)".to_string(),
        "isoflop" => "approach 2".to_string(),
        "frontier" => "approach 1".to_string(),
        "kaplan_n" => "Kaplan L(N)".to_string(),
        "kaplan_d" => "Kaplan L(D)".to_string(),
        "kaplan_c" => "Kaplan L(C)".to_string(),
        "data_constrained" => "the data-constrained law".to_string(),
        other => other.to_string(),
    }
}

/// fit.json, read into the types the fitter wrote it from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FitJson {
    pub path: PathBuf,
    pub report: FitReport,
    /// The counting conventions the fit used ("param_count", "flop_count").
    counting: Counting,
    /// What reading it noticed (a counting name that is not known, a law taken out).
    pub reading_warnings: Vec<String>,
    /// law -> the values no fit produces that took it out of `report` (`ImpossibleLaw`): the
    /// figures and the report call it unusable rather than draw or quote it.
    unusable: BTreeMap<String, String>,
}

/// The default of the convention kind `what` names (`UnknownName::what`).
fn default_of(what: &str) -> &'static str {
    match what {
        "parameter count" => crate::counting::ParamCount::default().as_str(),
        _ => crate::counting::FlopConvention::default().as_str(),
    }
}

/// What a figure or the report that needs the fit says without one: that there is no fit.json
/// at `path`, or that the one there is unreadable (the warning says why) and that `sweeplaw
/// fit` replaces it.
pub(crate) fn no_fit_reason(path: &Path, unreadable: bool) -> String {
    if !unreadable {
        return "no fit.json in the sweep directory (run `sweeplaw fit` first)".to_string();
    }
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    format!("{} is unreadable (see the warning): rerun `sweeplaw fit {}` to replace it", path.display(), dir.display())
}

/// A finite number, else `None`.
fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

impl FitJson {
    /// Reads fit.json; `Ok(None)` when there is none, `Err` with a message naming the file
    /// (and the line) when it does not parse.
    pub fn read(path: &Path) -> Result<Option<FitJson>, String> {
        match crate::records::fit::read_fit(path) {
            Ok(report) => Ok(report.map(|report| FitJson::new(path, report))),
            Err(crate::error::Error::Record { path, message }) => Err(format!("{} {message}", path.display())),
            Err(error) => Err(error.to_string()),
        }
    }

    /// A fit.json's contents. A counting convention it names that is not known ("as given",
    /// from a fit of a plain CSV) is a warning naming the file and the name, and the figures
    /// count that quantity by the default. A law holding values no fit produces (a negative E,
    /// an exponent of 1e308: `records::fit::ImpossibleLaw`) is taken out, with a warning naming
    /// the file and the fields, and is unusable.
    pub fn new(path: &Path, mut report: FitReport) -> FitJson {
        // An empty name is one fit.json does not give.
        let name = |text: &str| Some(text.to_string()).filter(|text| !text.is_empty());
        let (param_count, flop_count) = (name(&report.param_count), name(&report.flop_count));
        let (counting, unknown) = Counting::from_names(param_count.as_deref(), flop_count.as_deref());
        let mut reading_warnings: Vec<String> = unknown
            .iter()
            .map(|e| format!("{}: {e}; the figures use the default {}", path.display(), default_of(e.what)))
            .collect();
        let mut unusable = BTreeMap::new();
        for impossible in report.take_impossible_laws() {
            reading_warnings.push(format!(
                "{}: corrupt: {impossible}; {} is unusable and left out of the figures and the report (rerun \
                 `sweeplaw fit` to replace the file)",
                path.display(),
                law_name(impossible.law)
            ));
            unusable.insert(impossible.law.to_string(), impossible.to_string());
        }
        FitJson { path: path.to_path_buf(), report, counting, reading_warnings, unusable }
    }

    /// Why the law is unusable, when fit.json holds values for it that no fit produces.
    pub fn unusable(&self, law: &str) -> Option<&str> {
        self.unusable.get(law).map(String::as_str)
    }

    /// (law, why) of every law taken out as unusable.
    pub fn unusable_laws(&self) -> impl Iterator<Item = (&str, &str)> {
        self.unusable.iter().map(|(law, why)| (law.as_str(), why.as_str()))
    }

    /// The counting conventions the fit used.
    pub fn counting(&self) -> Counting {
        self.counting
    }

    /// A law given by named parameters (a Kaplan law, the data-constrained law), when present.
    fn law_fit(&self, law: &str) -> Option<&LawFit> {
        let fits = &self.report.fits;
        match law {
            "kaplan_n" => fits.kaplan_n.as_ref(),
            "kaplan_d" => fits.kaplan_d.as_ref(),
            "kaplan_c" => fits.kaplan_c.as_ref(),
            "kaplan_nd" => fits.kaplan_nd.as_ref(),
            "data_constrained" => fits.data_constrained.as_ref(),
            _ => None,
        }
    }

    /// fits.<law>.ci95, when the law is present.
    fn intervals(&self, law: &str) -> Option<&Intervals> {
        let fits = &self.report.fits;
        match law {
            "chinchilla" => fits.chinchilla.as_ref().map(|f| &f.ci95),
            "isoflop" => fits.isoflop.as_ref().map(|f| &f.ci95),
            "frontier" => fits.frontier.as_ref().map(|f| &f.ci95),
            other => self.law_fit(other).map(|f| &f.ci95),
        }
    }

    /// fits.<law>.ci95.<key>.
    pub fn interval(&self, law: &str, key: &str) -> Option<(f64, f64)> {
        self.intervals(law)?.get(key).map(|[low, high]| (*low, *high))
    }

    /// fits.<law>.params, the values of its form with E when fitted (names in order, numbers
    /// the file does not give left out).
    pub fn parameters(&self, law: &str) -> Option<(Values, Option<Values>)> {
        if law == "chinchilla" {
            let p = &self.report.fits.chinchilla.as_ref()?.params;
            let named = [("A", p.a), ("B", p.b), ("E", p.e), ("alpha", p.alpha), ("beta", p.beta)];
            let values = named.iter().filter(|(_, v)| !v.is_nan()).map(|(k, v)| (k.to_string(), *v)).collect();
            return Some((values, None));
        }
        let fit = self.law_fit(law)?;
        Some((fit.params.clone(), fit.irreducible.clone()))
    }

    /// Approach 3's bootstrap: (resamples, failed refits).
    pub fn bootstrap(&self) -> Option<(usize, usize)> {
        let bootstrap = self.report.fits.chinchilla.as_ref()?.bootstrap.as_ref()?;
        Some((bootstrap.resamples, bootstrap.failed))
    }

    /// Approach 3's parameters, when every one is a number and the law is not degenerate.
    pub fn chinchilla(&self) -> Option<Chinchilla> {
        let fit = self.report.fits.chinchilla.as_ref()?.params;
        let numbers = [fit.e, fit.a, fit.b, fit.alpha, fit.beta, fit.compute.coefficient, fit.compute.params_exponent];
        let usable = numbers.iter().all(|v| v.is_finite()) && fit.alpha > 0.0 && fit.beta > 0.0;
        (usable && fit.a > 0.0 && fit.b > 0.0).then_some(fit)
    }

    /// Kaplan's joint law, when fitted.
    pub fn kaplan_joint(&self) -> Option<KaplanJoint> {
        let params = &self.law_fit("kaplan_nd")?.params;
        let p = |key: &str| params.get(key).copied().and_then(finite);
        let fit = KaplanJoint { alpha_n: p("alpha_N")?, alpha_d: p("alpha_D")?, n_c: p("N_c")?, d_c: p("D_c")? };
        (fit.alpha_d > 0.0).then_some(fit)
    }

    /// A single-variable power law (X_c/X)^alpha: (alpha, X_c).
    pub fn power_law(&self, law: &str, exponent: &str, scale: &str) -> Option<(f64, f64)> {
        let params = &self.law_fit(law)?.params;
        let p = |key: &str| params.get(key).copied().and_then(finite);
        Some((p(exponent)?, p(scale)?))
    }

    /// (a, b) of approach "frontier", "isoflop" or "chinchilla".
    pub fn exponents(&self, law: &str) -> Option<(f64, f64)> {
        let fits = &self.report.fits;
        let (a, b) = match law {
            "chinchilla" => fits.chinchilla.as_ref().map(|f| (f.a, f.b))?,
            "isoflop" => fits.isoflop.as_ref().map(|f| (f.a, f.b))?,
            "frontier" => fits.frontier.as_ref().map(|f| (f.a, f.b))?,
            _ => return None,
        };
        Some((finite(a)?, finite(b)?))
    }

    /// The intercepts of approach "frontier" or "isoflop"'s lines, ln N_opt = n + a ln C and
    /// ln D_opt = d + b ln C: (n, d), when fit.json records them.
    pub fn intercepts(&self, law: &str) -> Option<(f64, f64)> {
        let fits = &self.report.fits;
        let [n, d] = match law {
            "isoflop" => fits.isoflop.as_ref()?.intercepts,
            "frontier" => fits.frontier.as_ref()?.intercepts,
            _ => return None,
        };
        Some((finite(n)?, finite(d)?))
    }

    /// The isoflop parabolas' window of sizes, when fit.json records it.
    pub fn isoflop_window(&self) -> Option<usize> {
        self.report.fits.isoflop.as_ref().map(|fit| fit.window).filter(|&window| window >= 3)
    }

    /// The law's prediction at the target compute, when the fit was asked for one.
    pub fn prediction(&self, law: &str) -> Option<Prediction> {
        let fits = &self.report.fits;
        let stored = match law {
            "chinchilla" => fits.chinchilla.as_ref()?.prediction.as_ref(),
            "isoflop" => fits.isoflop.as_ref()?.prediction.as_ref(),
            "frontier" => fits.frontier.as_ref()?.prediction.as_ref(),
            _ => None,
        }?;
        Some(Prediction {
            flops: finite(stored.flops)?,
            n_opt: finite(stored.n_opt)?,
            d_opt: finite(stored.d_opt)?,
            loss: stored.loss.and_then(finite),
            ci95: stored.ci95.iter().map(|(k, [low, high])| (k.clone(), (*low, *high))).collect(),
        })
    }

    /// Approach 2's parabola minima.
    pub fn minima(&self) -> Vec<Minimum> {
        let Some(isoflop) = &self.report.fits.isoflop else { return Vec::new() };
        isoflop
            .minima
            .iter()
            .filter_map(|m| {
                Some(Minimum {
                    flops: finite(m.flops)?,
                    n_opt: finite(m.n_opt)?,
                    d_opt: finite(m.d_opt)?,
                    loss: finite(m.loss),
                    inside: m.inside,
                })
            })
            .collect()
    }

    /// fits.<law>'s verdict, when the law is present.
    fn stored_assessment(&self, law: &str) -> Option<&Assessment> {
        let fits = &self.report.fits;
        match law {
            "chinchilla" => fits.chinchilla.as_ref().map(|f| &f.assessment),
            "isoflop" => fits.isoflop.as_ref().map(|f| &f.assessment),
            "frontier" => fits.frontier.as_ref().map(|f| &f.assessment),
            other => self.law_fit(other).map(|f| &f.assessment),
        }
    }

    /// fits.<law>'s verdict with its reasons and fixes. A law without a verdict (fit.json
    /// written before verdicts existed) reads as identified; an unknown verdict as not
    /// identified, saying so (`records::verdict`'s reader).
    pub fn assessment(&self, law: &str) -> Assessment {
        self.stored_assessment(law).cloned().unwrap_or_else(Assessment::identified)
    }

    /// "weak: <first reason>" or "not identified: <first reason>"; `None` for an identified law.
    pub fn verdict_note(&self, law: &str) -> Option<String> {
        let assessment = self.assessment(law);
        if assessment.is_identified() {
            return None;
        }
        Some(match assessment.reasons.first() {
            Some(reason) => format!("{}: {reason}", assessment.verdict),
            None => assessment.verdict.to_string(),
        })
    }

    /// The laws in fits (the holdout backtest aside), by name.
    pub fn laws(&self) -> Vec<String> {
        const LAWS: [&str; 8] =
            ["chinchilla", "data_constrained", "frontier", "isoflop", "kaplan_c", "kaplan_d", "kaplan_n", "kaplan_nd"];
        LAWS.into_iter().filter(|law| self.stored_assessment(law).is_some()).map(str::to_string).collect()
    }

    /// The holdout backtest.
    pub fn holdout(&self) -> Option<Holdout> {
        let stored = self.report.fits.holdout.as_ref()?;
        let held_out: Vec<HeldOut> = stored.held_out.iter().filter_map(HeldOut::from_stored).collect();
        if held_out.is_empty() {
            return None;
        }
        // A NaN anywhere makes the largest error NaN (f64::max would pass over it).
        let largest =
            held_out.iter().map(HeldOut::rel_error).fold(0.0, |m: f64, e| if e.is_nan() { e } else { m.max(e) });
        let recorded = stored.max_rel_error;
        Some(Holdout {
            law: stored.law.clone(),
            fitted_on: (stored.fitted_on > 0).then_some(stored.fitted_on as f64),
            max_rel_error: if largest.is_nan() || recorded.is_nan() { largest } else { recorded },
            held_out,
        })
    }

    /// (run, reason) of the runs the fit left out.
    pub fn excluded(&self) -> Vec<(String, String)> {
        self.report.excluded.iter().map(|e| (e.run.clone(), e.reason.clone())).collect()
    }

    /// (law, reason) of the laws the fit could not fit.
    pub fn skipped(&self) -> Vec<(String, String)> {
        self.report.skipped.iter().map(|(law, why)| (law.clone(), why.clone())).collect()
    }

    /// The fit's warnings.
    pub fn warnings(&self) -> Vec<String> {
        self.report.warnings.clone()
    }
}

impl HeldOut {
    /// A held-out run as fit.json holds it: one without a positive actual loss is left out;
    /// one without a finite prediction is kept, as NaN, so that it cannot read as a small
    /// error (fit.json writes a NaN as null).
    fn from_stored(stored: &crate::records::fit::HeldOut) -> Option<HeldOut> {
        Some(HeldOut {
            run: stored.run.clone(),
            params: finite(stored.params),
            tokens: finite(stored.tokens),
            flops: finite(stored.flops),
            actual: finite(stored.actual).filter(|v| *v > 0.0)?,
            predicted: finite(stored.predicted).unwrap_or(f64::NAN),
        })
    }

    /// |predicted - actual| / actual; NaN without a finite prediction.
    pub fn rel_error(&self) -> f64 {
        (self.predicted - self.actual).abs() / self.actual
    }
}

impl Holdout {
    /// "1.23%", or why there is no finite error.
    pub fn error_text(&self) -> String {
        if self.max_rel_error.is_finite() {
            return format!("{:.2}%", 100.0 * self.max_rel_error);
        }
        let runs: Vec<&str> =
            self.held_out.iter().filter(|h| !h.rel_error().is_finite()).map(|h| h.run.as_str()).collect();
        if runs.is_empty() {
            "not a finite number".to_string()
        } else {
            format!("not a finite number (no finite prediction for {})", runs.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::fit::ComputeModel;
    use crate::records::verdict::Verdict;

    /// fit.json at `path` holding `json`.
    fn fit_at(path: &str, json: Value) -> FitJson {
        FitJson::new(Path::new(path), serde_json::from_value(json).expect("a fit.json"))
    }

    /// Hoffmann et al. 2022's published fit (E = 1.69, A = 406.4, B = 410.7, alpha = 0.34,
    /// beta = 0.28): a = 0.4516, b = 0.5484 by eq. 4; at C = 5.76e23, by hand,
    /// G = (0.34·406.4 / (0.28·410.7))^(1/0.62) = 1.345 and (C/6)^a = 2.39e10, so N_opt = 3.2e10.
    #[test]
    fn chinchilla_published_fit_gives_the_published_exponents() {
        let fit = Chinchilla { e: 1.69, a: 406.4, b: 410.7, alpha: 0.34, beta: 0.28, compute: ComputeModel::default() };
        assert!((fit.exponent_a() - 0.4516).abs() < 1e-3);
        assert!((fit.exponent_b() - 0.5484).abs() < 1e-3);
        let (n_opt, d_opt) = fit.compute_optimal(5.76e23);
        assert!((6.0 * n_opt * d_opt / 5.76e23 - 1.0).abs() < 1e-9, "C = 6 N D");
        assert!((n_opt / 3.2e10 - 1.0).abs() < 0.02, "{n_opt:e}");
    }

    #[test]
    fn absent_and_partial_laws_read_as_none() {
        let json = serde_json::json!({
            "param_count": "total", "flop_count": "matmul_attn",
            "fits": { "chinchilla": { "params": { "E": 1.0, "A": 2.0 } },
                      "isoflop": { "a": 0.5, "b": 0.5, "minima": [ { "flops": 1e12, "N_opt": 1e5, "D_opt": 1e6 }, { "flops": "x" } ] },
                      "holdout": { "held_out": [] } },
            "skipped": { "frontier": "needs 2+ sizes" } });
        let fit = fit_at("fit.json", json);
        assert_eq!(fit.chinchilla(), None);
        assert_eq!(fit.exponents("isoflop"), Some((0.5, 0.5)));
        assert_eq!(fit.minima().len(), 1);
        assert_eq!(fit.holdout(), None);
        assert_eq!(fit.prediction("isoflop"), None);
        assert_eq!(fit.skipped(), vec![("frontier".to_string(), "needs 2+ sizes".to_string())]);
        assert_eq!(fit.counting().params_column(), "params_total");
        assert_eq!(fit.counting().flops_column(), "flops_matmul_attn");
    }

    #[test]
    fn an_unknown_counting_name_is_a_warning_naming_the_file_and_the_name() {
        let json = serde_json::json!({ "param_count": "as given", "flop_count": "chinchilla", "fits": {} });
        let fit = fit_at("dir/fit.json", json);
        assert_eq!(fit.counting().params_column(), "params_nonembedding");
        assert_eq!(fit.counting().flops_column(), "flops_chinchilla");
        assert_eq!(fit.reading_warnings.len(), 1, "{:?}", fit.reading_warnings);
        let warning = &fit.reading_warnings[0];
        assert!(warning.starts_with("dir/fit.json: ") && warning.contains("'as given'"), "{warning}");
        assert!(warning.contains("the default nonembedding"), "{warning}");
        let fit = fit_at("fit.json", serde_json::json!({ "flop_count": "7n" }));
        assert!(
            fit.reading_warnings[0].contains("'7n'") && fit.reading_warnings[0].contains("6n, matmul_attn, chinchilla")
        );
        assert!(fit_at("fit.json", serde_json::json!({})).reading_warnings.is_empty());
    }

    #[test]
    fn verdicts_read_from_each_law_and_default_to_identified() {
        let json = serde_json::json!({ "fits": {
            "chinchilla": { "a": 0.5, "verdict": "not identified", "reasons": ["E ran to its bound 0"],
                            "fixes": ["add a FLOP budget above 1e12"] },
            "isoflop": { "a": 0.5, "verdict": "weak", "reasons": ["a's interval is wide"] },
            "frontier": { "a": 0.5 },
            "kaplan_c": { "verdict": "splendid" },
            "holdout": { "held_out": [] } } });
        let fit = fit_at("fit.json", json);
        let three = fit.assessment("chinchilla");
        assert_eq!(three.verdict, Verdict::NotIdentified);
        assert_eq!(three.fixes, vec!["add a FLOP budget above 1e12".to_string()]);
        assert_eq!(fit.verdict_note("chinchilla").as_deref(), Some("not identified: E ran to its bound 0"));
        assert_eq!(fit.verdict_note("isoflop").as_deref(), Some("weak: a's interval is wide"));
        assert_eq!(fit.verdict_note("frontier"), None);
        assert_eq!(fit.assessment("frontier"), Assessment::identified());
        assert_eq!(fit.assessment("kaplan_c").verdict, Verdict::NotIdentified);
        assert_eq!(fit.laws(), vec!["chinchilla", "frontier", "isoflop", "kaplan_c"]);
    }

    fn holdout_of(held_out: Value, max: Value) -> Option<Holdout> {
        let json = serde_json::json!({ "fits": { "holdout": { "held_out": held_out, "max_rel_error": max } } });
        fit_at("fit.json", json).holdout()
    }

    #[test]
    fn a_missing_prediction_makes_the_largest_error_nan_not_the_others_largest() -> Result<(), String> {
        let run =
            |name: &str, predicted: Value| serde_json::json!({ "run": name, "actual": 3.0, "predicted": predicted });
        let fine = holdout_of(serde_json::json!([run("a", 3.3.into()), run("b", 3.06.into())]), Value::Null)
            .ok_or("no holdout")?;
        assert!((fine.max_rel_error - 0.1).abs() < 1e-12, "{}", fine.max_rel_error);
        assert_eq!(fine.error_text(), "10.00%");
        // fit.json holds a NaN prediction (and the NaN largest error it gave) as null.
        for max in [Value::Null, 0.1.into()] {
            let held = serde_json::json!([run("a", 3.3.into()), run("b", Value::Null)]);
            let holdout = holdout_of(held, max).ok_or("no holdout")?;
            assert_eq!(holdout.held_out.len(), 2);
            assert!(holdout.max_rel_error.is_nan(), "{}", holdout.max_rel_error);
            assert_eq!(holdout.error_text(), "not a finite number (no finite prediction for b)");
        }
        Ok(())
    }
}
