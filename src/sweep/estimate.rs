//! `sweeplaw plan`: the run table (three parameter counts, tokens, FLOPs, steps, batch, lr) and
//! an estimated wall time from a short measured throughput of each model shape.

use std::collections::HashMap;
use std::fmt::Write;

use crate::device::ComputeDevice;
use crate::diag::bench::{run_bench, BenchOptions};
use crate::error::Result;
use crate::model::FlopConvention;
use crate::plan::RunRole;
use crate::plan::{run_flops, Plan};

/// Measured training throughput (tokens/s) per (d_model, n_layers, batch size).
pub type Throughputs = HashMap<(usize, usize, usize), f64>;

/// Times 1 warm-up + 2 steps of each distinct shape of the plan on `device`.
pub fn measure(plan: &Plan, device: &ComputeDevice) -> Result<Throughputs> {
    let mut out = Throughputs::new();
    for spec in &plan.runs {
        let key = (spec.shape.d_model, spec.shape.n_layers, spec.batch_size);
        if out.contains_key(&key) {
            continue;
        }
        let options =
            BenchOptions { shape: spec.shape.clone(), batch_size: spec.batch_size, steps: 2, warmup_steps: 1 };
        out.insert(key, run_bench(&options, device)?.tokens_per_s);
    }
    Ok(out)
}

/// Throughputs from an assumed model FLOP rate (matmul_attn convention), for planning a sweep
/// for another machine (`plan --assume-flops 2.4e14`).
pub fn assume(plan: &Plan, model_flops_per_s: f64) -> Throughputs {
    plan.runs
        .iter()
        .map(|spec| {
            let per_token = spec.shape.flops_per_token_for(FlopConvention::MatmulAttn);
            ((spec.shape.d_model, spec.shape.n_layers, spec.batch_size), model_flops_per_s / per_token)
        })
        .collect()
}

/// Estimated seconds for one run: training at the measured rate plus its evaluations (a forward
/// pass costs about a third of a training step per token).
fn estimate_s(spec: &crate::plan::RunSpec, tokens_per_s: f64) -> f64 {
    let trained = match &spec.role {
        RunRole::Branch { from_step, .. } => spec.steps - from_step,
        _ => spec.steps,
    };
    let tokens_per_step = (spec.batch_size * spec.shape.seq_len) as f64;
    let evals = (spec.steps / spec.eval_every_steps.max(1)) as f64 + 1.0;
    let eval_tokens = (spec.eval_sequences * spec.shape.seq_len) as f64;
    (trained as f64 * tokens_per_step + evals * eval_tokens / 3.0) / tokens_per_s
}

/// The plan as a table, with totals, the time estimate (when measured) and the warnings.
pub fn render(plan: &Plan, throughputs: Option<&Throughputs>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<34} {:>6} {:>10} {:>10} {:>10} {:>11} {:>10} {:>7} {:>5} {:>8} {:>9}",
        "run_id", "role", "N_nonemb", "N_total", "N_matmul", "tokens", "FLOPs(6n)", "steps", "batch", "lr", "est"
    );
    let mut total_s = 0.0;
    for spec in &plan.runs {
        let s = &spec.shape;
        let role = match spec.role {
            RunRole::Independent => "",
            RunRole::Trunk { .. } => "trunk",
            RunRole::Branch { .. } => "branch",
        };
        let est = throughputs.and_then(|t| t.get(&(s.d_model, s.n_layers, spec.batch_size))).map(|&tps| {
            let secs = estimate_s(spec, tps);
            total_s += secs;
            human_duration(secs)
        });
        let _ = writeln!(
            out,
            "{:<34} {:>6} {:>10} {:>10} {:>10} {:>11} {:>10.3e} {:>7} {:>5} {:>8.2e} {:>9}",
            spec.run_id,
            role,
            s.params_nonembedding(),
            s.params_total(),
            s.params_matmul(),
            spec.tokens,
            run_flops(spec, FlopConvention::SixN),
            spec.steps,
            spec.batch_size,
            spec.lr,
            est.unwrap_or_else(|| "-".into())
        );
    }
    let _ = writeln!(
        out,
        "\n{}, {:.3e} FLOPs (6n) in all",
        crate::human::plural(plan.runs.len(), "run"),
        plan.total_flops(FlopConvention::SixN)
    );
    let saved = plan.flops_saved_by_branching(FlopConvention::SixN);
    if saved > 0.0 {
        let _ = writeln!(out, "WSD branching saves {saved:.3e} FLOPs against training every budget independently");
    }
    if throughputs.is_some() {
        let _ = writeln!(out, "estimated wall time on this device, one worker: {}", human_duration(total_s));
    }
    for w in &plan.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

pub fn human_duration(secs: f64) -> String {
    if secs < 120.0 {
        format!("{secs:.0}s")
    } else if secs < 7200.0 {
        format!("{:.1}m", secs / 60.0)
    } else {
        format!("{:.1}h", secs / 3600.0)
    }
}
