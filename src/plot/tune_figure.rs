//! The learning-rate scan of a tuning directory (`<results>/<name>-tune/`, written by
//! `sweeplaw tune`): final validation loss against lr for each tuned size with its optimum (the
//! vertex of the parabola in ln lr), and the optima against N with the fitted rule
//! lr*(N) = c·N^γ (Porian et al. 2024, section 4). Drawn from tuned.json alone, so the figure
//! shows exactly the numbers the sweep then uses.

use std::path::Path;

use crate::plot::chart::{Axis, FigureSpec, Layer, Marker, Panel};
use crate::plot::style::{self, compact};
use crate::plot::{PlotError, PlotOutput};
use crate::records::tuned::TunedTable;

/// File stem of the figure.
pub(crate) const NAME: &str = "tune_lr";

/// Loss against lr per size (left) and lr* against N with the rule (right).
pub(crate) fn figure(table: &TunedTable) -> Result<FigureSpec, String> {
    let mut scans = Panel::new(Axis::log("learning rate"), Axis::linear("final validation loss (nats/token)"));
    scans.title = Some("loss against lr per size".into());
    let colours = style::sequential_steps(table.sizes.len());
    let mut optima = Vec::new();
    for (size, colour) in table.sizes.iter().zip(colours) {
        let points: Vec<(f64, f64)> =
            size.lrs.iter().zip(&size.val_losses).filter_map(|(lr, loss)| loss.map(|l| (*lr, l))).collect();
        let Some(best) = points.iter().map(|p| p.1).min_by(f64::total_cmp) else { continue };
        let label = format!("N = {}", compact(size.params as f64, 3));
        scans.layers.push(Layer::line(Some(label), colour, points.clone()));
        scans.layers.push(Layer::markers(None, colour, Marker::Circle, points));
        // The optimum at the best scanned loss's height: the parabola's own minimum is not kept.
        let marker = if size.at_edge { Marker::Cross } else { Marker::Diamond };
        scans.layers.push(Layer::markers(None, colour, marker, vec![(size.lr_opt, best)]).with_width(9).hollow());
        optima.push((size.params as f64, size.lr_opt));
    }
    if optima.is_empty() {
        return Err("tuned.json has no size with a finished tuning run".into());
    }
    let rule = &table.rule;
    let mut law = Panel::new(Axis::log(&format!("N ({})", rule.param_count)), Axis::log("optimal learning rate"));
    law.title = Some(format!("lr*(N) = {}·N^{:.3}", compact(rule.coefficient, 3), rule.exponent));
    let (low, high) = optima.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let line: Vec<(f64, f64)> = (0..=20)
        .map(|i| {
            let n = low * (high / low).powf(f64::from(i) / 20.0);
            (n, rule.coefficient * n.powf(rule.exponent))
        })
        .collect();
    law.layers.push(Layer::dashed(Some("fitted lr*(N)".into()), style::categorical(0), line));
    law.layers.push(Layer::markers(
        Some("optimum per size (parabola vertex; cross: at the scan's edge)".into()),
        style::categorical(1),
        Marker::Diamond,
        optima,
    ));
    Ok(FigureSpec {
        name: NAME.into(),
        title: format!("Learning rate tuned per size: γ = {:.3}", rule.exponent),
        panels: vec![scans, law],
    })
}

/// Draws the figure into `sweep_dir/figures/` when `sweep_dir` holds tuned.json (a tuning
/// directory); an unreadable tuned.json is a warning and the figure is skipped.
pub(crate) fn draw(sweep_dir: &Path, output: &mut PlotOutput) -> Result<(), PlotError> {
    let path = sweep_dir.join("tuned.json");
    if !path.exists() {
        return Ok(());
    }
    let built = TunedTable::read(&path).and_then(|table| figure(&table));
    crate::plot::write_figure(&sweep_dir.join("figures"), NAME, built, output)
}
