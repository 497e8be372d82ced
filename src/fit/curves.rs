//! Validation curves of sweep runs (runs/<run_id>/metrics.csv, read by `crate::records`), for
//! the laws that use intermediate evaluations: Kaplan's L(C) frontier and Chinchilla approach 1.
//!
//! metrics.csv records `flops` under the 6n convention; under any convention a row's
//! compute is its tokens times the run's FLOPs per token (the run's C / D).

use std::path::Path;

use crate::fit::data::{Curve, CurvePoint, Dataset};
use crate::records::{read_metrics, MetricsRow};

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

/// The evaluations of one metrics.csv (rows with a positive val_loss after the first token),
/// sorted by tokens, read through `crate::records`: corrupt rows are skipped with a warning
/// naming the file and line.
fn read_curve(path: &Path, flops_per_token: f64) -> Result<(Vec<CurvePoint>, Vec<String>), crate::error::Error> {
    let (rows, warnings) = read_metrics(path)?;
    let mut evals: Vec<CurvePoint> = rows
        .iter()
        .filter_map(MetricsRow::evaluation)
        .filter(|(tokens, _)| *tokens > 0.0)
        .map(|(tokens, loss)| CurvePoint { tokens, flops: tokens * flops_per_token, loss })
        .collect();
    evals.sort_by(|p, q| p.tokens.total_cmp(&q.tokens));
    Ok((evals, warnings))
}
