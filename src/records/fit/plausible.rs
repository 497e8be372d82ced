//! The values of fit.json no fit can produce, found so that a hand-edited or damaged file is
//! called corrupt rather than drawn or quoted as a result: a negative scale parameter (E, A,
//! B, N_c, D_c, C_c, R*: the fitter holds their logarithms, so they come out positive or, in
//! an underflow, 0), an exponent beyond ±`MAX_EXPONENT`, and an estimate farther outside its
//! own bootstrap interval than the interval is wide. A percentile interval need not hold its
//! estimate (a skewed or two-mode bootstrap), so a miss smaller than that is kept; a scale is
//! compared in logarithms, as the bootstrap takes its percentiles, so an interval that reaches
//! 0 holds any positive estimate. A number fit.json leaves out or writes as null (NaN) is the
//! lenient readers' (`lenient.rs`) and is not judged here.

use std::fmt;

use crate::records::fit::{FitReport, Intervals, Values};

/// The largest exponent magnitude a fit produces. N^100 for N ≥ 10 is 10^100: a term with
/// such an exponent is a constant or nothing over any sweep, so the optimiser, which starts
/// the exponents between 0 and 2, has no gradient to take it there; the largest a committed
/// fit holds is about 4.4.
pub const MAX_EXPONENT: f64 = 100.0;

/// A law of fit.json holding values no fit produces.
#[derive(Debug, Clone, PartialEq)]
pub struct ImpossibleLaw {
    /// Its key under `fits` ("chinchilla", "kaplan_nd", ...).
    pub law: &'static str,
    /// Each bad value: "fits.chinchilla.params.E = -5 is negative ...".
    pub problems: Vec<String>,
}

impl fmt::Display for ImpossibleLaw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.problems.join("; "))
    }
}

/// The least distance outside its interval at which an exponent counts as impossible.
const MIN_SLACK_EXPONENT: f64 = 0.1;

/// Whether a parameter of this name is an exponent (alpha, beta, alpha_N, ..., and the
/// compute-optimal a and b); every other named parameter is a positive scale.
fn is_exponent(name: &str) -> bool {
    name.starts_with("alpha") || name.starts_with("beta") || name == "a" || name == "b"
}

/// What is impossible about one value, if anything (`None` also for a NaN: a missing value).
fn problem(name: &str, value: f64, interval: Option<&[f64; 2]>) -> Option<String> {
    let exponent = is_exponent(name);
    if exponent && value.abs() > MAX_EXPONENT {
        return Some(format!("is beyond ±{MAX_EXPONENT}, an exponent no fit produces"));
    }
    if !exponent && value < 0.0 {
        return Some("is negative, and the fit holds this parameter as its logarithm".into());
    }
    let &[low, high] = interval?;
    // Exponents as they are, scales in logarithms (ln 0 = -inf: an interval reaching 0).
    let scale = |v: f64| if exponent { v } else { v.ln() };
    let (v, lo, hi) = (scale(value), scale(low), scale(high));
    // At least a tenth for exponents and a factor 2 for scales: a real fit whose resamples all
    // land on one value (an interval of zero width) may sit a little beside it.
    let slack = (hi - lo).max(if exponent { MIN_SLACK_EXPONENT } else { std::f64::consts::LN_2 });
    // A NaN (a missing end, an infinite width) leaves nothing to judge.
    let outside = v < lo - slack || v > hi + slack;
    outside.then(|| {
        format!(
            "lies outside its own 95% interval [{}, {}] by more than its width (and than 0.1 for an exponent, a \
             factor 2 for a scale), which no fit writes",
            shown(low),
            shown(high)
        )
    })
}

/// A value as the warning quotes it: as written for ordinary magnitudes, else as 1e308.
fn shown(value: f64) -> String {
    if value == 0.0 || (1e-4..1e6).contains(&value.abs()) {
        format!("{value}")
    } else {
        format!("{value:e}")
    }
}

