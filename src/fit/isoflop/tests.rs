use super::*;
use crate::fit::options::FitOptions;
use crate::fit::tests::synth::{hoffmann, isoflop_points};
use crate::records::verdict::Verdict;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn budget_list() -> Vec<f64> {
    vec![6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21]
}

#[test]
fn approach2_recovers_the_planted_exponents_without_noise() -> TestResult {
    let law = hoffmann();
    let data = Dataset::from_points("planted", isoflop_points(&law, &budget_list(), 9, 0.0, 1));
    let (fit, _) = fit_approach2(&data, &vec![1.0; data.points.len()], 5)?;
    assert_eq!(fit.minima.len(), 9);
    assert!(fit.minima.iter().all(|m| m.inside));
    // Same grid shape at every budget, so the parabola's offset cancels in the slope.
    assert!((fit.a - law.exponent_a()).abs() < 2e-3, "a = {} vs {}", fit.a, law.exponent_a());
    assert!((fit.b - law.exponent_b()).abs() < 2e-3, "b = {} vs {}", fit.b, law.exponent_b());
    Ok(())
}

#[test]
fn approach2_recovers_the_planted_exponents_with_noise() -> TestResult {
    let law = hoffmann();
    let data = Dataset::from_points("planted", isoflop_points(&law, &budget_list(), 9, 0.005, 2));
    let (fit, _) = fit_approach2(&data, &vec![1.0; data.points.len()], 5)?;
    assert!((fit.a - law.exponent_a()).abs() < 0.03, "a = {}", fit.a);
    assert!((fit.b - law.exponent_b()).abs() < 0.03, "b = {}", fit.b);
    Ok(())
}

#[test]
fn budgets_group_runs_within_ten_percent_of_compute() {
    let law = hoffmann();
    let mut points = isoflop_points(&law, &[1e19, 1e20], 5, 0.0, 3);
    points[0].flops *= 1.05;
    let data = Dataset::from_points("p", points);
    let groups = budgets(&data, &[1.0; 10]);
    assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), vec![5, 5]);
}

#[test]
fn one_budget_is_too_few() {
    let data = Dataset::from_points("p", isoflop_points(&hoffmann(), &[1e19], 7, 0.0, 4));
    let error = fit_approach2(&data, &[1.0; 7], 5).err().map(|e| e.to_string());
    assert!(error.is_some_and(|e| e.contains("2+ FLOP budgets")));
}

/// One row of Porian et al. 2024's published.csv: the file and its published a with interval.
struct Published {
    file: String,
    a: f64,
    low: f64,
    high: f64,
}

fn published() -> Result<Option<Vec<Published>>, Box<dyn std::error::Error>> {
    let Some(path) = crate::reference_data::file("porian2024/published.csv") else { return Ok(None) };
    let mut reader = csv::Reader::from_path(&path)?;
    let header = reader.headers()?.clone();
    let column = |name: &str| header.iter().position(|h| h == name).ok_or(format!("published.csv has no {name}"));
    let (file, a, low, high) = (column("file")?, column("a_bs_median_weighted")?, column("a_lo")?, column("a_hi")?);
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record?;
        let number = |i: usize| record.get(i).unwrap_or_default().parse::<f64>();
        rows.push(Published {
            file: record.get(file).unwrap_or_default().to_string(),
            a: number(a)?,
            low: number(low)?,
            high: number(high)?,
        });
    }
    Ok(Some(rows))
}

