//! Expands a sweep config into its runs: the model sizes of the grid, the budgets (tokens,
//! tokens per parameter, or IsoFLOP: D = C / flops_per_token), per-size hyperparameters, seeds,
//! stable run ids, and optionally WSD trunks with their cooldown branches (Hägele et al. 2024).

use serde::{Deserialize, Serialize};

use crate::config::{RunIdentity, RunRole, RunSpec, SweepConfig};
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

/// Version of plan.json.
pub const PLAN_VERSION: u32 = 1;

/// plan.json: every run of the sweep in the order workers take them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub sweep: String,
    /// SHA-256 of the config as parsed: a results directory belongs to one config.
    pub config_hash: String,
    pub runs: Vec<RunSpec>,
    /// Things the user should know (skipped sizes, budgets that do not bracket the optimum).
    pub warnings: Vec<String>,
}

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
                        // A FLOP budget too small for one step of this size leaves the size out of that budget.
                        // (Below one token, the budget's token count rounds to 0: "must be positive".)
                        Err(e)
                            if flop_budget.is_some()
                                && (e.contains("less than one step") || e.contains("must be positive")) =>
                        {
                            warnings.push(format!("{}: {e}; size left out of this budget", size_label(shape)));
                            None
                        }
                        Err(e) => Some(Err(e)),
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

