//! The figures about the fitted laws (they need fit.json): compute-optimal N and D against C
//! from the three approaches of Hoffmann et al. 2022 (Figure 1 right style) with reference
//! slopes, approach 3's residuals, the holdout backtest, and the fitted irreducible loss E
//! against the synthetic source's true entropy.

use crate::fit::frontier::{approach1_frontier, FrontierPoint};
use crate::fit::regress::fit_line;
use crate::plot::chart::{Axis, FigureSpec, Layer, LayerKind, Marker, Panel};
use crate::plot::figures::{approach_colour, every_run, log_space, Built, Inputs, LOSS_LABEL, TOKENS_LABEL};
use crate::plot::fitjson::{law_name, Chinchilla, FitJson};
use crate::plot::style::{self, compact};
use crate::records::verdict::Verdict;

/// Published compute-optimal exponents drawn for reference: N_opt ∝ C^0.73 (Kaplan et al.
/// 2020, section 6.1) and C^0.50 (Hoffmann et al. 2022, Table 2); D_opt takes 1 - a.
const KAPLAN_A: f64 = 0.73;
const CHINCHILLA_A: f64 = 0.50;
/// Frontier points drawn at most (the fit uses them all).
const FRONTIER_MARKERS: usize = 40;

fn fit_of<'a>(inputs: &'a Inputs<'_>) -> Result<&'a FitJson, String> {
    inputs.fit.ok_or_else(|| inputs.no_fit.clone())
}

/// Approach 3's law, or why there is none: fit.json's values for it are ones no fit produces,
/// or it is absent or degenerate.
fn approach3(fit: &FitJson) -> Result<Chinchilla, String> {
    if let Some(why) = fit.unusable("chinchilla") {
        return Err(format!(
            "fit.json's approach 3 (chinchilla) is unusable, corrupt: {why} (rerun `sweeplaw fit` to replace it)"
        ));
    }
    fit.chinchilla().ok_or_else(|| {
        "fit.json has no usable approach-3 (chinchilla) fit (absent, or degenerate: alpha, beta, A, B must be \
         positive)"
            .to_string()
    })
}

/// The longest reason a figure title quotes, so the title fits the figure's width (the report
/// gives the reasons in full).
const TITLE_REASON: usize = 40;

/// " [weak]" or " [not identified]" for a legend entry of a law that is not identified.
pub(crate) fn verdict_tag(fit: &FitJson, law: &str) -> String {
    let assessment = fit.assessment(law);
    if assessment.is_identified() {
        String::new()
    } else {
        format!(" [{}]", assessment.verdict)
    }
}

/// Whether fit.json calls the law not identified (its line is then drawn dashed and thin).
fn not_identified(fit: &FitJson, law: &str) -> bool {
    fit.assessment(law).verdict == Verdict::NotIdentified
}

/// "<name> not identified: <reason>" for each of the laws that is not identified, the reason
/// cut to TITLE_REASON characters, for a figure title.
pub(crate) fn verdict_notes(fit: &FitJson, laws: &[&str]) -> Vec<String> {
    laws.iter()
        .filter_map(|law| {
            let note = fit.verdict_note(law)?;
            let note = if note.chars().count() > TITLE_REASON {
                format!("{}…", note.chars().take(TITLE_REASON).collect::<String>())
            } else {
                note
            };
            Some(format!("{} {note}", law_name(law)))
        })
        .collect()
}

/// `title`, then the verdict notes of `laws` in parentheses when there are any: with its first
/// reason for one law, the verdicts alone for several (a title must fit on one line).
pub(crate) fn with_verdicts(title: String, fit: &FitJson, laws: &[&str]) -> String {
    let notes = verdict_notes(fit, laws);
    match notes.len() {
        0 => title,
        1 => format!("{title} ({})", notes[0]),
        _ => {
            let verdicts: Vec<String> = laws
                .iter()
                .filter(|law| !fit.assessment(law).is_identified())
                .map(|law| format!("{} {}", law_name(law), fit.assessment(law).verdict))
                .collect();
            format!("{title} ({})", verdicts.join("; "))
        }
    }
}

