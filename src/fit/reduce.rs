//! Repeated configurations (`--reduce`): rows that share (N, D) (and the unique tokens U, where
//! given: the same N and D on less unique data is a different run) are combined before fitting,
//! so that a sweep that tried several learning rates per (N, D), or several seeds, is not
//! fitted as independent points. By default (`auto`) rows that differ in a hyperparameter
//! column keep the lowest loss (the best setting tried, as the laws assume tuned runs) and
//! seeds of one configuration are averaged; the pooled standard deviation between seeds is the
//! noise floor the verdicts compare against.

use std::collections::BTreeMap;

use crate::fit::data::Dataset;
use crate::fit::options::Reduce;

/// Hyperparameter columns whose differing values make rows different configurations.
pub(crate) const HYPERPARAMETERS: [&str; 10] = [
    "lr",
    "learning_rate",
    "peak_lr",
    "batch_size",
    "warmup",
    "warmup_steps",
    "weight_decay",
    "beta2",
    "schedule",
    "hyperparameters",
];

/// What a row is besides its (N, D): its hyperparameter cells and its seed.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RowConfig {
    pub hyperparameters: String,
    pub seed: Option<String>,
}

/// Combines the points sharing (N, D, U) (to about 1e-9 relative) under `rule`; `configs[i]` belongs
/// to `data.points[i]`. Sets `data.reduced` (what was done) and `data.noise_floor`.
pub(crate) fn reduce(data: &mut Dataset, configs: &[RowConfig], rule: Reduce) {
    if rule == Reduce::None || configs.len() != data.points.len() {
        return;
    }
    let key = |i: usize| {
        let p = &data.points[i];
        (p.params.to_bits() >> 20, p.tokens.to_bits() >> 20, p.unique_tokens.unwrap_or(p.tokens).to_bits() >> 20)
    };
    let mut groups: BTreeMap<(u64, u64, u64), Vec<usize>> = BTreeMap::new();
    for i in 0..data.points.len() {
        groups.entry(key(i)).or_default().push(i);
    }
    if groups.values().all(|g| g.len() == 1) {
        return;
    }
    let rows = data.points.len();
    let (mut seed_sq, mut seed_dof, mut settings_reduced, mut seeds_reduced) = (0.0, 0usize, 0usize, 0usize);
    let mut drop = Vec::new();
    for group in groups.values().filter(|g| g.len() > 1) {
        // Within the group: configurations (hyperparameter cells) each averaged over seeds.
        let mut by_config: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for &i in group {
            let config = if rule == Reduce::Auto { configs[i].hyperparameters.clone() } else { String::new() };
            by_config.entry(config).or_default().push(i);
        }
        let mut best: Option<(usize, f64)> = None;
        for members in by_config.values() {
            let losses: Vec<f64> = members.iter().map(|&i| data.points[i].loss).collect();
            let mean = losses.iter().sum::<f64>() / losses.len() as f64;
            let value = match rule {
                Reduce::Min => losses.iter().copied().fold(f64::INFINITY, f64::min),
                _ => mean,
            };
            if members.len() > 1 && rule != Reduce::Min {
                seeds_reduced += 1;
                seed_sq += losses.iter().map(|l| (l - mean).powi(2)).sum::<f64>();
                seed_dof += members.len() - 1;
            }
            if best.is_none_or(|(_, b)| value < b) {
                best = Some((members[0], value));
            }
        }
        if by_config.len() > 1 {
            settings_reduced += 1;
        }
        let Some((keep, value)) = best else { continue };
        let keep = if rule == Reduce::Mean { group[0] } else { keep };
        let value = if rule == Reduce::Mean {
            group.iter().map(|&i| data.points[i].loss).sum::<f64>() / group.len() as f64
        } else {
            value
        };
        data.points[keep].loss = value;
        drop.extend(group.iter().copied().filter(|&i| i != keep));
    }
    let groups_count = groups.len();
    data.remove_points(&drop, "combined with the other rows of its (N, D) (--reduce)");
    let what = match rule {
        Reduce::Auto => format!(
            "lowest loss over hyperparameter settings in {settings_reduced} group(s), mean over seeds in {seeds_reduced}"
        ),
        Reduce::Min => "lowest loss of each group".to_string(),
        Reduce::Mean => "mean loss of each group".to_string(),
        Reduce::None => String::new(),
    };
    data.reduced = Some(format!("{rows} rows in {groups_count} (N, D) groups: {what} (--reduce {})", rule.as_str()));
    if seed_dof > 0 {
        data.noise_floor = Some((seed_sq / seed_dof as f64).sqrt());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::tests::synth::point;

    #[test]
    fn learning_rates_keep_the_best_and_seeds_are_averaged() {
        let mut points = Vec::new();
        let mut configs = Vec::new();
        // (N, D) = (1e6, 1e8): lr 1e-3 seeds 0, 1 (3.0, 3.2) and lr 1e-2 seed 0 (4.0).
        for (loss, lr, seed) in [(3.0, "1e-3", "0"), (3.2, "1e-3", "1"), (4.0, "1e-2", "0")] {
            points.push(point(format!("lr{lr}-s{seed}"), 1e6, 1e8, loss));
            configs.push(RowConfig { hyperparameters: lr.to_string(), seed: Some(seed.to_string()) });
        }
        points.push(point("other".into(), 2e6, 1e8, 2.5));
        configs.push(RowConfig::default());
        let mut data = Dataset::from_points("p", points.clone());
        reduce(&mut data, &configs, Reduce::Auto);
        assert_eq!(data.points.len(), 2);
        assert!((data.points[0].loss - 3.1).abs() < 1e-12, "{:?}", data.points);
        assert!(data.reduced.as_deref().is_some_and(|r| r.contains("4 rows in 2 (N, D) groups")), "{:?}", data.reduced);
        // One seed pair differing by 0.2: pooled standard deviation 0.2 / sqrt 2.
        assert!((data.noise_floor.unwrap_or(0.0) - 0.2 / 2f64.sqrt()).abs() < 1e-12);
        let mut data = Dataset::from_points("p", points.clone());
        reduce(&mut data, &configs, Reduce::Min);
        assert_eq!(data.points[0].loss, 3.0);
        let mut data = Dataset::from_points("p", points.clone());
        reduce(&mut data, &configs, Reduce::Mean);
        assert!((data.points[0].loss - 3.4).abs() < 1e-12);
        let mut data = Dataset::from_points("p", points);
        reduce(&mut data, &configs, Reduce::None);
        assert_eq!(data.points.len(), 4);
    }

    #[test]
    fn runs_on_different_unique_data_are_different_configurations() {
        // Two epochs of 1e9 unique tokens and one epoch of 2e9: the same (N, D), not the same run.
        let mut twice = point("u1e9-x2".into(), 1e8, 2e9, 3.1);
        twice.unique_tokens = Some(1e9);
        let mut once = point("u2e9-x1".into(), 1e8, 2e9, 3.0);
        once.unique_tokens = Some(2e9);
        let mut seed = once.clone();
        seed.run_id = "u2e9-x1-seed1".into();
        seed.loss = 3.2;
        let configs = vec![RowConfig::default(); 3];
        let mut data = Dataset::from_points("p", vec![twice, once, seed]);
        reduce(&mut data, &configs, Reduce::Auto);
        assert_eq!(data.points.len(), 2, "{:?}", data.points);
        assert_eq!(data.points[0].loss, 3.1);
        assert!((data.points[1].loss - 3.1).abs() < 1e-12, "{:?}", data.points);
    }
}
