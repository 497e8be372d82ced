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

/// "includes 0" is said only of an interval that does (lo <= 0 <= hi); one wholly below 0 lies
/// below it (inc.csv's alpha [-0.01194, -0.004084] was said to include 0).
#[test]
fn an_exponent_interval_below_zero_is_not_said_to_include_it() {
    use crate::fit::assess::exponent;
    use crate::records::verdict::Assessment;
    let reasons = |ci: [f64; 2]| {
        let mut assessment = Assessment::identified();
        exponent(&mut assessment, "alpha", 0.1, Some(&ci), "fix");
        (assessment.verdict, assessment.reasons.join("; "))
    };
    let (verdict, below) = reasons([-0.01194, -0.004084]);
    assert_eq!(verdict, Verdict::NotIdentified);
    assert!(below.contains("[-0.01194, -0.004084] lies below 0") && !below.contains("includes"), "{below}");
    let (_, across) = reasons([-0.01, 0.02]);
    assert!(across.contains("[-0.01000, 0.02000] includes 0"), "{across}");
    let (_, reaching) = reasons([-0.01, 0.0]);
    assert!(reaching.contains("includes 0"), "{reaching}");
}

/// A span in decades is log10(hi) - log10(lo): hi / lo overflowed for an interval over ~308
/// decades, and the table's factor and the reason printed inf.
#[test]
fn spans_beyond_the_range_of_a_float_are_counted_in_decades() {
    use crate::fit::assess::scale;
    use crate::records::verdict::Assessment;
    let mut assessment = Assessment::identified();
    scale(&mut assessment, "N_c", 6.327e72, Some(&[1.368e-191, 6.172e131]), "fix");
    let reasons = assessment.reasons.join("; ");
    assert!(reasons.contains("spans 322.65 decades (more than 3)"), "{reasons}");
    assert_eq!(crate::fit::table::spread(1.368e-191, 6.172e131), "10^161.3");
    assert_eq!(crate::fit::table::spread(1.0, 4.0), "2.000");
}

/// A fix names no inf or NaN: a threshold past the largest float is written as a power of ten,
/// and where the data's own largest value overflowed (C = 6 N D of N near 1e206) the fix says
/// so instead of "add a FLOP budget above inf".
#[test]
fn fixes_never_name_inf() {
    use crate::fit::assess::Span;
    let data = Dataset::from_points(
        "huge",
        (0..4).map(|k| point(format!("r{k}"), 2.5e307 * (1 + k) as f64, 1e107 * (1 + k) as f64, 1.0)).collect(),
    );
    let span = Span::of(&data);
    assert!(span.max_flops.is_infinite());
    let fixes = [span.sizes_fix(), span.tokens_fix(), span.budget_fix()];
    assert_eq!(fixes[0], "add model sizes above 10^308.6");
    assert_eq!(fixes[1], "add token counts above 1.600e108");
    assert!(fixes[2].contains("largest C of the runs is not a finite 64-bit number"), "{}", fixes[2]);
    assert!(fixes.iter().all(|f| !f.contains("inf") && !f.contains("NaN")), "{fixes:?}");
}

/// A prediction carries its law's verdict where the law is not identified; approach 2, which
/// predicts no loss, says so (its row ended in a bare "loss  "); a target more than a decade
/// outside the compute of the runs is warned about, naming their range.
#[test]
fn predictions_carry_their_verdict_and_extrapolation_is_warned_about() -> TestResult {
    let points = isoflop_points(&hoffmann(), &[1e18, 1e19, 1e20, 1e21, 1e22], 9, 0.005, 2);
    let data = Dataset::from_points("planted", points);
    let within = FitOptions { law: Law::Chinchilla, bootstrap: 50, target_flops: Some(1e21), ..FitOptions::default() };
    let report = crate::fit::fit(&data, &within)?;
    let table = report.table();
    let row = |name: &str| table.lines().find(|l| l.trim_start().starts_with(name) && l.contains("N_opt"));
    let two = row("approach 2").ok_or("no approach 2 prediction")?;
    assert!(two.ends_with("loss not predicted") || two.contains("loss not predicted  verdict:"), "{two}");
    let three = row("approach 3").ok_or("no approach 3 prediction")?;
    assert_eq!(report.fits.chinchilla.as_ref().map(|f| f.assessment.verdict), Some(Verdict::Identified));
    assert!(!three.contains("verdict"), "an identified law's prediction is unlabelled: {three}");
    assert!(!report.warnings.iter().any(|w| w.contains("--target-flops")), "{:?}", report.warnings);

    // The smoke grid's approach 3 is not identified; 1e15 is 3 decades above its compute.
    let smoke = Dataset::from_points("smoke", smoke_grid());
    let beyond = FitOptions { target_flops: Some(1e15), ..within };
    let report = crate::fit::fit(&smoke, &beyond)?;
    let table = report.table();
    let three = table.lines().find(|l| l.contains("approach 3") && l.contains("N_opt")).ok_or("no prediction")?;
    assert!(three.ends_with("verdict: not identified"), "{three}");
    let warning = report.warnings.iter().find(|w| w.contains("--target-flops")).ok_or("no extrapolation warning")?;
    assert!(
        warning.starts_with("--target-flops 1.000e15: 3.0 decades above the largest compute of the runs fitted (C = 7.373e9 to 1.062e12)"),
        "{warning}"
    );
    let below = crate::fit::pipeline::extrapolation_warning(&smoke, 1.0).ok_or("no warning below the data")?;
    assert!(below.starts_with("--target-flops 1.000: 9.9 decades below the smallest"), "{below}");
    assert!(crate::fit::pipeline::extrapolation_warning(&smoke, 1e13).is_none(), "within a decade of the data");
    Ok(())
}

