//! Validation curves of sweep runs (runs/<run_id>/metrics.csv), for the laws that use
//! intermediate evaluations: Kaplan's L(C) frontier and Chinchilla approach 1.
//!
//! metrics.csv records `flops` under the 6n convention; under any convention a row's
//! compute is its tokens times the run's FLOPs per token (the run's C / D).

use std::path::Path;

use crate::fit::data::{positive, CsvTable, Curve, CurvePoint, Dataset};

/// Reads each point's metrics.csv under `run_dir`; missing files and bad rows are warnings.
pub(crate) fn attach_curves(dataset: &mut Dataset, run_dir: &Path) {
    let mut missing = Vec::new();
    for index in 0..dataset.points.len() {
        let point = &dataset.points[index];
        let path = run_dir.join(&point.run_id).join("metrics.csv");
        if !path.is_file() {
            missing.push(point.run_id.clone());
            continue;
        }
        let flops_per_token = point.flops / point.tokens;
        match read_curve(&path, flops_per_token) {
            Ok((evals, warnings)) => {
                dataset.warnings.extend(warnings);
                if !evals.is_empty() {
                    dataset.curves.push(Curve { point: index, evals });
                }
            }
            Err(error) => dataset.warnings.push(error.to_string()),
        }
    }
    if !missing.is_empty() {
        dataset.warnings.push(format!(
            "{}: no metrics.csv for {} run(s) ({}): their final point stands for their curve",
            run_dir.display(),
            missing.len(),
            missing.join(", ")
        ));
    }
}

/// The rows of one metrics.csv that carry a val_loss, sorted by tokens.
fn read_curve(path: &Path, flops_per_token: f64) -> Result<(Vec<CurvePoint>, Vec<String>), crate::fit::FitError> {
    let mut table = CsvTable::read(path)?;
    let tokens_column = table.require(&["tokens"])?;
    let loss_column = table.require(&["val_loss"])?;
    let mut evals = Vec::new();
    let mut problems = Vec::new();
    for (line, row) in table.lines() {
        let row = match row {
            Ok(row) => row,
            Err(reason) => {
                problems.push((line, reason.to_string()));
                continue;
            }
        };
        if row.get(loss_column).is_none_or(str::is_empty) {
            continue; // a step without an evaluation
        }
        let parsed = positive(row, Some(tokens_column), "tokens")
            .and_then(|tokens| Ok((tokens, positive(row, Some(loss_column), "val_loss")?)));
        match parsed {
            Ok((tokens, loss)) => evals.push(CurvePoint { tokens, flops: tokens * flops_per_token, loss }),
            Err(reason) => problems.push((line, reason)),
        }
    }
    for (line, reason) in problems {
        table.warn(line, &format!("evaluation skipped: {reason}"));
    }
    evals.sort_by(|p, q| p.tokens.total_cmp(&q.tokens));
    Ok((evals, table.warnings))
}
