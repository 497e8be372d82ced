//! `sweeplaw ladder`: the loop that tells a user how well their law predicts the next budget
//! before they spend it. Rung 1 is the config's IsoFLOP sweep. Each next rung's FLOP budgets are
//! the previous rung's times `step`, and its sizes are centred per budget on the approach-3 law
//! fitted to every rung so far (`[grid] centre = <that law's fit.json>`). Before a rung trains,
//! the law's predicted N_opt and loss at each of its budgets, with 95% bootstrap intervals and
//! the law's verdict, are written to `ladder.json`; after it trains, what the rung measured
//! (each budget's IsoFLOP parabola vertex, or its lowest-loss run where no parabola fits) is
//! written beside them with the prediction's error.
//!
//! Layout, under `<results>/<name>-ladder/`: `rung<K>/` (each rung a sweep directory like any
//! other: resumable, fittable, reportable), `rung<K>.toml` (the rung's config as run, a config
//! that plans and sweeps where it lies: its paths are relative to it, so no rung's identity
//! depends on the working directory the ladder was started from),
//! `law-rung<K>.json` (fit.json of the law fitted to rungs 1..K, which centres rung K+1), and
//! `ladder.json`. Rerunning the same command resumes: finished runs are skipped and predictions
//! already written are kept as they were made, before their rung trained.
//!
//! A forecast carries the verdict of the law it comes from (`law-rung<K>.json`'s approach 3),
//! merged with its own fit's findings. Leaving out the bootstrap must never improve a verdict:
//! a law's intervals are among its criteria (an alpha whose 95% interval spans 20 is `not
//! identified`), and a fit without resamples cannot see them and calls the law only `weak`. So
//! `law-rung<K>.json` is always bootstrapped: with `--bootstrap` resamples, or with fit's default
//! (1000) under `--bootstrap 0`, which leaves out only the forecasts' own intervals; such a
//! forecast is then at best `weak` (its intervals were not checked), as every `fit --bootstrap 0`
//! verdict is, and a law that is `not identified` stays so.

use std::path::{Path, PathBuf};

use crate::config::CentreLaw;
use crate::config::SweepConfig;
use crate::error::{Error, Result};
use crate::fit::{fit, load_points, Dataset, FitOptions, FitReport, Law, ParamCount};
use crate::plan::expand;
pub use crate::records::ladder::{BudgetObservation, BudgetPrediction, LadderRecord, RungRecord, LADDER_VERSION};
use crate::sweep::{run_plan, SweepOptions, SweepReport};
use crate::verdict::Assessment;

/// Options of `sweeplaw ladder`.
pub struct LadderOptions {
    pub config: PathBuf,
    pub results: PathBuf,
    /// Rungs to climb (the first is the config's own sweep).
    pub rungs: usize,
    /// Each rung's budgets are the previous rung's times this.
    pub step: f64,
    /// Bootstrap resamples behind each prediction's interval (0: none) and each `law-rung<K>.json`
    /// (0: fit's default, since the law's verdict reads its intervals).
    pub bootstrap: usize,
    pub quiet: bool,
}

/// What `run_ladder` did: the record, and the signal that stopped it early, if one did.
pub struct LadderOutcome {
    pub dir: PathBuf,
    pub record: LadderRecord,
    pub stopped: Option<SweepReport>,
}

/// The ladder directory of a config: `<results>/<name>-ladder`.
pub fn ladder_dir(results: &Path, config: &SweepConfig) -> PathBuf {
    results.join(format!("{}-ladder", config.name))
}

/// Checks the config can be climbed and the options make sense; errors name the key or flag.
fn check(options: &LadderOptions, base: &SweepConfig) -> Result<Vec<f64>> {
    let bad = |m: String| Error::config(&options.config, m);
    let budgets =
        base.budget.flops.clone().ok_or_else(|| {
            bad("ladder climbs FLOP budgets: give [budget] flops = [...] (an IsoFLOP sweep)".to_string())
        })?;
    if base.grid.aspect_ratio.is_none() {
        return Err(bad(
            "ladder centres each later rung's sizes on the law: give [grid] aspect_ratio (depth from width)".into(),
        ));
    }
    if options.rungs == 0 {
        return Err(Error::Usage("--rungs must be at least 1".into()));
    }
    if !(options.step.is_finite() && options.step > 1.0) {
        return Err(Error::Usage(format!("--step must be a number above 1, got {}", options.step)));
    }
    // The top rung's largest budget, checked before rung 1 trains rather than when it is planned.
    let largest = budgets.iter().copied().fold(0.0, f64::max);
    let top = largest * options.step.powf(options.rungs as f64 - 1.0);
    if !(top <= MAX_RUNG_FLOPS) {
        return Err(Error::Usage(format!(
            "--rungs {} at --step {:e} takes the largest budget {largest:e} to {top:e} FLOPs at the top rung, beyond \
             {MAX_RUNG_FLOPS:e}: climb fewer rungs or a smaller step",
            options.rungs, options.step
        )));
    }
    Ok(budgets)
}

