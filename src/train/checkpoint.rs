//! Checkpoints: model.safetensors (weights by parameter name), optimizer.safetensors (AdamW
//! moments) and state.json (step count and position), enough to continue a run bit-exactly.
//! safetensors holds plain tensors only, so loading one executes nothing.
//!
//! A checkpoint vouches for itself: state.json records the SHA-256 of both tensor files, and the
//! weight file's own metadata records the step it was saved at. A file changed or swapped after
//! saving, or a state.json whose step was edited, is a corrupt checkpoint, so the run falls back
//! to the previous one instead of resuming step-70 bookkeeping on step-22 weights.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fs::{commit_temp, temp_sibling, write_atomic};
use crate::model::Model;
use crate::train::optim::AdamW;

/// The state.json format that carries checksums; version 1 (no checksums) still loads.
pub const CHECKPOINT_VERSION: u32 = 2;

/// Metadata key of the step in model.safetensors.
const STEP_KEY: &str = "sweeplaw.step";

/// state.json: where the run stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    pub format_version: u32,
    /// Optimiser steps completed (= the next training batch index).
    pub step: u64,
    pub tokens: u64,
    pub elapsed_s: f64,
    /// SHA-256 (hex) of model.safetensors and optimizer.safetensors as saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer_sha256: Option<String>,
}

impl CheckpointState {
    /// The state of a checkpoint about to be saved at `step` (checksums are filled by `save`).
    pub fn at(step: u64, tokens: u64, elapsed_s: f64) -> Self {
        CheckpointState {
            format_version: CHECKPOINT_VERSION,
            step,
            tokens,
            elapsed_s,
            model_sha256: None,
            optimizer_sha256: None,
        }
    }
}

/// Writes tensors as safetensors with `metadata`; I/O failures (a full disk) stay typed.
pub(crate) fn write_tensors(
    path: &Path,
    tensors: &HashMap<String, candle_core::Tensor>,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    safetensors::tensor::serialize_to_file(tensors, metadata, path).map_err(|e| match e {
        safetensors::SafeTensorError::IoError(source) => Error::io(path, source),
        other => Error::record(path, other.to_string()),
    })
}

/// SHA-256 of `bytes`, in hex.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn file_sha256(path: &Path) -> Result<String> {
    Ok(sha256_hex(&std::fs::read(path).map_err(|e| Error::io(path, e))?))
}

/// Removes whatever is at `path` (a file, a directory, a link), if anything.
pub(crate) fn remove_any(path: &Path) -> Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    result.map_err(|e| Error::io(path, e))
}

/// Writes weights, optimiser moments and state into `dir` (each file atomically; state.json last,
/// so a checkpoint without a matching state.json is never taken as complete). Whatever was at
/// `dir` before (a checkpoint of the same step, a stray file) is replaced.
pub fn save(dir: &Path, model: &Model, optimizer: &AdamW, state: &CheckpointState) -> Result<()> {
    if std::fs::symlink_metadata(dir).is_ok_and(|m| !m.is_dir()) {
        remove_any(dir)?;
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let weights: HashMap<String, candle_core::Tensor> =
        model.params().iter().map(|p| (p.name.clone(), p.var.as_tensor().clone())).collect();
    let model_path = dir.join("model.safetensors");
    let opt_path = dir.join("optimizer.safetensors");
    let state_path = dir.join("state.json");
    for path in [&model_path, &opt_path, &state_path] {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            remove_any(path)?;
        }
    }
    let tmp = temp_sibling(&model_path);
    let metadata = HashMap::from([(STEP_KEY.to_string(), state.step.to_string())]);
    write_tensors(&tmp, &weights, Some(metadata))?;
    let model_sha256 = file_sha256(&tmp)?;
    commit_temp(&tmp, &model_path)?;
    let tmp = temp_sibling(&opt_path);
    optimizer.save(model.params(), &tmp)?;
    let optimizer_sha256 = file_sha256(&tmp)?;
    commit_temp(&tmp, &opt_path)?;
    let state = CheckpointState {
        format_version: CHECKPOINT_VERSION,
        model_sha256: Some(model_sha256),
        optimizer_sha256: Some(optimizer_sha256),
        ..state.clone()
    };
    let json = serde_json::to_vec_pretty(&state).map_err(|e| Error::record(dir, e.to_string()))?;
    write_atomic(&state_path, &json)?;
    Ok(())
}

