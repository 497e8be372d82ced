//! The verdicts end to end: a smoke-sized grid is `not identified`, a planted law on a good
//! grid is `identified`, and the verdict reaches fit.json and the table.

use crate::fit::data::{Dataset, Point};
use crate::fit::options::{FitOptions, Law};
use crate::fit::tests::synth::{hoffmann, isoflop_points, noisy, point};
use crate::records::verdict::Verdict;
use crate::rng::SplitMix64;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// configs/smoke.toml's grid: 4 sizes (12k to 443k non-embedding parameters) x 2 token budgets
/// (100k, 400k), losses from a planted law with 1% noise.
fn smoke_grid() -> Vec<Point> {
    let law = hoffmann();
    let mut rng = SplitMix64::new(7);
    let mut points = Vec::new();
    for (i, params) in [12_288.0, 55_296.0, 245_760.0, 442_368.0].into_iter().enumerate() {
        for (j, tokens) in [1e5, 4e5].into_iter().enumerate() {
            let loss = noisy(law.predict(params, tokens), 0.01, &mut rng);
            points.push(point(format!("n{i}-d{j}"), params, tokens, loss));
        }
    }
    points
}

#[test]
fn a_smoke_sized_two_budget_grid_is_not_identified() -> TestResult {
    let data = Dataset::from_points("smoke", smoke_grid());
    let options = FitOptions { law: Law::Chinchilla, bootstrap: 200, ..FitOptions::default() };
    let report = crate::fit::fit(&data, &options)?;
    let fit = report.fits.chinchilla.as_ref().ok_or("approach 3 not fitted")?;
    assert_eq!(fit.assessment.verdict, Verdict::NotIdentified, "{:?}", fit.assessment);
    let reasons = fit.assessment.reasons.join("; ");
    assert!(reasons.contains("only 2 distinct token count(s)"), "{reasons}");
    assert!(fit.assessment.fixes.iter().any(|f| f == "add token counts above 1.600e6"), "{:?}", fit.assessment.fixes);
    let json = report.to_json()?;
    assert_eq!(json["fits"]["chinchilla"]["verdict"], "not identified");
    assert!(json["fits"]["chinchilla"]["reasons"].as_array().is_some_and(|r| !r.is_empty()));
    assert!(report.table().contains("verdict: not identified"), "{}", report.table());
    Ok(())
}

#[test]
fn a_planted_law_on_a_good_grid_is_identified() -> TestResult {
    let points = isoflop_points(&hoffmann(), &[1e18, 1e19, 1e20, 1e21, 1e22], 9, 0.005, 2);
    let data = Dataset::from_points("planted", points);
    let options = FitOptions { law: Law::Chinchilla, bootstrap: 200, ..FitOptions::default() };
    let report = crate::fit::fit(&data, &options)?;
    let fit = report.fits.chinchilla.as_ref().ok_or("approach 3 not fitted")?;
    assert_eq!(fit.assessment.verdict, Verdict::Identified, "{:?} {:?}", fit.assessment, fit.ci95);
    assert!(fit.assessment.reasons.is_empty());
    assert_eq!(report.to_json()?["fits"]["chinchilla"]["verdict"], "identified");
    Ok(())
}

#[test]
fn without_a_bootstrap_the_verdict_is_at_best_weak() -> TestResult {
    let points = isoflop_points(&hoffmann(), &[1e18, 1e19, 1e20, 1e21, 1e22], 9, 0.005, 2);
    let data = Dataset::from_points("planted", points);
    let options = FitOptions { law: Law::Chinchilla, bootstrap: 0, ..FitOptions::default() };
    let report = crate::fit::fit(&data, &options)?;
    let fit = report.fits.chinchilla.as_ref().ok_or("approach 3 not fitted")?;
    assert_eq!(fit.assessment.verdict, Verdict::Weak);
    assert!(fit.assessment.reasons[0].contains("--bootstrap 0"), "{:?}", fit.assessment);
    Ok(())
}

#[test]
fn kaplan_l_of_n_on_data_limited_isoflop_runs_is_flagged() -> TestResult {
    // Three sizes, each trained at 4 token counts; the loss still falls ~10% per doubling of D.
    let law = hoffmann();
    let mut points = Vec::new();
    for (i, params) in [1e7, 1e8, 1e9, 1e10].into_iter().enumerate() {
        for (j, tokens) in [1e8, 2e8, 4e8, 8e8].into_iter().enumerate() {
            points.push(point(format!("n{i}-d{j}"), params, tokens, law.predict(params, tokens)));
        }
    }
    let data = Dataset::from_points("limited", points);
    let options = FitOptions { law: Law::Kaplan, bootstrap: 50, ..FitOptions::default() };
    let report = crate::fit::fit(&data, &options)?;
    let fit = report.fits.kaplan_n.as_ref().ok_or("L(N) not fitted")?;
    assert_ne!(fit.assessment.verdict, Verdict::Identified);
    assert!(fit.assessment.reasons.iter().any(|r| r.contains("4 of 4 checked model sizes")), "{:?}", fit.assessment);
    assert_eq!(fit.basis.as_deref(), Some("each model size's lowest loss over its token counts"));
    Ok(())
}

#[test]
fn laws_fitted_on_runs_that_repeat_data_are_labelled() -> TestResult {
    let law = hoffmann();
    let points = isoflop_points(&law, &[1e18, 1e19, 1e20], 5, 0.0, 3);
    let options = FitOptions { law: Law::Chinchilla, bootstrap: 0, ..FitOptions::default() };
    let fresh = crate::fit::fit(&Dataset::from_points("fresh", points.clone()), &options)?;
    assert!(!fresh.warnings.iter().any(|w| w.contains("repeat data")), "{:?}", fresh.warnings);
    // Two runs trained on half and a third of their tokens' worth of unique data.
    let mut repeated = points;
    repeated[2].unique_tokens = Some(repeated[2].tokens / 2.0);
    repeated[7].unique_tokens = Some(repeated[7].tokens / 3.0);
    repeated[9].unique_tokens = Some(repeated[9].tokens);
    let report = crate::fit::fit(&Dataset::from_points("repeated", repeated), &options)?;
    let warning = report.warnings.iter().find(|w| w.contains("repeat data")).ok_or("no repetition warning")?;
    assert!(warning.starts_with("chinchilla, isoflop, frontier: fitted on all 15 runs, 2 of which"), "{warning}");
    assert!(warning.contains("up to 3.00 epochs, b1-n2"), "{warning}");
    assert!(report.table().contains(warning.as_str()), "{}", report.table());
    Ok(())
}

/// A few failed bootstrap refits make a law weak; most failing leave an interval drawn from the
/// resamples the law happened to fit, so it is not identified.
#[test]
fn a_bootstrap_that_mostly_fails_is_not_identified() {
    use crate::fit::assess::bootstrap_findings;
    use crate::records::verdict::Assessment;
    let verdict = |failed: usize| {
        let mut assessment = Assessment::identified();
        bootstrap_findings(&mut assessment, 1000, Some(failed));
        (assessment.verdict, assessment.reasons)
    };
    assert_eq!(verdict(50).0, Verdict::Identified);
    let (weak, reasons) = verdict(51);
    assert_eq!(weak, Verdict::Weak, "{reasons:?}");
    let (not, reasons) = verdict(785);
    assert_eq!(not, Verdict::NotIdentified, "{reasons:?}");
    assert!(reasons[0].contains("785 of 1000 bootstrap refits failed (more than 50%)"), "{reasons:?}");
}
