//! Reading fit.json (written by `sweeplaw fit`, docs/DESIGN.md "Results") as plain JSON: every
//! law may be absent, every key may be missing, and extra keys are ignored, so the figures
//! and the report draw what there is and say what is not there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::fit::verdict::{Assessment, Verdict};
use crate::plot::records::Counting;

/// Approach 3 of Hoffmann et al. 2022: L(N, D) = E + A/N^alpha + B/D^beta (eq. 2), the
/// fitter's own parameter type (prediction and compute-optimal allocation included).
pub(crate) type Chinchilla = crate::fit::ChinchillaParams;
use crate::fit::ComputeModel;

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

/// fit.json, parsed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FitJson {
    pub path: PathBuf,
    pub json: Value,
    /// The counting conventions the fit used ("param_count", "flop_count").
    counting: Counting,
    /// What reading it noticed (a counting name that is not known).
    pub warnings: Vec<String>,
}

/// The default of the convention kind `what` names (`UnknownName::what`).
fn default_of(what: &str) -> &'static str {
    match what {
        "parameter count" => crate::counting::ParamCount::default().as_str(),
        _ => crate::counting::FlopConvention::default().as_str(),
    }
}

/// A finite number at a JSON pointer.
pub(crate) fn number(value: &Value, pointer: &str) -> Option<f64> {
    value.pointer(pointer).and_then(Value::as_f64).filter(|v| v.is_finite())
}

/// A [low, high] pair.
fn pair(value: &Value) -> Option<(f64, f64)> {
    let items = value.as_array()?;
    match items.as_slice() {
        [low, high] => Some((low.as_f64()?, high.as_f64()?)),
        _ => None,
    }
}

impl FitJson {
    /// Reads fit.json; `Ok(None)` when there is none, `Err` with a message when it does
    /// not parse.
    pub fn read(path: &Path) -> Result<Option<FitJson>, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(format!("{}: {error}", path.display())),
        };
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{} line {}: not valid JSON ({e})", path.display(), e.line()))?;
        Ok(Some(FitJson::new(path, json)))
    }

    /// fit.json's parsed JSON. A counting convention it names that is not known ("as given",
    /// from a fit of a plain CSV) is a warning naming the file and the name, and the figures
    /// count that quantity by the default.
    pub fn new(path: &Path, json: Value) -> FitJson {
        let name = |key: &str| json.get(key).and_then(Value::as_str);
        let (counting, unknown) = Counting::from_names(name("param_count"), name("flop_count"));
        let warnings = unknown
            .iter()
            .map(|e| format!("{}: {e}; the figures use the default {}", path.display(), default_of(e.what)))
            .collect();
        FitJson { path: path.to_path_buf(), json, counting, warnings }
    }

    /// The counting conventions the fit used.
    pub fn counting(&self) -> Counting {
        self.counting
    }

    /// fits.<law>, when present.
    pub fn law(&self, law: &str) -> Option<&Value> {
        self.json.get("fits").and_then(|fits| fits.get(law)).filter(|v| v.is_object())
    }

    /// fits.<law>.<pointer>.
    pub fn law_number(&self, law: &str, pointer: &str) -> Option<f64> {
        number(self.law(law)?, pointer)
    }

    /// fits.<law>.ci95.<key>.
    pub fn interval(&self, law: &str, key: &str) -> Option<(f64, f64)> {
        pair(self.law(law)?.get("ci95")?.get(key)?)
    }

    /// Approach 3's parameters.
    pub fn chinchilla(&self) -> Option<Chinchilla> {
        let p = |key: &str| self.law_number("chinchilla", &format!("/params/{key}"));
        // fit.json files written before the compute model was recorded assumed C = 6·N·D.
        let compute = match (p("compute/coefficient"), p("compute/params_exponent")) {
            (Some(coefficient), Some(params_exponent)) => ComputeModel { coefficient, params_exponent },
            _ => ComputeModel::default(),
        };
        let fit = Chinchilla { e: p("E")?, a: p("A")?, b: p("B")?, alpha: p("alpha")?, beta: p("beta")?, compute };
        (fit.alpha > 0.0 && fit.beta > 0.0 && fit.a > 0.0 && fit.b > 0.0).then_some(fit)
    }

    /// Kaplan's joint law, when fitted.
    pub fn kaplan_joint(&self) -> Option<KaplanJoint> {
        let p = |key: &str| self.law_number("kaplan_nd", &format!("/params/{key}"));
        let fit = KaplanJoint { alpha_n: p("alpha_N")?, alpha_d: p("alpha_D")?, n_c: p("N_c")?, d_c: p("D_c")? };
        (fit.alpha_d > 0.0).then_some(fit)
    }

    /// A single-variable power law (X_c/X)^alpha: (alpha, X_c).
    pub fn power_law(&self, law: &str, exponent: &str, scale: &str) -> Option<(f64, f64)> {
        let alpha = self.law_number(law, &format!("/params/{exponent}"))?;
        let scale = self.law_number(law, &format!("/params/{scale}"))?;
        Some((alpha, scale))
    }

    /// (a, b) of approach "frontier", "isoflop" or "chinchilla".
    pub fn exponents(&self, law: &str) -> Option<(f64, f64)> {
        Some((self.law_number(law, "/a")?, self.law_number(law, "/b")?))
    }

    /// The law's prediction at the target compute, when the fit was asked for one.
    pub fn prediction(&self, law: &str) -> Option<Prediction> {
        let value = self.law(law)?.get("prediction")?;
        let ci95 = value
            .get("ci95")
            .and_then(Value::as_object)
            .map(|map| map.iter().filter_map(|(k, v)| Some((k.clone(), pair(v)?))).collect())
            .unwrap_or_default();
        Some(Prediction {
            flops: number(value, "/flops")?,
            n_opt: number(value, "/N_opt")?,
            d_opt: number(value, "/D_opt")?,
            loss: number(value, "/loss"),
            ci95,
        })
    }

    /// Approach 2's parabola minima.
    pub fn minima(&self) -> Vec<Minimum> {
        let Some(items) = self.law("isoflop").and_then(|v| v.get("minima")).and_then(Value::as_array) else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|m| {
                Some(Minimum {
                    flops: number(m, "/flops")?,
                    n_opt: number(m, "/N_opt")?,
                    d_opt: number(m, "/D_opt")?,
                    loss: number(m, "/loss"),
                    inside: m.get("inside").and_then(Value::as_bool).unwrap_or(true),
                })
            })
            .collect()
    }

    /// fits.<law>'s verdict with its reasons and fixes. A law without a verdict (fit.json
    /// written before verdicts existed) reads as identified; an unknown verdict as not
    /// identified, saying so.
    pub fn assessment(&self, law: &str) -> Assessment {
        let Some(value) = self.law(law) else { return Assessment::identified() };
        let strings = |key: &str| -> Vec<String> {
            let items = value.get(key).and_then(Value::as_array);
            items.map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default()
        };
        let mut assessment =
            Assessment { verdict: Verdict::Identified, reasons: strings("reasons"), fixes: strings("fixes") };
        match value.get("verdict") {
            None | Some(Value::Null) => {}
            Some(verdict) => match serde_json::from_value::<Verdict>(verdict.clone()) {
                Ok(verdict) => assessment.verdict = verdict,
                Err(_) => assessment.not_identified(format!("fit.json gives the unknown verdict {verdict}"), None),
            },
        }
        assessment
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

    /// The laws in fits (the holdout backtest aside), in fit.json's order.
    pub fn laws(&self) -> Vec<String> {
        let Some(fits) = self.json.get("fits").and_then(Value::as_object) else { return Vec::new() };
        fits.iter().filter(|(k, v)| k.as_str() != "holdout" && v.is_object()).map(|(k, _)| k.clone()).collect()
    }

    /// The holdout backtest.
    pub fn holdout(&self) -> Option<Holdout> {
        let value = self.law("holdout")?;
        let held_out: Vec<HeldOut> = value
            .get("held_out")
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(held_out).collect())
            .unwrap_or_default();
        if held_out.is_empty() {
            return None;
        }
        // A NaN anywhere makes the largest error NaN (f64::max would pass over it).
        let largest =
            held_out.iter().map(HeldOut::rel_error).fold(0.0, |m: f64, e| if e.is_nan() { e } else { m.max(e) });
        let recorded = number(value, "/max_rel_error").unwrap_or(f64::NAN);
        Some(Holdout {
            law: value.get("law").and_then(Value::as_str).unwrap_or("chinchilla").to_string(),
            fitted_on: number(value, "/fitted_on"),
            max_rel_error: if largest.is_nan() || recorded.is_nan() { largest } else { recorded },
            held_out,
        })
    }

    /// (run, reason) of the runs the fit left out.
    pub fn excluded(&self) -> Vec<(String, String)> {
        let Some(items) = self.json.get("excluded").and_then(Value::as_array) else { return Vec::new() };
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_string();
        items.iter().map(|item| (text(item, "run"), text(item, "reason"))).collect()
    }

    /// (law, reason) of the laws the fit could not fit.
    pub fn skipped(&self) -> Vec<(String, String)> {
        let Some(map) = self.json.get("skipped").and_then(Value::as_object) else { return Vec::new() };
        map.iter().map(|(law, why)| (law.clone(), why.as_str().unwrap_or("").to_string())).collect()
    }

    /// The fit's warnings.
    pub fn warnings(&self) -> Vec<String> {
        let Some(items) = self.json.get("warnings").and_then(Value::as_array) else { return Vec::new() };
        items.iter().filter_map(Value::as_str).map(str::to_string).collect()
    }
}

