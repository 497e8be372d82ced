//! plan.json: every run of a sweep in the order workers take them, each a `RunSpec` (the spec
//! run.json records too). The planner (`crate::plan`) builds them; written once per results
//! directory, read by sweep, status and the summary rebuild. A plan whose run ids would leave
//! the results directory is as corrupt as one that does not parse.

use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

use crate::config::{AdamWConfig, DataConfig, DivergenceConfig, ScheduleConfig};
use crate::error::{Error, Result};
use crate::model::ModelShape;

/// Version of plan.json.
pub const PLAN_VERSION: u32 = 1;

/// plan.json: every run of the sweep in the order workers take them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub sweep: String,
    /// SHA-256 of the config as parsed: a results directory belongs to one config.
    pub config_hash: String,
    pub runs: Vec<RunSpec>,
    /// Things the user should know (skipped sizes, budgets that do not bracket the optimum).
    pub warnings: Vec<String>,
}

/// A validated run: what the training loop executes and what run.json records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub run_id: String,
    pub shape: ModelShape,
    pub seed: u64,
    pub device: String,
    pub precision: String,
    pub data: DataConfig,
    pub batch_size: usize,
    pub steps: u64,
    /// Tokens actually trained: steps × batch_size × seq_len.
    pub tokens: u64,
    pub lr: f64,
    pub schedule: ScheduleConfig,
    pub optimizer: AdamWConfig,
    pub eval_every_steps: u64,
    pub eval_sequences: usize,
    /// Steps between checkpoints (0 = none).
    pub checkpoint_every_steps: u64,
    pub divergence: DivergenceConfig,
    /// The IsoFLOP budget this run belongs to, for FLOP-budget sweeps.
    #[serde(default)]
    pub flop_budget: Option<f64>,
    #[serde(default)]
    pub role: RunRole,
    /// Trains on the first U unique tokens of the data, repeated (Muennighoff et al. 2023);
    /// None = all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_tokens: Option<u64>,
}

/// A run's part in WSD branching (Hägele et al. 2024): independent, a trunk, or a branch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RunRole {
    #[default]
    Independent,
    /// Warmup then the peak lr up to its last step, keeping a checkpoint at each branch point.
    Trunk { warmup_steps: u64, branch_points: Vec<u64> },
    /// Loads the trunk's checkpoint at `from_step`, then cools down (1−sqrt) to its own last step.
    Branch { trunk: String, from_step: u64, warmup_steps: u64 },
}

/// Reads a sweep directory's plan.json.
pub fn read_plan(path: &Path) -> Result<Plan> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_plan(path, &bytes)
}

/// Parses the bytes of a plan.json; `path` only names it in the error. A plan whose run ids
/// would leave the results directory is as corrupt as one that does not parse.
pub fn parse_plan(path: &Path, bytes: &[u8]) -> Result<Plan> {
    let plan: Plan = serde_json::from_slice(bytes).map_err(|e| {
        Error::record(
            path,
            format!(
                "not a valid plan.json: {e}; move it aside and rerun `sweeplaw sweep` on the sweep's config, which \
             writes it again (finished runs are kept: sweep.toml and each run.json still name their config)"
            ),
        )
    })?;
    for spec in &plan.runs {
        check_component(&spec.run_id).map_err(|m| Error::record(path, format!("run id: {m}")))?;
        if let RunRole::Branch { trunk, .. } = &spec.role {
            check_component(trunk).map_err(|m| Error::record(path, format!("trunk run id: {m}")))?;
        }
    }
    Ok(plan)
}

/// A name that becomes a directory under the results directory must be exactly one plain path
/// component: no separators, no `..`, not absolute, not hidden, nothing a shell would mangle.
pub fn check_component(name: &str) -> std::result::Result<(), String> {
    let mut components = Path::new(name).components();
    let single = matches!(components.next(), Some(Component::Normal(_))) && components.next().is_none();
    if single && crate::config::check_run_id(name).is_ok() {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a plain directory name (1-200 letters, digits, '-', '_' or '.', \
             not starting with '.' or '-'): it must not reach outside the results directory"
        ))
    }
}
