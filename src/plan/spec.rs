//! `RunSpec` (`records::plan`): one run as the training loop executes it and run.json records it, made from a
//! config. A single-run config gives one (`RunConfig::load`); a sweep's plan gives one per grid
//! point through `TrainSection::spec_for`, which applies the per-size hyperparameter rule
//! (`TrainSection::hyper_for`) and turns a token budget into whole steps.

use std::path::Path;

use crate::config::{check_run_id, parse_toml, DataConfig, HyperRule, LrRule, RunConfig, TrainSection};
use crate::error::{Error, Result};
use crate::model::ModelShape;
use crate::plan::{params_of, size_label};
use crate::records::plan::{RunRole, RunSpec};

impl LrRule {
    /// The learning rate the tuned rule gives a model of this shape (N under the rule's count).
    /// A rule that gives no finite positive rate for a planned size (an exponent edited to 500
    /// overflows) is an error naming the table, not a run that trains on an infinite lr and
    /// a plan.json that cannot be read back.
    pub fn lr_for(&self, shape: &ModelShape) -> std::result::Result<f64, String> {
        let n = params_of(shape, &self.param_count)? as f64;
        let lr = self.coefficient * n.powf(self.exponent);
        if !(lr.is_finite() && lr > 0.0) {
            return Err(format!(
                "train.tuned_table: its rule lr = {:e}·N^{} gives {} a learning rate of {lr} (N = {n}, {}), not a \
                 finite positive number; run `sweeplaw tune` on this config again or correct the table",
                self.coefficient,
                self.exponent,
                size_label(shape),
                self.param_count
            ));
        }
        Ok(lr)
    }
}

impl RunConfig {
    /// Reads and validates a single-run config file, with the tuned table it names.
    pub fn load(path: &Path) -> Result<(RunConfig, RunSpec)> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut config: RunConfig = parse_toml(path, &text)?;
        config.data.set_config_path(path);
        crate::plan::resolve::resolve_tuned(&mut config.train, path).map_err(|m| Error::config(path, m))?;
        let spec = config.to_spec().map_err(|m| Error::config(path, m))?;
        Ok((config, spec))
    }

    /// Validates into a spec; the error message names the key.
    pub fn to_spec(&self) -> std::result::Result<RunSpec, String> {
        check_run_id(&self.name)?;
        let vocab_size = self.data.vocab_size()?;
        let m = &self.model;
        let shape = ModelShape {
            vocab_size,
            d_model: m.d_model,
            n_layers: m.n_layers,
            n_heads: m.n_heads,
            seq_len: m.seq_len,
            mlp: m.mlp,
            tie_embeddings: m.tie_embeddings,
        };
        shape.validate()?;
        crate::device::check_spec(&self.device, &self.precision)?;
        self.train.validate()?;
        let tokens = self.train.tokens.ok_or("train.tokens is required: the run's token budget")?;
        if let Some(u) = self.train.unique_tokens.filter(|&u| u < m.seq_len as u64) {
            return Err(format!(
                "train.unique_tokens = {u} is less than one sequence of model.seq_len = {} tokens",
                m.seq_len
            ));
        }
        let run = RunIdentity {
            run_id: self.name.clone(),
            seed: self.seed,
            device: self.device.clone(),
            precision: self.precision.clone(),
            data: self.data.clone(),
            unique_tokens: self.train.unique_tokens,
        };
        self.train.spec_for(run, shape, tokens, None)
    }
}

/// What identifies a run besides its shape and budget.
pub struct RunIdentity {
    pub run_id: String,
    pub seed: u64,
    pub device: String,
    pub precision: String,
    pub data: DataConfig,
    /// The run's unique-token limit (the `unique_tokens` axis), if any.
    pub unique_tokens: Option<u64>,
}

impl TrainSection {
    /// Batch size (sequences) and peak learning rate for a model shape under the rule.
    pub fn hyper_for(&self, shape: &ModelShape) -> std::result::Result<(usize, f64), String> {
        match self.hyperparameters {
            HyperRule::Fixed => Ok((self.batch_size.unwrap_or(1), self.lr.unwrap_or(0.0))),
            HyperRule::Porian => {
                // Porian et al. 2024, section 5 (fits on OpenWebText2 / RefinedWeb).
                let ratio = shape.params_matmul() as f64 / 108e6;
                let lr = self.lr.unwrap_or(0.0047 * ratio.powf(-1.0 / 3.0));
                let batch = (160.0 * ratio.powf(2.0 / 3.0)).round().max(1.0) as usize;
                Ok((self.batch_size.unwrap_or(batch), lr))
            }
            HyperRule::Table => self
                .table
                .iter()
                .find(|r| r.d_model == shape.d_model && r.n_layers == shape.n_layers)
                .map(|r| (r.batch_size, r.lr))
                .ok_or_else(|| {
                    format!("train.table has no row for d_model = {}, n_layers = {}", shape.d_model, shape.n_layers)
                }),
            HyperRule::Tuned => {
                let rule = self.tuned.as_ref().ok_or_else(|| {
                    format!(
                        "train.tuned_table = {:?} has not been written yet: run `sweeplaw tune` on this config first",
                        self.tuned_table.as_deref().unwrap_or_default()
                    )
                })?;
                Ok((self.batch_size.unwrap_or(1), rule.lr_for(shape)?))
            }
        }
    }

