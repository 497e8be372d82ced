//! Expands a sweep config into its runs: the model sizes of the grid, the budgets (tokens,
//! tokens per parameter, or IsoFLOP: D = C / flops_per_token), per-size hyperparameters, seeds,
//! stable run ids, and optionally WSD trunks with their cooldown branches (Hägele et al. 2024).

use crate::config::SweepConfig;
use crate::counting::ParamCount;
use crate::model::{FlopConvention, ModelShape};

/// The family's model (`[model]`: head_dim, seq_len, mlp, tied embeddings) at one width and depth.
pub(crate) fn family_shape(config: &SweepConfig, vocab_size: usize, d_model: usize, n_layers: usize) -> ModelShape {
    let f = &config.model;
    ModelShape {
        vocab_size,
        d_model,
        n_layers,
        n_heads: d_model / f.head_dim,
        seq_len: f.seq_len,
        mlp: f.mlp,
        tie_embeddings: f.tie_embeddings,
    }
}

pub mod centre;
pub mod checks;
pub mod memory;
pub mod resolve;
pub mod spec;

/// The planned runs and plan.json are stored types: they live with their reader in `records`.
pub use crate::records::plan::{Plan, RunRole, RunSpec, PLAN_VERSION};
pub use resolve::load_sweep_config;
pub use spec::RunIdentity;

impl Plan {
    /// Compute (6n convention unless the sweep says otherwise) of every run as planned.
    pub fn total_flops(&self, convention: FlopConvention) -> f64 {
        self.runs.iter().map(|r| run_flops(r, convention)).sum()
    }

    /// FLOPs WSD branching saves against training every branch as an independent run.
    pub fn flops_saved_by_branching(&self, convention: FlopConvention) -> f64 {
        let independent: f64 = self
            .runs
            .iter()
            .filter(|r| matches!(r.role, RunRole::Branch { .. }))
            .map(|r| run_flops(r, convention))
            .sum();
        let trained: f64 = self
            .runs
            .iter()
            .map(|r| match &r.role {
                RunRole::Independent => 0.0,
                RunRole::Trunk { .. } => run_flops(r, convention),
                RunRole::Branch { from_step, .. } => {
                    run_flops(r, convention) * (1.0 - *from_step as f64 / r.steps as f64)
                }
            })
            .sum();
        (independent - trained).max(0.0)
    }
}

/// The key a sweep's token budget for `shape` comes from, as an error names it.
fn token_budget_key(config: &SweepConfig, shape: &ModelShape) -> String {
    if config.budget.tokens_per_param.is_some() {
        format!("budget.tokens_per_param (for {})", size_label(shape))
    } else {
        "budget.tokens".to_string()
    }
}

/// Compute of one run as planned.
pub fn run_flops(spec: &RunSpec, convention: FlopConvention) -> f64 {
    spec.shape.flops_per_token_for(convention) * spec.tokens as f64
}

