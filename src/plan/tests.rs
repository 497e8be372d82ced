//! Tests of the plan: plain grids, budgets, run ids, the hyperparameter rules, seeds, WSD
//! branching, the data-constrained axis and the design checks, checked against counts worked by
//! hand; centred grids and the laws they centre on in `centred`.

use super::*;

mod centred;

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
    // A budget smaller than one step is an error naming the key it comes from.
    let e = expand(&config("n_layers = [1]\nd_model = [32]", "tokens_per_param = [0.001]", FIXED)).unwrap_err();
    assert!(e.starts_with("budget.tokens_per_param (for L1-d32) = ") && e.contains("less than one step"), "{e}");
    let e = expand(&config("n_layers = [1]\nd_model = [32]", "tokens = [10]", FIXED)).unwrap_err();
    assert!(e.contains("budget.tokens = 10") && e.contains("less than one step"), "{e}");
    // Even one that would round up to a whole step: it would train more than it asks for.
    let step = expand(&config("n_layers = [1]\nd_model = [32]", "tokens = [100000]", FIXED)).unwrap().runs[0].tokens
        / expand(&config("n_layers = [1]\nd_model = [32]", "tokens = [100000]", FIXED)).unwrap().runs[0].steps;
    let e = expand(&config("n_layers = [1]\nd_model = [32]", &format!("tokens = [{}]", step - 1), FIXED)).unwrap_err();
    assert!(e.contains("less than one step"), "{e}");
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
fn a_tuned_rule_without_a_finite_rate_for_a_planned_size_is_an_error_naming_the_table() {
    let tuned = "hyperparameters = \"tuned\"\nbatch_size = 4\ntuned_table = \"tuned.json\"";
    let mut sweep = config("n_layers = [1]\nd_model = [32, 64]", "tokens = [25600]", tuned);
    let rule =
        |exponent: f64| crate::config::LrRule { coefficient: 0.07, exponent, param_count: "nonembedding".into() };
    sweep.train.tuned = Some(rule(-0.2));
    let plan = expand(&sweep).expect("a sane rule plans");
    assert!(plan.runs.iter().all(|r| r.lr.is_finite() && r.lr > 0.0));
    // An exponent edited to 500 overflows: the plan refused nothing and a run trained on lr = inf.
    sweep.train.tuned = Some(rule(500.0));
    let e = expand(&sweep).expect_err("lr = inf is refused");
    assert!(e.contains("train.tuned_table") && e.contains("inf") && e.contains("L1-d32"), "{e}");
}

#[test]
fn a_tuned_rule_through_sizes_at_the_edge_of_their_scan_is_a_plan_warning() {
    let tuned = "hyperparameters = \"tuned\"\nbatch_size = 4\ntuned_table = \"tuned.json\"";
    let mut sweep = config("n_layers = [1]\nd_model = [32, 64]", "tokens = [25600]", tuned);
    sweep.train.tuned =
        Some(crate::config::LrRule { coefficient: 0.07, exponent: 0.0, param_count: "nonembedding".into() });
    let warns = |sweep: &SweepConfig| checks::design_warnings(sweep, &expand(sweep).unwrap().runs).unwrap();
    assert!(!warns(&sweep).iter().any(|w| w.contains("edge of its scan")), "{:?}", warns(&sweep));
    sweep.train.tuned_at_edge = vec!["L1-d32".into(), "L1-d64".into()];
    let warnings = warns(&sweep);
    let edge = warnings.iter().find(|w| w.contains("edge of its scan")).expect("a warning");
    assert!(
        edge.contains("train.tuned_table = \"tuned.json\"") && edge.contains("2 of the tuned sizes (L1-d32, L1-d64)"),
        "{edge}"
    );
    // Identity: the sizes at the edge are read with the table, not part of the config's hash.
    let mut without = sweep.clone();
    without.train.tuned_at_edge.clear();
    assert_eq!(crate::plan::config_hash(&sweep), crate::plan::config_hash(&without));
}

#[test]
fn porian_rule_values() {
    let plan =
        expand(&config("n_layers = [1]\nd_model = [32]", "tokens = [100000]", "hyperparameters = \"porian\"")).unwrap();
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
    let c = config("n_layers = [1]\nd_model = [32]", "tokens = [25600, 51200]\nunique_tokens = [6400, 12800]", FIXED);
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
    let text = "name = \"t\"\n[data]\nkind = \"synthetic\"\nvocab_size = 256\n[model]\nseq_len = 64\nhead_dim = 16\n\
                [grid]\nn_layers = [1]\nd_model = [32]\n[budget]\ntokens = [25600, 51200]\nunique_tokens = [6400]\n\
                wsd_branching = true\n[train]\nbatch_size = 4\nlr = 1e-3\n[train.schedule]\nkind = \"wsd\"\n";
    let bad: SweepConfig = toml::from_str(text).unwrap();
    assert!(bad.validate().unwrap_err().contains("unique_tokens"));
}