fn size_label(shape: &ModelShape) -> String {
    format!("L{}-d{}", shape.n_layers, shape.d_model)
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
    let crate::train::schedule::ScheduleConfig::Wsd { warmup_fraction, cooldown_fraction, .. } = config.train.schedule
    else {
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
mod tests {
    use super::*;

    fn config(grid: &str, budget: &str, train: &str) -> SweepConfig {
        let text = format!(
            "name = \"t\"\n[data]\nkind = \"synthetic\"\nvocab_size = 256\n[model]\nseq_len = 64\nhead_dim = 16\n\
             [grid]\n{grid}\n[budget]\n{budget}\n[train]\n{train}\n"
        );
        let config: SweepConfig = toml::from_str(&text).unwrap();
        config.validate().unwrap();
        config
    }

    const FIXED: &str = "batch_size = 4\nlr = 1e-3";

    #[test]
    fn grid_is_the_cross_product_sorted_by_size() {
        let plan = expand(&config("n_layers = [2, 1]\nd_model = [64, 32]", "tokens = [25600]", FIXED)).unwrap();
        let ids: Vec<&str> = plan.runs.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["L1-d32-D25600-s0", "L2-d32-D25600-s0", "L1-d64-D25600-s0", "L2-d64-D25600-s0"]);
        assert!(plan.runs.iter().all(|r| r.shape.n_heads == r.shape.d_model / 16 && r.steps == 100));
    }

    #[test]
    fn aspect_ratio_rounds_width_up_to_the_head_dim() {
        let shapes = model_sizes(&config("n_layers = [1, 3]\naspect_ratio = 20", "tokens = [256]", FIXED)).unwrap();
        // 20 → 32 (multiple of 16), 60 → 64.
        assert_eq!(shapes.iter().map(|s| (s.n_layers, s.d_model)).collect::<Vec<_>>(), [(1, 32), (3, 64)]);
    }

    #[test]
    fn budget_arithmetic() {
        // Tokens round to whole steps of 4 × 64 = 256 tokens.
        let plan = expand(&config("n_layers = [1]\nd_model = [32]", "tokens = [1000]", FIXED)).unwrap();
        assert_eq!((plan.runs[0].steps, plan.runs[0].tokens), (4, 1024));
        // Tokens per parameter: D = 20 × N_nonembedding.
        let plan = expand(&config("n_layers = [1]\nd_model = [32]", "tokens_per_param = [20]", FIXED)).unwrap();
        let n = plan.runs[0].shape.params_nonembedding() as f64;
        assert!((plan.runs[0].tokens as f64 - 20.0 * n).abs() <= 128.0);
        // IsoFLOP: D = C / (6 N) for every size of the grid, one budget each.
        let plan = expand(&config("n_layers = [1, 2]\nd_model = [32]", "flops = [1e11]", FIXED)).unwrap();
        for run in &plan.runs {
            let d = 1e11 / run.shape.flops_per_token_for(FlopConvention::SixN);
            assert!((run.tokens as f64 - d).abs() <= 128.0, "{} vs {d}", run.tokens);
            assert_eq!(run.flop_budget, Some(1e11));
            assert!(run.run_id.starts_with("C1e11-L"));
        }
        // A budget smaller than one step is an error naming the key.
        let e = expand(&config("n_layers = [1]\nd_model = [32]", "tokens = [10]", FIXED)).unwrap_err();
        assert!(e.contains("train.tokens") && e.contains("less than one step"), "{e}");
    }

    #[test]
    fn run_ids_are_stable_and_directory_safe() {
        let c = config("n_layers = [1, 2]\nd_model = [32, 48]", "flops = [3.5e10, 1e12]", FIXED);
        let (a, b) = (expand(&c).unwrap(), expand(&c).unwrap());
        assert_eq!(
            a.runs.iter().map(|r| &r.run_id).collect::<Vec<_>>(),
            b.runs.iter().map(|r| &r.run_id).collect::<Vec<_>>()
        );
        for r in &a.runs {
            crate::config::check_run_id(&r.run_id).unwrap();
            assert!(!r.run_id.contains('/') && !r.run_id.contains(".."));
        }
        assert_eq!(a.config_hash, b.config_hash);
    }

    fn c_porian() -> SweepConfig {
        config("n_layers = [1]\nd_model = [32]", "tokens = [100000]", "hyperparameters = \"porian\"")
    }

    #[test]
    fn porian_rule_values() {
        let plan =
            expand(&config("n_layers = [1]\nd_model = [32]", "tokens = [100000]", "hyperparameters = \"porian\""))
                .unwrap();
        let run = &plan.runs[0];
        let ratio = run.shape.params_matmul() as f64 / 108e6;
        assert!((run.lr - 0.0047 * ratio.powf(-1.0 / 3.0)).abs() < 1e-12);
        assert_eq!(run.batch_size, (160.0 * ratio.powf(2.0 / 3.0)).round().max(1.0) as usize);
        // 8× the parameters: half the learning rate, 4× the batch (exponents −1/3 and 2/3).
        let big = crate::model::ModelShape { d_model: 1024, n_heads: 16, n_layers: 8, ..run.shape.clone() };
        let (big_batch, big_lr) = c_porian().train.hyper_for(&big).unwrap();
        let scale = big.params_matmul() as f64 / run.shape.params_matmul() as f64;
        assert!((big_lr / run.lr - scale.powf(-1.0 / 3.0)).abs() < 1e-9);
        assert!(big_batch > run.batch_size);
    }

    #[test]
    fn wsd_branching_plans_one_trunk_per_size_and_saves_compute() {
        let wsd = format!("{FIXED}\n[train.schedule]\nkind = \"wsd\"\nwarmup_fraction = 0.1\ncooldown_fraction = 0.2");
        let c = config("n_layers = [1]\nd_model = [32]", "tokens = [25600, 51200, 102400]\nwsd_branching = true", &wsd);
        let plan = expand(&c).unwrap();
        assert_eq!(plan.runs.len(), 4);
        assert!(
            matches!(&plan.runs[0].role, RunRole::Trunk { warmup_steps: 10, branch_points } if branch_points == &vec![80, 160, 320])
        );
        assert_eq!(plan.runs[0].steps, 320);
        assert!(matches!(&plan.runs[3].role, RunRole::Branch { from_step: 320, .. }));
        // Independent: 100 + 200 + 400 steps; branched: 320 trunk + 20 + 40 + 80 cooldown steps.
        let per_step = run_flops(&plan.runs[1], FlopConvention::SixN) / 100.0;
        let saved = plan.flops_saved_by_branching(FlopConvention::SixN);
        assert!((saved - per_step * (700.0 - 460.0)).abs() < 1e-3 * saved, "{saved}");
    }

    #[test]
    fn unique_tokens_axis_multiplies_runs_and_names_them() {
        let c =
            config("n_layers = [1]\nd_model = [32]", "tokens = [25600, 51200]\nunique_tokens = [6400, 12800]", FIXED);
        let plan = expand(&c).unwrap();
        let ids: Vec<&str> = plan.runs.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(
            ids,
            ["L1-d32-D25600-U6400-s0", "L1-d32-D25600-U12800-s0", "L1-d32-D51200-U6400-s0", "L1-d32-D51200-U12800-s0"]
        );
        assert_eq!(
            plan.runs.iter().map(|r| r.unique_tokens).collect::<Vec<_>>(),
            [Some(6400), Some(12800), Some(6400), Some(12800)]
        );
        // Without the axis, ids and specs are as before (and plan.json does not mention it).
        let plain = expand(&config("n_layers = [1]\nd_model = [32]", "tokens = [25600]", FIXED)).unwrap();
        assert_eq!(plain.runs[0].run_id, "L1-d32-D25600-s0");
        assert!(!serde_json::to_string(&plain.runs[0]).unwrap().contains("unique_tokens"));
        // WSD branching shares one trunk across budgets: it cannot also vary the data.
        let text =
            "name = \"t\"\n[data]\nkind = \"synthetic\"\nvocab_size = 256\n[model]\nseq_len = 64\nhead_dim = 16\n\
                    [grid]\nn_layers = [1]\nd_model = [32]\n[budget]\ntokens = [25600, 51200]\nunique_tokens = [6400]\n\
                    wsd_branching = true\n[train]\nbatch_size = 4\nlr = 1e-3\n[train.schedule]\nkind = \"wsd\"\n";
        let bad: SweepConfig = toml::from_str(text).unwrap();
        assert!(bad.validate().unwrap_err().contains("unique_tokens"));
    }

    #[test]
    fn duplicate_seeds_are_planned_once_with_a_warning() {
        let mut c = config("n_layers = [1]\nd_model = [32]", "tokens = [25600]", FIXED);
        c.seeds = vec![0, 1, 0];
        let plan = expand(&c).unwrap();
        let ids: Vec<&str> = plan.runs.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["L1-d32-D25600-s0", "L1-d32-D25600-s1"]);
        let about_seeds: Vec<&String> = plan.warnings.iter().filter(|w| w.contains("seed")).collect();
        assert_eq!(about_seeds, ["seeds lists seed 0 more than once; its runs are planned once"]);
    }

    fn centred(head_dim: usize, grid: &str, flops: &str) -> SweepConfig {
        let text = format!(
            "name = \"t\"\n[data]\nkind = \"synthetic\"\nvocab_size = 256\n[model]\nseq_len = 64\nhead_dim = {head_dim}\n\
             [grid]\n{grid}\n[budget]\nflops = {flops}\n[train]\n{FIXED}\n"
        );
        let config: SweepConfig = toml::from_str(&text).unwrap();
        config.validate().unwrap();
        config
    }

    #[test]
    fn centred_grid_sizes_are_symmetric_in_log_n_around_each_budgets_optimum() {
        let grid = "centre = \"chinchilla\"\naspect_ratio = 32\nspan = 4.0\nsizes = 5";
        let config = centred(8, grid, "[1e13, 1e14]");
        let plan = expand(&config).unwrap();
        for c in [1e13, 1e14] {
            let n_opt = centre::predicted_optimum(&config, c).unwrap();
            // Chinchilla's centre: the optimum's own shape trains on about 20 tokens per parameter.
            let shape = centre::shape_for(&config, n_opt).unwrap();
            let tpp = c / shape.flops_per_token_for(FlopConvention::SixN) / shape.params_nonembedding() as f64;
            assert!((tpp / 20.0 - 1.0).abs() < 0.15, "C = {c:e}: {tpp} tokens per parameter at N* = {n_opt}");
            let mut sizes: Vec<f64> = plan
                .runs
                .iter()
                .filter(|r| r.flop_budget == Some(c))
                .map(|r| r.shape.params_nonembedding() as f64)
                .collect();
            sizes.sort_by(f64::total_cmp);
            assert_eq!(sizes.len(), 5, "C = {c:e}: {sizes:?}");
            for (i, n) in sizes.iter().enumerate() {
                // Targets N*·4^(i/2 − 1): 1/4, 1/2, 1, 2, 4 × N*, each rounded to a valid shape.
                let target = n_opt * 4f64.powf(i as f64 / 2.0 - 1.0);
                assert!((n / target).ln().abs() < 0.12, "C = {c:e}: size {n} for target {target}");
                let mirror = sizes[4 - i];
                assert!(((n * mirror).sqrt() / n_opt).ln().abs() < 0.12, "C = {c:e}: {n} and {mirror} around {n_opt}");
            }
            assert!(plan.runs.iter().all(|r| r.shape.d_model % 8 == 0 && r.shape.n_heads * 8 == r.shape.d_model));
        }
        // Each budget its own sizes; a budget's run ids do not depend on the other budgets.
        let alone = expand(&centred(8, grid, "[1e13]")).unwrap();
        let ids = |p: &Plan| {
            let mut v: Vec<String> =
                p.runs.iter().filter(|r| r.flop_budget == Some(1e13)).map(|r| r.run_id.clone()).collect();
            v.sort();
            v
        };
        assert_eq!(ids(&alone), ids(&plan));
        let smallest = |c: f64| {
            plan.runs.iter().filter(|r| r.flop_budget == Some(c)).map(|r| r.shape.params_nonembedding()).min().unwrap()
        };
        assert!(smallest(1e14) as f64 > 2.0 * smallest(1e13) as f64, "the larger budget gets larger sizes");
        assert!(
            plan.warnings.iter().all(|w| !w.contains("straddle") && !w.contains("off-centre")),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn a_fit_json_centre_places_the_optimum_of_its_law() {
        let dir = std::env::temp_dir().join(format!("sweeplaw-centre-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fit = dir.join("fit.json");
        // α = β = 0.3, A = 4B: G = (A/B)^(1/0.6) and N* = G·(C/k)^(1/2).
        std::fs::write(
            &fit,
            r#"{"param_count": "nonembedding", "fits": {"chinchilla": {"params": {"E": 1.5, "A": 400.0, "B": 100.0, "alpha": 0.3, "beta": 0.3}}}}"#,
        )
        .unwrap();
        let mut config = centred(8, "centre = \"fit.json\"\naspect_ratio = 32", "[1e13]");
        config.grid.load_centre_for_test(&dir.join("sweep.toml")).unwrap();
        let n_opt = centre::predicted_optimum(&config, 1e13).unwrap();
        let shape = centre::shape_for(&config, n_opt).unwrap();
        let k = shape.flops_per_token_for(FlopConvention::SixN) / shape.params_nonembedding() as f64;
        let expected = 4f64.powf(1.0 / 0.6) * (1e13 / k).sqrt();
        assert!((n_opt / expected - 1.0).abs() < 0.02, "{n_opt} vs {expected}");
        // A law without a compute optimum (negative alpha) is refused, naming the file.
        std::fs::write(
            &fit,
            r#"{"param_count": "nonembedding", "fits": {"chinchilla": {"params": {"E": 0.0, "A": 1e-4, "B": 16.0, "alpha": -0.55, "beta": 0.1}}}}"#,
        )
        .unwrap();
        let e = centre::CentreLaw::read(&fit).unwrap_err();
        assert!(e.contains("fit.json") && e.contains("alpha = -0.55"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn extra_seeds_only_for_sizes_below_the_threshold() {
        let mut c = config("n_layers = [1, 2]\nd_model = [32]", "tokens = [25600]", FIXED);
        c.seeds = vec![0, 1, 2];
        c.seeds_for_sizes_below = Some(20_000.0); // L1-d32 has 12,416 parameters, L2-d32 24,800
        let ids: Vec<String> = expand(&c).unwrap().runs.into_iter().map(|r| r.run_id).collect();
        assert_eq!(ids, ["L1-d32-D25600-s0", "L2-d32-D25600-s0", "L1-d32-D25600-s1", "L1-d32-D25600-s2"]);
    }

    #[test]
    fn chinchilla_optimum_is_about_twenty_tokens_per_parameter() {
        let c = 5.76e23; // Chinchilla's budget
        let n = chinchilla_n_opt(c);
        let d = c / (6.0 * n);
        assert!((n / 1e9 - 70.0).abs() < 25.0, "N_opt {n:.3e}");
        assert!((15.0..35.0).contains(&(d / n)), "D/N = {}", d / n);
    }
}
