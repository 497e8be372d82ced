//! fit.json's `options`: the options of the `sweeplaw fit` that wrote it, by their command-line
//! names and values, so that `plot` and `report` refit a stale fit.json the way it was made and
//! the report names the command.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The options of one `sweeplaw fit`, by their command-line names and values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitSettings {
    pub law: String,
    pub params: String,
    pub flops: String,
    pub bootstrap: usize,
    pub holdout: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_flops: Option<f64>,
    pub seed: u64,
    pub exclude_highest_loss: usize,
    pub isoflop_window: usize,
    /// `--fix`: name -> value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fixed: BTreeMap<String, f64>,
    /// `--tie`: (follower, leader) pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tied: Vec<(String, String)>,
    pub reduce: String,
    pub overfit: String,
}

impl FitSettings {
    /// The flags that differ from `defaults`, as one would type them after `sweeplaw fit PATH`.
    pub fn flags_beyond(&self, defaults: &FitSettings) -> Vec<String> {
        let mut flags = Vec::new();
        let mut differs = |flag: &str, value: String, default: String| {
            if value != default {
                flags.push(format!("--{flag} {value}"));
            }
        };
        differs("law", self.law.clone(), defaults.law.clone());
        differs("params", self.params.clone(), defaults.params.clone());
        differs("flops", self.flops.clone(), defaults.flops.clone());
        differs("bootstrap", self.bootstrap.to_string(), defaults.bootstrap.to_string());
        differs("holdout", self.holdout.to_string(), defaults.holdout.to_string());
        let target = |t: Option<f64>| t.map(|c| format!("{c:e}")).unwrap_or_default();
        differs("target-flops", target(self.target_flops), target(defaults.target_flops));
        differs("seed", self.seed.to_string(), defaults.seed.to_string());
        differs(
            "exclude-highest-loss",
            self.exclude_highest_loss.to_string(),
            defaults.exclude_highest_loss.to_string(),
        );
        differs("isoflop-window", self.isoflop_window.to_string(), defaults.isoflop_window.to_string());
        let fixed = |f: &BTreeMap<String, f64>| f.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        differs("fix", fixed(&self.fixed), fixed(&defaults.fixed));
        let tied = |t: &[(String, String)]| t.iter().map(|(a, b)| format!("{a}={b}")).collect::<Vec<_>>().join(",");
        differs("tie", tied(&self.tied), tied(&defaults.tied));
        differs("reduce", self.reduce.clone(), defaults.reduce.clone());
        differs("overfit", self.overfit.clone(), defaults.overfit.clone());
        flags
    }
}