/// Expands a validated sweep config; the error names the key that makes the plan impossible.
/// The plan's warnings include the design checks of `checks::design_warnings`.
pub fn expand(config: &SweepConfig) -> Result<Plan, String> {
    let sizes = size_budgets(config)?;
    let mut warnings = Vec::new();
    let mut runs = Vec::new();
    let seeds = unique_seeds(&config.seeds, &mut warnings);
    if config.grid.centre.is_none() {
        warnings.extend(duplicate_sizes(config, &sizes));
    }
    for (seed_index, &seed) in seeds.iter().enumerate() {
        for (shape, budgets) in &sizes {
            if seed_index > 0
                && config
                    .seeds_for_sizes_below
                    .is_some_and(|below| params_of(shape, &config.budget.param_count).is_ok_and(|n| n as f64 >= below))
            {
                continue;
            }
            let specs = budgets
                .iter()
                .flat_map(|&(tokens, flop_budget)| unique_axis(config).map(move |u| (tokens, flop_budget, u)))
                .filter_map(|(tokens, flop_budget, unique)| {
                    let id = run_id_with_unique(shape, tokens, flop_budget, unique, seed);
                    let who = identity(config, id, seed, unique);
                    match config.train.spec_for(who, shape.clone(), tokens, flop_budget) {
                        Ok(spec) => Some(Ok(spec)),
                        // A FLOP budget too small for one step of this size leaves the size out of that
                        // budget (the message names the budget, the size and the tokens it gets).
                        Err(e) if flop_budget.is_some() && e.contains(spec::LESS_THAN_ONE_STEP) => {
                            warnings.push(format!("{e}; size left out of this budget"));
                            None
                        }
                        // spec_for names a single run's key; a sweep's budgets come from [budget].
                        Err(e) => Some(Err(e.replacen("train.tokens", &token_budget_key(config, shape), 1))),
                    }
                })
                .collect::<Result<Vec<_>, String>>()?;
            let specs = dedupe(specs, &mut warnings);
            if config.budget.wsd_branching && specs.len() > 1 {
                runs.extend(branch(config, specs, seed)?);
            } else {
                runs.extend(specs);
            }
        }
    }
    if runs.is_empty() {
        return Err("budget: no run fits (every budget is smaller than one step of every size)".into());
    }
    warnings.extend(checks::design_warnings(config, &runs)?);
    Ok(Plan {
        format_version: PLAN_VERSION,
        sweep: config.name.clone(),
        config_hash: config_hash(config),
        runs,
        warnings,
    })
}

/// Every size of the sweep with its (tokens, FLOP budget) pairs, smallest size first: the grid's
/// sizes with every budget, or for a centred grid each budget's own sizes.
/// A size and its budgets: (tokens, the FLOP budget it came from in IsoFLOP sweeps).
type SizeBudgets = (ModelShape, Vec<(u64, Option<f64>)>);

fn size_budgets(config: &SweepConfig) -> Result<Vec<SizeBudgets>, String> {
    if config.grid.centre.is_none() {
        return model_sizes(config)?.into_iter().map(|s| budgets_for(config, &s).map(|b| (s, b))).collect();
    }
    let mut out: Vec<SizeBudgets> = Vec::new();
    for &c in config.budget.flops.iter().flatten() {
        for shape in centre::centred_shapes(config, c)? {
            let tokens = (c / shape.flops_per_token_for(config.budget.flop_convention)).round() as u64;
            match out.iter_mut().find(|(s, _)| *s == shape) {
                Some((_, budgets)) => budgets.push((tokens, Some(c))),
                None => out.push((shape, vec![(tokens, Some(c))])),
            }
        }
    }
    for (_, budgets) in &mut out {
        budgets.sort_by_key(|(t, _)| *t);
    }
    out.sort_by_key(|(s, _)| (s.params_nonembedding(), s.n_layers));
    Ok(out)
}

/// The seeds in their order, each once; a repeated seed would plan the same runs twice.
fn unique_seeds(seeds: &[u64], warnings: &mut Vec<String>) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for &seed in seeds {
        if out.contains(&seed) {
            warnings.push(format!("seeds lists seed {seed} more than once; its runs are planned once"));
        } else {
            out.push(seed);
        }
    }
    out
}

fn identity(config: &SweepConfig, run_id: String, seed: u64, unique_tokens: Option<u64>) -> RunIdentity {
    RunIdentity {
        run_id,
        seed,
        device: config.device.clone(),
        precision: config.precision.clone(),
        data: config.data.clone(),
        unique_tokens,
    }
}

/// The values of the unique-token axis: each U of `budget.unique_tokens`, or just "all data".
fn unique_axis(config: &SweepConfig) -> impl Iterator<Item = Option<u64>> + '_ {
    let values: Vec<Option<u64>> = match &config.budget.unique_tokens {
        Some(list) => list.iter().map(|&u| Some(u)).collect(),
        None => vec![None],
    };
    values.into_iter()
}