/// Porian et al. 2024's 15 configurations: with the default window, approach 2 lands within
/// 0.03 of the published exponent a on each, its 95% interval overlaps the published one, and
/// b = 1 - a (their C is proportional to N D).
#[test]
fn approach2_reproduces_porian_et_al_on_all_fifteen_configurations() -> TestResult {
    let Some(rows) = published()? else { return Ok(()) };
    assert_eq!(rows.len(), 15);
    let options = FitOptions { bootstrap: 400, ..FitOptions::default() };
    for row in &rows {
        let Some(path) = crate::reference_data::file(&format!("porian2024/{}", row.file)) else { return Ok(()) };
        let (data, _) = crate::fit::data::load_points(&path, &options)?;
        let (fit, _) = fit(&data, &options)?;
        let [low, high] = *fit.ci95.get("a").ok_or("no interval for a")?;
        assert!((fit.a - row.a).abs() < 0.03, "{}: a = {} vs published {}", row.file, fit.a, row.a);
        assert!(low <= row.high && high >= row.low, "{}: [{low}, {high}] vs [{}, {}]", row.file, row.low, row.high);
        assert!((fit.a + fit.b - 1.0).abs() < 0.01, "{}: a + b = {}", row.file, fit.a + fit.b);
        assert!(fit.budgets >= 10 && fit.minima.iter().filter(|m| m.inside).count() == fit.budgets, "{}", row.file);
        assert!(fit.assessment.is_identified(), "{}: {:?}", row.file, fit.assessment);
    }
    Ok(())
}

/// Planted budgets with one whose sizes all lie below its optimum.
fn with_unbracketed_budget() -> Dataset {
    let law = hoffmann();
    let mut points = isoflop_points(&law, &[1e19, 1e20, 1e21, 1e22], 7, 0.0, 5);
    let (n_opt, _) = law.compute_optimal(3e22);
    for k in 0..7 {
        let params = n_opt * (-4.0 + 0.4 * k as f64).exp();
        let tokens = 3e22 / (6.0 * params);
        points.push(crate::fit::tests::synth::point(format!("edge-n{k}"), params, tokens, law.predict(params, tokens)));
    }
    Dataset::from_points("planted", points)
}

#[test]
fn a_budget_whose_sizes_miss_the_minimum_is_left_out_and_named() -> TestResult {
    let data = with_unbracketed_budget();
    let (fit, warnings) = fit_approach2(&data, &vec![1.0; data.points.len()], 5)?;
    assert_eq!(fit.minima.len(), 5);
    assert_eq!(fit.budgets, 4);
    let outside: Vec<&IsoFlopMinimum> = fit.minima.iter().filter(|m| !m.inside).collect();
    assert_eq!(outside.len(), 1);
    assert!((outside[0].flops - 3e22).abs() < 1e18);
    // The four bracketed budgets still give the planted exponent.
    assert!((fit.a - hoffmann().exponent_a()).abs() < 2e-3, "a = {}", fit.a);
    assert_eq!(warnings.len(), 1, "{:?}", warnings);
    let largest = short(outside[0].sizes[1]);
    assert!(warnings[0].starts_with("sizes do not bracket the minimum at C = 3e22"), "{}", warnings[0]);
    assert!(warnings[0].contains(&format!("add sizes above {largest} at C = 3e22")), "{}", warnings[0]);
    assert!(fit.assessment.is_identified(), "{:?}", fit.assessment);
    Ok(())
}

#[test]
fn two_budgets_are_not_identified_and_the_fix_says_where_to_add() -> TestResult {
    let law = hoffmann();
    let data = Dataset::from_points("p", isoflop_points(&law, &[1e19, 1e20], 7, 0.0, 6));
    let (fit, _) = fit_approach2(&data, &vec![1.0; data.points.len()], 5)?;
    assert_eq!(fit.assessment.verdict, Verdict::NotIdentified);
    assert!(fit.assessment.reasons[0].starts_with("only 2 of 2 FLOP budgets"), "{:?}", fit.assessment);
    assert_eq!(
        fit.assessment.fixes,
        vec!["add 1 FLOP budget at about C = 1e21, each with sizes on both sides of its minimum"]
    );
    Ok(())
}

#[test]
fn too_few_budgets_with_a_left_out_one_name_both_fixes() -> TestResult {
    let mut data = with_unbracketed_budget();
    let keep: Vec<usize> =
        (0..data.points.len()).filter(|&i| data.points[i].flops < 5e19 || data.points[i].flops > 2e22).collect();
    let drop: Vec<usize> = (0..data.points.len()).filter(|i| !keep.contains(i)).collect();
    data.remove_points(&drop, "test");
    let result = fit_approach2(&data, &vec![1.0; data.points.len()], 5);
    let error = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("2+ FLOP budgets") && error.contains("add sizes above"), "{error}");
    Ok(())
}