/// The largest FLOP budget a rung may reach: far beyond any training run to date (about 5e25),
/// so only a typo in `--step` or `--rungs` reaches it.
const MAX_RUNG_FLOPS: f64 = 1e30;

/// Climbs the ladder of `options.config`: trains each rung in turn, predicting it first.
pub fn run_ladder(options: &LadderOptions) -> Result<LadderOutcome> {
    let base = crate::plan::load_sweep_config(&options.config)?;
    let base_budgets = check(options, &base)?;
    let dir = ladder_dir(&options.results, &base);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let record_path = dir.join("ladder.json");
    let mut record = LadderRecord::read(&record_path)?.unwrap_or_else(|| LadderRecord {
        format_version: LADDER_VERSION,
        config: options.config.display().to_string(),
        step: options.step,
        rungs: Vec::new(),
    });
    if (record.step / options.step - 1.0).abs() > 1e-9 {
        return Err(Error::Usage(format!(
            "{} was climbed with --step {}: rerun with that step, or give another --results",
            record_path.display(),
            record.step
        )));
    }
    let fit_options = FitOptions {
        law: Law::Chinchilla,
        params: base
            .budget
            .param_count
            .parse::<ParamCount>()
            .map_err(|e| Error::config(&options.config, e.to_string()))?,
        flops: base.budget.flop_convention,
        bootstrap: options.bootstrap,
        progress: false,
        ..FitOptions::default()
    };
    let law_options = law_options(&fit_options);
    // Each rung's config lives in the ladder's folder, its paths relative to it.
    let config_dir = options.config.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let base = base.moved(config_dir, &dir).map_err(|e| Error::io(config_dir, e))?;
    for rung in 1..=options.rungs {
        let scale = options.step.powi(rung as i32 - 1);
        let budgets: Vec<f64> = base_budgets.iter().map(|b| b * scale).collect();
        let mut config = base.clone();
        config.name = format!("rung{rung}");
        config.budget.flops = Some(budgets.clone());
        let mut centred_on = None;
        // The verdict of the law that centres this rung and predicts it (law-rung<K-1>.json).
        let mut law_verdict = Assessment::identified();
        if rung > 1 {
            let law_path = dir.join(format!("law-rung{}.json", rung - 1));
            let law = CentreLaw::read(&law_path).map_err(|m| Error::record(&law_path, m))?;
            law_verdict = law.assessment.clone();
            config.grid.centre = Some(format!("law-rung{}.json", rung - 1));
            config.grid.centre_law = Some(law);
            config.grid.n_layers = Vec::new();
            config.grid.d_model = None;
            centred_on = Some(format!("law-rung{}.json", rung - 1));
        }
        let index = rung - 1;
        if record.rungs.len() <= index {
            record.rungs.push(RungRecord {
                rung,
                budgets: budgets.clone(),
                sweep: config.name.clone(),
                centred_on: centred_on.clone(),
                predictions: Vec::new(),
                observed: Vec::new(),
            });
        }
        // The forecast, written down before the rung trains and never rewritten afterwards.
        if rung > 1 && record.rungs[index].predictions.is_empty() {
            let earlier = cumulative(&dir, rung - 1, &fit_options)?;
            record.rungs[index].predictions = predict(&earlier, &budgets, rung - 1, &fit_options, &law_verdict)?;
        }
        record.write(&record_path)?;
        let config_path = dir.join(format!("rung{rung}.toml"));
        let text = config.to_toml().map_err(|e| Error::record(&config_path, e))?;
        let header = format!(
            "# Rung {rung} of the ladder of {} (budgets x {} per rung), as run; its paths are relative to this file.\n",
            options.config.display(),
            options.step
        );
        crate::fs::write_atomic(&config_path, format!("{header}{text}").as_bytes())?;
        let plan = expand(&config).map_err(|m| Error::config(&config_path, m))?;
        let sweep_options = SweepOptions { quiet: options.quiet, ..SweepOptions::new(&config_path, &dir) };
        let report = run_plan(&sweep_options, config, plan.clone())?;
        if report.signal.is_some() {
            return Ok(LadderOutcome { dir, record, stopped: Some(report) });
        }
        if !report.failed.is_empty() {
            let names: Vec<&str> = report.failed.iter().map(|(id, _)| id.as_str()).collect();
            return Err(Error::Run {
                run: names.join(", "),
                message: format!("failed in rung {rung} (each reason is printed above and kept in its run.json; rerun the ladder to retry)"),
            });
        }
        // The law through this rung: it centres the next rung and is measured against this one.
        let through = cumulative(&dir, rung, &fit_options)?;
        let law = fit(&through, &law_options).map_err(|e| Error::record(&report.sweep_dir, e.to_string()))?;
        let law_path = dir.join(format!("law-rung{rung}.json"));
        law.write_json(&law_path).map_err(|e| Error::record(&law_path, e.to_string()))?;
        // What the rung measured, written once it has trained. A rerun that trains nothing in it
        // keeps that: measured again against forecasts read back from ladder.json (a number
        // read back can move by one unit in the last place), the errors would move in their
        // last digits.
        let measured = !record.rungs[index].observed.is_empty();
        if measured && report.trained.is_empty() && report.diverged.is_empty() {
            continue;
        }
        let this_rung = load_rung(&dir, rung, &fit_options)?;
        let observed = observe(&this_rung, &plan, &budgets, &law, &record.rungs[index].predictions);
        record.rungs[index].observed = observed;
        record.write(&record_path)?;
    }
    Ok(LadderOutcome { dir, record, stopped: None })
}