/// Approach 3 with every parameter fixed was fitted to nothing: it is `not identified` saying
/// so, and neither its parameters, its a and b nor its prediction get an interval (they were
/// labelled `identified` with zero-width "95% intervals" such as loss 11.43 [11.43, 11.43]).
/// Kaplan's L(N, D) with all four fixed is labelled the same way.
#[test]
fn a_law_with_every_parameter_fixed_is_not_fitted_and_gets_no_interval() -> TestResult {
    let points = isoflop_points(&hoffmann(), &[1e18, 1e19, 1e20, 1e21, 1e22], 9, 0.005, 2);
    let data = Dataset::from_points("planted", points);
    let fixed = [("E", 10.0), ("A", 400.0), ("B", 1500.0), ("alpha", 0.3), ("beta", 0.3)].into_iter().chain([
        ("kaplan_nd.alpha_N", 0.07),
        ("kaplan_nd.alpha_D", 0.09),
        ("kaplan_nd.N_c", 1e13),
        ("kaplan_nd.D_c", 1e13),
    ]);
    let constraints = crate::fit::Constraints {
        fixed: fixed.map(|(name, value)| (name.to_string(), value)).collect(),
        ..Default::default()
    };
    let options =
        FitOptions { law: Law::All, bootstrap: 20, target_flops: Some(1e21), constraints, ..FitOptions::default() };
    let report = crate::fit::fit(&data, &options)?;
    let fit = report.fits.chinchilla.as_ref().ok_or("approach 3 not fitted")?;
    assert_eq!(fit.assessment.verdict, Verdict::NotIdentified, "{:?}", fit.assessment);
    assert!(
        fit.assessment
            .reasons
            .iter()
            .any(|r| r.starts_with("every parameter (E, A, B, alpha, beta) is fixed by --fix")),
        "{:?}",
        fit.assessment
    );
    assert!(fit.ci95.is_empty(), "{:?}", fit.ci95);
    let prediction = fit.prediction.as_ref().ok_or("no prediction")?;
    assert!(prediction.ci95.is_empty(), "{:?}", prediction.ci95);
    let table = report.table();
    let row = table.lines().find(|l| l.contains("approach 3") && l.contains("N_opt")).ok_or("no prediction row")?;
    assert!(row.ends_with("verdict: not identified") && !row.contains('['), "{row}");
    let joint = report.fits.kaplan_nd.as_ref().ok_or("no kaplan_nd")?;
    assert_eq!(joint.assessment.verdict, Verdict::NotIdentified, "{:?}", joint.assessment);
    assert!(joint.ci95.is_empty(), "{:?}", joint.ci95);
    // The frontier has nothing to fix: still judged by its data.
    assert!(report.fits.frontier.as_ref().is_some_and(|f| !f.ci95.is_empty()));
    Ok(())
}

/// A quantity computed from fixed parameters alone gets no interval: with alpha and beta fixed,
/// a and b (eq. 4: beta / (alpha + beta)) are the given ones, while N_opt, D_opt and the loss
/// still depend on the fitted A, B and E; with A and B fixed too only the loss has one.
#[test]
fn quantities_computed_from_fixed_parameters_alone_get_no_interval() -> TestResult {
    let points = isoflop_points(&hoffmann(), &[1e18, 1e19, 1e20, 1e21, 1e22], 9, 0.005, 2);
    let data = Dataset::from_points("planted", points);
    let keys = |ci95: &crate::fit::Intervals| ci95.keys().cloned().collect::<Vec<String>>();
    let mut fixed = vec![("alpha", 0.34), ("beta", 0.28)];
    for (expected_law, expected_prediction) in
        [(vec!["A", "B", "E"], vec!["D_opt", "N_opt", "loss"]), (vec!["E"], vec!["loss"])]
    {
        let constraints = crate::fit::Constraints {
            fixed: fixed.iter().map(|(name, value)| (name.to_string(), *value)).collect(),
            ..Default::default()
        };
        let options = FitOptions {
            law: Law::Chinchilla,
            bootstrap: 20,
            target_flops: Some(1e21),
            constraints,
            ..FitOptions::default()
        };
        let report = crate::fit::fit(&data, &options)?;
        let fit = report.fits.chinchilla.as_ref().ok_or("approach 3 not fitted")?;
        assert_eq!(keys(&fit.ci95), expected_law, "fixed {fixed:?}");
        assert!(!fit.se.contains_key("a") && !fit.se.contains_key("b"), "{:?}", fit.se);
        let prediction = fit.prediction.as_ref().ok_or("no prediction")?;
        assert_eq!(keys(&prediction.ci95), expected_prediction, "fixed {fixed:?}");
        assert_ne!(fit.assessment.verdict, Verdict::NotIdentified, "{:?}", fit.assessment);
        fixed.extend([("A", 406.4), ("B", 410.7)]);
    }
    Ok(())
}