/// A line log y = intercept + slope log C over the C grid.
fn power_line(grid: &[f64], slope: f64, intercept: f64) -> Vec<(f64, f64)> {
    grid.iter().map(|&c| (c, (intercept + slope * c.ln()).exp())).collect()
}

/// Approach 1's points: the frontier the fitter fits its exponents on (`approach1_frontier`).
fn frontier_points(inputs: &Inputs<'_>) -> Vec<FrontierPoint> {
    let data = inputs.dataset();
    approach1_frontier(&data, &every_run(&data)).0
}

/// The intercepts of a line in log-log with the fitted slopes: fit.json's, else (a fit.json
/// written before it recorded them) the least-squares ones through the points,
/// mean(ln y − slope ln C), which is the fitter's line when the points are its own.
fn intercepts(fit: &FitJson, law: &str, points: &[(f64, f64, f64)], (a, b): (f64, f64)) -> Option<(f64, f64)> {
    if let Some(recorded) = fit.intercepts(law) {
        return Some(recorded);
    }
    if points.is_empty() {
        return None;
    }
    let mean = |f: &dyn Fn(&(f64, f64, f64)) -> f64| points.iter().map(f).sum::<f64>() / points.len() as f64;
    Some((mean(&|(c, n, _)| n.ln() - a * c.ln()), mean(&|(c, _, d)| d.ln() - b * c.ln())))
}

/// At most `count` points, evenly spread in log C.
fn thin(points: &[FrontierPoint], count: usize) -> Vec<FrontierPoint> {
    let (Some(first), Some(last)) = (points.first(), points.last()) else { return Vec::new() };
    let step = (last.flops / first.flops).ln() / count as f64;
    let mut kept: Vec<FrontierPoint> = Vec::new();
    for point in points {
        if kept.last().is_none_or(|k| (point.flops / k.flops).ln() >= step) {
            kept.push(*point);
        }
    }
    kept
}

/// Both panels of figure 4 and the grid of C they share.
struct Allocation {
    n_panel: Panel,
    d_panel: Panel,
    grid: Vec<f64>,
    /// The C at which reference lines and the band pivot (the data's geometric centre).
    pivot: f64,
}

impl Allocation {
    fn new(inputs: &Inputs<'_>, fit: &FitJson) -> Allocation {
        let computes = inputs.points.iter().map(|p| p.flops);
        let (mut low, mut high) = computes.fold((f64::INFINITY, 0.0f64), |(lo, hi), c| (lo.min(c), hi.max(c)));
        let pivot = (low * high).sqrt();
        if let Some(prediction) = fit.prediction("chinchilla") {
            low = low.min(prediction.flops);
            high = high.max(prediction.flops);
        }
        let flops_label = inputs.counting.flops_label();
        let mut n_panel = Panel::new(Axis::log(flops_label), Axis::log(&format!("Nₒₚₜ ({})", params_unit(inputs))));
        n_panel.title = Some("compute-optimal model size".into());
        let mut d_panel = Panel::new(Axis::log(flops_label), Axis::log("Dₒₚₜ, training tokens"));
        d_panel.title = Some("compute-optimal training tokens".into());
        Allocation { n_panel, d_panel, grid: log_space(low, high, 60), pivot }
    }

    /// Adds a pair of layers, one per panel, with the same label.
    fn push(&mut self, n_layer: Layer, d_layer: Layer) {
        self.n_panel.layers.push(n_layer);
        self.d_panel.layers.push(d_layer);
    }
}