/// The options of law-rung<K>.json: the forecasts' own, but never without a bootstrap, since
/// the law's verdict (which labels the next rung's forecasts) reads its intervals.
fn law_options(fit_options: &FitOptions) -> FitOptions {
    let bootstrap = if fit_options.bootstrap == 0 { FitOptions::default().bootstrap } else { fit_options.bootstrap };
    FitOptions { bootstrap, ..fit_options.clone() }
}

/// A forecast's verdict: the worse of its predicting law's (`law`, bootstrapped) and its own
/// fit's (`own`), with the reasons of both.
fn forecast_verdict(law: &Assessment, own: &Assessment) -> Assessment {
    let mut verdict = law.clone();
    verdict.merge(own);
    verdict
}

/// A rung's finished runs as fit points.
fn load_rung(dir: &Path, rung: usize, options: &FitOptions) -> Result<Dataset> {
    let sweep_dir = dir.join(format!("rung{rung}"));
    let (data, _) = load_points(&sweep_dir, options).map_err(|e| Error::record(&sweep_dir, e.to_string()))?;
    Ok(data)
}

/// Every finished run of rungs 1..=`through`, as one dataset.
fn cumulative(dir: &Path, through: usize, options: &FitOptions) -> Result<Dataset> {
    let mut points = Vec::new();
    let mut counting = None;
    for rung in 1..=through {
        let data = load_rung(dir, rung, options)?;
        counting.get_or_insert((data.param_count.clone(), data.flop_count.clone()));
        points.extend(data.points);
    }
    let mut data = Dataset::from_points(&format!("{} (rungs 1-{through})", dir.display()), points);
    if let Some((params, flops)) = counting {
        data.param_count = params;
        data.flop_count = flops;
    }
    Ok(data)
}

/// The law fitted to `data` (rungs 1..=`fitted_on_rungs`), predicted at each of `budgets`;
/// each forecast carries `law_verdict`, the verdict of that law's law-rung<K>.json, as well.
fn predict(
    data: &Dataset,
    budgets: &[f64],
    fitted_on_rungs: usize,
    options: &FitOptions,
    law_verdict: &Assessment,
) -> Result<Vec<BudgetPrediction>> {
    let mut predictions = Vec::new();
    for &flops in budgets {
        let options = FitOptions { target_flops: Some(flops), ..options.clone() };
        let report = fit(data, &options)
            .map_err(|e| Error::Failed(format!("ladder: the law of rungs 1-{fitted_on_rungs}: {e}")))?;
        let Some(law) = report.fits.chinchilla.as_ref() else {
            let why = report.skipped.get("chinchilla").cloned().unwrap_or_else(|| "not fitted".into());
            return Err(Error::Failed(format!(
                "ladder: approach 3 could not be fitted to rungs 1-{fitted_on_rungs} ({why}): add sizes or budgets to the config"
            )));
        };
        let Some(prediction) = law.prediction.as_ref() else { continue };
        let verdict = forecast_verdict(law_verdict, &law.assessment);
        predictions.push(BudgetPrediction {
            flops,
            n_opt: prediction.n_opt,
            n_opt_ci95: prediction.ci95.get("N_opt").map(|&[lo, hi]| (lo, hi)),
            loss: prediction.loss.unwrap_or(f64::NAN),
            loss_ci95: prediction.ci95.get("loss").map(|&[lo, hi]| (lo, hi)),
            verdict: verdict.verdict.to_string(),
            reasons: verdict.reasons,
            fitted_on_rungs,
        });
    }
    Ok(predictions)
}

