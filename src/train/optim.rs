//! AdamW we own (Loshchilov & Hutter 2019, Algorithm 2, with PyTorch's decoupled decay
//! θ ← θ − lr·λ·θ): parameter groups (decay on matrices, never on norm gains, configurable on
//! the embedding), global-norm gradient clipping, and state (moments and step count) that saves
//! and restores bit-exactly, which candle_nn::AdamW cannot do.

use std::collections::HashMap;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};

use crate::config::AdamWConfig;
use crate::error::{Error, Result};
use crate::model::{Param, ParamKind};
use crate::ops::adamw::{adamw_update, AdamWUpdate};

struct Slot {
    m: Tensor,
    v: Tensor,
    weight_decay: f64,
}

/// AdamW over a model's parameters, in the model's order.
pub struct AdamW {
    pub config: AdamWConfig,
    slots: Vec<Slot>,
    /// Number of updates applied so far.
    pub step: u64,
}

impl AdamW {
    pub fn new(params: &[Param], config: AdamWConfig) -> Result<Self> {
        let slots = params
            .iter()
            .map(|p| {
                let weight_decay = match p.kind {
                    ParamKind::Matrix => config.weight_decay,
                    ParamKind::Embedding if config.decay_embeddings => config.weight_decay,
                    ParamKind::Embedding | ParamKind::NormGain => 0.0,
                };
                Ok(Slot { m: p.var.zeros_like()?, v: p.var.zeros_like()?, weight_decay })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW { config, slots, step: 0 })
    }

    /// Global L2 norm of all gradients. A parameter without a gradient is an error: it means a
    /// op on its path dropped the gradient.
    pub fn grad_norm(params: &[Param], grads: &GradStore) -> Result<f64> {
        // Summed on the device, read once: one host sync per step, not one per parameter.
        let mut sum_sq: Option<Tensor> = None;
        for p in params {
            let g = grad_of(p, grads)?;
            let part = g.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?;
            sum_sq = Some(match sum_sq {
                Some(total) => (total + part)?,
                None => part,
            });
        }
        Ok(sum_sq.map_or(Ok(0.0), |s| s.to_scalar::<f64>())?.sqrt())
    }

    /// Clips to the global norm, applies one AdamW update at learning rate `lr`, and returns the
    /// gradient norm before clipping.
    pub fn step(&mut self, params: &[Param], grads: &GradStore, lr: f64) -> Result<f64> {
        let norm = Self::grad_norm(params, grads)?;
        let clip = self.config.grad_clip;
        let clip_scale = if clip > 0.0 && norm > clip { clip / (norm + 1e-6) } else { 1.0 };
        self.step += 1;
        for (p, slot) in params.iter().zip(self.slots.iter_mut()) {
            let update = AdamWUpdate {
                clip_scale,
                beta1: self.config.beta1,
                beta2: self.config.beta2,
                step: self.step,
                eps: self.config.eps,
                lr,
                weight_decay: slot.weight_decay,
            };
            adamw_update(&p.var, &mut slot.m, &mut slot.v, grad_of(p, grads)?, &update)?;
        }
        Ok(norm)
    }

    /// Writes the moments as safetensors (`m.<param>`, `v.<param>`); the step count goes in the
    /// caller's state JSON (see `checkpoint`).
    pub fn save(&self, params: &[Param], path: &Path) -> Result<()> {
        let mut tensors = HashMap::new();
        for (p, slot) in params.iter().zip(&self.slots) {
            tensors.insert(format!("m.{}", p.name), slot.m.clone());
            tensors.insert(format!("v.{}", p.name), slot.v.clone());
        }
        crate::train::checkpoint::write_tensors(path, &tensors, None)
    }

    /// Restores the moments written by `save` and the step count; every tensor must match.
    pub fn load(&mut self, params: &[Param], path: &Path, step: u64, device: &Device) -> Result<()> {
        let mut tensors =
            candle_core::safetensors::load(path, device).map_err(|e| Error::record(path, e.to_string()))?;
        for (p, slot) in params.iter().zip(self.slots.iter_mut()) {
            for (prefix, target) in [("m", &mut slot.m), ("v", &mut slot.v)] {
                let key = format!("{prefix}.{}", p.name);
                let t = tensors.remove(&key).ok_or_else(|| Error::record(path, format!("missing tensor {key}")))?;
                if t.shape() != target.shape() || t.dtype() != target.dtype() {
                    return Err(Error::record(
                        path,
                        format!("tensor {key} has shape {:?}, expected {:?}", t.shape(), target.shape()),
                    ));
                }
                *target = t;
            }
        }
        self.step = step;
        Ok(())
    }
}

fn grad_of<'a>(p: &Param, grads: &'a GradStore) -> Result<&'a Tensor> {
    grads.get(p.var.as_tensor()).ok_or_else(|| Error::Run {
        run: "optimizer".into(),
        message: format!("parameter {} received no gradient (an op on its path has no backward)", p.name),
    })
}