/// The problems of a law's named values against its intervals, each naming its field
/// (`group` is "params.", "irreducible." or "" for the exponents beside the params).
fn named_problems(law: &str, group: &str, values: &Values, intervals: Option<&Intervals>) -> Vec<String> {
    values
        .iter()
        .filter_map(|(name, &value)| {
            let why = problem(name, value, intervals.and_then(|i| i.get(name)))?;
            Some(format!("fits.{law}.{group}{name} = {} {why}", shown(value)))
        })
        .collect()
}

impl FitReport {
    /// Takes out of `fits` every law that holds a value no fit produces, returning each with
    /// its bad fields, so that what reads the file can warn naming them and call the law
    /// unusable instead of drawing or quoting it. The holdout backtest is its own refit and
    /// is left as it is.
    pub fn take_impossible_laws(&mut self) -> Vec<ImpossibleLaw> {
        let mut found = Vec::new();
        let fits = &mut self.fits;
        let mut judge = |law: &'static str, problems: Vec<String>| {
            let bad = !problems.is_empty();
            if bad {
                found.push(ImpossibleLaw { law, problems });
            }
            bad
        };
        if let Some(fit) = &fits.chinchilla {
            let p = &fit.params;
            let params: Values = [("E", p.e), ("A", p.a), ("B", p.b), ("alpha", p.alpha), ("beta", p.beta)]
                .into_iter()
                .map(|(name, value)| (name.to_string(), value))
                .collect();
            let mut problems = named_problems("chinchilla", "params.", &params, Some(&fit.ci95));
            problems.extend(named_problems("chinchilla", "", &exponents(fit.a, fit.b), Some(&fit.ci95)));
            if judge("chinchilla", problems) {
                fits.chinchilla = None;
            }
        }
        if let Some(fit) = &fits.isoflop {
            if judge("isoflop", named_problems("isoflop", "", &exponents(fit.a, fit.b), Some(&fit.ci95))) {
                fits.isoflop = None;
            }
        }
        if let Some(fit) = &fits.frontier {
            if judge("frontier", named_problems("frontier", "", &exponents(fit.a, fit.b), Some(&fit.ci95))) {
                fits.frontier = None;
            }
        }
        let laws = [
            ("kaplan_n", &mut fits.kaplan_n),
            ("kaplan_d", &mut fits.kaplan_d),
            ("kaplan_c", &mut fits.kaplan_c),
            ("kaplan_nd", &mut fits.kaplan_nd),
            ("data_constrained", &mut fits.data_constrained),
        ];
        for (law, slot) in laws {
            let Some(fit) = slot.as_ref() else { continue };
            let mut problems = named_problems(law, "params.", &fit.params, Some(&fit.ci95));
            if let Some(irreducible) = &fit.irreducible {
                problems.extend(named_problems(law, "irreducible.", irreducible, None));
            }
            if judge(law, problems) {
                *slot = None;
            }
        }
        found
    }
}

