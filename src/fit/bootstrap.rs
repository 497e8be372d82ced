//! Bootstrap over runs (Efron 1979): each resample draws as many runs as there are, with
//! replacement, and every law is refitted with each run weighted by how often it was drawn.
//! Refits of the iteratively fitted laws start from the full-data optimum (as Besiroglu et
//! al. 2024 do) and from a few further distinct near-optimal end points of the full-data grid
//! search (see `chinchilla::BOOTSTRAP_STARTS`), the lowest end winning, so that a direction the
//! data leave flat shows as a wide interval rather than the warm start's neighbourhood. The 95%
//! intervals are the 2.5th and 97.5th percentiles of the refitted values; for positive scale
//! parameters (A, B, N_c, D_c, C_c, R*, N_opt, D_opt) the percentiles are taken of the
//! logarithms (the distributions are skewed: an interval of A is a factor, not a ± span).

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::records::fit::{Intervals, Values};
use crate::rng::SplitMix64;

/// A law's refit on resample weights: the values to put intervals on, `None` if it failed.
pub(crate) type Refit<'a> = Box<dyn Fn(&[f64]) -> Option<Values> + Sync + 'a>;

/// The refitted values of one law over all resamples.
#[derive(Debug, Clone, Default)]
pub(crate) struct Draws {
    pub values: Vec<Values>,
    pub failed: usize,
}

/// How often each of `n` runs is drawn in resample `index` (its own random stream).
pub(crate) fn resample_weights(n: usize, seed: u64, index: usize) -> Vec<f64> {
    let mut rng = SplitMix64::stream(seed, index as u64);
    let mut weights = vec![0.0; n];
    for _ in 0..n {
        weights[rng.below(n as u64) as usize] += 1.0;
    }
    weights
}