/// The model sizes of the grid, in order of increasing non-embedding parameters.
pub fn model_sizes(config: &SweepConfig) -> Result<Vec<ModelShape>, String> {
    if config.grid.centre.is_some() {
        return Ok(size_budgets(config)?.into_iter().map(|(s, _)| s).collect());
    }
    let vocab_size = config.data.vocab_size()?;
    let f = &config.model;
    let pairs: Vec<(usize, usize)> = match (&config.grid.d_model, config.grid.aspect_ratio) {
        (Some(widths), _) => widths.iter().flat_map(|&d| config.grid.n_layers.iter().map(move |&l| (d, l))).collect(),
        (None, Some(ratio)) => {
            config.grid.n_layers.iter().map(|&l| ((ratio * l).div_ceil(f.head_dim) * f.head_dim, l)).collect()
        }
        (None, None) => return Err("grid: give d_model or aspect_ratio".into()),
    };
    let mut shapes = Vec::new();
    for (d_model, n_layers) in pairs {
        if d_model % f.head_dim != 0 {
            return Err(format!("grid.d_model = {d_model} is not a multiple of model.head_dim = {}", f.head_dim));
        }
        let shape = family_shape(config, vocab_size, d_model, n_layers);
        shape.validate()?;
        if !shapes.contains(&shape) {
            shapes.push(shape);
        }
    }
    shapes.sort_by_key(|s| (s.params_nonembedding(), s.n_layers));
    Ok(shapes)
}

/// A depth or width the grid lists more than once: `model_sizes` plans each shape once, as a
/// repeated seed or budget is planned once, and says so (a warning, so `--strict` refuses it).
/// (A centred grid's targets that round to one shape are one size by design: they are not listed.)
fn duplicate_sizes(config: &SweepConfig, sizes: &[SizeBudgets]) -> Vec<String> {
    let widths = config.grid.d_model.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    for (key, list, of) in [
        ("grid.n_layers", config.grid.n_layers.as_slice(), (|s: &ModelShape| s.n_layers) as fn(&ModelShape) -> usize),
        ("grid.d_model", widths, |s: &ModelShape| s.d_model),
    ] {
        let mut repeated: Vec<usize> = Vec::new();
        for (i, value) in list.iter().enumerate() {
            if list[..i].contains(value) && !repeated.contains(value) {
                repeated.push(*value);
            }
        }
        for value in repeated {
            let shapes: Vec<String> =
                sizes.iter().filter(|(s, _)| of(s) == value).map(|(s, _)| size_label(s)).collect();
            out.push(format!(
                "{key} lists {value} more than once; its size(s) {} are planned once",
                crate::human::first_of(&shapes, 4)
            ));
        }
    }
    out
}

/// The N a sweep's `param_count` names; an unknown name is an error, not a silent default.
pub fn params_of(shape: &ModelShape, param_count: &str) -> Result<u64, String> {
    let count: ParamCount = param_count.parse().map_err(|e| format!("budget.param_count: {e}"))?;
    Ok(shape.params(count))
}

/// (tokens, FLOP budget) pairs for one size, smallest first.
fn budgets_for(config: &SweepConfig, shape: &ModelShape) -> Result<Vec<(u64, Option<f64>)>, String> {
    let b = &config.budget;
    let mut out: Vec<(u64, Option<f64>)> = if let Some(tokens) = &b.tokens {
        tokens.iter().map(|&t| (t, None)).collect()
    } else if let Some(ratios) = &b.tokens_per_param {
        let n = params_of(shape, &b.param_count)? as f64;
        ratios.iter().map(|r| ((r * n).round() as u64, None)).collect()
    } else {
        let per_token = shape.flops_per_token_for(b.flop_convention);
        b.flops.iter().flatten().map(|&c| ((c / per_token).round() as u64, Some(c))).collect()
    };
    out.sort_by_key(|(t, _)| *t);
    Ok(out)
}

/// Stable, directory-safe run id: `L{layers}-d{width}-D{tokens}-s{seed}`, prefixed by `C{budget}-`
/// for IsoFLOP runs.
pub fn run_id(shape: &ModelShape, tokens: u64, flop_budget: Option<f64>, seed: u64) -> String {
    run_id_with_unique(shape, tokens, flop_budget, None, seed)
}

