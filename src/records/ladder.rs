//! ladder.json (`sweeplaw ladder`): per rung, its budgets, the forecast written before it
//! trained and what it then measured. Its one reader and its one writer; the writer leaves the
//! file as it is when it already holds the record, so a forecast stays to the last digit as it
//! was made.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The version of ladder.json's layout.
pub const LADDER_VERSION: u32 = 1;

/// ladder.json: every rung's budgets, what was predicted before it trained and what it measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LadderRecord {
    pub format_version: u32,
    /// The config the ladder climbs from, as given.
    pub config: String,
    pub step: f64,
    pub rungs: Vec<RungRecord>,
}

/// One rung.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RungRecord {
    pub rung: usize,
    pub budgets: Vec<f64>,
    /// The rung's sweep directory, relative to the ladder's.
    pub sweep: String,
    /// The law its sizes were centred on (None for rung 1: the config's own grid).
    #[serde(default)]
    pub centred_on: Option<String>,
    /// Written before the rung trained (empty for rung 1: nothing to predict from).
    #[serde(default)]
    pub predictions: Vec<BudgetPrediction>,
    /// Written after it trained.
    #[serde(default)]
    pub observed: Vec<BudgetObservation>,
}

/// The law's forecast at one budget of the next rung.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetPrediction {
    pub flops: f64,
    pub n_opt: f64,
    #[serde(default)]
    pub n_opt_ci95: Option<(f64, f64)>,
    pub loss: f64,
    #[serde(default)]
    pub loss_ci95: Option<(f64, f64)>,
    /// The predicting law's verdict (identified, weak, not identified) and why.
    pub verdict: String,
    #[serde(default)]
    pub reasons: Vec<String>,
    /// The rungs the law was fitted to (1..=this).
    pub fitted_on_rungs: usize,
}

/// What one budget of a rung measured, against its prediction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetObservation {
    pub flops: f64,
    /// The budget's runs that finished.
    pub runs: usize,
    pub n_opt: f64,
    pub loss: f64,
    /// "parabola" (approach 2's vertex, inside the sampled sizes) or "lowest run".
    pub from: String,
    /// predicted / observed − 1, where there was a prediction.
    #[serde(default)]
    pub n_opt_error: Option<f64>,
    #[serde(default)]
    pub loss_error: Option<f64>,
    /// Whether the observed value lies inside the predicted 95% interval.
    #[serde(default)]
    pub n_opt_inside: Option<bool>,
    #[serde(default)]
    pub loss_inside: Option<bool>,
}

impl LadderRecord {
    /// Reads ladder.json: `Ok(None)` when there is none.
    pub fn read(path: &Path) -> Result<Option<LadderRecord>> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                Error::record(path, format!("not a ladder record ({e}); move it aside to start the ladder again"))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Writes ladder.json, leaving it as it is when it already holds this record: a rerun that
    /// finds every rung done then keeps the file's bytes, so each forecast stays to the last
    /// digit as it was written before its rung trained (read back and written again, a number
    /// can move by one unit in the last place: `records::as_recorded`).
    pub fn write(&self, path: &Path) -> Result<()> {
        if LadderRecord::read(path).ok().flatten().as_ref() == Some(self) {
            return Ok(());
        }
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::record(path, e.to_string()))?;
        crate::fs::write_atomic(path, json.as_bytes())?;
        Ok(())
    }
}