fn held_out(item: &Value) -> Option<HeldOut> {
    Some(HeldOut {
        run: item.get("run").and_then(Value::as_str).unwrap_or("").to_string(),
        params: number(item, "/N"),
        tokens: number(item, "/D"),
        flops: number(item, "/C"),
        actual: number(item, "/actual").filter(|v| *v > 0.0)?,
        // fit.json writes a NaN as null: a run without a finite prediction is kept, as NaN, so
        // that it cannot read as a small error.
        predicted: number(item, "/predicted").unwrap_or(f64::NAN),
    })
}

impl HeldOut {
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
    use super::*;

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
        let fit = FitJson::new(Path::new("fit.json"), json);
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
        let fit = FitJson::new(Path::new("dir/fit.json"), json);
        assert_eq!(fit.counting().params_column(), "params_nonembedding");
        assert_eq!(fit.counting().flops_column(), "flops_chinchilla");
        assert_eq!(fit.warnings.len(), 1, "{:?}", fit.warnings);
        let warning = &fit.warnings[0];
        assert!(warning.starts_with("dir/fit.json: ") && warning.contains("'as given'"), "{warning}");
        assert!(warning.contains("the default nonembedding"), "{warning}");
        let fit = FitJson::new(Path::new("fit.json"), serde_json::json!({ "flop_count": "7n" }));
        assert!(fit.warnings[0].contains("'7n'") && fit.warnings[0].contains("6n, matmul_attn, chinchilla"));
        assert!(FitJson::new(Path::new("fit.json"), serde_json::json!({})).warnings.is_empty());
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
        let fit = FitJson::new(Path::new("fit.json"), json);
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
        FitJson::new(Path::new("fit.json"), json).holdout()
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
