//! Configs as written in TOML (serde structs with `deny_unknown_fields`) and their
//! size-independent checks, each impossible value an error naming the key and the file. Turning
//! a config into the runs it asks for (`RunSpec`s, per-size hyperparameters) is the plan's job
//! (`crate::plan::spec`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{HubConfig, SyntheticConfig, TextConfig, TokensConfig};
use crate::error::{Error, Result};
use crate::model::MlpKind;

mod sweep;
mod train;
mod tune;
pub use sweep::{BudgetSection, CentreLaw, ChecksSection, FamilySection, GridSection, SweepConfig};
pub use train::{AdamWConfig, ScheduleConfig};
pub use tune::{LrRule, TuneSection};

/// A single-run config file (`sweeplaw train CONFIG`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The run's name, used as its id and directory name.
    pub name: String,
    #[serde(default = "default_auto")]
    pub device: String,
    /// "auto" (bf16 matmuls on CUDA, f32 elsewhere), "f32" or "bf16".
    #[serde(default = "default_auto")]
    pub precision: String,
    #[serde(default)]
    pub seed: u64,
    pub model: ModelSection,
    pub data: DataConfig,
    pub train: TrainSection,
}

fn default_auto() -> String {
    "auto".into()
}

/// `[model]`: the shape; the vocabulary size comes from the data source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub seq_len: usize,
    #[serde(default)]
    pub mlp: MlpKind,
    #[serde(default)]
    pub tie_embeddings: bool,
}

/// `[data]`: which token source, tagged by `kind`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DataConfig {
    Synthetic(SyntheticConfig),
    /// Local UTF-8 files with a BPE tokenizer.
    Text(TextConfig),
    /// Files of a Hugging Face hub repository (feature `hub`), then as `text`.
    Hub(HubConfig),
    /// Already tokenized files (raw u16/u32 ids or `.npy`), memory-mapped.
    Tokens(TokensConfig),
}

impl DataConfig {
    /// Validates the data section and returns the vocabulary size the models get.
    pub fn vocab_size(&self) -> std::result::Result<usize, String> {
        match self {
            DataConfig::Synthetic(s) => {
                s.validate().map_err(|e| e.to_string())?;
                Ok(s.vocab_size)
            }
            DataConfig::Text(t) => t.validate().map_err(|e| e.to_string()),
            DataConfig::Hub(h) => h.validate().map_err(|e| e.to_string()),
            DataConfig::Tokens(t) => t.validate().map_err(|e| e.to_string()),
        }
    }

    /// Builds the token source this config describes.
    pub fn build_source(&self) -> Result<Box<dyn crate::data::TokenSource>> {
        match self {
            DataConfig::Synthetic(s) => Ok(Box::new(crate::data::SyntheticSource::new(s)?)),
            DataConfig::Text(t) => Ok(Box::new(crate::data::TextSource::new(t)?)),
            DataConfig::Hub(h) => Ok(Box::new(h.build(&crate::data::hub::HubAccess::from_env())?)),
            DataConfig::Tokens(t) => Ok(Box::new(crate::data::TokensSource::new(t)?)),
        }
    }

    /// The data section's paths that are relative to the config file (files and globs, a
    /// tokenizer, a cache folder, token files), to rewrite when the config moves.
    fn paths_mut(&mut self) -> Vec<&mut String> {
        match self {
            DataConfig::Synthetic(_) => Vec::new(),
            DataConfig::Text(t) => t.files.iter_mut().chain(t.tokenizer.as_mut()).chain(t.cache_dir.as_mut()).collect(),
            DataConfig::Hub(h) => h.cache_dir.as_mut().into_iter().collect(),
            DataConfig::Tokens(t) => std::iter::once(&mut t.train).chain(t.validation.as_mut()).collect(),
        }
    }