/// {"a": a, "b": b}: the compute-optimal exponents of an approach, stored beside its params.
fn exponents(a: f64, b: f64) -> Values {
    Values::from([("a".to_string(), a), ("b".to_string(), b)])
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::records::fit::parse_fit;

    fn report(json: serde_json::Value) -> FitReport {
        serde_json::from_value(json).expect("a fit.json")
    }

    #[test]
    fn negative_scales_absurd_exponents_and_far_misses_take_the_law_out_naming_the_field() {
        let mut fit = report(serde_json::json!({ "fits": {
            "chinchilla": { "params": { "E": -5.0, "A": 400.0, "B": 410.0, "alpha": 1e308, "beta": 0.28 },
                            "ci95": { "E": [1.723, 2.063], "alpha": [0.2643, 0.7951] }, "a": 0.45, "b": 0.55 },
            "isoflop": { "a": 0.9, "b": 0.1, "ci95": { "a": [0.49, 0.51] } },
            "frontier": { "a": 0.52, "b": 0.48, "ci95": { "a": [0.49, 0.51] } },
            "kaplan_nd": { "params": { "alpha_N": 0.07, "alpha_D": 0.09, "N_c": -1e13, "D_c": 5e13 } },
            "kaplan_c": { "params": { "alpha_C": 0.05, "C_c": 1e8 }, "irreducible": { "E": 1.7, "alpha_C": -150.0, "C_c": 1e8 } },
            "kaplan_n": { "params": { "alpha_N": -0.5, "N_c": 0.0 }, "ci95": { "alpha_N": [-0.6, -0.4] } } } }));
        let taken = fit.take_impossible_laws();
        let laws: Vec<&str> = taken.iter().map(|t| t.law).collect();
        assert_eq!(laws, vec!["chinchilla", "isoflop", "kaplan_c", "kaplan_nd"]);
        assert_eq!(
            taken[0].problems,
            vec![
                "fits.chinchilla.params.E = -5 is negative, and the fit holds this parameter as its logarithm",
                "fits.chinchilla.params.alpha = 1e308 is beyond ±100, an exponent no fit produces",
            ]
        );
        // 0.9 is 0.39 above an interval 0.02 wide; the frontier's 0.52 is within a width of it.
        assert!(taken[1].problems[0].starts_with("fits.isoflop.a = 0.9 lies outside its own 95% interval [0.49, 0.51]"));
        assert_eq!(
            taken[2].problems[0],
            "fits.kaplan_c.irreducible.alpha_C = -150 is beyond ±100, an exponent no fit produces"
        );
        assert!(taken[3].problems[0].starts_with("fits.kaplan_nd.params.N_c = -1e13 is negative"), "{}", taken[3]);
        let fits = &fit.fits;
        assert!(
            fits.chinchilla.is_none() && fits.isoflop.is_none() && fits.kaplan_c.is_none() && fits.kaplan_nd.is_none()
        );
        // A negative exponent and a scale that underflowed to 0 are what a fit can write.
        assert!(fits.frontier.is_some() && fits.kaplan_n.is_some());
    }

    #[test]
    fn what_the_lenient_readers_accept_is_not_judged() {
        let mut fit = report(serde_json::json!({ "fits": {
            "chinchilla": { "params": { "E": null, "alpha": 0.3 }, "ci95": { "alpha": [null, 0.4] } },
            "kaplan_d": { "params": { "alpha_D": 0.002, "D_c": 3.3e204 }, "ci95": { "D_c": [0.0, 6e177] } },
            // Every resample on one value, the estimate beside it: a fit can write that.
            "isoflop": { "a": 0.55, "b": 0.45, "ci95": { "a": [0.5, 0.5], "b": [0.5, 0.5] } },
            "kaplan_n": { "params": { "alpha_N": 0.07, "N_c": 1.5e13 }, "ci95": { "N_c": [1e13, 1e13] } } } }));
        assert_eq!(fit.take_impossible_laws(), Vec::new());
        assert!(fit.fits.chinchilla.is_some() && fit.fits.kaplan_d.is_some());
    }

    /// Every parameter the fitter holds as its logarithm is judged as a scale, every other as an
    /// exponent.
    #[test]
    fn the_scale_and_exponent_names_are_the_fitters() {
        for (_, specs) in crate::fit::constraints::LAWS {
            for spec in specs {
                assert_eq!(is_exponent(spec.name), !spec.log, "{}", spec.name);
            }
        }
    }

    /// The committed results were written by the fitter: every law of each reads as possible.
    #[test]
    fn every_committed_fit_json_reads_with_no_impossible_law() {
        let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
        let mut read = 0;
        let mut stack = vec![results];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("results/").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.file_name().is_some_and(|name| name == "fit.json") {
                    let mut fit = parse_fit(&path, &std::fs::read(&path).expect("read")).expect("parses");
                    assert_eq!(fit.take_impossible_laws(), Vec::new(), "{}", path.display());
                    read += 1;
                }
            }
        }
        assert!(read >= 5, "{read} fit.json files under results/");
    }
}