/// Reads and checks state.json and the tensor files' checksums and step, without loading
/// anything into a model. Any disagreement is an error naming the file.
pub fn verify(dir: &Path) -> Result<(CheckpointState, Vec<u8>)> {
    let state_path = dir.join("state.json");
    let text = std::fs::read_to_string(&state_path).map_err(|e| Error::io(&state_path, e))?;
    let model_path = dir.join("model.safetensors");
    let model_bytes = std::fs::read(&model_path).map_err(|e| Error::io(&model_path, e))?;
    // Version 1 records no checksums: its optimizer file is read by the load alone.
    let opt_path = dir.join("optimizer.safetensors");
    let optimizer_sha256 = match parse_state(&state_path, &text)?.format_version {
        1 => String::new(),
        _ => file_sha256(&opt_path)?,
    };
    let state = verify_bytes(dir, &text, &model_bytes, &optimizer_sha256)?;
    Ok((state, model_bytes))
}

/// `verify` on a checkpoint's contents: state.json's text, model.safetensors' bytes and the
/// optimizer file's SHA-256; `dir` only names the files in errors.
pub fn verify_bytes(
    dir: &Path,
    state_text: &str,
    model_bytes: &[u8],
    optimizer_sha256: &str,
) -> Result<CheckpointState> {
    let state_path = dir.join("state.json");
    let state = parse_state(&state_path, state_text)?;
    let model_path = dir.join("model.safetensors");
    if state.format_version >= 2 {
        let opt_path = dir.join("optimizer.safetensors");
        let checks = [
            (&model_path, sha256_hex(model_bytes), &state.model_sha256),
            (&opt_path, optimizer_sha256.to_string(), &state.optimizer_sha256),
        ];
        for (path, actual, recorded) in checks {
            if recorded.as_deref() != Some(actual.as_str()) {
                return Err(Error::record(
                    path,
                    format!(
                        "checksum {actual:.12}… does not match the {:.12}… that state.json records",
                        recorded.as_deref().unwrap_or("(none)")
                    ),
                ));
            }
        }
        let (_, metadata) = safetensors::SafeTensors::read_metadata(model_bytes)
            .map_err(|e| Error::record(&model_path, e.to_string()))?;
        let saved_step = metadata.metadata().as_ref().and_then(|m| m.get(STEP_KEY)).and_then(|s| s.parse::<u64>().ok());
        if saved_step != Some(state.step) {
            return Err(Error::record(
                &state_path,
                format!(
                    "step {} disagrees with the step {} saved in model.safetensors",
                    state.step,
                    saved_step.map_or_else(|| "(none)".to_string(), |s| s.to_string())
                ),
            ));
        }
    }
    Ok(state)
}

/// SHA-256 (hex) of `bytes`, as state.json records it.
pub fn checksum(bytes: &[u8]) -> String {
    sha256_hex(bytes)
}

/// Parses a state.json; the error names the file and serde's line.
pub fn parse_state(path: &Path, text: &str) -> Result<CheckpointState> {
    let state: CheckpointState =
        serde_json::from_str(text).map_err(|e| Error::record(path, format!("not a valid state.json: {e}")))?;
    if state.format_version == 0 || state.format_version > CHECKPOINT_VERSION {
        return Err(Error::record(
            path,
            format!("format_version {} is not one this build reads", state.format_version),
        ));
    }
    if state.tokens < state.step || !(state.elapsed_s.is_finite() && state.elapsed_s >= 0.0) {
        return Err(Error::record(path, "tokens or elapsed_s are impossible for the step"));
    }
    Ok(state)
}

/// Restores weights and optimiser state saved by `save`; every tensor must be present with the
/// right shape, and the checksums and step must agree (`verify`). Returns the state.
pub fn load(dir: &Path, model: &Model, optimizer: &mut AdamW, device: &Device) -> Result<CheckpointState> {
    let (state, model_bytes) = verify(dir)?;
    let model_path = dir.join("model.safetensors");
    let mut weights = candle_core::safetensors::load_buffer(&model_bytes, device)
        .map_err(|e| Error::record(&model_path, e.to_string()))?;
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
    use crate::config::AdamWConfig;
    use crate::model::{MlpKind, ModelShape};
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
        let state = CheckpointState::at(3, 96, 0.0);
        save(&dir, &model, &opt, &state).unwrap();
        train_steps(&model, &mut opt, 3..6);
        let uninterrupted = weights(&model);

        let resumed = Model::new(&shape, 99, DType::F32, DType::F32, &Device::Cpu).unwrap();
        let mut opt2 = AdamW::new(resumed.params(), cfg).unwrap();
        assert_eq!(load(&dir, &resumed, &mut opt2, &Device::Cpu).unwrap().step, state.step);
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
