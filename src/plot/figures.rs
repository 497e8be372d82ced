//! The figures drawn from the records themselves, with the fitted curves laid over them
//! when fit.json has them: loss against compute (Kaplan et al. 2020, Figure 1), final loss
//! against N per token budget (with L(N, D)), and IsoFLOP curves (Hoffmann et al. 2022,
//! Figure 3). Each builder returns the figure, or why the sweep cannot support it.

use plotters::style::RGBColor;

use crate::fit::frontier::envelope;
use crate::fit::isoflop::{budget_flops, budget_parabolas, budgets, group_by_log};
use crate::fit::regress::Parabola;
use crate::fit::{Curve, CurvePoint, Dataset, FitOptions};
use crate::plot::chart::{Axis, FigureSpec, Layer, Marker, Panel};
use crate::plot::fit_figures::{verdict_tag, with_verdicts};
use crate::plot::fitjson::{FitJson, Minimum};
use crate::plot::records::{Counting, Point, Sweep};
use crate::plot::style::{self, compact};

/// What every figure builder reads.
pub(crate) struct Inputs<'a> {
    pub sweep: &'a Sweep,
    pub fit: Option<&'a FitJson>,
    /// What a figure that needs the fit says when `fit` is `None`: that fit.json is absent, or
    /// there but unreadable (`fitjson::no_fit_reason`).
    pub no_fit: String,
    pub counting: Counting,
    /// The done runs' final points.
    pub points: Vec<Point>,
}

/// A figure, or the reason the sweep's data cannot support it.
pub(crate) type Built = Result<FigureSpec, String>;

pub(crate) const LOSS_LABEL: &str = "validation loss (nats/token)";
pub(crate) const TOKENS_LABEL: &str = "D, training tokens";

/// Labels "<prefix><value><suffix>" with the fewest significant digits (2 to 4) that keep
/// distinct values apart.
pub(crate) fn distinct_labels(values: &[f64], prefix: &str, suffix: &str) -> Vec<String> {
    let mut labels = Vec::new();
    for digits in 2..=4 {
        labels = values.iter().map(|v| format!("{prefix}{}{suffix}", compact(*v, digits))).collect();
        let mut sorted = labels.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() == labels.len() {
            break;
        }
    }
    labels
}

/// Distinct values, sorted.
pub(crate) fn sorted_distinct(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    values
}

impl Inputs<'_> {
    /// The done runs as the fitter sees them: `points` in order, each with its validation curve
    /// before its end, so that the figures take the frontier and the budgets from the fitter's
    /// own functions (`crate::fit::frontier`, `crate::fit::isoflop`).
    pub(crate) fn dataset(&self) -> Dataset {
        let mut points = Vec::new();
        let mut curves = Vec::new();
        for (run, point) in self.sweep.done_runs(&self.counting) {
            let evals: Vec<CurvePoint> = run
                .curve(&self.counting)
                .into_iter()
                .filter(|(_, _, tokens)| *tokens < point.tokens)
                .map(|(flops, loss, tokens)| CurvePoint { tokens, flops, loss })
                .collect();
            if !evals.is_empty() {
                curves.push(Curve { point: points.len(), evals });
            }
            points.push(crate::fit::Point {
                run_id: point.id,
                params: point.params,
                tokens: point.tokens,
                flops: point.flops,
                unique_tokens: point.unique_tokens,
                loss: point.loss,
            });
        }
        let mut data = Dataset::from_points("records", points);
        data.curves = curves;
        data
    }
}

/// Weight 1 for each of `data`'s points: the figures draw every run.
pub(crate) fn every_run(data: &Dataset) -> Vec<f64> {
    vec![1.0; data.points.len()]
}

/// `count` values evenly spaced in log between `low` and `high`.
pub(crate) fn log_space(low: f64, high: f64, count: usize) -> Vec<f64> {
    let (a, b) = (low.ln(), high.ln());
    (0..count).map(|i| (a + (b - a) * i as f64 / (count.max(2) - 1) as f64).exp()).collect()
}

/// Token budgets: groups of runs with nearly equal D (as the fitter groups FLOP budgets), with
/// D their geometric mean.
fn token_budgets(points: &[Point]) -> Vec<(f64, Vec<usize>)> {
    let tokens: Vec<f64> = points.iter().map(|p| p.tokens).collect();
    group_by_log(&tokens, (0..points.len()).collect())
        .into_iter()
        .map(|members| {
            let mean_ln = members.iter().map(|&i| tokens[i].ln()).sum::<f64>() / members.len() as f64;
            (mean_ln.exp(), members)
        })
        .collect()
}