/// Runs every refit on `resamples` resamples of `n` runs, in parallel over resamples; with
/// `progress`, an indicatif bar on stderr counts the resamples.
pub(crate) fn run(n: usize, resamples: usize, seed: u64, refits: &[Refit<'_>], progress: bool) -> Vec<Draws> {
    let bar = if progress {
        let bar = ProgressBar::new(resamples as u64);
        if let Ok(style) = ProgressStyle::with_template("bootstrap {bar:30} {pos}/{len} resamples, ETA {eta}") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let per_resample: Vec<Vec<Option<Values>>> = (0..resamples)
        .into_par_iter()
        .map(|index| {
            let weights = resample_weights(n, seed, index);
            let values = refits.iter().map(|refit| refit(&weights)).collect();
            bar.inc(1);
            values
        })
        .collect();
    bar.finish_and_clear();
    let mut draws = vec![Draws::default(); refits.len()];
    for outcome in per_resample {
        for (law, values) in outcome.into_iter().enumerate() {
            match values {
                Some(v) if v.values().all(|x| x.is_finite()) => draws[law].values.push(v),
                _ => draws[law].failed += 1,
            }
        }
    }
    draws
}

/// The p-th quantile (0..1) of sorted values, linear between order statistics.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let position = p * (sorted.len() - 1) as f64;
    let (low, high) = (position.floor() as usize, position.ceil() as usize);
    sorted[low] + (position - low as f64) * (sorted[high] - sorted[low])
}

/// Every value's refits, by name.
fn columns(draws: &Draws) -> Vec<(String, Vec<f64>)> {
    let Some(first) = draws.values.first() else {
        return Vec::new();
    };
    first
        .keys()
        .map(|name| {
            let column = draws.values.iter().filter_map(|v| v.get(name).copied()).collect();
            (name.clone(), column)
        })
        .collect()
}

/// The positive scale parameters, whose intervals are taken in log space.
pub(crate) const SCALES: [&str; 9] = ["A", "B", "N_c", "D_c", "C_c", "R_D_star", "R_N_star", "N_opt", "D_opt"];

/// Whether `name` is a positive scale parameter (see `SCALES`).
pub(crate) fn is_scale(name: &str) -> bool {
    SCALES.contains(&name)
}

/// 95% percentile intervals of every value (empty with fewer than 2 successful refits); of
/// the logarithm for positive scale parameters.
pub(crate) fn intervals(draws: &Draws) -> Intervals {
    let mut result = Intervals::new();
    for (name, mut column) in columns(draws) {
        if column.len() < 2 {
            continue;
        }
        let log = is_scale(&name) && column.iter().all(|&v| v > 0.0);
        if log {
            column.iter_mut().for_each(|v| *v = v.ln());
        }
        column.sort_by(f64::total_cmp);
        let [low, high] = [quantile(&column, 0.025), quantile(&column, 0.975)];
        result.insert(name, if log { [low.exp(), high.exp()] } else { [low, high] });
    }
    result
}

/// Standard deviation of log10 of every positive scale parameter over the refits.
pub(crate) fn log10_standard_errors(draws: &Draws) -> Values {
    let logged = Draws {
        values: draws
            .values
            .iter()
            .map(|v| v.iter().filter(|(k, &x)| is_scale(k) && x > 0.0).map(|(k, x)| (k.clone(), x.log10())).collect())
            .collect(),
        failed: draws.failed,
    };
    standard_errors(&logged)
}

/// Standard deviation of every value over the refits.
pub(crate) fn standard_errors(draws: &Draws) -> Values {
    let mut result = Values::new();
    for (name, column) in columns(draws) {
        if column.len() >= 2 {
            let n = column.len() as f64;
            let mean = column.iter().sum::<f64>() / n;
            let variance = column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
            result.insert(name, variance.sqrt());
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resamples_draw_n_runs_and_differ_by_index() {
        let first = resample_weights(50, 3, 0);
        assert_eq!(first.iter().sum::<f64>(), 50.0);
        assert_eq!(first, resample_weights(50, 3, 0));
        assert_ne!(first, resample_weights(50, 3, 1));
    }

    #[test]
    fn interval_of_the_mean_matches_the_normal_approximation() {
        // Mean of 400 draws of N(0, 1): standard error 0.05, 95% interval about +-0.098.
        let mut rng = SplitMix64::new(11);
        let data: Vec<f64> = (0..400).map(|_| rng.normal()).collect();
        let mean_of = |w: &[f64]| {
            let total: f64 = w.iter().sum();
            let mean = data.iter().zip(w).map(|(x, k)| x * k).sum::<f64>() / total;
            Some(Values::from([("mean".to_string(), mean)]))
        };
        let refits: Vec<Refit<'_>> = vec![Box::new(mean_of)];
        let draws = run(data.len(), 2000, 5, &refits, false);
        assert_eq!(draws[0].failed, 0);
        let se = standard_errors(&draws[0])["mean"];
        let [low, high] = intervals(&draws[0])["mean"];
        assert!((se - 0.05).abs() < 0.006, "se {se}");
        assert!(((high - low) / 2.0 - 1.96 * 0.05).abs() < 0.015, "[{low}, {high}]");
    }

    #[test]
    fn scale_intervals_are_percentiles_of_the_logarithm() {
        // 5 refits of A at 1, 10, 100, 1000, 10000: the median in log space is 100.
        let values: Vec<Values> =
            [1.0, 10.0, 100.0, 1000.0, 10000.0].iter().map(|&a| Values::from([("A".to_string(), a)])).collect();
        let draws = Draws { values, failed: 0 };
        let [low, high] = intervals(&draws)["A"];
        // Position 0.025 * 4 = 0.1 between log 1 and log 10: 10^0.1.
        assert!((low - 10f64.powf(0.1)).abs() < 1e-9 && (high - 10f64.powf(3.9)).abs() < 1e-6, "[{low}, {high}]");
        let se = log10_standard_errors(&draws)["A"];
        assert!((se - 2.5f64.sqrt()).abs() < 1e-12, "{se}");
    }
}
