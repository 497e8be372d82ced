//! `sweeplaw tune CONFIG`: learning rates tuned per model size before a sweep, because an lr
//! fixed across sizes is one of the causes of a biased exponent (Porian et al. 2024, section 4).
//!
//! A few sizes spanning the sweep's grid each train short runs at log-spaced learning rates
//! (×`lr_step`, default √2). Per size a parabola in log lr through the best rate and its
//! neighbours locates the optimum; a line in log-log through the optima gives the rule
//! lr*(N) = c·N^γ, written to tuned.json, which a sweep with `hyperparameters = "tuned"` reads.
//! The tuning runs are a sweep of their own (`<results>/<name>-tune/`), trained, resumed and
//! recorded by the sweep machinery like any other; their cost is checked against the sweep's
//! before anything trains (docs/sweep-design.md "Tuning the learning rate").

use std::path::{Path, PathBuf};

use crate::config::{HyperRule, LrRule, SweepConfig};
use crate::error::{Error, Result};
use crate::fit::regress::{fit_line, fit_parabola};
use crate::model::ModelShape;
use crate::plan::{config_hash, expand, params_of, run_flops, Plan, PLAN_VERSION};
use crate::plan::{RunIdentity, RunSpec};
use crate::records::tuned::{TuneCost, TunedSize, TunedTable, TUNED_VERSION};
use crate::records::{RunRecord, RunStatus};

/// One tuned size: its shape, its N, its tokens, and its runs' ids by learning rate.
pub type SizeRuns = (ModelShape, u64, u64, Vec<(f64, String)>);

/// Options of `sweeplaw tune`.
pub struct TuneOptions {
    pub config: PathBuf,
    pub results: PathBuf,
    pub quiet: bool,
}

/// The tuning plan of a sweep config: its runs, the sweep's FLOPs and where tuned.json goes.
pub struct TunePlan {
    pub config: SweepConfig,
    pub plan: Plan,
    pub cost: TuneCost,
    /// (shape, its N, tokens, its runs' ids by lr) per tuned size.
    pub sizes: Vec<SizeRuns>,
    pub table_path: PathBuf,
    /// Why `tune` refuses to train this plan: it would cost more than tune.max_cost_fraction of
    /// the sweep. `tune --dry-run` still shows the runs and the cost, with this beside them.
    pub over_budget: Option<String>,
}

/// Plans the tuning runs of the sweep at `config_path`, with their cost against the sweep's
/// (`over_budget` says why `run_tune` would refuse them).
pub fn plan_tuning(config_path: &Path, results: &Path) -> Result<TunePlan> {
    let config = crate::plan::load_sweep_config(config_path)?;
    let bad = |m: String| Error::config(config_path, m);
    let settings = config.tune.clone().unwrap_or_default();
    let centre = settings
        .lr_centre
        .or(config.train.lr)
        .ok_or_else(|| bad("tune needs the middle of its learning-rate scan: tune.lr_centre or train.lr".into()))?;
    let batch_size = config.train.batch_size.ok_or_else(|| bad("tune needs train.batch_size".into()))?;
    // The sweep as it would run at a fixed lr: its sizes and FLOPs do not depend on the lr.
    let mut fixed = config.clone();
    fixed.train.hyperparameters = HyperRule::Fixed;
    fixed.train.lr = Some(centre);
    fixed.train.tuned = None;
    let sweep = expand(&fixed).map_err(bad)?;
    let convention = config.budget.flop_convention;
    let count = config.budget.param_count.as_str();
    let mut shapes: Vec<(ModelShape, u64)> = Vec::new();
    for run in &sweep.runs {
        if !shapes.iter().any(|(s, _)| *s == run.shape) {
            shapes.push((run.shape.clone(), params_of(&run.shape, count).map_err(bad)?));
        }
    }
    shapes.sort_by_key(|(_, n)| *n);
    let chosen = spanning(&shapes, settings.sizes);
    let min_steps = config.checks.clone().unwrap_or_default().min_steps;
    let tokens_per_step = (batch_size * config.model.seq_len) as u64;
    let seed = config.seeds.first().copied().unwrap_or(0);
    let mut runs = Vec::new();
    let mut sizes = Vec::new();
    for (shape, n) in chosen {
        let wanted = ((settings.tokens_per_param * n as f64).round() as u64).max(min_steps * tokens_per_step);
        // Whole steps, so that the run id names the tokens the run trains.
        let tokens = (wanted + tokens_per_step / 2) / tokens_per_step * tokens_per_step;
        let mut ids = Vec::new();
        for j in 0..settings.lrs {
            let lr = centre * settings.lr_step.powf(j as f64 - (settings.lrs - 1) as f64 / 2.0);
            if !(lr > 0.0 && lr.is_finite()) {
                return Err(bad(format!(
                    "tune.lr_step = {:e} over tune.lrs = {} rates around {centre:e} reaches lr = {lr:e}: \
                     every rate scanned must be a positive finite number",
                    settings.lr_step, settings.lrs
                )));
            }
            let mut train = fixed.train.clone();
            train.lr = Some(lr);
            let run_id = format!("L{}-d{}-D{tokens}-lr{lr:.4e}-s{seed}", shape.n_layers, shape.d_model);
            let who = RunIdentity {
                run_id: run_id.clone(),
                seed,
                device: config.device.clone(),
                precision: config.precision.clone(),
                data: config.data.clone(),
                unique_tokens: None,
            };
            let spec: RunSpec = train.spec_for(who, shape.clone(), tokens, None).map_err(bad)?;
            ids.push((lr, run_id));
            runs.push(spec);
        }
        sizes.push((shape, n, tokens, ids));
    }
    let tune_flops: f64 = runs.iter().map(|r| run_flops(r, convention)).sum();
    let sweep_flops = sweep.total_flops(convention);
    let cost = TuneCost { tune_flops, sweep_flops, fraction: tune_flops / sweep_flops };
    let over_budget = (cost.fraction > settings.max_cost_fraction).then(|| {
        format!(
            "tuning would cost {tune_flops:.3e} FLOPs, {:.1}% of the sweep's {sweep_flops:.3e} \
             (tune.max_cost_fraction = {}): lower tune.tokens_per_param, tune.sizes or tune.lrs",
            100.0 * cost.fraction,
            settings.max_cost_fraction
        )
    });
    let table_path = match &config.train.tuned_table {
        Some(file) => config_path.parent().unwrap_or(Path::new(".")).join(file),
        None => results.join(tune_name(&config)).join("tuned.json"),
    };
    let mut identity = config.clone();
    identity.train.tuned = None;
    let plan = Plan {
        format_version: PLAN_VERSION,
        sweep: tune_name(&config),
        config_hash: config_hash(&identity),
        runs,
        warnings: Vec::new(),
    };
    Ok(TunePlan { config, plan, cost, sizes, table_path, over_budget })
}