/// Figure 1: every run's validation curve against compute, coloured by model size, the
/// compute-efficient frontier and the fitted L(C) = (C_c/C)^alpha_C (Kaplan et al. 2020
/// eq. 1.3, Figure 1 left).
pub(crate) fn loss_vs_compute(inputs: &Inputs<'_>) -> Built {
    let counting = &inputs.counting;
    let runs = inputs.sweep.done_runs(counting);
    let sizes = sorted_distinct(runs.iter().map(|(_, p)| p.params));
    let colours = style::sequential_steps(sizes.len());
    let labels = distinct_labels(&sizes, "N = ", "");
    let mut panel = Panel::new(Axis::log(counting.flops_label()), Axis::log(LOSS_LABEL));
    for (run, point) in &runs {
        let index = sizes.iter().position(|s| *s == point.params).unwrap_or(0);
        let curve: Vec<(f64, f64)> = run.curve(counting).iter().map(|(c, l, _)| (*c, *l)).collect();
        panel.layers.push(Layer::line(Some(labels[index].clone()), colours[index], curve));
    }
    let data = inputs.dataset();
    let frontier = envelope(&data, &every_run(&data));
    let frontier_line: Vec<(f64, f64)> = frontier.iter().map(|e| (e.flops, e.loss)).collect();
    panel
        .layers
        .push(Layer::line(Some("compute-efficient frontier".into()), style::BLACK, frontier_line).with_width(3));
    let law = inputs.fit.and_then(|fit| fit.power_law("kaplan_c", "alpha_C", "C_c"));
    if let (Some((alpha, scale)), Some(first), Some(last)) = (law, frontier.first(), frontier.last()) {
        let line = log_space(first.flops, last.flops, 60).into_iter().map(|c| (c, (scale / c).powf(alpha))).collect();
        let label = format!("Kaplan L(C) = (C_c/C)^α_C fit, α_C = {alpha:.3}");
        panel.layers.push(Layer::dashed(Some(label), style::RED, line).with_width(3));
    }
    Ok(FigureSpec {
        name: "loss_vs_compute".into(),
        title: format!("Validation loss against compute ({})", crate::human::plural(runs.len(), "run")),
        panels: vec![panel],
    })
}

/// Figure 2: final loss against N, one series per token budget, with approach 3's
/// L(N, D) = E + A/N^alpha + B/D^beta and Kaplan's eq. 1.5 at each budget's D.
pub(crate) fn loss_vs_params(inputs: &Inputs<'_>) -> Built {
    let points = &inputs.points;
    let budgets: Vec<(f64, Vec<usize>)> = token_budgets(points)
        .into_iter()
        .filter(|(_, members)| sorted_distinct(members.iter().map(|&i| points[i].params)).len() >= 2)
        .collect();
    if budgets.is_empty() {
        return Err("no token budget has runs of 2+ model sizes (an IsoFLOP sweep varies D with N: see the \
                    IsoFLOP figure)"
            .into());
    }
    let chinchilla = inputs.fit.and_then(FitJson::chinchilla);
    let kaplan = inputs.fit.and_then(FitJson::kaplan_joint);
    let (low, high) = points.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| (lo.min(p.params), hi.max(p.params)));
    let grid = log_space(low / 1.3, high * 1.3, 60);
    let labels = distinct_labels(&budgets.iter().map(|b| b.0).collect::<Vec<_>>(), "D = ", " tokens");
    let mut panel = Panel::new(Axis::log(inputs.counting.params_label()), Axis::log(LOSS_LABEL));
    for (index, (tokens, members)) in budgets.iter().enumerate() {
        let colour = style::categorical(index);
        let runs: Vec<(f64, f64)> = members.iter().map(|&i| (points[i].params, points[i].loss)).collect();
        panel.layers.push(Layer::markers(Some(labels[index].clone()), colour, Marker::Circle, runs).with_width(6));
        if let Some(fit) = chinchilla {
            panel.layers.push(Layer::line(None, colour, grid.iter().map(|&n| (n, fit.predict(n, *tokens))).collect()));
        }
        if let Some(fit) = kaplan {
            panel.layers.push(Layer::dashed(
                None,
                colour,
                grid.iter().map(|&n| (n, fit.predict(n, *tokens))).collect(),
            ));
        }
    }
    let tag = |law: &str| inputs.fit.map(|fit| verdict_tag(fit, law)).unwrap_or_default();
    if chinchilla.is_some() {
        let label = format!("approach 3 fit E + A/Nᵅ + B/Dᵝ{}", tag("chinchilla"));
        panel.layers.push(Layer::line(Some(label), style::GREY, Vec::new()));
    }
    if kaplan.is_some() {
        let label = format!("Kaplan fit [(N_c/N)^(α_N/α_D) + D_c/D]^α_D{}", tag("kaplan_nd"));
        panel.layers.push(Layer::dashed(Some(label), style::GREY, Vec::new()));
    }
    let title = "Final loss against model size, per token budget, with L(N, D)".to_string();
    Ok(FigureSpec {
        name: "loss_vs_params".into(),
        title: match inputs.fit {
            Some(fit) => with_verdicts(title, fit, &["chinchilla", "kaplan_nd"]),
            None => title,
        },
        panels: vec![panel],
    })
}

/// A FLOP budget as approach 2 forms it: its compute, its runs (indices into the points) and
/// its parabola in log N with the log N range it was fitted over, when it has a minimum.
struct Budget {
    flops: f64,
    members: Vec<usize>,
    parabola: Option<(Parabola, f64, f64)>,
}

