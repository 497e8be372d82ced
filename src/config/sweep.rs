//! The sweep config (`sweeplaw sweep CONFIG`): a model family, the axes that vary (widths ×
//! depths, or a depth→width rule), token, tokens-per-parameter or FLOP budgets, seeds, and the
//! shared training settings. `crate::plan` expands it into runs.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{default_auto, parse_toml, DataConfig, TrainSection};
use crate::counting::{FlopConvention, MlpKind, ParamCount};
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// The sweep's name: its directory under the results directory.
    pub name: String,
    #[serde(default = "default_auto")]
    pub device: String,
    #[serde(default = "default_auto")]
    pub precision: String,
    /// One run per seed for every (size, budget).
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Only sizes with fewer parameters than this (under `budget.param_count`) train every seed;
    /// larger sizes train the first seed only: seed spread where it is cheap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds_for_sizes_below: Option<f64>,
    pub data: DataConfig,
    pub model: FamilySection,
    pub grid: GridSection,
    pub budget: BudgetSection,
    pub train: TrainSection,
    /// Thresholds of the plan checks (docs/sweep-design.md); defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<ChecksSection>,
    /// `sweeplaw tune` settings; defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tune: Option<super::TuneSection>,
}

/// `[checks]`: when `plan` and `sweep` warn about a run or a budget (errors under `--strict`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksSection {
    /// Fewest optimiser steps a run may have.
    #[serde(default = "default_min_steps")]
    pub min_steps: u64,
    /// Largest share of a run's steps its warmup may take.
    #[serde(default = "default_max_warmup_fraction")]
    pub max_warmup_fraction: f64,
    /// [lowest, highest] tokens per parameter (under `budget.param_count`) a run may have.
    #[serde(default = "default_tokens_per_param_range")]
    pub tokens_per_param: [f64; 2],
    /// An IsoFLOP budget needs a size at most optimum / room and one at least optimum × room, and
    /// the sizes' geometric middle within a factor `room` of the predicted optimum.
    #[serde(default = "default_optimum_room")]
    pub optimum_room: f64,
}

fn default_min_steps() -> u64 {
    200
}
fn default_max_warmup_fraction() -> f64 {
    0.1
}
fn default_tokens_per_param_range() -> [f64; 2] {
    [0.25, 2000.0]
}
fn default_optimum_room() -> f64 {
    2.0
}

impl Default for ChecksSection {
    fn default() -> Self {
        ChecksSection {
            min_steps: default_min_steps(),
            max_warmup_fraction: default_max_warmup_fraction(),
            tokens_per_param: default_tokens_per_param_range(),
            optimum_room: default_optimum_room(),
        }
    }
}

impl ChecksSection {
    fn validate(&self) -> std::result::Result<(), String> {
        let [lo, hi] = self.tokens_per_param;
        if !(lo >= 0.0 && hi > lo && hi.is_finite()) {
            return Err(format!("checks.tokens_per_param = [{lo}, {hi}] must be [low, high] with 0 <= low < high"));
        }
        if !(0.0..=1.0).contains(&self.max_warmup_fraction) {
            return Err(format!("checks.max_warmup_fraction = {} must be between 0 and 1", self.max_warmup_fraction));
        }
        if !(self.optimum_room >= 1.0 && self.optimum_room.is_finite()) {
            return Err(format!("checks.optimum_room = {} must be at least 1", self.optimum_room));
        }
        Ok(())
    }
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

/// `[model]`: what every model of the family shares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilySection {
    pub seq_len: usize,
    /// n_heads = d_model / head_dim.
    pub head_dim: usize,
    #[serde(default)]
    pub mlp: MlpKind,
    #[serde(default)]
    pub tie_embeddings: bool,
}

