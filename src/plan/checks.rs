//! The plan checks: runs and budgets that would put points on a scaling law that are not on it.
//! `plan` and `sweep` print them as warnings; `--strict` refuses the plan instead
//! (docs/sweep-design.md "Plan checks" says what each one protects and why its default).

use crate::config::ScheduleConfig;
use crate::config::{ChecksSection, SweepConfig};
use crate::human::first_of;
use crate::plan::centre::{centre_param_count, centred_shapes, predicted_optimum, DEFAULT_SPAN};
use crate::plan::{family_shape, params_of, size_label};
use crate::plan::{RunRole, RunSpec};
use crate::records::verdict::Verdict;

/// How many runs or values a warning names before it counts the rest.
const LISTED: usize = 4;

/// Every warning the checks raise for `runs` of `config`.
pub fn design_warnings(config: &SweepConfig, runs: &[RunSpec]) -> Result<Vec<String>, String> {
    let limits = config.checks.clone().unwrap_or_default();
    let mut warnings = centre_warnings(config);
    warnings.extend(tuned_edge_warning(config));
    warnings.extend(unused_table_rows(config, runs));
    let short: Vec<String> =
        runs.iter().filter(|r| r.steps < limits.min_steps).map(|r| format!("{} ({})", r.run_id, r.steps)).collect();
    if !short.is_empty() {
        warnings.push(format!(
            "{} run(s) have fewer than checks.min_steps = {} optimiser steps, so their final loss is still the \
             optimisation transient, not a point on the law: {}",
            short.len(),
            limits.min_steps,
            first_of(&short, LISTED)
        ));
    }
    let long_warmup: Vec<String> = runs
        .iter()
        .filter(|r| warmup_steps(r) as f64 > limits.max_warmup_fraction * r.steps as f64)
        .map(|r| format!("{} ({} of {} steps)", r.run_id, warmup_steps(r), r.steps))
        .collect();
    if !long_warmup.is_empty() {
        warnings.push(format!(
            "{} run(s) spend more than checks.max_warmup_fraction = {} of their steps warming up: {}",
            long_warmup.len(),
            limits.max_warmup_fraction,
            first_of(&long_warmup, LISTED)
        ));
    }
    warnings.extend(tokens_per_param_warnings(config, runs, &limits)?);
    warnings.extend(straddle_warnings(config, runs, &limits)?);
    warnings.extend(identifiability_warnings(config, runs)?);
    Ok(warnings)
}