/// The FLOP budgets and their parabolas, from the fitter's own functions (fit.json's window
/// of sizes, the default window without one).
fn flop_budgets(inputs: &Inputs<'_>) -> Vec<Budget> {
    let data = inputs.dataset();
    let weights = every_run(&data);
    let window = inputs.fit.and_then(FitJson::isoflop_window).unwrap_or(FitOptions::default().isoflop_window);
    let parabola = |group: &[usize]| {
        let fit = budget_parabolas(&data, &weights, group, window).ok()?;
        let parabola = fit.ln_n.filter(|p| p.minimum().is_some())?;
        Some((parabola, fit.sizes[0].ln(), fit.sizes[1].ln()))
    };
    let groups = budgets(&data, &weights);
    groups
        .into_iter()
        .map(|members| Budget { flops: budget_flops(&data, &weights, &members), parabola: parabola(&members), members })
        .collect()
}

/// Figure 3: final loss against N for each FLOP budget, the parabola in log N through each
/// budget's runs at the sizes nearest its lowest loss, and its minimum, as approach 2 fits them
/// (Hoffmann et al. 2022, section 3.2, Figure 3 left).
pub(crate) fn isoflop(inputs: &Inputs<'_>) -> Built {
    let points = &inputs.points;
    let budgets = flop_budgets(inputs);
    let parabolas: Vec<Option<(Parabola, f64, f64)>> = budgets.iter().map(|b| b.parabola).collect();
    let usable = parabolas.iter().filter(|p| p.is_some()).count();
    if usable < 2 {
        return Err(format!(
            "IsoFLOP curves need 2+ FLOP budgets with 3+ model sizes and a parabola minimum each; found {} \
             budget(s), {usable} usable",
            budgets.len()
        ));
    }
    let colours = style::sequential_steps(budgets.len());
    let labels = distinct_labels(&budgets.iter().map(|b| b.flops).collect::<Vec<_>>(), "C = ", " FLOPs");
    let mut panel = Panel::new(Axis::log(inputs.counting.params_label()), Axis::linear(LOSS_LABEL));
    let fitted = inputs.fit.map(FitJson::minima).unwrap_or_default();
    let (mut minima, mut outside) = (Vec::new(), Vec::new());
    for (index, budget) in budgets.iter().enumerate() {
        let runs: Vec<(f64, f64)> = budget.members.iter().map(|&i| (points[i].params, points[i].loss)).collect();
        let left_out = is_left_out(&fitted, budget.flops);
        let (label, line): (String, fn(_, _, _) -> Layer) = if left_out {
            (format!("{} (left out of approach 2: minimum outside its sizes)", labels[index]), Layer::dashed)
        } else {
            (labels[index].clone(), Layer::line)
        };
        let markers = Layer::markers(Some(label), colours[index], Marker::Circle, runs).with_width(6);
        panel.layers.push(if left_out { markers.hollow() } else { markers });
        if let Some((parabola, low, high)) = parabolas[index] {
            let pad = 0.08 * (high - low);
            let curve = log_space((low - pad).exp(), (high + pad).exp(), 60);
            let curve = curve.into_iter().map(|n| (n, parabola.at(n.ln()))).collect();
            panel.layers.push(line(None, colours[index], curve));
            let vertex = parabola.minimum().map(|(ln_n, loss)| (ln_n.exp(), loss));
            if left_out {
                outside.extend(vertex)
            } else {
                minima.extend(vertex)
            }
        }
    }
    panel.layers.push(Layer::line(Some("parabola in log N per budget".into()), style::GREY, Vec::new()));
    let minima_label = Some("parabola minimum (Nₒₚₜ, approach 2)".to_string());
    panel.layers.push(Layer::markers(minima_label, style::RED, Marker::Diamond, minima).with_width(6));
    let left_out = budgets.iter().filter(|b| is_left_out(&fitted, b.flops)).count();
    if !outside.is_empty() {
        let label = Some("minimum outside the sampled sizes (budget left out)".to_string());
        panel.layers.push(Layer::markers(label, style::RED, Marker::Cross, outside).with_width(6));
    }
    let mut title = format!("IsoFLOP curves ({} budgets", budgets.len());
    if left_out > 0 {
        title += &format!(", {left_out} left out of approach 2");
    }
    title.push(')');
    Ok(FigureSpec {
        name: "isoflop".into(),
        title: match inputs.fit {
            Some(fit) => with_verdicts(title, fit, &["isoflop"]),
            None => title,
        },
        panels: vec![panel],
    })
}

/// Whether fit.json's approach 2 left the budget at `flops` out (its vertex lies outside its
/// sizes): a minimum within 10% of its compute says so.
fn is_left_out(fitted: &[Minimum], flops: f64) -> bool {
    fitted.iter().any(|m| !m.inside && (m.flops / flops).ln().abs() < 0.1)
}

/// A colour for approach 1, 2, 3 of Hoffmann et al. 2022 (the same in every figure).
pub(crate) fn approach_colour(approach: usize) -> RGBColor {
    match approach {
        1 => style::BLUE,
        2 => style::ORANGE,
        _ => style::GREEN,
    }
}
