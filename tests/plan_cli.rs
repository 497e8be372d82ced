//! `sweeplaw plan` and the checks `sweep` makes before training: runs that cannot fit memory are
//! refused with nothing written, duplicate seeds are merged, the design checks warn (and refuse
//! under `--strict`), and centred grids give each budget its own sizes.

use std::path::Path;

use crate::common::*;

/// An IsoFLOP sweep on the synthetic source with `grid`, `budget` and `train` lines.
fn isoflop_config(name: &str, top: &str, grid: &str, budget: &str, train: &str) -> String {
    format!(
        r#"name = "{name}"
device = "cpu"
{top}

[data]
kind = "synthetic"
vocab_size = 256

[model]
seq_len = 32
head_dim = 16

[grid]
{grid}

[budget]
{budget}

[train]
batch_size = 8
lr = 1e-2
eval_tokens = 2048
{train}
"#
    )
}

fn plan(config: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["plan", config.to_str().unwrap(), "--no-measure"];
    args.extend_from_slice(extra);
    run(&args)
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_model_too_big_for_memory_is_refused_before_anything_is_written() {
    if !Path::new("/proc/meminfo").exists() {
        eprintln!("skipped: no /proc/meminfo to tell the machine's memory");
        return;
    }
    let dir = scratch("plan-memory");
    let results = dir.join("results");
    // train: d_model = 1048576 (1.3e13 parameters with this vocabulary).
    let config = write(
        &dir,
        "huge.toml",
        &tiny_run_config("huge", "")
            .replace("d_model = 32", "d_model = 1048576")
            .replace("n_heads = 2", "n_heads = 8192"),
    );
    let out = run(&["train", config.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("run huge needs about ") && err.contains("TiB") && err.contains("system RAM"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(!results.exists(), "nothing written: {:?}", files_under(&results));
    // plan and sweep refuse the same way.
    let sweep = write(
        &dir,
        "sweep.toml",
        &isoflop_config("huge-sweep", "", "n_layers = [1]\nd_model = [32, 1048576]", "tokens = [10240]", ""),
    );
    let out = plan(&sweep, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("run L1-d1048576-D10240-s0 needs about "), "{}", stderr(&out));
    let out = run(&["sweep", sweep.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("run L1-d1048576-D10240-s0 needs about "), "{}", stderr(&out));
    assert!(!results.exists(), "nothing written: {:?}", files_under(&results));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn duplicate_seeds_are_merged_with_a_warning() {
    let dir = scratch("plan-seeds");
    let config = write(
        &dir,
        "s.toml",
        &isoflop_config("seeds", "seeds = [0, 0]", "n_layers = [1]\nd_model = [32]", "tokens = [10240]", ""),
    );
    let out = plan(&config, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().filter(|l| l.starts_with("L1-d32-D10240-s0")).count(), 1, "{text}");
    assert!(text.contains("\n1 runs,") || text.contains("\n1 run,"), "{text}");
    assert!(text.contains("warning: seeds lists seed 0 more than once; its runs are planned once"), "{text}");
    // The plan names its largest run's memory estimate (and the machine's RAM for the CPU).
    assert!(text.contains("largest memory estimate: ") && text.contains("(L1-d32-D10240-s0) of the "), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Warnings of `plan --no-measure` for a config (stdout lines starting "warning: ").
fn warnings_of(dir: &Path, name: &str, grid: &str, budget: &str, train: &str) -> Vec<String> {
    let config = write(dir, &format!("{name}.toml"), &isoflop_config(name, "", grid, budget, train));
    let out = plan(&config, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().filter_map(|l| l.strip_prefix("warning: ")).map(str::to_string).collect()
}

/// A centred IsoFLOP grid whose every run has at least 200 steps and sane tokens per parameter.
const CENTRED: &str = "centre = \"chinchilla\"\naspect_ratio = 16\nspan = 4.0\nsizes = 5";

#[test]
fn each_plan_check_warns_and_a_centred_design_passes() {
    let dir = scratch("plan-checks");
    let clean = warnings_of(&dir, "clean", CENTRED, "flops = [1e11, 4e11, 1.6e12]", "");
    assert!(clean.is_empty(), "{clean:?}");
    // Too few steps: 10240 tokens are 40 steps of 8 × 32.
    let w = warnings_of(&dir, "short", "n_layers = [1]\nd_model = [32]", "tokens = [10240]", "");
    assert!(
        w.iter().any(|w| w.starts_with("1 run(s) have fewer than checks.min_steps = 200") && w.contains("(40)")),
        "{w:?}"
    );
    // A warmup of 30% of the run.
    let w = warnings_of(
        &dir,
        "warmup",
        "n_layers = [1]\nd_model = [32]",
        "tokens = [102400]",
        "[train.schedule]\nkind = \"cosine\"\nwarmup_fraction = 0.3",
    );
    assert!(
        w.iter().any(|w| w.contains("checks.max_warmup_fraction = 0.1") && w.contains("(120 of 400 steps)")),
        "{w:?}"
    );
    // Tokens per parameter out of range on both sides (L1-d32: 12,416 parameters).
    let w = warnings_of(&dir, "tpp", "n_layers = [1]\nd_model = [32]", "tokens_per_param = [0.1, 5000]", "");
    assert!(w.iter().any(|w| w.contains("fewer tokens per parameter") && w.contains("(0.25)")), "{w:?}");
    assert!(w.iter().any(|w| w.contains("more tokens per parameter") && w.contains("(2000)")), "{w:?}");
    // Sizes that stop short of the optimum, and sizes that reach past it but off-centre.
    let w = warnings_of(&dir, "edge", "n_layers = [1]\nd_model = [16, 32]", "flops = [4e11]", "");
    assert!(w.iter().any(|w| w.starts_with("budget C = 4e11") && w.contains("do not straddle")), "{w:?}");
    let w = warnings_of(&dir, "offcentre", "n_layers = [2, 3, 4, 5, 6, 7, 8]\naspect_ratio = 16", "flops = [4e11]", "");
    assert!(w.iter().any(|w| w.starts_with("budget C = 4e11") && w.contains("off-centre")), "{w:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn strict_refuses_a_plan_with_warnings_with_exit_2_and_writes_nothing() {
    let dir = scratch("plan-strict");
    let results = dir.join("results");
    let bad =
        write(&dir, "bad.toml", &isoflop_config("bad", "", "n_layers = [1]\nd_model = [32]", "tokens = [10240]", ""));
    let out = plan(&bad, &["--strict"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("warning: 1 run(s) have fewer than checks.min_steps"), "{}", stderr(&out));
    // One size and one budget: no law of N and D can be identified from it.
    assert!(stderr(&out).contains("warning: the plan has 1 distinct model size(s)"), "{}", stderr(&out));
    assert!(stderr(&out).contains("error: --strict: the plan has 2 warning(s)"), "{}", stderr(&out));
    let out = run(&["sweep", bad.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet", "--strict"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!results.exists(), "nothing written: {:?}", files_under(&results));
    // Without --strict the sweep trains, warning first.
    let out = run(&["sweep", bad.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("warning: 1 run(s) have fewer than checks.min_steps = 200"), "{}", stderr(&out));
    assert!(results.join("bad/runs/L1-d32-D10240-s0/run.json").exists());
    // A lower threshold in [checks] makes the same runs pass, in a design of 3 sizes × 3 budgets.
    let relaxed = write(
        &dir,
        "relaxed.toml",
        &format!(
            "{}\n[checks]\nmin_steps = 40\n",
            isoflop_config("bad", "", "n_layers = [1, 2, 3]\nd_model = [32]", "tokens = [10240, 20480, 40960]", "")
        ),
    );
    let out = plan(&relaxed, &["--strict"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let clean = write(&dir, "clean.toml", &isoflop_config("clean", "", CENTRED, "flops = [1e11, 4e11, 1.6e12]", ""));
    let out = plan(&clean, &["--strict"]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn centred_grid_gives_each_budget_its_own_sizes() {
    let dir = scratch("plan-centred");
    let config = write(&dir, "c.toml", &isoflop_config("centred", "", CENTRED, "flops = [1e11, 4e11]", ""));
    let out = plan(&config, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let sizes = |budget: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(budget))
            .map(|l| l.split('-').skip(1).take(2).collect::<Vec<_>>().join("-"))
            .collect()
    };
    let (small, large) = (sizes("C1e11-"), sizes("C4e11-"));
    assert!(small.len() >= 4 && large.len() >= 4, "{text}");
    assert_ne!(small, large, "each budget its own sizes: {text}");
    // Shapes come from the aspect ratio rule, widths multiples of head_dim.
    for size in small.iter().chain(&large) {
        let d: usize = size.split("-d").nth(1).unwrap().parse().unwrap();
        assert_eq!(d % 16, 0, "{size}");
    }
    // A centre with explicit depths is refused, naming the keys.
    let bad = write(
        &dir,
        "bad.toml",
        &isoflop_config("centred", "", &format!("{CENTRED}\nn_layers = [1, 2]"), "flops = [1e11]", ""),
    );
    let out = plan(&bad, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("grid.centre derives each size's shape from grid.aspect_ratio"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn runs_that_would_repeat_a_text_corpus_are_warned_about_and_refused_under_strict() {
    let dir = scratch("plan-repeats");
    let results = dir.join("results");
    crate::data_formats::write_corpus(&dir, 24);
    // 1024 tokens fit the training split many times over; 1 << 20 does not.
    let config = write(
        &dir,
        "text.toml",
        &crate::data_formats::text_sweep_config(
            "repeats",
            "tokens = [1024, 1048576]",
            "[checks]\nmin_steps = 1\ntokens_per_param = [0.01, 1e9]\n",
        ),
    );
    let out = plan(&config, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    // The design warning (one size, two budgets) and the data's.
    let warnings: Vec<&str> = printed.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("the plan has 1 distinct model size(s)"), "{warnings:?}");
    let warnings = &warnings[1..];
    assert!(warnings[0].contains("1 run(s) train on more tokens than the "), "{warnings:?}");
    assert!(warnings[0].contains("L1-d16-D1048576-s0 (") && !warnings[0].contains("D1024-s0"), "{warnings:?}");
    let out = run(&["sweep", config.to_str().unwrap(), "--results", results.to_str().unwrap(), "--quiet", "--strict"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("of the training split, so they repeat data"), "{}", stderr(&out));
    assert!(stderr(&out).contains("error: --strict: the plan has 2 warning(s)"), "{}", stderr(&out));
    assert!(!results.exists(), "nothing written: {:?}", files_under(&results));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An approach-3 law in fit.json whose optimum is 20 tokens per parameter (α = β = 0.3,
/// A/B = 20^(-0.3)), with the verdict fields `verdict`.
fn centre_fit(verdict: &str) -> String {
    format!(
        r#"{{"param_count": "nonembedding", "fits": {{"chinchilla": {{"params": {{"E": 1.5, "A": {}, "B": 100.0, "alpha": 0.3, "beta": 0.3}}, {verdict}}}}}}}"#,
        100.0 * 20f64.powf(-0.3)
    )
}

#[test]
fn a_centre_law_that_is_not_identified_is_a_warning_and_strict_refuses_it() {
    let dir = scratch("plan-centre-verdict");
    let grid = CENTRED.replace("\"chinchilla\"", "\"law/fit.json\"");
    let config = write(&dir, "c.toml", &isoflop_config("centred", "", &grid, "flops = [1e11, 4e11, 1.6e12]", ""));
    std::fs::create_dir_all(dir.join("law")).unwrap();
    // Identified: the design passes as the same grid centred on "chinchilla" does.
    write(&dir, "law/fit.json", &centre_fit(r#""verdict": "identified""#));
    let out = plan(&config, &["--strict"]);
    assert!(out.status.success(), "{}", stderr(&out));
    write(
        &dir,
        "law/fit.json",
        &centre_fit(r#""verdict": "not identified", "reasons": ["alpha's 95% interval spans 18.84 (more than 1)"]"#),
    );
    let out = plan(&config, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let warnings: Vec<String> =
        stdout(&out).lines().filter_map(|l| l.strip_prefix("warning: ")).map(str::to_string).collect();
    assert_eq!(
        warnings,
        ["grid.centre = \"law/fit.json\": its approach-3 law is `not identified` (alpha's 95% interval spans 18.84 \
             (more than 1)), so the optimum it predicts for each budget, around which the budget's sizes are placed, \
             is not supported by its data; centre on \"chinchilla\" or on a fit whose approach 3 is identified"]
    );
    let out = plan(&config, &["--strict"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("error: --strict: the plan has 1 warning(s)"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_size_listed_twice_is_a_warning_and_strict_refuses_it() {
    let dir = scratch("plan-duplicate-sizes");
    let config = write(
        &dir,
        "d.toml",
        &isoflop_config("dup", "", "n_layers = [1, 1, 2]\naspect_ratio = 16", "tokens = [102400]", ""),
    );
    let out = plan(&config, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().filter(|l| l.starts_with("L1-d16-D102400-s0")).count(), 1, "{text}");
    assert!(
        text.contains("warning: grid.n_layers lists 1 more than once; its size(s) L1-d16 are planned once"),
        "{text}"
    );
    let out = plan(&config, &["--strict"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("grid.n_layers lists 1 more than once"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_flop_budget_too_small_for_a_size_is_named_in_flops() {
    let dir = scratch("plan-tiny-budget");
    // 6n: 1e9 FLOPs give L1-d1024 (about 12.6M non-embedding parameters) 13 tokens, less than
    // one step of 8 × 32; L1-d32 gets 13,000 and is planned.
    let config =
        write(&dir, "t.toml", &isoflop_config("tiny", "", "n_layers = [1]\nd_model = [32, 1024]", "flops = [1e9]", ""));
    let out = plan(&config, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "warning: budget.flops = 1e9 gives L1-d1024 13 tokens, less than one step of batch_size × seq_len = 256 \
             tokens; size left out of this budget"
        ),
        "{}",
        stdout(&out)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_model_vocabulary_far_above_the_tokenizers_is_a_warning() {
    // A BPE asked for 20000 tokens of a tiny corpus learns a few hundred: the models embedded
    // 20000 rows, inflating N_total and the head's FLOPs, without a word.
    let dir = scratch("plan-vocab");
    crate::data_formats::write_corpus(&dir, 24);
    let text = crate::data_formats::text_sweep_config("vocab", "tokens = [1024]", "[checks]\nmin_steps = 1\n")
        .replace("vocab_size = 300", "vocab_size = 20000");
    let config = write(&dir, "text.toml", &text);
    let out = plan(&config, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let warning = printed.lines().find(|l| l.contains("the models embed")).unwrap_or_else(|| panic!("{printed}"));
    let learned: usize = warning.split("set data.vocab_size to ").nth(1).unwrap().trim().parse().unwrap();
    assert!(warning.contains("the models embed 20000 tokens") && learned > 256 && learned < 2000, "{warning}");
    // At the vocabulary it learned, the warning is gone.
    write(&dir, "text.toml", &text.replace("vocab_size = 20000", &format!("vocab_size = {learned}")));
    let out = plan(&config, &[]);
    assert!(!stdout(&out).contains("the models embed"), "{}", stdout(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_tokenizer_without_an_end_of_text_token_is_a_warning() {
    let dir = scratch("plan-separator");
    crate::data_formats::write_corpus(&dir, 24);
    let trained = crate::data_formats::text_sweep_config("sep", "tokens = [1024]", "[checks]\nmin_steps = 1\n");
    let config = write(&dir, "text.toml", &trained);
    assert!(plan(&config, &[]).status.success());
    let tokenizer = files_under(&dir.join("cache")).into_iter().find(|p| p.ends_with("tokenizer.json")).unwrap();
    let tokenizer = dir.join("cache").join(tokenizer);
    // The same tokenizer with its end-of-text token renamed: no separator between documents.
    let renamed = std::fs::read_to_string(&tokenizer).unwrap().replace("<|endoftext|>", "<|doc|>");
    write(&dir, "renamed.json", &renamed);
    let given = trained.replace("vocab_size = 300", "tokenizer = \"renamed.json\"");
    write(&dir, "text.toml", &given);
    let out = plan(&config, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("warning: the tokenizer has no <|endoftext|> token"), "{}", stdout(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}