/// Designs whose laws the fitter will call `not identified` whatever the losses, by the
/// criteria of docs/fitting.md applied to the planned (N, D) points: too few distinct sizes or
/// token counts for approach 3 and Kaplan's L(N, D); every run at the same D/N, where the N and
/// D terms of L = E + A/N^α + B/D^β move together and cannot be told apart; and IsoFLOP budgets
/// too few, or with too few sizes, for approach 2's parabolas and the line through their minima.
fn identifiability_warnings(config: &SweepConfig, runs: &[RunSpec]) -> Result<Vec<String>, String> {
    use crate::verdict::{MIN_BUDGETS, MIN_BUDGET_SIZES as MIN_SIZES, MIN_DISTINCT};
    let count = config.budget.param_count.as_str();
    let mut points: Vec<(f64, f64, Option<f64>)> = Vec::new();
    for r in runs.iter().filter(|r| !matches!(r.role, RunRole::Trunk { .. })) {
        points.push((params_of(&r.shape, count)? as f64, r.tokens as f64, r.flop_budget));
    }
    if points.is_empty() {
        return Ok(Vec::new());
    }
    let distinct = |values: Vec<f64>| {
        let mut values = values;
        values.sort_by(f64::total_cmp);
        values.dedup();
        values.len()
    };
    let sizes = distinct(points.iter().map(|p| p.0).collect());
    let token_counts = distinct(points.iter().map(|p| p.1).collect());
    let mut out = Vec::new();
    if sizes < MIN_DISTINCT || token_counts < MIN_DISTINCT {
        let mut add = Vec::new();
        if sizes < MIN_DISTINCT {
            add.push("model sizes");
        }
        if token_counts < MIN_DISTINCT {
            add.push(if config.budget.flops.is_some() { "FLOP budgets" } else { "token budgets" });
        }
        out.push(format!(
            "the plan has {sizes} distinct model size(s) ({count}) and {token_counts} distinct token count(s): \
             approach 3 and Kaplan's L(N, D) need {MIN_DISTINCT}+ of each, so the fit will call them `not \
             identified`; add {}",
            add.join(" and ")
        ));
    }
    let ratios: Vec<f64> = points.iter().map(|p| p.1 / p.0).collect();
    let (lo, hi) = ratios.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
    if sizes >= 2 && hi / lo < SAME_RATIO {
        out.push(format!(
            "every run trains about {:.3} tokens per parameter ({count}), so D grows with N and approach 3 cannot \
             tell the N term from the D term (alpha from beta, A from B); plan 2+ values of \
             budget.tokens_per_param, or token or FLOP budgets",
            (lo * hi).sqrt()
        ));
    }
    if let Some(budgets) = &config.budget.flops {
        let mut short = Vec::new();
        let mut usable = 0;
        for &c in budgets {
            let n = distinct(points.iter().filter(|p| p.2 == Some(c)).map(|p| p.0).collect());
            if n >= MIN_SIZES {
                usable += 1;
            } else {
                short.push(format!("C = {c:e} ({n})"));
            }
        }
        if !short.is_empty() {
            out.push(format!(
                "{} FLOP budget(s) have fewer than the {MIN_SIZES} model sizes a parabola needs, so approach 2 \
                 leaves them out: {}; add sizes to them",
                short.len(),
                first_of(&short, LISTED)
            ));
        }
        if usable < MIN_BUDGETS {
            out.push(format!(
                "{usable} FLOP budget(s) with {MIN_SIZES}+ model sizes: approach 2 needs {MIN_BUDGETS}+ to measure \
                 how N_opt grows with C (through 2 minima a line fits exactly and says nothing of its error), so \
                 it will be `not identified`; add FLOP budgets"
            ));
        }
    }
    Ok(out)
}

/// Runs whose tokens per parameter all lie within this factor of each other are one ratio.
const SAME_RATIO: f64 = 1.1;

/// `[[train.table]]` rows for sizes the grid does not have: a typo in a row's size leaves the
/// size it was meant for without its row (an error) or, as here, a row that sets nothing.
fn unused_table_rows(config: &SweepConfig, runs: &[RunSpec]) -> Option<String> {
    if config.train.hyperparameters != crate::config::HyperRule::Table {
        return None;
    }
    let unused: Vec<String> = config
        .train
        .table
        .iter()
        .enumerate()
        .filter(|(_, row)| !runs.iter().any(|r| (r.shape.d_model, r.shape.n_layers) == (row.d_model, row.n_layers)))
        .map(|(i, row)| format!("train.table[{i}] (L{}-d{})", row.n_layers, row.d_model))
        .collect();
    (!unused.is_empty()).then(|| {
        format!("{} [[train.table]] row(s) match no size of the plan: {}", unused.len(), first_of(&unused, LISTED))
    })
}

/// Warmup steps of a run as the schedule gives them (a trunk's and its branches' are shared).
fn warmup_steps(spec: &RunSpec) -> u64 {
    match &spec.role {
        RunRole::Trunk { warmup_steps, .. } | RunRole::Branch { warmup_steps, .. } => *warmup_steps,
        RunRole::Independent => {
            let fraction = match spec.schedule {
                ScheduleConfig::Cosine { warmup_fraction, .. }
                | ScheduleConfig::Wsd { warmup_fraction, .. }
                | ScheduleConfig::Constant { warmup_fraction } => warmup_fraction,
            };
            (fraction * spec.steps as f64).round() as u64
        }
    }
}