fn params_unit(inputs: &Inputs<'_>) -> &'static str {
    inputs.counting.params_label().trim_start_matches("N, ")
}

/// Approach 1: frontier points and the line with the fitted exponents through them.
fn add_approach1(allocation: &mut Allocation, inputs: &Inputs<'_>, fit: &FitJson) {
    let Some((a, b)) = fit.exponents("frontier") else { return };
    let points = frontier_points(inputs);
    let colour = approach_colour(1);
    let shown = thin(&points, FRONTIER_MARKERS);
    let label = Some("approach 1: frontier points".to_string());
    allocation.push(
        Layer::markers(label.clone(), colour, Marker::Circle, shown.iter().map(|p| (p.flops, p.params)).collect()),
        Layer::markers(label, colour, Marker::Circle, shown.iter().map(|p| (p.flops, p.tokens)).collect()),
    );
    let drawn: Vec<(f64, f64, f64)> = points.iter().map(|p| (p.flops, p.params, p.tokens)).collect();
    if let Some((n0, d0)) = intercepts(fit, "frontier", &drawn, (a, b)) {
        let label = Some(format!("approach 1 fit (a = {a:.3}, b = {b:.3}){}", verdict_tag(fit, "frontier")));
        let grid = allocation.grid.clone();
        let line = if not_identified(fit, "frontier") { Layer::dashed } else { Layer::line };
        allocation
            .push(line(label.clone(), colour, power_line(&grid, a, n0)), line(label, colour, power_line(&grid, b, d0)));
    }
}

/// Approach 2: the IsoFLOP minima and the least-squares line through them.
fn add_approach2(allocation: &mut Allocation, fit: &FitJson) {
    let (minima, left_out): (Vec<_>, Vec<_>) = fit.minima().into_iter().partition(|m| m.inside);
    let Some((a, b)) = fit.exponents("isoflop") else { return };
    if !left_out.is_empty() {
        let label = Some("approach 2: minima outside their sizes (left out)".to_string());
        let colour = approach_colour(2);
        allocation.push(
            Layer::markers(label.clone(), colour, Marker::Cross, left_out.iter().map(|m| (m.flops, m.n_opt)).collect()),
            Layer::markers(label, colour, Marker::Cross, left_out.iter().map(|m| (m.flops, m.d_opt)).collect()),
        );
    }
    if minima.is_empty() {
        return;
    }
    let colour = approach_colour(2);
    let label = Some("approach 2: IsoFLOP minima".to_string());
    allocation.push(
        Layer::markers(label.clone(), colour, Marker::Diamond, minima.iter().map(|m| (m.flops, m.n_opt)).collect()),
        Layer::markers(label, colour, Marker::Diamond, minima.iter().map(|m| (m.flops, m.d_opt)).collect()),
    );
    let drawn: Vec<(f64, f64, f64)> = minima.iter().map(|m| (m.flops, m.n_opt, m.d_opt)).collect();
    if let Some((n0, d0)) = intercepts(fit, "isoflop", &drawn, (a, b)) {
        let label = Some(format!("approach 2 fit (a = {a:.3}, b = {b:.3}){}", verdict_tag(fit, "isoflop")));
        let grid = allocation.grid.clone();
        let width = if not_identified(fit, "isoflop") { 1 } else { 2 };
        allocation.push(
            Layer::dashed(label.clone(), colour, power_line(&grid, a, n0)).with_width(width),
            Layer::dashed(label, colour, power_line(&grid, b, d0)).with_width(width),
        );
    }
}

/// Approach 3's N_opt(C) and D_opt(C) (eq. 4), with the band that the 95% intervals of a
/// and b give when the line pivots at the data's centre.
fn add_approach3(allocation: &mut Allocation, fit: &FitJson, law: Chinchilla) {
    let colour = approach_colour(3);
    let (a, b) = (law.exponent_a(), law.exponent_b());
    let grid = allocation.grid.clone();
    let (n_pivot, d_pivot) = law.compute_optimal(allocation.pivot);
    let band = |centre: f64, interval: Option<(f64, f64)>| -> Option<Layer> {
        let (low, high) = interval?;
        let edge = |exponent: f64, c: f64| centre * (c / allocation.pivot).powf(exponent);
        let lower = grid.iter().map(|&c| (c, edge(low, c).min(edge(high, c)))).collect();
        let upper = grid.iter().map(|&c| (c, edge(low, c).max(edge(high, c)))).collect();
        Some(Layer {
            label: Some("approach 3: 95% interval of a, b".into()),
            color: colour,
            kind: LayerKind::Band { upper },
            points: lower,
        })
    };
    if let (Some(n_band), Some(d_band)) =
        (band(n_pivot, fit.interval("chinchilla", "a")), band(d_pivot, fit.interval("chinchilla", "b")))
    {
        allocation.push(n_band, d_band);
    }
    let label = Some(format!("approach 3 fit (a = {a:.3}, b = {b:.3}){}", verdict_tag(fit, "chinchilla")));
    let n_line = grid.iter().map(|&c| (c, law.compute_optimal(c).0)).collect();
    let d_line = grid.iter().map(|&c| (c, law.compute_optimal(c).1)).collect();
    let (line, width): (fn(_, _, _) -> Layer, u32) =
        if not_identified(fit, "chinchilla") { (Layer::dashed, 1) } else { (Layer::line, 3) };
    allocation
        .push(line(label.clone(), colour, n_line).with_width(width), line(label, colour, d_line).with_width(width));
    if let Some(prediction) = fit.prediction("chinchilla") {
        let label = Some(format!("approach 3 at target C = {}", compact(prediction.flops, 3)));
        let bar = |key: &str, centre: f64| Layer {
            label: label.clone(),
            color: style::BLACK,
            kind: LayerKind::ErrorBars { bounds: vec![prediction.ci95.get(key).copied().unwrap_or((centre, centre))] },
            points: vec![(prediction.flops, centre)],
        };
        let marker = |y: f64| Layer::markers(label.clone(), style::BLACK, Marker::Square, vec![(prediction.flops, y)]);
        allocation.push(marker(prediction.n_opt), marker(prediction.d_opt));
        allocation.push(bar("N_opt", prediction.n_opt), bar("D_opt", prediction.d_opt));
    }
}

/// Reference slopes through the first fitted line at the pivot compute.
fn add_references(allocation: &mut Allocation, anchor: (f64, f64)) {
    let grid = allocation.grid.clone();
    let pivot = allocation.pivot;
    for (a, colour, who) in
        [(KAPLAN_A, style::PURPLE, "Kaplan et al. 2020"), (CHINCHILLA_A, style::GREY, "Hoffmann et al. 2022")]
    {
        let label = Some(format!("{who}: a = {a:.2}, b = {:.2}", 1.0 - a));
        let line = |exponent: f64, at: f64| grid.iter().map(|&c| (c, at * (c / pivot).powf(exponent))).collect();
        allocation.push(
            Layer::dashed(label.clone(), colour, line(a, anchor.0)),
            Layer::dashed(label, colour, line(1.0 - a, anchor.1)),
        );
    }
}

/// Figure 4: N_opt and D_opt against C: approach 1 and 2 points, approach 3's line with its
/// band, and the published slopes.
pub(crate) fn optimal_allocation(inputs: &Inputs<'_>) -> Built {
    let fit = fit_of(inputs)?;
    let law = fit.chinchilla();
    if law.is_none() && fit.exponents("isoflop").is_none() && fit.exponents("frontier").is_none() {
        let unusable: Vec<String> = ["frontier", "isoflop", "chinchilla"]
            .into_iter()
            .filter_map(|law| Some(format!("{} is unusable, corrupt: {}", law_name(law), fit.unusable(law)?)))
            .collect();
        return Err(if unusable.is_empty() {
            "fit.json has none of approaches 1 (frontier), 2 (isoflop), 3 (chinchilla)".into()
        } else {
            format!("fit.json has no usable approach of 1, 2, 3: {}", unusable.join("; "))
        });
    }
    let mut allocation = Allocation::new(inputs, fit);
    add_approach1(&mut allocation, inputs, fit);
    add_approach2(&mut allocation, fit);
    if let Some(law) = law {
        add_approach3(&mut allocation, fit, law);
    }
    let anchor = law.map(|l| l.compute_optimal(allocation.pivot)).or_else(|| anchor_from_lines(&allocation));
    if let Some(anchor) = anchor {
        add_references(&mut allocation, anchor);
    }
    Ok(FigureSpec {
        name: "optimal_allocation".into(),
        title: with_verdicts(
            "Compute-optimal allocation: Nₒₚₜ ∝ Cᵃ, Dₒₚₜ ∝ Cᵇ".into(),
            fit,
            &["frontier", "isoflop", "chinchilla"],
        ),
        panels: vec![allocation.n_panel, allocation.d_panel],
    })
}

/// (N, D) at the pivot from the first line drawn, when approach 3 is absent.
fn anchor_from_lines(allocation: &Allocation) -> Option<(f64, f64)> {
    let at_pivot = |panel: &Panel| {
        let line = panel.layers.iter().find(|l| matches!(l.kind, LayerKind::Line { .. }) && !l.points.is_empty())?;
        let (ln_c, ln_y): (Vec<f64>, Vec<f64>) = line.points.iter().map(|(c, y)| (c.ln(), y.ln())).unzip();
        let line = fit_line(&ln_c, &ln_y, &vec![1.0; ln_c.len()])?;
        Some((line.intercept + line.slope * allocation.pivot.ln()).exp())
    };
    Some((at_pivot(&allocation.n_panel)?, at_pivot(&allocation.d_panel)?))
}

/// (smallest, largest) of positive values.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

/// Figure 5: approach 3's relative residuals (L - L̂)/L̂ against N and against D.
pub(crate) fn residuals(inputs: &Inputs<'_>) -> Built {
    let fit = fit_of(inputs)?;
    let law = approach3(fit)?;
    let excluded: Vec<String> = fit.excluded().into_iter().map(|(run, _)| run).collect();
    let percent = |p: &crate::plot::records::Point| 100.0 * (p.loss / law.predict(p.params, p.tokens) - 1.0);
    let label = "residual (L − L_fit)/L_fit (%)";
    let mut n_panel = Panel::new(Axis::log(inputs.counting.params_label()), Axis::linear(label));
    let mut d_panel = Panel::new(Axis::log(TOKENS_LABEL), Axis::linear(label));
    n_panel.title = Some("against model size".into());
    d_panel.title = Some("against training tokens".into());
    for (left_out, name, colour) in
        [(false, "runs in the fit", style::BLUE), (true, "runs left out of the fit", style::GREY)]
    {
        let chosen: Vec<_> = inputs.points.iter().filter(|p| excluded.contains(&p.id) == left_out).collect();
        if chosen.is_empty() {
            continue;
        }
        let layer = |x: &dyn Fn(&crate::plot::records::Point) -> f64| {
            let points = chosen.iter().map(|p| (x(p), percent(p))).collect();
            let shape = if left_out { Marker::Cross } else { Marker::Circle };
            Layer::markers(Some(name.into()), colour, shape, points).with_width(6)
        };
        n_panel.layers.push(layer(&|p| p.params));
        d_panel.layers.push(layer(&|p| p.tokens));
    }
    let (n_span, d_span) = (span(inputs.points.iter().map(|p| p.params)), span(inputs.points.iter().map(|p| p.tokens)));
    for (panel, (low, high)) in [(&mut n_panel, n_span), (&mut d_panel, d_span)] {
        panel.layers.push(
            Layer::line(Some("zero: L = L_fit".into()), style::BLACK, vec![(low, 0.0), (high, 0.0)]).with_width(1),
        );
    }
    Ok(FigureSpec {
        name: "residuals".into(),
        title: with_verdicts("Residuals of approach 3, L_fit = E + A/Nᵅ + B/Dᵝ".into(), fit, &["chinchilla"]),
        panels: vec![n_panel, d_panel],
    })
}

/// Figure 6: predicted against actual loss for the held-out runs (and approach 3's
/// in-sample predictions for scale when the backtest refitted approach 3).
pub(crate) fn holdout(inputs: &Inputs<'_>) -> Built {
    let fit = fit_of(inputs)?;
    let holdout = fit.holdout().ok_or("fit.json has no holdout backtest (run `sweeplaw fit --holdout K`)")?;
    let mut panel = Panel::new(Axis::linear("actual loss (nats/token)"), Axis::linear("predicted loss (nats/token)"));
    let mut values: Vec<f64> =
        holdout.held_out.iter().flat_map(|h| [h.actual, h.predicted]).filter(|v| v.is_finite()).collect();
    if let (Some(law), "chinchilla") = (fit.chinchilla(), holdout.law.as_str()) {
        let in_sample: Vec<(f64, f64)> =
            inputs.points.iter().map(|p| (p.loss, law.predict(p.params, p.tokens))).collect();
        values.extend(in_sample.iter().flat_map(|(a, b)| [*a, *b]));
        let label = Some("all runs, in-sample (approach 3 on all)".to_string());
        panel.layers.push(Layer::markers(label, style::GREY, Marker::Circle, in_sample).with_width(5).hollow());
    }
    let (low, high) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let pad = 0.05 * (high - low).max(0.01);
    let range = (low - pad, high + pad);
    panel.x.range = Some(range);
    panel.y.range = Some(range);
    panel.layers.push(
        Layer::line(Some("predicted = actual".into()), style::BLACK, vec![(range.0, range.0), (range.1, range.1)])
            .with_width(1),
    );
    let held: Vec<(f64, f64)> =
        holdout.held_out.iter().filter(|h| h.predicted.is_finite()).map(|h| (h.actual, h.predicted)).collect();
    let label = format!("held-out runs ({}, refitted without them)", holdout.held_out.len());
    panel.layers.push(Layer::markers(Some(label), style::RED, Marker::Triangle, held).with_width(8));
    Ok(FigureSpec {
        name: "holdout".into(),
        title: format!("Holdout backtest ({}): max relative error {}", law_name(&holdout.law), holdout.error_text()),
        panels: vec![panel],
    })
}

/// Figure 7: the fitted irreducible loss E of approach 3 against the true entropy of the
/// synthetic source, with the runs' final losses and approach 3's loss at the optimum.
pub(crate) fn entropy_floor(inputs: &Inputs<'_>) -> Built {
    let entropies = inputs.sweep.true_entropies();
    if entropies.is_empty() {
        return Err("the runs record no true entropy (only the synthetic source knows its floor)".into());
    }
    let fit = fit_of(inputs)?;
    let law = approach3(fit).map_err(|why| format!("{why}, so no fitted E"))?;
    let entropy = entropies.iter().sum::<f64>() / entropies.len() as f64;
    let computes = inputs.points.iter().map(|p| p.flops);
    let (low, high) = computes.fold((f64::INFINITY, 0.0f64), |(lo, hi), c| (lo.min(c), hi.max(c)));
    let (low, high) = (low / 2.0, high * 2.0);
    let mut panel = Panel::new(Axis::log(inputs.counting.flops_label()), Axis::linear(LOSS_LABEL));
    if let Some((e_low, e_high)) = fit.interval("chinchilla", "E") {
        let upper = vec![(low, e_high), (high, e_high)];
        let band = Layer {
            label: Some("95% interval of E".into()),
            color: style::RED,
            kind: LayerKind::Band { upper },
            points: vec![(low, e_low), (high, e_low)],
        };
        panel.layers.push(band);
    }
    let finals: Vec<(f64, f64)> = inputs.points.iter().map(|p| (p.flops, p.loss)).collect();
    panel
        .layers
        .push(Layer::markers(Some("final loss of each run".into()), style::BLUE, Marker::Circle, finals).with_width(5));
    let optimum = log_space(low, high, 60).into_iter().map(|c| {
        let (n, d) = law.compute_optimal(c);
        (c, law.predict(n, d))
    });
    panel.layers.push(Layer::line(
        Some(format!("approach 3 loss at Nₒₚₜ(C), Dₒₚₜ(C){}", verdict_tag(fit, "chinchilla"))),
        approach_colour(3),
        optimum.collect(),
    ));
    let floor = format!("true entropy H = {entropy:.4} (synthetic source)");
    panel.layers.push(Layer::line(Some(floor), style::BLACK, vec![(low, entropy), (high, entropy)]).with_width(3));
    let fitted = format!("fitted E = {:.4} (approach 3){}", law.e, verdict_tag(fit, "chinchilla"));
    panel.layers.push(Layer::dashed(Some(fitted), style::RED, vec![(low, law.e), (high, law.e)]).with_width(3));
    Ok(FigureSpec {
        name: "entropy_floor".into(),
        title: with_verdicts(
            format!("Fitted E = {:.3} against the true entropy {entropy:.3} nats/token", law.e),
            fit,
            &["chinchilla"],
        ),
        panels: vec![panel],
    })
}