/// Each budget's measured optimum: approach 2's vertex where the law through this rung has one
/// inside its sizes, else the budget's lowest-loss run; against the prediction where there is one.
fn observe(
    rung: &Dataset,
    plan: &crate::plan::Plan,
    budgets: &[f64],
    law: &FitReport,
    predictions: &[BudgetPrediction],
) -> Vec<BudgetObservation> {
    let same = |a: f64, b: f64| (a / b - 1.0).abs() < 1e-6;
    let budget_of = |run_id: &str| plan.runs.iter().find(|r| r.run_id == run_id).and_then(|r| r.flop_budget);
    let mut observed = Vec::new();
    for &flops in budgets {
        let runs: Vec<_> =
            rung.points.iter().filter(|p| budget_of(&p.run_id).is_some_and(|b| same(b, flops))).collect();
        let Some(best) = runs.iter().min_by(|p, q| p.loss.total_cmp(&q.loss)) else { continue };
        // Approach 2's budgets are grouped from the runs' compute: the one nearest this budget.
        let vertex = law.fits.isoflop.as_ref().and_then(|iso| {
            iso.minima
                .iter()
                .filter(|m| m.inside && (m.flops / flops).ln().abs() < 0.2)
                .min_by(|a, b| (a.flops / flops).ln().abs().total_cmp(&(b.flops / flops).ln().abs()))
        });
        let (n_opt, loss, from) = match vertex {
            Some(m) => (m.n_opt, m.loss, "parabola"),
            None => (best.params, best.loss, "lowest run"),
        };
        let prediction = predictions.iter().find(|p| same(p.flops, flops));
        let inside = |value: f64, interval: Option<(f64, f64)>| interval.map(|(lo, hi)| lo <= value && value <= hi);
        observed.push(BudgetObservation {
            flops,
            runs: runs.len(),
            n_opt,
            loss,
            from: from.to_string(),
            n_opt_error: prediction.map(|p| p.n_opt / n_opt - 1.0),
            loss_error: prediction.map(|p| p.loss / loss - 1.0),
            n_opt_inside: prediction.and_then(|p| inside(n_opt, p.n_opt_ci95)),
            loss_inside: prediction.and_then(|p| inside(loss, p.loss_ci95)),
        });
    }
    observed
}