#[test]
fn the_window_takes_the_sizes_nearest_the_lowest_loss() {
    let sizes: Vec<f64> = (0..9).map(|k| 10f64.powi(k)).collect();
    assert_eq!(nearest_sizes(&sizes, 4, 5), (2, 6));
    assert_eq!(nearest_sizes(&sizes, 0, 5), (0, 4));
    assert_eq!(nearest_sizes(&sizes, 8, 3), (6, 8));
    assert_eq!(nearest_sizes(&sizes[..4], 1, 9), (0, 3));
    let uneven = [1.0, 2.0, 100.0, 101.0];
    assert_eq!(nearest_sizes(&uneven, 2, 3), (1, 3));
}

#[test]
fn resampling_keeps_every_budget_at_its_size() {
    let data = Dataset::from_points("p", isoflop_points(&hoffmann(), &[1e19, 1e20, 1e21], 7, 0.0, 7));
    let groups = budgets(&data, &[1.0; 21]);
    let weights = resample_within_budgets(&groups, 21, 3, 0);
    for group in &groups {
        assert_eq!(group.iter().map(|&i| weights[i]).sum::<f64>(), 7.0);
    }
    assert_ne!(weights, resample_within_budgets(&groups, 21, 3, 1));
}

#[test]
fn the_interval_covers_the_planted_exponent_and_a_noisy_grid_is_weak() -> TestResult {
    let law = hoffmann();
    let options = FitOptions { bootstrap: 200, target_flops: Some(1e22), ..FitOptions::default() };
    let mut covered = 0;
    for seed in 0..20 {
        let data = Dataset::from_points("p", isoflop_points(&law, &budget_list(), 9, 0.005, 100 + seed));
        let (fit, _) = fit(&data, &options)?;
        let [low, high] = fit.ci95["a"];
        covered += usize::from(low < law.exponent_a() && law.exponent_a() < high);
        assert!(fit.prediction.as_ref().is_some_and(|p| p.ci95.contains_key("N_opt")));
        assert!(fit.assessment.is_identified(), "{:?}", fit.assessment);
    }
    // A 95% interval: 19 of 20 expected; 16 or fewer would happen by chance 1.6% of the time.
    assert!(covered >= 17, "the planted a is inside {covered} of 20 intervals");
    let noisy = Dataset::from_points("p", isoflop_points(&law, &[1e19, 1e20, 1e21], 5, 0.05, 9));
    let (fit, _) = crate::fit::isoflop::fit(&noisy, &options)?;
    assert_ne!(fit.assessment.verdict, Verdict::Identified, "{:?} {:?}", fit.ci95, fit.assessment);
    Ok(())
}

#[test]
fn short_numbers_read_like_the_messages() {
    assert_eq!(short(3e11), "3e11");
    assert_eq!(short(1.25e16), "1.25e16");
    assert_eq!(short(2.0e5), "2e5");
    assert_eq!(short(0.5), "0.5");
    assert_eq!(short(120.0), "120");
}

#[test]
fn a_bootstrap_that_mostly_fails_to_bracket_is_not_identified() -> TestResult {
    let law = hoffmann();
    let data = Dataset::from_points("planted", isoflop_points(&law, &budget_list(), 9, 0.0, 1));
    let (fit, _) = fit_approach2(&data, &vec![1.0; data.points.len()], 5)?;
    for (failed, expected) in [(150, Verdict::Weak), (600, Verdict::NotIdentified)] {
        let mut fit = fit.clone();
        fit.ci95.insert("a".into(), [0.45, 0.55]);
        fit.ci95.insert("b".into(), [0.45, 0.55]);
        assess_intervals(&mut fit, 1000, failed);
        assert_eq!(fit.assessment.verdict, expected, "{failed} failed: {:?}", fit.assessment);
        assert!(fit.assessment.reasons[0].contains(&format!("{failed} of 1000 bootstrap resamples")));
    }
    Ok(())
}