/// `[grid]`: the model sizes. Either `d_model` × `n_layers` (every pair), or `n_layers` with
/// `aspect_ratio` (d_model = aspect_ratio × n_layers, rounded up to a multiple of head_dim), or,
/// for IsoFLOP budgets, `centre` with `aspect_ratio`: each budget its own `sizes` sizes,
/// log-spaced from optimum / `span` to optimum × `span` around the predicted optimum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridSection {
    #[serde(default)]
    pub n_layers: Vec<usize>,
    #[serde(default)]
    pub d_model: Option<Vec<usize>>,
    #[serde(default)]
    pub aspect_ratio: Option<usize>,
    /// "chinchilla" (20 tokens per parameter under the sweep's conventions) or the path of an
    /// earlier sweep's fit.json (its approach-3 law), relative to the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub centre: Option<String>,
    /// Largest size / optimum = optimum / smallest size (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<f64>,
    /// Sizes per budget (default 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizes: Option<usize>,
    /// The law read from `centre`'s fit.json when it names one (part of the config's identity).
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub centre_law: Option<CentreLaw>,
}

/// The approach-3 law of an earlier sweep (its fit.json's `fits.chinchilla.params`) and the
/// parameter count its N is in; the plan reads it from the file `centre` names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CentreLaw {
    pub e: f64,
    pub a: f64,
    pub b: f64,
    pub alpha: f64,
    pub beta: f64,
    pub param_count: String,
    /// The law's verdict in fit.json (`fits.chinchilla.verdict`, `.reasons`): whether its data
    /// support the optima it predicts. Read for the plan's warning, not part of the config's
    /// identity (the law's parameters are).
    #[serde(skip)]
    pub assessment: crate::verdict::Assessment,
}

/// `[budget]`: exactly one of `tokens`, `tokens_per_param` or `flops`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSection {
    /// Token budgets: every size trains on each.
    #[serde(default)]
    pub tokens: Option<Vec<u64>>,
    /// D = ratio × N for each ratio (N = the `param_count` count).
    #[serde(default)]
    pub tokens_per_param: Option<Vec<f64>>,
    /// IsoFLOP budgets: each size trains on D = C / flops_per_token (under `flop_convention`).
    #[serde(default)]
    pub flops: Option<Vec<f64>>,
    /// The N of `tokens_per_param`: a `crate::counting::ParamCount` name (checked by `validate`).
    #[serde(default = "default_param_count")]
    pub param_count: String,
    #[serde(default)]
    pub flop_convention: FlopConvention,
    /// Train one warmup-stable trunk per size and branch a 1−sqrt cooldown at each budget
    /// (needs `[train.schedule] kind = "wsd"`).
    #[serde(default)]
    pub wsd_branching: bool,
    /// Data-constrained axis (Muennighoff et al. 2023): every (size, budget) run once per U,
    /// training on the first U unique tokens, repeated for as many epochs as the budget needs.
    #[serde(default)]
    pub unique_tokens: Option<Vec<u64>>,
}

fn default_param_count() -> String {
    "nonembedding".into()
}