fn tokens_per_param_warnings(
    config: &SweepConfig,
    runs: &[RunSpec],
    limits: &ChecksSection,
) -> Result<Vec<String>, String> {
    let [lo, hi] = limits.tokens_per_param;
    let (mut below, mut above) = (Vec::new(), Vec::new());
    for r in runs.iter().filter(|r| !matches!(r.role, RunRole::Trunk { .. })) {
        let ratio = r.tokens as f64 / params_of(&r.shape, &config.budget.param_count)? as f64;
        let label = format!("{} ({ratio:.3})", r.run_id);
        if ratio < lo {
            below.push(label);
        } else if ratio > hi {
            above.push(label);
        }
    }
    let mut out = Vec::new();
    for (runs, side, bound) in [(below, "fewer", lo), (above, "more", hi)] {
        if !runs.is_empty() {
            out.push(format!(
                "{} run(s) train on {side} tokens per parameter ({}) than checks.tokens_per_param allows ({bound}): {}",
                runs.len(),
                config.budget.param_count,
                first_of(&runs, LISTED)
            ));
        }
    }
    Ok(out)
}

/// A tuned rule fitted through sizes whose best lr lay at the edge of their scan: there the
/// optimum may lie beyond the scan, so the rule lr*(N) = c·N^γ is partly a bound, and with every
/// size at an edge it says nothing about the optimum at all.
fn tuned_edge_warning(config: &SweepConfig) -> Option<String> {
    let train = &config.train;
    if train.hyperparameters != crate::config::HyperRule::Tuned || train.tuned_at_edge.is_empty() {
        return None;
    }
    let file = train.tuned_table.as_deref().unwrap_or_default();
    let which = first_of(&train.tuned_at_edge, LISTED);
    Some(format!(
        "train.tuned_table = {file:?}: the best lr of {} of the tuned sizes ({which}) lay at the edge of its scan, so \
         the rule's rates there are bounds, not optima; move tune.lr_centre towards them or raise tune.lrs, and \
         tune again",
        train.tuned_at_edge.len()
    ))
}

/// A grid centred on a fit.json whose approach-3 law is not `identified`: every budget's sizes
/// are placed around optima that its data do not support (`not identified`) or support loosely
/// (`weak`). The verdict and its first reason are those fit.json gives.
fn centre_warnings(config: &SweepConfig) -> Vec<String> {
    let (Some(file), Some(law)) = (&config.grid.centre, &config.grid.centre_law) else { return Vec::new() };
    let assessment = &law.assessment;
    let why = match assessment.reasons.as_slice() {
        [] => "fit.json gives no reason".to_string(),
        [only] => only.clone(),
        [first, rest @ ..] => format!("{first}; {} more reason(s) in that fit.json", rest.len()),
    };
    let support = match assessment.verdict {
        Verdict::Identified => return Vec::new(),
        Verdict::Weak => "only loosely supported by its data",
        Verdict::NotIdentified => "not supported by its data",
    };
    vec![format!(
        "grid.centre = {file:?}: its approach-3 law is `{}` ({why}), so the optimum it predicts for each budget, \
         around which the budget's sizes are placed, is {support}; centre on \"chinchilla\" or on a fit whose \
         approach 3 is identified",
        assessment.verdict
    )]
}