/// The ladder as a table: per budget of each rung, the forecast and what was measured.
pub fn render(record: &LadderRecord) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<5} {:>9}  {:>30}  {:>10}  {:>26}  {:>8}  {:>7}",
        "rung", "C", "predicted N_opt [95%]", "measured", "predicted loss [95%]", "measured", "error"
    );
    let interval = |ci: Option<(f64, f64)>, precision: usize, sci: bool| match ci {
        Some((lo, hi)) if sci => format!("[{lo:.2e}, {hi:.2e}]"),
        Some((lo, hi)) => format!("[{lo:.precision$}, {hi:.precision$}]"),
        None => "[no interval]".to_string(),
    };
    for rung in &record.rungs {
        for &flops in &rung.budgets {
            let p = rung.predictions.iter().find(|p| (p.flops / flops - 1.0).abs() < 1e-6);
            let o = rung.observed.iter().find(|o| (o.flops / flops - 1.0).abs() < 1e-6);
            let predicted_n = p.map(|p| format!("{:.3e} {}", p.n_opt, interval(p.n_opt_ci95, 0, true)));
            let predicted_loss = p.map(|p| format!("{:.4} {}", p.loss, interval(p.loss_ci95, 4, false)));
            let _ = writeln!(
                out,
                "{:<5} {:>9.2e}  {:>30}  {:>10}  {:>26}  {:>8}  {:>7}",
                rung.rung,
                flops,
                predicted_n.unwrap_or_else(|| "-".into()),
                o.map(|o| format!("{:.3e}", o.n_opt)).unwrap_or_else(|| "-".into()),
                predicted_loss.unwrap_or_else(|| "-".into()),
                o.map(|o| format!("{:.4}", o.loss)).unwrap_or_else(|| "-".into()),
                o.and_then(|o| o.loss_error).map(|e| format!("{:+.2}%", 100.0 * e)).unwrap_or_else(|| "-".into()),
            );
        }
        if let Some(p) = rung.predictions.first() {
            if p.verdict != "identified" {
                let _ = writeln!(
                    out,
                    "      rung {}'s forecast came from a law that is {} (rungs 1-{}): {}",
                    rung.rung,
                    p.verdict,
                    p.fitted_on_rungs,
                    p.reasons.join("; ")
                );
            }
        }
    }
    let errors: Vec<f64> =
        record.rungs.iter().flat_map(|r| r.observed.iter().filter_map(|o| o.loss_error)).map(f64::abs).collect();
    if !errors.is_empty() {
        let worst =
            errors.iter().copied().fold(0.0, |a: f64, b| if b.is_nan() || a.is_nan() { f64::NAN } else { a.max(b) });
        let _ = writeln!(
            out,
            "forecast loss error: max {:.2}% over {} budget(s) (error = predicted / measured - 1; N_opt measured as the parabola vertex, or the lowest run where none fits)",
            100.0 * worst,
            errors.len()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observation(flops: f64, loss_error: Option<f64>) -> BudgetObservation {
        BudgetObservation {
            flops,
            runs: 5,
            n_opt: 1e5,
            loss: 3.0,
            from: "parabola".into(),
            n_opt_error: None,
            loss_error,
            n_opt_inside: None,
            loss_inside: None,
        }
    }

    #[test]
    fn a_forecast_without_a_bootstrap_keeps_its_laws_worse_verdict() {
        let mut law = Assessment::identified();
        law.not_identified("alpha's 95% interval spans 21.45 (more than 1)", None);
        let mut own = Assessment::identified();
        own.weak("no bootstrap (--bootstrap 0): the intervals were not checked", None);
        let verdict = forecast_verdict(&law, &own);
        assert_eq!(verdict.verdict, crate::verdict::Verdict::NotIdentified);
        assert_eq!(verdict.reasons.len(), 2, "{:?}", verdict.reasons);
        // An identified law still leaves an unbootstrapped forecast at best weak.
        let verdict = forecast_verdict(&Assessment::identified(), &own);
        assert_eq!(verdict.verdict, crate::verdict::Verdict::Weak);
        let options = FitOptions { bootstrap: 0, ..FitOptions::default() };
        assert_eq!(law_options(&options).bootstrap, FitOptions::default().bootstrap);
        assert_eq!(law_options(&FitOptions { bootstrap: 40, ..options }).bootstrap, 40);
    }

    #[test]
    fn the_table_names_each_budget_and_the_worst_error_and_a_nan_is_not_hidden() {
        let record = LadderRecord {
            format_version: LADDER_VERSION,
            config: "c.toml".into(),
            step: 4.0,
            rungs: vec![
                RungRecord {
                    rung: 1,
                    budgets: vec![1e11],
                    sweep: "rung1".into(),
                    centred_on: None,
                    predictions: Vec::new(),
                    observed: vec![observation(1e11, None)],
                },
                RungRecord {
                    rung: 2,
                    budgets: vec![4e11, 1.6e12],
                    sweep: "rung2".into(),
                    centred_on: Some("law-rung1.json".into()),
                    predictions: vec![BudgetPrediction {
                        flops: 4e11,
                        n_opt: 2e5,
                        n_opt_ci95: Some((1e5, 3e5)),
                        loss: 3.03,
                        loss_ci95: Some((2.9, 3.1)),
                        verdict: "weak".into(),
                        reasons: vec!["one budget".into()],
                        fitted_on_rungs: 1,
                    }],
                    observed: vec![observation(4e11, Some(0.01)), observation(1.6e12, Some(-0.03))],
                },
            ],
        };
        let table = render(&record);
        assert!(table.contains("+1.00%") && table.contains("-3.00%"), "{table}");
        assert!(table.contains("max 3.00% over 2 budget(s)"), "{table}");
        assert!(table.contains("came from a law that is weak (rungs 1-1): one budget"), "{table}");
        let mut broken = record.clone();
        broken.rungs[1].observed[0].loss_error = Some(f64::NAN);
        assert!(render(&broken).contains("max NaN%"), "{}", render(&broken));
    }
}