/// `run_id` with a `-U{unique tokens}` part before the seed for data-constrained runs.
pub fn run_id_with_unique(
    shape: &ModelShape,
    tokens: u64,
    flop_budget: Option<f64>,
    unique_tokens: Option<u64>,
    seed: u64,
) -> String {
    let unique = unique_tokens.map(|u| format!("-U{u}")).unwrap_or_default();
    let base = format!("L{}-d{}-D{}{unique}-s{}", shape.n_layers, shape.d_model, tokens, seed);
    match flop_budget {
        Some(c) => format!("C{c:e}-{base}"),
        None => base,
    }
}

/// `L{layers}-d{width}`: a size as run ids and warnings name it.
pub(crate) fn size_label(shape: &ModelShape) -> String {
    crate::model::size_label(shape.n_layers, shape.d_model)
}

/// Drops runs that round to the same id (two budgets giving the same number of steps).
fn dedupe(specs: Vec<RunSpec>, warnings: &mut Vec<String>) -> Vec<RunSpec> {
    let mut out: Vec<RunSpec> = Vec::new();
    for spec in specs {
        if out.iter().any(|s| {
            s.tokens == spec.tokens && s.flop_budget == spec.flop_budget && s.unique_tokens == spec.unique_tokens
        }) {
            warnings.push(format!("{}: two budgets give the same run; kept once", spec.run_id));
        } else {
            out.push(spec);
        }
    }
    out
}

/// One trunk per size and seed, then a branch per budget that cools down from the trunk's
/// checkpoint at (its steps − its cooldown steps). All share the warmup of the smallest budget.
fn branch(config: &SweepConfig, specs: Vec<RunSpec>, seed: u64) -> Result<Vec<RunSpec>, String> {
    let crate::config::ScheduleConfig::Wsd { warmup_fraction, cooldown_fraction, .. } = config.train.schedule else {
        return Err("budget.wsd_branching needs [train.schedule] kind = \"wsd\"".into());
    };
    let warmup_steps = (warmup_fraction * specs[0].steps as f64).round() as u64;
    let branch_point = |s: &RunSpec| s.steps - (cooldown_fraction * s.steps as f64).round() as u64;
    let mut branch_points: Vec<u64> = specs.iter().map(branch_point).collect();
    branch_points.dedup();
    let last = *branch_points.last().unwrap_or(&0);
    if branch_points.first().is_some_and(|&p| p <= warmup_steps) {
        return Err("budget.wsd_branching: the smallest budget's cooldown starts inside the warmup".into());
    }
    let mut trunk = specs[specs.len() - 1].clone();
    let tokens_per_step = trunk.tokens / trunk.steps;
    trunk.run_id = format!("L{}-d{}-trunk-s{seed}", trunk.shape.n_layers, trunk.shape.d_model);
    trunk.steps = last;
    trunk.tokens = last * tokens_per_step;
    trunk.flop_budget = None;
    trunk.role = RunRole::Trunk { warmup_steps, branch_points: branch_points.clone() };
    let mut out = vec![trunk.clone()];
    for mut spec in specs {
        spec.role = RunRole::Branch { trunk: trunk.run_id.clone(), from_step: branch_point(&spec), warmup_steps };
        out.push(spec);
    }
    Ok(out)
}

/// Compute-optimal N for C under Chinchilla's approach 3 as refitted by Besiroglu et al. 2024
/// (E = 1.82, A = 482.01, B = 2085.43, α = 0.3478, β = 0.3658): N_opt = G·(C/6)^(β/(α+β)),
/// G = (αA/(βB))^(1/(α+β)) (Hoffmann et al. 2022, eq. 4).
pub fn chinchilla_n_opt(flops: f64) -> f64 {
    let (a_coef, b_coef, alpha, beta): (f64, f64, f64, f64) = (482.01, 2085.43, 0.3478, 0.3658);
    let g = (alpha * a_coef / (beta * b_coef)).powf(1.0 / (alpha + beta));
    g * (flops / 6.0).powf(beta / (alpha + beta))
}

/// SHA-256 of the config's canonical JSON form.
pub fn config_hash(config: &SweepConfig) -> String {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_string(config).unwrap_or_default();
    let digest = Sha256::digest(json.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