/// An IsoFLOP budget whose sizes do not reach optimum / room below and optimum × room above, or
/// whose sizes' geometric middle lies more than a factor `room` from the optimum: its minimum is
/// found at or near an edge, which biases approach 2.
fn straddle_warnings(config: &SweepConfig, runs: &[RunSpec], limits: &ChecksSection) -> Result<Vec<String>, String> {
    let count = centre_param_count(config);
    let room = limits.optimum_room;
    let source = match (&config.grid.centre, &config.grid.centre_law) {
        (Some(c), Some(law)) if !law.assessment.is_identified() => {
            format!("the law of {c}, whose verdict is `{}`", law.assessment.verdict)
        }
        (Some(c), _) if c != "chinchilla" => format!("the law of {c}"),
        _ => "20 tokens per parameter".to_string(),
    };
    let mut out = Vec::new();
    for &c in config.budget.flops.iter().flatten() {
        let planned: Vec<&RunSpec> = runs.iter().filter(|r| r.flop_budget == Some(c)).collect();
        let sizes: Vec<f64> =
            planned.iter().map(|r| params_of(&r.shape, count).map(|n| n as f64)).collect::<Result<_, _>>()?;
        let n_opt = predicted_optimum(config, c)?;
        let (lo, hi) = sizes.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &n| (lo.min(n), hi.max(n)));
        let middle = (lo * hi).sqrt();
        if sizes.is_empty() || lo > n_opt / room || hi < n_opt * room {
            let advice = centred_advice(config, c, &planned, n_opt, room, [lo > n_opt / room, hi < n_opt * room])?;
            out.push(format!(
                "budget C = {c:e}: sizes N = {lo:.3e}..{hi:.3e} ({count}) do not straddle the predicted optimum \
                 N = {n_opt:.3e} ({source}) with a factor checks.optimum_room = {room} on both sides; \
                 the IsoFLOP minimum may fall at the edge of the grid ({})",
                advice.unwrap_or_else(|| "centre it with grid.centre".to_string())
            ));
        } else if (middle / n_opt).ln().abs() > room.ln() {
            let advice = centred_advice(config, c, &planned, n_opt, room, [middle > n_opt, middle < n_opt])?;
            out.push(format!(
                "budget C = {c:e}: sizes N = {lo:.3e}..{hi:.3e} ({count}) are off-centre: their middle {middle:.3e} is \
                 more than a factor {room} from the predicted optimum N = {n_opt:.3e} ({source}); off-centre sizes \
                 bias the IsoFLOP minimum ({})",
                advice.unwrap_or_else(|| "centre them with grid.centre".to_string())
            ));
        }
    }
    Ok(out)
}

/// Why a centred budget's sizes (`planned`) still miss its optimum `n_opt`, and what to change;
/// `None` for a grid without a centre (the advice is then to centre it). `short` says which side
/// falls short: [no size far enough below the optimum, none far enough above].
fn centred_advice(
    config: &SweepConfig,
    c: f64,
    planned: &[&RunSpec],
    n_opt: f64,
    room: f64,
    short: [bool; 2],
) -> Result<Option<String>, String> {
    if config.grid.centre.is_none() {
        return Ok(None);
    }
    let count = centre_param_count(config);
    let span = config.grid.span.unwrap_or(DEFAULT_SPAN);
    let mut causes = Vec::new();
    if span < room {
        causes.push(format!(
            "grid.span = {span} is below checks.optimum_room = {room}: widen grid.span to at least {room}"
        ));
    }
    let [below, above] = short;
    let smallest = family_shape(config, config.data.vocab_size()?, config.model.head_dim, 1);
    let smallest_n = params_of(&smallest, count)? as f64;
    let lowest_target = n_opt / span;
    if below && lowest_target < smallest_n {
        let label = size_label(&smallest);
        causes.push(if n_opt / smallest_n < room {
            format!(
                "the family's smallest shape {label} ({smallest_n:.3e}) lies within a factor {room} of the optimum, \
                 so no size can be below it: raise this budget or lower model.head_dim"
            )
        } else {
            format!(
                "the targets down to N*/grid.span = {lowest_target:.3e} fall below the family's smallest shape \
                 {label} ({smallest_n:.3e}), so the smallest sizes bunch there: narrow grid.span to at most {:.3}",
                n_opt / smallest_n
            )
        });
    }
    if above {
        let left_out: Vec<String> = centred_shapes(config, c)?
            .iter()
            .filter(|shape| !planned.iter().any(|r| &r.shape == *shape))
            .map(size_label)
            .collect();
        if !left_out.is_empty() {
            causes.push(format!(
                "its {} largest size(s) ({}) get less than one optimiser step of this budget and are left out: \
                 raise this budget or lower train.batch_size",
                left_out.len(),
                first_of(&left_out, LISTED)
            ));
        }
    }
    if causes.is_empty() {
        causes.push("the shapes nearest its targets do not reach that far: widen grid.span or add grid.sizes".into());
    }
    Ok(Some(format!("grid.centre already centres this budget; {}", causes.join("; "))))
}