impl SweepConfig {
    /// Reads a sweep config; structural errors name the key and line, value errors the key.
    /// The files it names (`grid.centre`'s fit.json, `train.tuned_table`) are not read here:
    /// `plan::load_sweep_config` reads them, and is what commands call.
    pub fn parse_file(path: &Path) -> Result<SweepConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut config: SweepConfig = parse_toml(path, &text)?;
        config.data.set_config_path(path);
        config.validate().map_err(|m| Error::config(path, m))?;
        Ok(config)
    }

    /// This config as a file in `to` would say it, for one loaded from a file in `from` (both
    /// folders that exist): every path relative to the config file (the data's files, the tuned
    /// table, the fit.json of `grid.centre`) rewritten to reach the same file from `to`, and the
    /// data section's base folder set to `to`. `ladder` writes each rung's config into the
    /// ladder's folder this way, so that the file it keeps is one that runs as it is.
    pub fn moved(&self, from: &Path, to: &Path) -> std::io::Result<SweepConfig> {
        let way_back = crate::fs::relative_path(&std::fs::canonicalize(from)?, &std::fs::canonicalize(to)?);
        let mut config = self.clone();
        let rebase = |path: &mut String| {
            if Path::new(path.as_str()).is_relative() {
                *path = crate::fs::join_relative(&way_back, Path::new(path.as_str())).display().to_string();
            }
        };
        config.data.paths_mut().into_iter().for_each(rebase);
        config.train.tuned_table.as_mut().into_iter().for_each(rebase);
        config.grid.centre.as_mut().filter(|c| c.as_str() != "chinchilla").into_iter().for_each(rebase);
        config.data.set_base_dir(to.to_path_buf());
        Ok(config)
    }

    /// The config as TOML a user would write: without what is read from the files it names
    /// (`grid.centre`'s law, the tuned rule), which a config that is loaded reads again.
    pub fn to_toml(&self) -> std::result::Result<String, String> {
        let mut written = self.clone();
        written.grid.centre_law = None;
        written.train.tuned = None;
        toml::to_string(&written).map_err(|e| e.to_string())
    }

    /// Checks everything that does not need the plan; errors name the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        super::check_run_id(&self.name).map_err(|e| format!("name: {e}"))?;
        crate::device::check_spec(&self.device, &self.precision)?;
        self.data.vocab_size()?;
        self.train.validate()?;
        if self.train.unique_tokens.is_some() {
            return Err("train.unique_tokens is for single runs; a sweep gives them in budget.unique_tokens".into());
        }
        if self.budget.wsd_branching && self.budget.unique_tokens.is_some() {
            return Err(
                "budget.wsd_branching and budget.unique_tokens cannot be combined (a trunk has one dataset)".into()
            );
        }
        if self.train.tokens.is_some() {
            return Err("train.tokens is for single runs; a sweep gives its budgets in [budget]".into());
        }
        if self.seeds.is_empty() {
            return Err("seeds must list at least one seed".into());
        }
        let f = &self.model;
        if f.seq_len == 0 || f.head_dim == 0 {
            return Err("model.seq_len and model.head_dim must be positive".into());
        }
        self.grid.validate()?;
        self.budget.validate()?;
        if let Some(&u) = self.budget.unique_tokens.iter().flatten().find(|&&u| u < f.seq_len as u64) {
            return Err(format!(
                "budget.unique_tokens: {u} is less than one sequence of model.seq_len = {} tokens",
                f.seq_len
            ));
        }
        if self.grid.centre.is_some() && self.budget.flops.is_none() {
            return Err("grid.centre centres each IsoFLOP budget's sizes: it needs budget.flops".into());
        }
        if let Some(n) = self.seeds_for_sizes_below {
            if !(n > 0.0 && n.is_finite()) {
                return Err(format!("seeds_for_sizes_below = {n} must be a positive parameter count"));
            }
        }
        if let Some(checks) = &self.checks {
            checks.validate()?;
        }
        if let Some(tune) = &self.tune {
            tune.validate()?;
        }
        if self.budget.wsd_branching && !matches!(self.train.schedule, crate::config::ScheduleConfig::Wsd { .. }) {
            return Err("budget.wsd_branching needs [train.schedule] kind = \"wsd\"".into());
        }
        Ok(())
    }
}

impl GridSection {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.centre.is_some() {
            if !self.n_layers.is_empty() || self.d_model.is_some() {
                return Err("grid.centre derives each size's shape from grid.aspect_ratio: \
                            leave out grid.n_layers and grid.d_model"
                    .into());
            }
            if self.aspect_ratio.is_none_or(|r| r == 0) {
                return Err("grid.centre needs grid.aspect_ratio (d_model / n_layers) to derive shapes".into());
            }
            if self.span.is_some_and(|s| !(s > 1.0 && s.is_finite())) {
                return Err(format!("grid.span = {:?} must be above 1", self.span.unwrap_or_default()));
            }
            if self.sizes.is_some_and(|n| n < 3) {
                return Err("grid.sizes must be at least 3 (a minimum needs sizes on both sides)".into());
            }
            return Ok(());
        }
        if self.span.is_some() || self.sizes.is_some() {
            return Err("grid.span and grid.sizes belong to a centred grid (grid.centre)".into());
        }
        if self.n_layers.is_empty() || self.n_layers.contains(&0) {
            return Err("grid.n_layers must list positive depths".into());
        }
        match (&self.d_model, self.aspect_ratio) {
            (Some(_), Some(_)) => Err("grid: give either d_model or aspect_ratio, not both".into()),
            (None, None) => Err("grid: give d_model (a list of widths) or aspect_ratio (d_model / n_layers)".into()),
            (Some(d), None) if d.is_empty() || d.contains(&0) => Err("grid.d_model must list positive widths".into()),
            (None, Some(0)) => Err("grid.aspect_ratio must be positive".into()),
            _ => Ok(()),
        }
    }
}