#[test]
fn runs_are_checked_against_the_training_split_in_whole_rows() {
    // seq_len 64: a split of 25,630 tokens holds 400 whole rows, 25,600 tokens.
    let plan = expand(&config("n_layers = [1]\nd_model = [32]", "tokens = [25600, 25856, 51200]", FIXED)).unwrap();
    let w = checks::data_warnings(&plan.runs, 25_630);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("2 run(s) train on more tokens than the 25630 of the training split"), "{w:?}");
    assert!(
        w[0].contains("L1-d32-D51200-s0 (2.00 epochs)") && w[0].contains("L1-d32-D25856-s0 (1.01 epochs)"),
        "{w:?}"
    );
    assert!(!w[0].contains("D25600-s0"), "{w:?}");
    assert!(checks::data_warnings(&plan.runs, 51_200).is_empty());
    // Designed repetition is not warned about; a designed U the split cannot hold is.
    let c = config("n_layers = [1]\nd_model = [32]", "tokens = [51200]\nunique_tokens = [6400, 40000]", FIXED);
    let w = checks::data_warnings(&expand(&c).unwrap().runs, 25_630);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("budget.unique_tokens 40000 exceed the 25630 tokens"), "{w:?}");
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

#[test]
fn extra_seeds_only_for_sizes_below_the_threshold() {
    let mut c = config("n_layers = [1, 2]\nd_model = [32]", "tokens = [25600]", FIXED);
    c.seeds = vec![0, 1, 2];
    c.seeds_for_sizes_below = Some(20_000.0); // L1-d32 has 12,416 parameters, L2-d32 24,800
    let ids: Vec<String> = expand(&c).unwrap().runs.into_iter().map(|r| r.run_id).collect();
    assert_eq!(ids, ["L1-d32-D25600-s0", "L2-d32-D25600-s0", "L1-d32-D25600-s1", "L1-d32-D25600-s2"]);
}

/// results/synthetic-isoflop was planned by an earlier build, when the config read its tuned
/// table itself; loading its config through the plan now gives the config hash its plan.json
/// holds, so the directory still accepts its config (and resumes).
#[test]
fn a_committed_tuned_sweep_keeps_the_config_hash_its_records_hold() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = load_sweep_config(&root.join("configs/synthetic-isoflop.toml")).unwrap();
    assert!(config.train.tuned.is_some(), "the plan reads the tuned table the config names");
    let stored = crate::records::read_plan(&root.join("results/synthetic-isoflop/plan.json")).unwrap();
    assert_eq!(config_hash(&config), stored.config_hash);
    // An untuned one too, so a change to how any config serialises shows here.
    let config = load_sweep_config(&root.join("configs/data-constrained.toml")).unwrap();
    let stored = crate::records::read_plan(&root.join("results/data-constrained/plan.json")).unwrap();
    assert_eq!(config_hash(&config), stored.config_hash, "configs/data-constrained.toml");
}

#[test]
fn a_flop_budget_too_small_for_a_size_names_the_budget_in_flops_and_the_tokens_it_gives() {
    // 6n: L1-d2048 has 50,356,224 non-embedding parameters, so 1e9 FLOPs give it 3 tokens and
    // L1-d8192 (805,470,208) none; one step is 4 × 64 = 256 tokens.
    let plan = expand(&config("n_layers = [1]\nd_model = [32, 2048, 8192]", "flops = [1e9]", FIXED)).unwrap();
    let left_out: Vec<&String> = plan.warnings.iter().filter(|w| w.contains("left out")).collect();
    assert_eq!(
        left_out,
        [
            "budget.flops = 1e9 gives L1-d2048 3 tokens, less than one step of batch_size × seq_len = 256 tokens; \
             size left out of this budget",
            "budget.flops = 1e9 gives L1-d8192 0 tokens, less than one step of batch_size × seq_len = 256 tokens; \
             size left out of this budget"
        ]
    );
    assert_eq!(plan.runs.len(), 1);
}

#[test]
fn a_size_listed_twice_is_planned_once_with_a_warning() {
    let plan = expand(&config("n_layers = [1, 1, 2]\naspect_ratio = 16", "tokens = [51200]", FIXED)).unwrap();
    let ids: Vec<&str> = plan.runs.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, ["L1-d16-D51200-s0", "L2-d32-D51200-s0"]);
    let about: Vec<&String> = plan.warnings.iter().filter(|w| w.starts_with("grid.")).collect();
    assert_eq!(about, ["grid.n_layers lists 1 more than once; its size(s) L1-d16 are planned once"]);
    let plan = expand(&config("n_layers = [2, 1]\nd_model = [32, 48, 32]", "tokens = [51200]", FIXED)).unwrap();
    assert_eq!(plan.runs.len(), 4);
    let about: Vec<&String> = plan.warnings.iter().filter(|w| w.starts_with("grid.")).collect();
    assert_eq!(about, ["grid.d_model lists 32 more than once; its size(s) L1-d32, L2-d32 are planned once"]);
    // Sizes listed once: no such warning.
    let plan = expand(&config("n_layers = [1, 2]\nd_model = [32, 48]", "tokens = [51200]", FIXED)).unwrap();
    assert!(plan.warnings.iter().all(|w| !w.starts_with("grid.")), "{:?}", plan.warnings);
}

