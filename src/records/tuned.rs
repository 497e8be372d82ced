//! tuned.json: the learning-rate rule `sweeplaw tune` fitted, with every tuned size's scan and
//! what tuning cost. Written by `tune` (into the tuning sweep's directory and where the config's
//! `train.tuned_table` points); read by the plan of a sweep with `hyperparameters = "tuned"`, by
//! the report and by the lr figure.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::LrRule;
use crate::error::{Error, Result};

/// Version of tuned.json.
pub const TUNED_VERSION: u32 = 1;

/// One tuned size: the scan and its optimum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TunedSize {
    pub d_model: usize,
    pub n_layers: usize,
    /// N under the rule's parameter count.
    pub params: u64,
    pub tokens: u64,
    pub lrs: Vec<f64>,
    /// Final validation loss at each lr; None where the run diverged or failed.
    pub val_losses: Vec<Option<f64>>,
    pub lr_opt: f64,
    /// The best lr was the smallest or largest scanned: the optimum may lie outside the scan.
    pub at_edge: bool,
}

impl TunedSize {
    /// `L{layers}-d{width}`, as the tuning runs' ids name the size.
    pub fn label(&self) -> String {
        crate::model::size_label(self.n_layers, self.d_model)
    }
}

/// What tuning cost against the sweep it tunes (FLOPs under budget.flop_convention).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuneCost {
    pub tune_flops: f64,
    pub sweep_flops: f64,
    pub fraction: f64,
}

/// tuned.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TunedTable {
    pub format_version: u32,
    pub sweep: String,
    pub rule: LrRule,
    pub sizes: Vec<TunedSize>,
    pub cost: TuneCost,
    pub warnings: Vec<String>,
}

impl TunedTable {
    pub fn read(path: &Path) -> std::result::Result<TunedTable, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let table: TunedTable = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let r = &table.rule;
        if !(r.coefficient > 0.0 && r.coefficient.is_finite() && r.exponent.is_finite()) {
            return Err(format!(
                "{}: rule lr = {} N^{} is not a learning-rate rule",
                path.display(),
                r.coefficient,
                r.exponent
            ));
        }
        Ok(table)
    }
}

/// Writes tuned.json atomically (`write_atomic` creates its directory).
pub fn write_tuned(path: &Path, table: &TunedTable) -> Result<()> {
    let json = serde_json::to_string_pretty(table).map_err(|e| Error::record(path, e.to_string()))?;
    crate::fs::write_atomic(path, json.as_bytes())?;
    Ok(())
}