impl BudgetSection {
    fn validate(&self) -> std::result::Result<(), String> {
        let given = [self.tokens.is_some(), self.tokens_per_param.is_some(), self.flops.is_some()];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err("budget: give exactly one of tokens, tokens_per_param or flops".into());
        }
        if let Some(t) = &self.tokens {
            if t.is_empty() || t.contains(&0) {
                return Err("budget.tokens must list positive token counts".into());
            }
        }
        let positive = |name: &str, v: &Option<Vec<f64>>| match v {
            Some(v) if v.is_empty() || v.iter().any(|x| !(*x > 0.0 && x.is_finite())) => {
                Err(format!("budget.{name} must list positive numbers"))
            }
            _ => Ok(()),
        };
        if let Some(u) = &self.unique_tokens {
            if u.is_empty() || u.contains(&0) {
                return Err("budget.unique_tokens must list positive token counts".into());
            }
        }
        positive("tokens_per_param", &self.tokens_per_param)?;
        positive("flops", &self.flops)?;
        self.param_count.parse::<ParamCount>().map_err(|e| format!("budget.param_count: {e}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DataConfig;

    #[test]
    fn a_moved_config_reaches_the_same_files_from_its_new_folder_and_writes_as_a_config() {
        let root = std::env::temp_dir().join(format!("sweeplaw-moved-{}", std::process::id()));
        let (configs, ladder) = (root.join("configs"), root.join("results/x-ladder"));
        std::fs::create_dir_all(&configs).unwrap();
        std::fs::create_dir_all(&ladder).unwrap();
        let text = r#"name = "x"
device = "cpu"
[data]
kind = "text"
files = ["../data/**/*.txt", "/abs/corpus.txt"]
vocab_size = 300
cache_dir = "../cache"
[model]
seq_len = 16
head_dim = 8
[grid]
centre = "../results/earlier/fit.json"
aspect_ratio = 8
[budget]
flops = [1e9]
[train]
hyperparameters = "tuned"
tuned_table = "../results/t-tune/tuned.json"
batch_size = 4
"#;
        let path = configs.join("x.toml");
        std::fs::write(&path, text).unwrap();
        let mut config = SweepConfig::parse_file(&path).unwrap();
        if let DataConfig::Text(data) = &mut config.data {
            data.tokenizer = Some("tok/tokenizer.json".into()); // not read: validation would
        }
        config.grid.centre_law = Some(CentreLaw {
            e: 1.0,
            a: 2.0,
            alpha: 0.3,
            b: 3.0,
            beta: 0.3,
            param_count: "non_embedding".into(),
            assessment: crate::verdict::Assessment::identified(),
        });
        let moved = config.moved(&configs, &ladder).unwrap();
        let DataConfig::Text(data) = &moved.data else { panic!("text") };
        assert_eq!(data.files, ["../../data/**/*.txt", "/abs/corpus.txt"]);
        assert_eq!(data.tokenizer.as_deref(), Some("../../configs/tok/tokenizer.json"));
        assert_eq!(data.cache_dir.as_deref(), Some("../../cache"));
        assert_eq!(data.base_dir.as_deref(), Some(ladder.as_path()));
        assert_eq!(moved.grid.centre.as_deref(), Some("../../results/earlier/fit.json"));
        assert_eq!(moved.train.tuned_table.as_deref(), Some("../../results/t-tune/tuned.json"));
        // Written out, it is a config that parses: the law read from the centre is not in it.
        let written = moved.to_toml().unwrap();
        assert!(!written.contains("centre_law"), "{written}");
        let again: SweepConfig = crate::config::parse_toml(&ladder.join("rung1.toml"), &written).unwrap();
        assert_eq!(again.grid.centre, moved.grid.centre);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
