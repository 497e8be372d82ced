//! `sweeplaw bench --ops`: where a training step's time goes, op by op. Each op of the model
//! (RMSNorm, rotary embedding, causal attention, GELU, cross-entropy, and one MLP matmul for
//! scale) is timed forward and backward at the shapes a step of the chosen model shape gives it,
//! in the dtype the model runs it in, on the fused path (the fused CPU ops or CUDA kernels) and
//! on candle's composite ops. This is the profile that says which fused kernel pays off.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use crate::device::ComputeDevice;
use crate::error::Result;
use crate::model::ModelShape;
use crate::ops::check::{track, OpFn, OpPair, CAUSAL_ATTENTION, CROSS_ENTROPY, GELU, LINEAR, RMS_NORM, ROPE};

/// One op timed both ways (milliseconds per forward + backward).
#[derive(Clone, Debug, Serialize)]
pub struct OpTiming {
    pub op: &'static str,
    pub input: String,
    pub dtype: String,
    /// Whether the dispatcher takes a fused path here (else both columns time the composite op).
    pub fused_path: bool,
    pub fused_ms: f64,
    pub composite_ms: f64,
}

/// Times every op `repeats` times (after one untimed run) at the shapes of a batch of `batch` sequences.
pub fn time_ops(shape: &ModelShape, batch: usize, device: &ComputeDevice, repeats: usize) -> Result<Vec<OpTiming>> {
    let (b, t, d, h, v) = (batch, shape.seq_len, shape.d_model, shape.n_heads, shape.vocab_size);
    let hd = shape.head_dim();
    let (master, mm) = (DType::F32, device.matmul_dtype);
    let cases = [
        Case {
            op: RMS_NORM,
            label: "rms_norm",
            inputs: vec![(vec![b, t, d], master), (vec![d], master)],
            wrt: vec![0, 1],
        },
        Case {
            op: ROPE,
            label: "rope",
            inputs: vec![(vec![b, h, t, hd], master), (vec![t, hd / 2], master), (vec![t, hd / 2], master)],
            wrt: vec![0],
        },
        Case {
            op: CAUSAL_ATTENTION,
            label: "causal_attention",
            inputs: vec![(vec![b, h, t, hd], mm); 3],
            wrt: vec![0, 1, 2],
        },
        Case { op: GELU, label: "gelu", inputs: vec![(vec![b, t, 4 * d], master)], wrt: vec![0] },
        Case {
            op: CROSS_ENTROPY,
            label: "cross_entropy",
            inputs: vec![(vec![b * t, v], mm), (vec![b * t], DType::U32)],
            wrt: vec![0],
        },
        Case {
            op: LINEAR,
            label: "linear (mlp up)",
            inputs: vec![(vec![b * t, d], mm), (vec![4 * d, d], mm)],
            wrt: vec![0, 1],
        },
    ];
    let mut timings = Vec::new();
    for case in cases {
        let tensors = inputs_for(&case.inputs, v, &device.device)?;
        let fused_ms = time_op(case.op.fused, &tensors, &case.wrt, &device.device, repeats)?;
        let composite_ms = time_op(case.op.composite, &tensors, &case.wrt, &device.device, repeats)?;
        timings.push(OpTiming {
            op: case.label,
            input: format!("{:?}", case.inputs[0].0),
            dtype: format!("{:?}", case.inputs[0].1).to_lowercase(),
            fused_path: case.op.path(&tensors[0]).0,
            fused_ms,
            composite_ms,
        });
    }
    Ok(timings)
}

/// One op at a step's sizes: its inputs (dims, dtype) and which of them get gradients.
struct Case {
    op: OpPair,
    label: &'static str,
    inputs: Vec<(Vec<usize>, DType)>,
    wrt: Vec<usize>,
}

/// Seeded inputs in [-1, 1); u32 inputs are targets below the vocabulary `vocab`.
fn inputs_for(inputs: &[(Vec<usize>, DType)], vocab: usize, device: &Device) -> Result<Vec<Tensor>> {
    let mut rng = crate::rng::SplitMix64::new(7);
    let mut tensors = Vec::new();
    for (dims, dtype) in inputs {
        let count: usize = dims.iter().product();
        let tensor = if *dtype == DType::U32 {
            let targets: Vec<u32> = (0..count).map(|_| rng.below(vocab as u64) as u32).collect();
            Tensor::from_vec(targets, dims.as_slice(), device)?
        } else {
            let values: Vec<f32> = (0..count).map(|_| 2.0 * rng.uniform() as f32 - 1.0).collect();
            Tensor::from_vec(values, dims.as_slice(), device)?.to_dtype(*dtype)?
        };
        tensors.push(tensor);
    }
    Ok(tensors)
}

/// Mean milliseconds of forward + backward of `sum(op(inputs) * P)` over `repeats` runs.
fn time_op(op: OpFn, inputs: &[Tensor], wrt: &[usize], device: &Device, repeats: usize) -> Result<f64> {
    let tracked = track(inputs, wrt)?;
    let projection = op(&tracked)?.ones_like()?;
    let mut elapsed = 0.0;
    for run in 0..=repeats {
        device.synchronize()?;
        let start = Instant::now();
        let out = op(&tracked)?;
        let grads = (out * &projection)?.sum_all()?.backward()?;
        device.synchronize()?;
        if run > 0 {
            elapsed += start.elapsed().as_secs_f64();
        }
        drop(grads);
    }
    Ok(1000.0 * elapsed / repeats.max(1) as f64)
}

/// The table `sweeplaw bench --ops` prints.
pub fn describe(timings: &[OpTiming]) -> String {
    let mut lines = vec![format!(
        "{:<18} {:<22} {:<5} {:>10} {:>13} {:>8}",
        "op (fwd+bwd)", "input", "dtype", "fused ms", "composite ms", "speedup"
    )];
    for t in timings {
        let fused = if t.fused_path { format!("{:.3}", t.fused_ms) } else { "-".to_string() };
        let speedup = if t.fused_path { format!("{:.2}x", t.composite_ms / t.fused_ms) } else { "-".to_string() };
        lines.push(format!(
            "{:<18} {:<22} {:<5} {:>10} {:>13.3} {:>8}",
            t.op, t.input, t.dtype, fused, t.composite_ms, speedup
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MlpKind;

    #[test]
    fn times_every_op_both_ways_on_the_cpu() {
        let shape = ModelShape {
            vocab_size: 50,
            d_model: 16,
            n_layers: 1,
            n_heads: 2,
            seq_len: 12,
            mlp: MlpKind::Gelu,
            tie_embeddings: false,
        };
        let cpu = crate::device::resolve("cpu", "f32").unwrap();
        let timings = time_ops(&shape, 2, &cpu, 2).unwrap();
        assert_eq!(timings.len(), 6);
        for t in &timings {
            assert!(t.fused_path, "{t:?}");
            assert!(t.fused_ms > 0.0 && t.composite_ms > 0.0, "{t:?}");
        }
        assert_eq!(timings[2].input, "[2, 2, 12, 8]");
        let table = describe(&timings);
        assert_eq!(table.lines().count(), 7);
        assert!(table.contains("cross_entropy"), "{table}");
    }
}