    /// Relative paths in the data section are relative to `config_path`'s directory.
    pub fn set_config_path(&mut self, config_path: &Path) {
        let dir = config_path.parent().map(Path::to_path_buf).unwrap_or_default();
        self.set_base_dir(if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir });
    }

    /// The folder the data section's relative paths are relative to.
    pub fn set_base_dir(&mut self, dir: PathBuf) {
        match self {
            DataConfig::Synthetic(_) => {}
            DataConfig::Text(t) => t.base_dir = Some(dir),
            DataConfig::Hub(h) => h.base_dir = Some(dir),
            DataConfig::Tokens(t) => t.base_dir = Some(dir),
        }
    }
}

/// `[train]`: budget and hyperparameters (shared by run and sweep configs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Training tokens of a single run; rounded to a whole number of steps of batch_size × seq_len
    /// tokens. Sweeps give budgets in `[budget]` instead.
    #[serde(default)]
    pub tokens: Option<u64>,
    /// How batch size and learning rate are chosen per model size.
    #[serde(default)]
    pub hyperparameters: HyperRule,
    /// Sequences per step (required for `fixed`; overrides Porian's batch when given with `porian`).
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Peak learning rate (required for `fixed`).
    #[serde(default)]
    pub lr: Option<f64>,
    /// Per-size rows for `hyperparameters = "table"`.
    #[serde(default)]
    pub table: Vec<HyperRow>,
    #[serde(default)]
    pub schedule: ScheduleConfig,
    #[serde(default)]
    pub optimizer: AdamWConfig,
    /// Tokens between validation evaluations (default: 20 evaluations per run).
    #[serde(default)]
    pub eval_every_tokens: Option<u64>,
    /// Size of the fixed validation set, in tokens.
    #[serde(default = "default_eval_tokens")]
    pub eval_tokens: u64,
    /// Tokens between checkpoints (default: 10 checkpoints per run; 0 = none).
    #[serde(default)]
    pub checkpoint_every_tokens: Option<u64>,
    #[serde(default)]
    pub divergence: DivergenceConfig,
    /// A single run's unique training tokens: the first U tokens of the training data, repeated
    /// for as many epochs as `tokens` needs (sweeps give `budget.unique_tokens` instead).
    #[serde(default)]
    pub unique_tokens: Option<u64>,
    /// For `hyperparameters = "tuned"`: the tuned.json `sweeplaw tune` writes, relative to the
    /// config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuned_table: Option<String>,
    /// The rule read from `tuned_table` (part of the config's identity); None until tuned.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub tuned: Option<LrRule>,
    /// The tuned sizes (`L2-d32`) whose best lr lay at the edge of their scan, read with the
    /// rule for the plan's warning; not part of the config's identity.
    #[serde(skip)]
    pub tuned_at_edge: Vec<String>,
}

/// Per-size hyperparameter rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HyperRule {
    /// `batch_size` and `lr` as given, for every size.
    #[default]
    Fixed,
    /// Porian et al. 2024 (section 5): lr = 0.0047·(N/108e6)^(−1/3), batch = 160·(N/108e6)^(2/3)
    /// sequences, with N = params_matmul (they count the output layer).
    Porian,
    /// A row of `[[train.table]]` per model size.
    Table,
    /// The learning-rate rule `sweeplaw tune` fitted (lr = c·N^γ, read from `train.tuned_table`),
    /// with `batch_size` as given.
    Tuned,
}

/// One row of `[[train.table]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HyperRow {
    pub d_model: usize,
    pub n_layers: usize,
    pub lr: f64,
    pub batch_size: usize,
}

fn default_eval_tokens() -> u64 {
    32_768
}

/// `[train.divergence]`: when a run counts as diverged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DivergenceConfig {
    /// A smoothed training loss above `spike_factor` × its lowest value so far ends the run.
    #[serde(default = "default_spike_factor")]
    pub spike_factor: f64,
}

fn default_spike_factor() -> f64 {
    1.5
}

impl Default for DivergenceConfig {
    fn default() -> Self {
        DivergenceConfig { spike_factor: default_spike_factor() }
    }
}

