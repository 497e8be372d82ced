//! `[tune]`: how `sweeplaw tune` scans the learning rate, and `LrRule`, the rule it writes to
//! tuned.json and a sweep with `hyperparameters = "tuned"` reads (through the plan, which
//! resolves the file the config names).

use serde::{Deserialize, Serialize};

/// `[tune]`: how `sweeplaw tune` scans the learning rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneSection {
    /// Sizes tuned, log-spaced across the sweep's sizes (smallest and largest included).
    #[serde(default = "default_sizes")]
    pub sizes: usize,
    /// Learning rates per size.
    #[serde(default = "default_lrs")]
    pub lrs: usize,
    /// Ratio of neighbouring learning rates.
    #[serde(default = "default_lr_step")]
    pub lr_step: f64,
    /// Geometric middle of the scan (default: train.lr).
    #[serde(default)]
    pub lr_centre: Option<f64>,
    /// Training tokens of a tuning run per parameter (under budget.param_count), at least
    /// checks.min_steps steps: the length of the sweep's runs near their optimum.
    #[serde(default = "default_tokens_per_param")]
    pub tokens_per_param: f64,
    /// Tuning may cost at most this share of the sweep's FLOPs.
    #[serde(default = "default_max_cost_fraction")]
    pub max_cost_fraction: f64,
}

fn default_sizes() -> usize {
    3
}

fn default_lrs() -> usize {
    6
}

fn default_lr_step() -> f64 {
    std::f64::consts::SQRT_2
}

fn default_tokens_per_param() -> f64 {
    20.0
}

fn default_max_cost_fraction() -> f64 {
    0.2
}

impl Default for TuneSection {
    fn default() -> Self {
        TuneSection {
            sizes: default_sizes(),
            lrs: default_lrs(),
            lr_step: default_lr_step(),
            lr_centre: None,
            tokens_per_param: default_tokens_per_param(),
            max_cost_fraction: default_max_cost_fraction(),
        }
    }
}

impl TuneSection {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.sizes == 0 {
            return Err("tune.sizes must be positive".into());
        }
        if self.lrs < 3 {
            return Err(format!("tune.lrs = {} must be at least 3 (a parabola needs three points)", self.lrs));
        }
        if !(self.lr_step > 1.0 && self.lr_step.is_finite()) {
            return Err(format!("tune.lr_step = {} must be above 1", self.lr_step));
        }
        if self.lr_centre.is_some_and(|lr| !(lr > 0.0 && lr.is_finite())) {
            return Err("tune.lr_centre must be a positive learning rate".into());
        }
        if !(self.tokens_per_param > 0.0 && self.tokens_per_param.is_finite()) {
            return Err(format!("tune.tokens_per_param = {} must be positive", self.tokens_per_param));
        }
        if !(self.max_cost_fraction > 0.0) {
            return Err(format!("tune.max_cost_fraction = {} must be positive", self.max_cost_fraction));
        }
        Ok(())
    }
}

/// lr*(N) = coefficient · N^exponent, N in `param_count`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrRule {
    pub coefficient: f64,
    pub exponent: f64,
    pub param_count: String,
}