#[test]
fn designs_whose_laws_no_loss_could_identify_are_plan_warnings() {
    let about = |grid: &str, budget: &str| -> Vec<String> {
        let plan = expand(&config(grid, budget, FIXED)).unwrap();
        plan.warnings
            .into_iter()
            .filter(|w| {
                w.contains("distinct")
                    || w.contains("D grows with N")
                    || w.contains("approach 2 needs")
                    || w.contains("a parabola needs")
            })
            .collect()
    };
    let three_sizes = "n_layers = [1, 2, 3]\nd_model = [32]";
    // 3 sizes × 1 token budget: approach 3 and Kaplan's L(N, D) see one D.
    let w = about(three_sizes, "tokens = [256000]");
    assert!(w.len() == 1 && w[0].contains("3 distinct model size(s)") && w[0].contains("1 distinct token count(s)"));
    assert!(w[0].ends_with("add token budgets"), "{w:?}");
    // 1 size × 3 budgets: one N.
    let w = about("n_layers = [2]\nd_model = [32]", "tokens = [256000, 512000, 1024000]");
    assert!(w.len() == 1 && w[0].contains("1 distinct model size(s)") && w[0].ends_with("add model sizes"), "{w:?}");
    // One tokens-per-parameter ratio: D ∝ N, the two terms move together.
    let w = about(three_sizes, "tokens_per_param = [20]");
    assert!(w.iter().any(|w| w.starts_with("every run trains about 20") && w.contains("alpha from beta")), "{w:?}");
    // One IsoFLOP budget: no line through the minima.
    let w = about(three_sizes, "flops = [1e12]");
    assert!(w.iter().any(|w| w.starts_with("1 FLOP budget(s) with 3+ model sizes: approach 2 needs 3+")), "{w:?}");
    // A budget whose other sizes are under one step keeps 2 sizes: no parabola there.
    let w = about("n_layers = [1, 2]\nd_model = [32]", "flops = [1e12, 4e12, 1.6e13]");
    assert!(w.iter().any(|w| w.starts_with("3 FLOP budget(s) have fewer than the 3 model sizes")), "{w:?}");
    // A design that covers both: 3 sizes × 3 token budgets.
    assert_eq!(about(three_sizes, "tokens = [256000, 512000, 1024000]"), Vec::<String>::new());
    assert_eq!(about(three_sizes, "flops = [1e12, 4e12, 1.6e13]"), Vec::<String>::new());
}

#[test]
fn a_hyperparameter_table_has_one_row_per_size_and_its_unused_rows_are_warned_about() {
    let table = |rows: &[(usize, usize, f64)]| {
        let mut text = "hyperparameters = \"table\"".to_string();
        for (n_layers, d_model, lr) in rows {
            text.push_str(&format!(
                "\n[[train.table]]\nd_model = {d_model}\nn_layers = {n_layers}\nlr = {lr}\nbatch_size = 4"
            ));
        }
        text
    };
    let parse = |train: &str| {
        let text = format!(
            "name = \"t\"\n[data]\nkind = \"synthetic\"\nvocab_size = 256\n[model]\nseq_len = 64\nhead_dim = 16\n\
             [grid]\nn_layers = [1, 2]\nd_model = [32]\n[budget]\ntokens = [256000]\n[train]\n{train}\n"
        );
        toml::from_str::<SweepConfig>(&text).unwrap()
    };
    // Two rows for L2-d32: the second was silently ignored.
    let twice = parse(&table(&[(1, 32, 1e-3), (2, 32, 2e-3), (2, 32, 9e-3)]));
    let e = twice.validate().unwrap_err();
    assert_eq!(e, "train.table[1] and train.table[2] both give d_model = 32, n_layers = 2: one row per size");
    // A row for a size the grid lacks sets nothing: a warning names it.
    let extra = parse(&table(&[(1, 32, 1e-3), (2, 32, 2e-3), (7, 640, 1e-4)]));
    extra.validate().unwrap();
    let plan = expand(&extra).unwrap();
    assert!(plan
        .warnings
        .iter()
        .any(|w| w == "1 [[train.table]] row(s) match no size of the plan: train.table[2] (L7-d640)"));
    assert_eq!(plan.runs.iter().map(|r| r.lr).collect::<Vec<_>>(), vec![1e-3, 2e-3]);
}