impl TrainSection {
    /// Checks the size-independent values; errors name the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.schedule.validate()?;
        self.optimizer.validate()?;
        if self.batch_size == Some(0) {
            return Err("train.batch_size must be positive".into());
        }
        if let Some(lr) = self.lr {
            if !(lr > 0.0 && lr.is_finite()) {
                return Err(format!("train.lr = {lr} must be a positive number"));
            }
        }
        match self.hyperparameters {
            HyperRule::Fixed if self.batch_size.is_none() => return Err("train.batch_size is required".into()),
            HyperRule::Fixed if self.lr.is_none() => return Err("train.lr is required".into()),
            HyperRule::Table if self.table.is_empty() => {
                return Err("train.hyperparameters = \"table\" needs [[train.table]] rows".into())
            }
            HyperRule::Tuned if self.batch_size.is_none() || self.tuned_table.is_none() => {
                return Err("train.hyperparameters = \"tuned\" needs train.batch_size and train.tuned_table \
                            (the tuned.json `sweeplaw tune` writes)"
                    .into())
            }
            _ => {}
        }
        for (i, row) in self.table.iter().enumerate() {
            if row.batch_size == 0 || !(row.lr > 0.0 && row.lr.is_finite()) {
                return Err(format!("train.table[{i}]: lr and batch_size must be positive"));
            }
            // One row per size: a second would be ignored whatever it says.
            if let Some(j) = self.table[..i].iter().position(|r| (r.d_model, r.n_layers) == (row.d_model, row.n_layers))
            {
                return Err(format!(
                    "train.table[{j}] and train.table[{i}] both give d_model = {}, n_layers = {}: one row per size",
                    row.d_model, row.n_layers
                ));
            }
        }
        if !(self.divergence.spike_factor > 1.0) {
            return Err(format!("train.divergence.spike_factor = {} must be above 1", self.divergence.spike_factor));
        }
        if self.eval_every_tokens == Some(0) {
            return Err("train.eval_every_tokens must be positive".into());
        }
        if self.eval_tokens == 0 {
            return Err("train.eval_tokens must be positive".into());
        }
        if self.unique_tokens == Some(0) {
            return Err("train.unique_tokens must be positive".into());
        }
        Ok(())
    }
}

/// Run ids become directory names: ASCII letters, digits, '-', '_', '.', not starting with '.'.
pub fn check_run_id(id: &str) -> std::result::Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && !id.starts_with('-')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name {id:?} must be 1-200 characters of letters, digits, '-', '_' or '.', not starting with '.' or '-'"
        ))
    }
}

/// Parses TOML into `T`; the error names the file, and toml's message names the key and line.
/// TOML allows `inf` and `nan`, but no setting of sweeplaw's means anything at either (and JSON
/// records cannot hold them), so a non-finite number anywhere is refused, naming its key.
pub fn parse_toml<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    let parsed = toml::from_str(text).map_err(|e| Error::config(path, one_line(&e.to_string())))?;
    if let Ok(table) = toml::from_str::<toml::Table>(text) {
        if let Some((key, value)) = first_non_finite(&toml::Value::Table(table), String::new()) {
            return Err(Error::config(path, format!("{key} = {value}: a number in a config must be finite")));
        }
    }
    Ok(parsed)
}

/// The dotted key (with `[i]` for array items) and value of the first `inf` or `nan` in `value`.
fn first_non_finite(value: &toml::Value, key: String) -> Option<(String, f64)> {
    match value {
        toml::Value::Float(x) if !x.is_finite() => Some((key, *x)),
        toml::Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, item)| first_non_finite(item, format!("{key}[{i}]")))
        }
        toml::Value::Table(table) => table.iter().find_map(|(name, item)| {
            first_non_finite(item, if key.is_empty() { name.clone() } else { format!("{key}.{name}") })
        }),
        _ => None,
    }
}

fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| "|^ ".contains(c)))
        .collect::<Vec<_>>()
        .join(" ")
}
