use super::*;
use crate::fit::tests::synth::{curve_dataset, hoffmann, log_spaced, point};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn approach1_on_curves_recovers_the_planted_exponents() -> TestResult {
    let law = hoffmann();
    // 40 sizes from 10M to 10B parameters, each evaluated 80 times from 10M to 1T tokens:
    // every compute on the grid is reached by sizes on both sides of N_opt.
    let data = curve_dataset(&law, &log_spaced(1e7, 1e10, 40), 1e7, 1e12, 80);
    let (fit, _) = fit_approach1(&data, &vec![1.0; data.points.len()])?;
    assert_eq!(fit.method, "interpolated curves");
    assert!(fit.sizes >= 10, "{} sizes", fit.sizes);
    assert!((fit.a - law.exponent_a()).abs() < 0.005, "a = {} vs {}", fit.a, law.exponent_a());
    assert!((fit.b - law.exponent_b()).abs() < 0.005, "b = {} vs {}", fit.b, law.exponent_b());
    Ok(())
}

#[test]
fn envelope_keeps_only_points_that_beat_all_cheaper_ones() {
    let points = vec![
        point("a".into(), 1.0, 10.0, 3.0),  // C = 60
        point("b".into(), 2.0, 10.0, 3.5),  // C = 120, worse than a: dropped
        point("c".into(), 2.0, 20.0, 2.5),  // C = 240
        point("d".into(), 1.0, 100.0, 2.4), // C = 600
    ];
    let data = Dataset::from_points("p", points);
    let frontier = envelope(&data, &[1.0, 1.0, 1.0, 1.0]);
    let losses: Vec<f64> = frontier.iter().map(|p| p.loss).collect();
    assert_eq!(losses, vec![3.0, 2.5, 2.4]);
    // A weight of 0 removes a run from the frontier.
    let without_c = envelope(&data, &[1.0, 1.0, 0.0, 1.0]);
    assert_eq!(without_c.iter().map(|p| p.loss).collect::<Vec<_>>(), vec![3.0, 2.4]);
}

#[test]
fn interpolation_is_linear_in_log_log_and_only_inside_the_curve() {
    // log L falls from log 4 to log 1 between C = 10 and C = 1000: L(100) = 2.
    let curve = LogCurve { point: 7, ln_flops: vec![10f64.ln(), 1000f64.ln()], ln_loss: vec![4f64.ln(), 0.0] };
    let grid = [5f64.ln(), 100f64.ln(), 2000f64.ln()];
    let mut best = vec![(f64::INFINITY, usize::MAX); 3];
    lower_with_curve(&mut best, &grid, &curve);
    assert_eq!(best[0].1, usize::MAX);
    assert_eq!(best[1].1, 7);
    assert!((best[1].0.exp() - 2.0).abs() < 1e-12, "{best:?}");
    assert_eq!(best[2].1, usize::MAX);
    // A lower curve takes over where it is lower.
    let lower = LogCurve { point: 8, ln_flops: vec![50f64.ln(), 200f64.ln()], ln_loss: vec![0.5, 0.5] };
    lower_with_curve(&mut best, &grid, &lower);
    assert_eq!(best[1].1, 8);
}

#[test]
fn one_size_on_the_frontier_is_too_few() {
    let data = Dataset::from_points("p", vec![point("a".into(), 1e8, 1e9, 3.0), point("b".into(), 1e8, 2e9, 2.9)]);
    let error = fit_approach1(&data, &[1.0, 1.0]).err().map(|e| e.to_string());
    assert!(error.as_deref().is_some_and(|e| e.contains("3+ model sizes")), "{error:?}");
}
