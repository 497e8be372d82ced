//! Checkpoints: model.safetensors (weights by parameter name), optimizer.safetensors (AdamW
//! moments) and state.json (step count and position), enough to continue a run bit-exactly.
//! safetensors holds plain tensors only, so loading one executes nothing.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Model;
use crate::records::{commit_temp, temp_sibling, write_atomic};
use crate::train::optim::AdamW;

/// state.json: where the run stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    pub format_version: u32,
    /// Optimiser steps completed (= the next training batch index).
    pub step: u64,
    pub tokens: u64,
    pub elapsed_s: f64,
}

/// Writes weights, optimiser moments and state into `dir` (each file atomically; state.json last,
/// so a checkpoint without a matching state.json is never taken as complete).
pub fn save(dir: &Path, model: &Model, optimizer: &AdamW, state: &CheckpointState) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let weights: HashMap<String, candle_core::Tensor> =
        model.params().iter().map(|p| (p.name.clone(), p.var.as_tensor().clone())).collect();
    let model_path = dir.join("model.safetensors");
    let tmp = temp_sibling(&model_path);
    candle_core::safetensors::save(&weights, &tmp).map_err(|e| Error::record(&model_path, e.to_string()))?;
    commit_temp(&tmp, &model_path)?;
    let opt_path = dir.join("optimizer.safetensors");
    let tmp = temp_sibling(&opt_path);
    optimizer.save(model.params(), &tmp)?;
    commit_temp(&tmp, &opt_path)?;
    let json = serde_json::to_vec_pretty(state).map_err(|e| Error::record(dir, e.to_string()))?;
    write_atomic(&dir.join("state.json"), &json)
}

/// Restores weights and optimiser state saved by `save`; every tensor must be present with the
/// right shape. Returns the state.
pub fn load(dir: &Path, model: &Model, optimizer: &mut AdamW, device: &Device) -> Result<CheckpointState> {
    let state_path = dir.join("state.json");
    let text = std::fs::read_to_string(&state_path).map_err(|e| Error::io(&state_path, e))?;
    let state: CheckpointState =
        serde_json::from_str(&text).map_err(|e| Error::record(&state_path, format!("not a valid state.json: {e}")))?;
    let model_path = dir.join("model.safetensors");
    let mut weights =
        candle_core::safetensors::load(&model_path, device).map_err(|e| Error::record(&model_path, e.to_string()))?;
    for p in model.params() {
        let t =
            weights.remove(&p.name).ok_or_else(|| Error::record(&model_path, format!("missing tensor {}", p.name)))?;
        if t.shape() != p.var.shape() || t.dtype() != p.var.dtype() {
            return Err(Error::record(
                &model_path,
                format!("tensor {} has shape {:?}, expected {:?}", p.name, t.shape(), p.var.shape()),
            ));
        }
        p.var.set(&t)?;
    }
    optimizer.load(model.params(), &dir.join("optimizer.safetensors"), state.step, device)?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MlpKind, ModelShape};
    use crate::train::optim::AdamWConfig;
    use candle_core::{DType, Tensor};

    fn batch(step: u64) -> (Tensor, Tensor) {
        let ids: Vec<u32> = (0..32u32).map(|i| (i * 7 + step as u32 * 3) % 50).collect();
        let tg: Vec<u32> = (0..32u32).map(|i| (i * 11 + step as u32) % 50).collect();
        (Tensor::from_vec(ids, (2, 16), &Device::Cpu).unwrap(), Tensor::from_vec(tg, (2, 16), &Device::Cpu).unwrap())
    }

    fn train_steps(model: &Model, opt: &mut AdamW, steps: std::ops::Range<u64>) {
        for s in steps {
            let (x, y) = batch(s);
            let grads = model.loss(&x, &y).unwrap().backward().unwrap();
            opt.step(model.params(), &grads, 1e-2).unwrap();
        }
    }

    fn weights(model: &Model) -> Vec<Vec<f32>> {
        model.params().iter().map(|p| p.var.flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
    }

    #[test]
    fn save_and_restore_continues_bit_exactly() {
        let shape = ModelShape {
            vocab_size: 50,
            d_model: 16,
            n_layers: 2,
            n_heads: 2,
            seq_len: 16,
            mlp: MlpKind::Gelu,
            tie_embeddings: false,
        };
        let cfg = AdamWConfig { grad_clip: 0.5, decay_embeddings: true, ..AdamWConfig::default() };
        let model = Model::new(&shape, 5, DType::F32, DType::F32, &Device::Cpu).unwrap();
        let mut opt = AdamW::new(model.params(), cfg.clone()).unwrap();
        train_steps(&model, &mut opt, 0..3);
        let dir = std::env::temp_dir().join(format!("sweeplaw-ckpt-{}", std::process::id()));
        let state = CheckpointState { format_version: 1, step: 3, tokens: 96, elapsed_s: 0.0 };
        save(&dir, &model, &opt, &state).unwrap();
        train_steps(&model, &mut opt, 3..6);
        let uninterrupted = weights(&model);

        let resumed = Model::new(&shape, 99, DType::F32, DType::F32, &Device::Cpu).unwrap();
        let mut opt2 = AdamW::new(resumed.params(), cfg).unwrap();
        assert_eq!(load(&dir, &resumed, &mut opt2, &Device::Cpu).unwrap(), state);
        assert_eq!(opt2.step, 3);
        train_steps(&resumed, &mut opt2, 3..6);
        assert_eq!(weights(&resumed), uninterrupted);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_checkpoint_is_an_error_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("sweeplaw-bad-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("state.json"), r#"{"format_version":1,"step":1,"tokens":1,"elapsed_s":0}"#).unwrap();
        std::fs::write(dir.join("model.safetensors"), b"not a safetensors file").unwrap();
        let shape = ModelShape {
            vocab_size: 10,
            d_model: 8,
            n_layers: 1,
            n_heads: 2,
            seq_len: 4,
            mlp: MlpKind::Gelu,
            tie_embeddings: false,
        };
        let model = Model::new(&shape, 0, DType::F32, DType::F32, &Device::Cpu).unwrap();
        let mut opt = AdamW::new(model.params(), AdamWConfig::default()).unwrap();
        let e = load(&dir, &model, &mut opt, &Device::Cpu).unwrap_err().to_string();
        assert!(e.contains("model.safetensors"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