    /// The spec of one run of this shape trained on `tokens` tokens.
    pub fn spec_for(
        &self,
        run: RunIdentity,
        shape: ModelShape,
        tokens: u64,
        flop_budget: Option<f64>,
    ) -> std::result::Result<RunSpec, String> {
        let (batch_size, lr) = self.hyper_for(&shape)?;
        let tokens_per_step = (batch_size as u64).checked_mul(shape.seq_len as u64).ok_or_else(|| {
            format!("train.batch_size = {batch_size} × model.seq_len = {} is too large", shape.seq_len)
        })?;
        let steps = match flop_budget {
            Some(flops) => flop_budget_steps(flops, &shape, tokens, tokens_per_step)?,
            None => budget_steps(tokens, tokens_per_step, "train.tokens")?,
        };
        let budget_tokens = steps.checked_mul(tokens_per_step).ok_or_else(|| match flop_budget {
            Some(flops) => format!("budget.flops = {flops:e} gives {} {tokens} tokens, too many", size_label(&shape)),
            None => format!("train.tokens = {tokens} is too large"),
        })?;
        let eval_every_steps = match self.eval_every_tokens {
            Some(every) => (every / tokens_per_step).max(1),
            None => (steps / 20).max(1),
        };
        let checkpoint_every_steps = match self.checkpoint_every_tokens {
            Some(0) => 0,
            Some(every) => (every / tokens_per_step).max(1),
            None => (steps / 10).max(1),
        };
        let eval_sequences = (self.eval_tokens as usize).div_ceil(shape.seq_len);
        Ok(RunSpec {
            run_id: run.run_id,
            seed: run.seed,
            device: run.device,
            precision: run.precision,
            data: run.data,
            batch_size,
            steps,
            tokens: budget_tokens,
            lr,
            schedule: self.schedule.clone(),
            optimizer: self.optimizer.clone(),
            eval_every_steps,
            eval_sequences,
            checkpoint_every_steps,
            divergence: self.divergence.clone(),
            flop_budget,
            role: RunRole::Independent,
            unique_tokens: run.unique_tokens,
            shape,
        })
    }
}

/// Number of whole steps in the `tokens` a FLOP budget of `flops` gives `shape`; the error (less
/// than one step) names the budget in FLOPs, the size and the tokens it gets, for the plan to
/// leave that size out of the budget.
pub fn flop_budget_steps(
    flops: f64,
    shape: &ModelShape,
    tokens: u64,
    tokens_per_step: u64,
) -> std::result::Result<u64, String> {
    let steps = whole_steps(tokens, tokens_per_step);
    if steps == 0 {
        return Err(format!(
            "budget.flops = {flops:e} gives {} {tokens} tokens, {LESS_THAN_ONE_STEP} of batch_size × seq_len = \
             {tokens_per_step} tokens",
            size_label(shape)
        ));
    }
    Ok(steps)
}

/// The optimiser steps `tokens` make at `tokens_per_step` each, rounded to the nearest.
fn whole_steps(tokens: u64, tokens_per_step: u64) -> u64 {
    (tokens as f64 / tokens_per_step as f64).round() as u64
}

/// What a budget too small for one optimiser step is (the plan leaves the size out of a FLOP budget).
pub const LESS_THAN_ONE_STEP: &str = "less than one step";

/// Number of whole steps in a token budget (rounded to nearest); an error when the budget is
/// smaller than one step (rounding it up would train more tokens than were asked for).
pub fn budget_steps(tokens: u64, tokens_per_step: u64, key: &str) -> std::result::Result<u64, String> {
    if tokens == 0 {
        return Err(format!("{key} must be positive"));
    }
    let steps = whole_steps(tokens, tokens_per_step);
    if tokens < tokens_per_step {
        return Err(format!(
            "{key} = {tokens} is {LESS_THAN_ONE_STEP} of batch_size × seq_len = {tokens_per_step} tokens"
        ));
    }
    Ok(steps)
}