/// The tuning sweep's name: `<name>-tune`.
pub fn tune_name(config: &SweepConfig) -> String {
    format!("{}-tune", config.name)
}

/// `count` shapes log-spaced in N from the smallest to the largest (each the nearest in log).
fn spanning(shapes: &[(ModelShape, u64)], count: usize) -> Vec<(ModelShape, u64)> {
    let (Some(first), Some(last)) = (shapes.first(), shapes.last()) else { return Vec::new() };
    let (lo, hi) = ((first.1 as f64).ln(), (last.1 as f64).ln());
    let mut out: Vec<(ModelShape, u64)> = Vec::new();
    for i in 0..count {
        let target = if count == 1 { (lo + hi) / 2.0 } else { lo + (hi - lo) * i as f64 / (count - 1) as f64 };
        let nearest = shapes
            .iter()
            .min_by(|a, b| ((a.1 as f64).ln() - target).abs().total_cmp(&((b.1 as f64).ln() - target).abs()));
        if let Some(pick) = nearest {
            if !out.contains(pick) {
                out.push(pick.clone());
            }
        }
    }
    out
}

/// The optimum of one scan: a parabola in ln lr through the best point and its two neighbours
/// on each side that trained (its vertex, kept inside the scanned range), or the best lr itself
/// when it lies at an edge or the parabola does not open upward. Returns (lr, at_edge).
pub fn scan_optimum(lrs: &[f64], losses: &[Option<f64>]) -> Option<(f64, bool)> {
    let best = (0..lrs.len())
        .filter(|&i| losses[i].is_some_and(f64::is_finite))
        .min_by(|&a, &b| losses[a].unwrap_or(f64::INFINITY).total_cmp(&losses[b].unwrap_or(f64::INFINITY)))?;
    if best == 0 || best + 1 == lrs.len() {
        return Some((lrs[best], true));
    }
    let window: Vec<usize> = (best.saturating_sub(2)..(best + 3).min(lrs.len()))
        .filter(|&i| losses[i].is_some_and(f64::is_finite))
        .collect();
    let x: Vec<f64> = window.iter().map(|&i| lrs[i].ln()).collect();
    let y: Vec<f64> = window.iter().map(|&i| losses[i].unwrap_or(f64::NAN)).collect();
    let vertex = fit_parabola(&x, &y, &vec![1.0; x.len()]).and_then(|p| p.minimum()).map(|(v, _)| v);
    let (lo, hi) = (lrs[best - 1].ln(), lrs[best + 1].ln());
    Some((vertex.map_or(lrs[best], |v| v.clamp(lo, hi).exp()), false))
}

