//! Test fixtures: sweep directories written by hand in the results format (summary.csv,
//! runs/*/metrics.csv and run.json, fit.json) whose losses follow a planted approach-3 law,
//! so figures and reports can be checked against known answers.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::plot::fitjson::Chinchilla;

/// The planted law: L = 1.9 + 80/N^0.34 + 100/D^0.29 (a = 0.46, b = 0.54).
pub(crate) const PLANTED: Chinchilla = Chinchilla {
    e: 1.9,
    a: 80.0,
    b: 100.0,
    alpha: 0.34,
    beta: 0.29,
    compute: crate::fit::ComputeModel { coefficient: 6.0, params_exponent: 1.0 },
};
/// The synthetic source's true entropy in the fixtures.
pub(crate) const TRUE_ENTROPY: f64 = 1.85;

/// A scratch directory removed on drop (kept when SWEEPLAW_KEEP_TEST_OUTPUT is set, to look
/// at the figures).
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("sweeplaw-plot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("SWEEPLAW_KEEP_TEST_OUTPUT").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// How the runs' budgets are set.
#[derive(Debug, Clone)]
pub(crate) enum Budgets {
    /// Every size trains for each token count.
    Tokens(Vec<f64>),
    /// For each FLOP budget, the sizes within 8x of the planted optimum, D = C / (6N).
    Flops(Vec<f64>),
}

/// One fixture run.
#[derive(Debug, Clone)]
pub(crate) struct FixtureRun {
    pub id: String,
    pub n_layers: usize,
    pub d_model: usize,
    pub params: f64,
    pub tokens: f64,
    pub flop_budget: Option<f64>,
    pub loss: f64,
}

/// Non-embedding parameters of the GELU model (docs/DESIGN.md "Counting"): 12 L d² + 2 L d + d.
pub(crate) fn params_nonembedding(n_layers: usize, d_model: usize) -> f64 {
    let (l, d) = (n_layers as f64, d_model as f64);
    12.0 * l * d * d + 2.0 * l * d + d
}

/// The runs of a sweep over n_layers 1..=8 with d_model = 32 n_layers.
pub(crate) fn plan(budgets: &Budgets) -> Vec<FixtureRun> {
    let mut runs = Vec::new();
    let shapes: Vec<(usize, usize)> = (1..=8).map(|l| (l, 32 * l)).collect();
    let run = |l: usize, d: usize, tokens: f64, budget: Option<f64>| {
        let params = params_nonembedding(l, d);
        FixtureRun {
            id: format!("L{l}-d{d}-t{tokens:e}"),
            n_layers: l,
            d_model: d,
            params,
            tokens,
            flop_budget: budget,
            loss: PLANTED.predict(params, tokens),
        }
    };
    match budgets {
        Budgets::Tokens(tokens) => {
            for &t in tokens {
                runs.extend(shapes.iter().map(|&(l, d)| run(l, d, t, None)));
            }
        }
        Budgets::Flops(flops) => {
            for &c in flops {
                let optimum = PLANTED.compute_optimal(c).0;
                for &(l, d) in &shapes {
                    let params = params_nonembedding(l, d);
                    if (params / optimum).ln().abs() <= 8f64.ln() {
                        runs.push(run(l, d, (c / (6.0 * params)).round(), Some(c)));
                    }
                }
            }
        }
    }
    runs
}

const SUMMARY_HEADER: &str = "run_id,status,n_layers,d_model,n_heads,seq_len,vocab_size,params_nonembedding,params_total,params_matmul,tokens,unique_tokens,flops,val_loss,train_loss,wall_s,seed,flops_6n,flops_matmul_attn,flops_chinchilla,true_entropy";

/// The embedding and head of the fixture model (vocab 256, untied): 2 × 256 × d.
fn embedding_params(d_model: usize) -> f64 {
    2.0 * 256.0 * d_model as f64
}

fn summary_row(run: &FixtureRun, status: &str) -> String {
    let total = run.params + embedding_params(run.d_model);
    let matmul = run.params + 256.0 * run.d_model as f64;
    let flops_6n = 6.0 * run.params * run.tokens;
    let flops_matmul_attn = (6.0 * matmul + 6.0 * run.n_layers as f64 * 64.0 * run.d_model as f64) * run.tokens;
    format!(
        "{},{status},{},{},{},64,256,{},{},{},{},,{flops_6n},{},{},12.5,0,{flops_6n},{flops_matmul_attn},{},{TRUE_ENTROPY}",
        run.id,
        run.n_layers,
        run.d_model,
        run.d_model / 16,
        run.params,
        total,
        matmul,
        run.tokens,
        run.loss,
        run.loss * 0.98,
        flops_6n * 1.1
    )
}

/// metrics.csv: 10 evaluations along the planted law, a train-only row between each.
fn metrics(run: &FixtureRun) -> String {
    let mut text = String::from("step,tokens,flops,lr,train_loss,val_loss,grad_norm,elapsed_s,tokens_per_s\n");
    for k in 0..=10 {
        let tokens = run.tokens * k as f64 / 10.0;
        let loss = if k == 0 { 5.55 } else { PLANTED.predict(run.params, tokens) };
        let flops = 6.0 * run.params * tokens;
        let _ = writeln!(text, "{},{tokens},{flops},0.003,{loss},{loss},1.0,{k},1000", 2 * k);
        if k < 10 {
            let _ = writeln!(text, "{},{},{},0.003,{loss},,1.0,{k},1000", 2 * k + 1, tokens + 1.0, flops + 1.0);
        }
    }
    text
}

fn run_json(run: &FixtureRun) -> serde_json::Value {
    json!({
        "format_version": 1, "run_id": run.id, "status": "done", "reason": null,
        "spec": { "run_id": run.id, "flop_budget": run.flop_budget, "batch_size": 16, "lr": 0.003,
                  "shape": { "d_model": run.d_model, "n_layers": run.n_layers, "n_heads": run.d_model / 16,
                             "seq_len": 64, "vocab_size": 256 } },
        "data": { "source": "synthetic", "vocab_size": 256, "unique_tokens": null,
                  "true_entropy": TRUE_ENTROPY, "eval_tokens": 16384 },
        "device": "cpu"
    })
}

/// Writes summary.csv, sweep.toml and each run's files; returns the runs.
pub(crate) fn write_sweep(dir: &Path, budgets: &Budgets) -> Vec<FixtureRun> {
    let runs = plan(budgets);
    let mut summary = format!("{SUMMARY_HEADER}\n");
    for run in &runs {
        summary.push_str(&summary_row(run, "done"));
        summary.push('\n');
        let run_dir = dir.join("runs").join(&run.id);
        std::fs::create_dir_all(&run_dir).expect("create run dir");
        std::fs::write(run_dir.join("metrics.csv"), metrics(run)).expect("write metrics.csv");
        let text = serde_json::to_string_pretty(&run_json(run)).expect("json");
        std::fs::write(run_dir.join("run.json"), text).expect("write run.json");
    }
    std::fs::write(dir.join("summary.csv"), summary).expect("write summary.csv");
    std::fs::write(dir.join("sweep.toml"), "name = \"fixture\"\ndevice = \"cpu\"\n").expect("write sweep.toml");
    runs
}

/// fit.json as the fitter writes it, with the planted law's values (intervals ±5%), the
/// IsoFLOP minima at the planted optimum, and a holdout of the 2 largest-compute runs whose
/// predictions are 2% high.
pub(crate) fn write_fit(dir: &Path, runs: &[FixtureRun], budgets: &[f64]) -> serde_json::Value {
    let p = PLANTED;
    let (a, b) = (p.exponent_a(), p.exponent_b());
    let ci = |v: f64| json!([v * 0.95, v * 1.05]);
    let minima: Vec<serde_json::Value> = budgets
        .iter()
        .map(|&c| {
            let (n, d) = p.compute_optimal(c);
            json!({ "flops": c, "N_opt": n, "D_opt": d, "loss": p.predict(n, d), "runs": 5, "inside": true })
        })
        .collect();
    let mut by_compute: Vec<&FixtureRun> = runs.iter().collect();
    by_compute.sort_by(|x, y| (y.params * y.tokens).total_cmp(&(x.params * x.tokens)));
    let held: Vec<serde_json::Value> = by_compute[..2]
        .iter()
        .map(|r| {
            json!({ "run": r.id, "N": r.params, "D": r.tokens, "C": 6.0 * r.params * r.tokens,
                         "actual": r.loss, "predicted": r.loss * 1.02, "rel_error": 0.02 })
        })
        .collect();
    let target = 1e16;
    let (n_opt, d_opt) = p.compute_optimal(target);
    let fit = json!({
        "source": dir.display().to_string(), "points": runs.len(), "excluded": [],
        "param_count": "nonembedding", "flop_count": "6n",
        "fits": {
            "chinchilla": { "params": { "E": p.e, "A": p.a, "B": p.b, "alpha": p.alpha, "beta": p.beta },
                            "ci95": { "E": ci(p.e), "A": ci(p.a), "B": ci(p.b), "alpha": ci(p.alpha), "beta": ci(p.beta), "a": ci(a), "b": ci(b) },
                            "se": {}, "objective": 1e-6, "a": a, "b": b, "starts": 4500,
                            "prediction": { "flops": target, "N_opt": n_opt, "D_opt": d_opt, "loss": p.predict(n_opt, d_opt),
                                            "ci95": { "N_opt": ci(n_opt), "D_opt": ci(d_opt), "loss": ci(p.predict(n_opt, d_opt)) } },
                            "bootstrap": { "resamples": 100, "failed": 0 } },
            "kaplan_c": { "params": { "alpha_C": 0.05, "C_c": 1e22 }, "ci95": {}, "points": 10 },
            "kaplan_nd": { "params": { "alpha_N": 0.3, "alpha_D": 0.25, "N_c": 1e9, "D_c": 1e10 }, "ci95": {}, "points": runs.len() },
            "isoflop": { "a": a, "b": b, "minima": minima, "ci95": { "a": ci(a), "b": ci(b) } },
            "frontier": { "a": a * 1.1, "b": 1.0 - a * 1.1, "points": 100, "sizes": 4, "method": "interpolated curves", "ci95": {} },
            "holdout": { "law": "chinchilla", "fitted_on": runs.len() - 2, "held_out": held, "max_rel_error": 0.02 }
        },
        "skipped": { "data_constrained": "needs runs that repeat data (tokens > unique_tokens); none do" },
        "warnings": []
    });
    std::fs::write(dir.join("fit.json"), serde_json::to_string_pretty(&fit).expect("json")).expect("write fit.json");
    fit
}

/// The IsoFLOP budgets of the standard fixture.
pub(crate) const FLOP_BUDGETS: [f64; 4] = [1e12, 1e13, 1e14, 1e15];

/// An IsoFLOP sweep with fit.json in a fresh temp dir.
pub(crate) fn isoflop_sweep(name: &str) -> (TempDir, Vec<FixtureRun>) {
    let dir = TempDir::new(name);
    let runs = write_sweep(&dir.0, &Budgets::Flops(FLOP_BUDGETS.to_vec()));
    write_fit(&dir.0, &runs, &FLOP_BUDGETS);
    (dir, runs)
}

/// Rewrites the fixture's fit.json with `edit` applied.
pub(crate) fn edit_fit(dir: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let path = dir.join("fit.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("fit.json")).expect("fit.json parses");
    edit(&mut json);
    std::fs::write(&path, serde_json::to_string_pretty(&json).expect("json")).expect("write fit.json");
}