/// Models whose vocabulary is far larger than the data's: a trained BPE that stopped short of the
/// `vocab_size` asked (a small corpus has fewer merges to learn), or a given tokenizer with a
/// vocabulary much smaller than the models'. Rows no token uses still count in N_total and in the
/// head's matmul FLOPs, and cost time. Padding a vocabulary to a multiple of 64 or 128 for fast
/// matmuls is common and stays below the 10% that warns here.
pub fn vocab_warning(runs: &[RunSpec], data_vocab: usize) -> Option<String> {
    let model_vocab = runs.iter().map(|r| r.shape.vocab_size).max()?;
    (model_vocab as f64 > VOCAB_SLACK * data_vocab as f64).then(|| {
        format!(
            "the models embed {model_vocab} tokens, but the data's vocabulary has {data_vocab}: the unused rows \
             inflate N_total and the head's FLOPs and cost time; set data.vocab_size to {data_vocab}"
        )
    })
}

/// Text whose tokenizer has no end-of-text token (`separates_documents` false): documents
/// follow each other with nothing between them, so a model learns to predict across their
/// boundaries.
pub fn separator_warning(separates_documents: bool) -> Option<String> {
    (!separates_documents).then(|| {
        "the tokenizer has no <|endoftext|> token, so the documents run together in the token stream with \
         nothing between them; use a tokenizer that has one, or train one (data.vocab_size without \
         data.tokenizer)"
            .to_string()
    })
}

/// A model vocabulary up to this factor above the data's is padding, not a mismatch.
const VOCAB_SLACK: f64 = 1.1;

/// Runs the data cannot feed as planned, given the `training_tokens` of the source's training
/// split: runs that would pass over the split more than once without asking to (no
/// `budget.unique_tokens`), whose points the parametric laws would take as trained on fresh
/// tokens each step, and runs whose `unique_tokens` ask for more tokens than the split holds,
/// which would train on the whole split instead (so their U is not the one designed).
/// A run sees the split as whole rows of its seq_len, so that is what it can train on once.
pub fn data_warnings(runs: &[RunSpec], training_tokens: u64) -> Vec<String> {
    let usable = |r: &RunSpec| {
        let seq_len = r.shape.seq_len.max(1) as u64;
        training_tokens / seq_len * seq_len
    };
    let repeating: Vec<String> = runs
        .iter()
        .filter(|r| r.unique_tokens.is_none() && r.tokens > usable(r))
        .map(|r| format!("{} ({:.2} epochs)", r.run_id, crate::counting::epochs(r.tokens, usable(r))))
        .collect();
    let mut out = Vec::new();
    if !repeating.is_empty() {
        out.push(format!(
            "{} run(s) train on more tokens than the {training_tokens} of the training split, so they repeat data \
             that the laws of approaches 1-3 take as fresh: {}; lower the budgets or sizes' tokens, add data, or \
             design the repetition with budget.unique_tokens",
            repeating.len(),
            first_of(&repeating, LISTED)
        ));
    }
    let mut too_many: Vec<u64> = runs
        .iter()
        .filter(|r| r.unique_tokens.is_some_and(|u| u > usable(r)))
        .filter_map(|r| r.unique_tokens)
        .collect();
    too_many.sort_unstable();
    too_many.dedup();
    if !too_many.is_empty() {
        let values: Vec<String> = too_many.iter().map(u64::to_string).collect();
        out.push(format!(
            "budget.unique_tokens {} exceed the {training_tokens} tokens of the training split: those runs would \
             train on the whole split, not the unique tokens planned; lower them or add data",
            first_of(&values, LISTED)
        ));
    }
    out
}
