//! The report's learning-rate section: for a tuning directory (it holds tuned.json) the rule
//! lr*(N) = c·N^γ, its cost and each size's optimum; for a sweep whose tuning directory
//! `<name>-tune/` sits beside it (a `hyperparameters = "tuned"` sweep), the same rule and a
//! link to the tuning figure drawn there.

use std::path::Path;

use crate::plot::style::compact;
use crate::records::tuned::TunedTable;
use crate::report::document::Block;

/// The section's blocks, or none when neither the directory nor a sibling `-tune` holds tuned.json.
pub(crate) fn section(sweep_dir: &Path) -> Vec<Block> {
    let own = sweep_dir.join("tuned.json");
    let name = sweep_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let sibling = sweep_dir.with_file_name(format!("{name}-tune"));
    let (path, figure_dir, link_prefix) = if own.exists() {
        (own, sweep_dir.join("figures"), "figures".to_string())
    } else if sibling.join("tuned.json").exists() {
        (sibling.join("tuned.json"), sibling.join("figures"), format!("../{name}-tune/figures"))
    } else {
        return Vec::new();
    };
    let mut blocks = vec![Block::Heading(2, "Learning rate tuned per size".into())];
    let table = match TunedTable::read(&path) {
        Ok(table) => table,
        Err(message) => {
            blocks.push(Block::Paragraph(format!("tuned.json could not be read: {message}")));
            return blocks;
        }
    };
    let rule = &table.rule;
    blocks.push(Block::Paragraph(format!(
        "Rule fitted through each size's optimum (a line in log-log, Porian et al. 2024): \
         lr*(N) = {} · N^γ with γ = {:.3} (N = {}), from {} sizes. Tuning cost {:.3e} FLOPs, \
         {:.1}% of the sweep's {:.3e}.",
        compact(rule.coefficient, 3),
        rule.exponent,
        rule.param_count,
        table.sizes.len(),
        table.cost.tune_flops,
        100.0 * table.cost.fraction,
        table.cost.sweep_flops
    )));
    let rows = table
        .sizes
        .iter()
        .map(|size| {
            let best = size.val_losses.iter().flatten().copied().min_by(f64::total_cmp);
            vec![
                size.label(),
                compact(size.params as f64, 3),
                compact(size.tokens as f64, 3),
                format!("{:.3e}", size.lr_opt),
                best.map_or("none finished".into(), |b| format!("{b:.4}")),
                if size.at_edge { "at the scan's edge" } else { "inside the scan" }.into(),
            ]
        })
        .collect();
    blocks.push(Block::Table {
        header: ["size", "N", "tokens", "lr* (parabola vertex)", "best val loss", "optimum"].map(String::from).to_vec(),
        rows,
    });
    if !table.warnings.is_empty() {
        blocks.push(Block::List(table.warnings.clone()));
    }
    let png = figure_dir.join(format!("{}.png", crate::plot::tune_figure::NAME));
    if png.exists() && !sweep_dir.join("tuned.json").exists() {
        blocks.push(Block::Figure {
            title: "Learning-rate scan of the tuning runs".into(),
            png,
            png_link: format!("{link_prefix}/{}.png", crate::plot::tune_figure::NAME),
            svg_link: format!("{link_prefix}/{}.svg", crate::plot::tune_figure::NAME),
        });
    }
    blocks
}