/// Reads the tuning runs' losses, fits each size's optimum and the rule across sizes.
pub fn fit_table(tune: &TunePlan, sweep_dir: &Path) -> Result<TunedTable> {
    let mut sizes = Vec::new();
    let mut warnings = Vec::new();
    for (shape, n, tokens, ids) in &tune.sizes {
        let lrs: Vec<f64> = ids.iter().map(|(lr, _)| *lr).collect();
        let val_losses: Vec<Option<f64>> = ids
            .iter()
            .map(|(_, id)| {
                let record = RunRecord::read(&sweep_dir.join("runs").join(id).join("run.json")).ok()?;
                if record.status != RunStatus::Done {
                    return None;
                }
                record.result.and_then(|r| r.val_loss).filter(|v| v.is_finite())
            })
            .collect();
        let label = crate::plan::size_label(shape);
        let Some((lr_opt, at_edge)) = scan_optimum(&lrs, &val_losses) else {
            warnings.push(format!("{label}: no tuning run finished; size left out of the rule"));
            continue;
        };
        if at_edge {
            warnings.push(format!(
                "{label}: the best lr {lr_opt:.3e} is at the edge of the scan {:.3e}..{:.3e}; the optimum may lie \
                 beyond it (move tune.lr_centre or raise tune.lrs)",
                lrs[0],
                lrs[lrs.len() - 1]
            ));
        }
        sizes.push(TunedSize {
            d_model: shape.d_model,
            n_layers: shape.n_layers,
            params: *n,
            tokens: *tokens,
            lrs,
            val_losses,
            lr_opt,
            at_edge,
        });
    }
    if sizes.is_empty() {
        // Name what the runs' records say (a scan too high diverges; one too short fails).
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for (_, id) in tune.sizes.iter().flat_map(|(_, _, _, ids)| ids) {
            let status = RunRecord::read(&sweep_dir.join("runs").join(id).join("run.json"))
                .map_or("not recorded", |r| r.status.as_str());
            match counts.iter_mut().find(|(s, _)| *s == status) {
                Some(entry) => entry.1 += 1,
                None => counts.push((status, 1)),
            }
        }
        let counted: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        return Err(Error::record(
            sweep_dir,
            format!(
                "no tuned size: no tuning run finished with a finite loss ({}); see each run's run.json, and lower \
                 tune.lr_centre if they diverged",
                counted.join(", ")
            ),
        ));
    }
    let x: Vec<f64> = sizes.iter().map(|s| (s.params as f64).ln()).collect();
    let y: Vec<f64> = sizes.iter().map(|s| s.lr_opt.ln()).collect();
    let (exponent, log_coefficient) = match fit_line(&x, &y, &vec![1.0; x.len()]) {
        Some(line) => (line.slope, line.intercept),
        None => {
            warnings.push("one size tuned: the rule is that size's lr for every size (exponent 0)".into());
            (0.0, y.iter().sum::<f64>() / y.len() as f64)
        }
    };
    Ok(TunedTable {
        format_version: TUNED_VERSION,
        sweep: tune.config.name.clone(),
        rule: LrRule {
            coefficient: log_coefficient.exp(),
            exponent,
            param_count: tune.config.budget.param_count.clone(),
        },
        sizes,
        cost: tune.cost.clone(),
        warnings,
    })
}

/// What `sweeplaw tune` did.
pub struct TuneReport {
    pub table: TunedTable,
    pub table_path: PathBuf,
    pub sweep: crate::sweep::SweepReport,
}

/// Plans, trains (through the sweep machinery, resuming like any sweep) and fits the tuning runs,
/// then writes tuned.json where the config's train.tuned_table names (and into the tuning
/// sweep's directory).
pub fn run_tune(options: &TuneOptions) -> Result<TuneReport> {
    let tune = plan_tuning(&options.config, &options.results)?;
    if let Some(refusal) = tune.over_budget {
        return Err(Error::config(&options.config, refusal));
    }
    let sweep_options = crate::sweep::SweepOptions {
        quiet: options.quiet,
        ..crate::sweep::SweepOptions::new(&options.config, &options.results)
    };
    let report = crate::sweep::run_plan(&sweep_options, tune.config.clone(), tune.plan.clone())?;
    let table = fit_table(&tune, &report.sweep_dir)?;
    for path in [&report.sweep_dir.join("tuned.json"), &tune.table_path] {
        crate::records::tuned::write_tuned(path, &table)?;
    }
    Ok(TuneReport { table, table_path: tune.table_path, sweep: report })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_optimum_is_the_vertex_of_the_parabola_in_log_lr() {
        // Loss = 3 + (ln lr − ln 2e-3)²: the vertex is 2e-3 exactly.
        let lrs: Vec<f64> = (0..6).map(|j| 1e-3 * std::f64::consts::SQRT_2.powi(j)).collect();
        let losses: Vec<Option<f64>> = lrs.iter().map(|lr| Some(3.0 + (lr.ln() - 2e-3f64.ln()).powi(2))).collect();
        let (lr, edge) = scan_optimum(&lrs, &losses).unwrap();
        assert!(!edge && (lr / 2e-3 - 1.0).abs() < 1e-9, "{lr}");
        // A diverged run is left out; the best at an edge is reported as such.
        let mut rising = losses.clone();
        rising[5] = None;
        assert!((scan_optimum(&lrs, &rising).unwrap().0 / 2e-3 - 1.0).abs() < 1e-9);
        let falling: Vec<Option<f64>> = (0..6).map(|j| Some(5.0 - j as f64)).collect();
        assert_eq!(scan_optimum(&lrs, &falling), Some((lrs[5], true)));
        assert_eq!(scan_optimum(&lrs, &[None; 6]), None);
    }
}
