//! The `[train.schedule]` and `[train.optimizer]` tables as written in a config, their
//! defaults and their checks. What they mean at each step (the learning rate of a step, the
//! AdamW update) is the training loop's: `crate::train::schedule` and `crate::train::optim`.

use serde::{Deserialize, Serialize};

/// The schedule's shape as written in a config (`[train.schedule]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ScheduleConfig {
    /// Linear warmup, then cosine from the peak towards `final_lr_fraction` × peak, which it
    /// reaches at step `total` (0-based), one past the last trained step: the last step trains at
    /// just above the floor (`train::schedule::Schedule::lr`).
    Cosine {
        #[serde(default = "default_warmup")]
        warmup_fraction: f64,
        #[serde(default = "default_final")]
        final_lr_fraction: f64,
    },
    /// Linear warmup, constant peak, then a 1−sqrt cooldown over the last `cooldown_fraction` of
    /// steps, reaching `final_lr_fraction` × peak one past the last trained step (as cosine).
    Wsd {
        #[serde(default = "default_warmup")]
        warmup_fraction: f64,
        #[serde(default = "default_cooldown")]
        cooldown_fraction: f64,
        #[serde(default)]
        final_lr_fraction: f64,
    },
    /// Linear warmup, then the peak to the end.
    Constant {
        #[serde(default = "default_warmup")]
        warmup_fraction: f64,
    },
}

fn default_warmup() -> f64 {
    0.05
}
fn default_final() -> f64 {
    0.1
}
fn default_cooldown() -> f64 {
    0.2
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig::Cosine { warmup_fraction: default_warmup(), final_lr_fraction: default_final() }
    }
}

impl ScheduleConfig {
    /// Checks every fraction lies in [0, 1]; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        let check = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("train.schedule.{name} = {v} must be between 0 and 1"))
            }
        };
        match *self {
            ScheduleConfig::Cosine { warmup_fraction, final_lr_fraction } => {
                check("warmup_fraction", warmup_fraction)?;
                check("final_lr_fraction", final_lr_fraction)
            }
            ScheduleConfig::Wsd { warmup_fraction, cooldown_fraction, final_lr_fraction } => {
                check("warmup_fraction", warmup_fraction)?;
                check("cooldown_fraction", cooldown_fraction)?;
                check("final_lr_fraction", final_lr_fraction)?;
                if warmup_fraction + cooldown_fraction > 1.0 {
                    return Err("train.schedule: warmup_fraction + cooldown_fraction exceeds 1".into());
                }
                Ok(())
            }
            ScheduleConfig::Constant { warmup_fraction } => check("warmup_fraction", warmup_fraction),
        }
    }

    pub(crate) fn warmup_fraction(&self) -> f64 {
        match *self {
            ScheduleConfig::Cosine { warmup_fraction, .. }
            | ScheduleConfig::Wsd { warmup_fraction, .. }
            | ScheduleConfig::Constant { warmup_fraction } => warmup_fraction,
        }
    }
}

/// Optimiser hyperparameters (the learning rate comes from the schedule at each step).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamWConfig {
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Decoupled weight decay λ applied to matrices (and the embedding if `decay_embeddings`).
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    #[serde(default)]
    pub decay_embeddings: bool,
    /// Global gradient-norm ceiling; 0 turns clipping off.
    #[serde(default = "default_grad_clip")]
    pub grad_clip: f64,
}

fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.95
}
fn default_eps() -> f64 {
    1e-8
}
fn default_weight_decay() -> f64 {
    0.1
}
fn default_grad_clip() -> f64 {
    1.0
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: default_beta1(),
            beta2: default_beta2(),
            eps: default_eps(),
            weight_decay: default_weight_decay(),
            decay_embeddings: false,
            grad_clip: default_grad_clip(),
        }
    }
}

impl AdamWConfig {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(0.0..1.0).contains(&self.beta1) {
            return Err(format!("train.optimizer.beta1 = {} must be in [0, 1)", self.beta1));
        }
        if !(0.0..1.0).contains(&self.beta2) {
            return Err(format!("train.optimizer.beta2 = {} must be in [0, 1)", self.beta2));
        }
        if !(self.eps > 0.0) {
            return Err(format!("train.optimizer.eps = {} must be positive", self.eps));
        }
        if !(self.weight_decay >= 0.0) {
            return Err(format!("train.optimizer.weight_decay = {} must be non-negative", self.weight_decay));
        }
        if !(self.grad_clip >= 0.0) {
            return Err(format!("train.optimizer.grad_clip = {} must be non-negative (0 = off)", self.grad_clip));
        }
        Ok(())
    }
}
