//! Device checks: an accelerator must compute what the CPU computes. `sweeplaw bench --check`
//! runs all four on the chosen device and fails when one does not hold:
//! 1. gradients of a tiny model in f64 against central finite differences on a sample of every
//!    parameter tensor (relative error under 1e-4: candle's fused ops without a backward, or a
//!    wrong custom backward, fail here);
//! 2. a short f32 training run on the synthetic language, on the device and on the CPU from the
//!    same weights and batches: the losses agree to rounding (reduction order differs);
//! 3. where the device runs bf16 matmuls (CUDA), the same run with bf16 matmul operands and f32
//!    master weights tracks the f32 loss curve;
//! 4. every fused op (the CUDA kernels on CUDA, in f32 and bf16) against its composite op, output
//!    and gradients (`crate::ops::check`): the f64 gradient check of 1. runs the composite ops on
//!    CUDA, since the kernels take f32 and bf16 only.

use candle_core::{DType, Device, Tensor};

use crate::config::AdamWConfig;
use crate::data::synthetic::{SyntheticConfig, SyntheticSource};
use crate::data::TokenSource;
use crate::device::ComputeDevice;
use crate::error::{Error, Result};
use crate::model::{MlpKind, Model, ModelShape, ParamKind};
use crate::ops::check::{check_fused_ops, OpCheck};
use crate::train::optim::AdamW;

/// Largest relative error of an analytic gradient against central differences.
pub const GRADIENT_TOLERANCE: f64 = 1e-4;
/// Largest |loss_device − loss_cpu| over the f32 run (nats).
pub const F32_TOLERANCE: f64 = 2e-3;
/// Largest |loss_bf16 − loss_f32| over the bf16 run (nats).
pub const BF16_TOLERANCE: f64 = 0.05;

/// Result of the finite-difference check.
#[derive(Clone, Debug)]
pub struct GradientCheck {
    pub max_relative_error: f64,
    /// `parameter[index]` of the largest error.
    pub worst: String,
    pub checked: usize,
}

/// Central finite differences (step 1e-5) in f64 on four entries of every parameter tensor of a
/// model of `shape` on `device`, with its norm gains moved away from 1 so their gradients are generic.
pub fn gradient_check(shape: &ModelShape, device: &Device) -> Result<GradientCheck> {
    let model = Model::new(shape, 1, DType::F64, DType::F64, device)?;
    for p in model.params().iter().filter(|p| p.kind == ParamKind::NormGain) {
        let n = p.var.elem_count();
        let gains: Vec<f64> = (0..n).map(|i| 1.0 + 0.1 * ((i * 7 % 5) as f64 - 2.0)).collect();
        p.var.set(&Tensor::from_vec(gains, n, device)?)?;
    }
    let (b, t, v) = (2, shape.seq_len, shape.vocab_size as u32);
    let ids: Vec<u32> = (0..(b * t) as u32).map(|i| (i * 7 + 3) % v).collect();
    let targets: Vec<u32> = (0..(b * t) as u32).map(|i| (i * 5 + 1) % v).collect();
    let ids = Tensor::from_vec(ids, (b, t), device)?;
    let targets = Tensor::from_vec(targets, (b, t), device)?;
    let loss = |m: &Model| -> Result<f64> { Ok(m.loss(&ids, &targets)?.to_scalar::<f64>()?) };
    let grads = model.loss(&ids, &targets)?.backward()?;
    let step = 1e-5;
    let mut check = GradientCheck { max_relative_error: 0.0, worst: String::new(), checked: 0 };
    for p in model.params() {
        let Some(grad) = grads.get(p.var.as_tensor()) else {
            return Err(Error::Failed(format!("gradient check: no gradient reaches {}", p.name)));
        };
        let grad = grad.flatten_all()?.to_vec1::<f64>()?;
        let original = p.var.flatten_all()?.to_vec1::<f64>()?;
        let perturbed = |i: usize, delta: f64| -> Result<f64> {
            let mut values = original.clone();
            values[i] += delta;
            p.var.set(&Tensor::from_vec(values, p.var.shape(), device)?)?;
            loss(&model)
        };
        for k in 0..4 {
            let i = (k * 7919 + 13) % original.len();
            let numeric = (perturbed(i, step)? - perturbed(i, -step)?) / (2.0 * step);
            let relative = relative_error(numeric, grad[i]);
            if relative > check.max_relative_error || check.checked == 0 {
                check.max_relative_error = relative;
                check.worst = format!("{}[{i}]", p.name);
            }
            check.checked += 1;
        }
        p.var.set(&Tensor::from_vec(original, p.var.shape(), device)?)?;
    }
    Ok(check)
}

/// Training losses of `steps` AdamW steps (lr 3e-3) of `shape` on the synthetic language, from
/// seed-0 weights, with f32 master weights and `matmul_dtype` matmul operands.
pub fn training_losses(shape: &ModelShape, device: &Device, matmul_dtype: DType, steps: usize) -> Result<Vec<f64>> {
    let language = SyntheticSource::new(&SyntheticConfig { vocab_size: shape.vocab_size, ..Default::default() })
        .map_err(|e| Error::Failed(format!("device check: {e}")))?;
    let model = Model::new(shape, 0, DType::F32, matmul_dtype, device)?;
    let mut optimizer = AdamW::new(model.params(), AdamWConfig::default())?;
    let mut losses = Vec::with_capacity(steps);
    for step in 0..steps as u64 {
        let batch = language.train_batch(step, 8, shape.seq_len).map_err(|e| Error::Failed(e.to_string()))?;
        let ids = Tensor::from_slice(&batch.inputs, (8, shape.seq_len), device)?;
        let targets = Tensor::from_slice(&batch.targets, (8, shape.seq_len), device)?;
        let loss = model.loss(&ids, &targets)?;
        losses.push(loss.to_dtype(DType::F64)?.to_scalar::<f64>()?);
        let grads = loss.backward()?;
        optimizer.step(model.params(), &grads, 3e-3)?;
    }
    Ok(losses)
}

/// All four checks on one device.
#[derive(Clone, Debug)]
pub struct DeviceCheck {
    pub device: String,
    pub gradient: GradientCheck,
    pub cpu_f32: Vec<f64>,
    pub device_f32: Vec<f64>,
    /// None where the device has no bf16 path (the CPU).
    pub device_bf16: Option<Vec<f64>>,
    /// Fused against composite, op by op.
    pub ops: Vec<OpCheck>,
}

/// The small model the checks train: 2 layers of width 64 over a 256-token vocabulary.
pub fn check_shape() -> ModelShape {
    ModelShape {
        vocab_size: 256,
        d_model: 64,
        n_layers: 2,
        n_heads: 4,
        seq_len: 64,
        mlp: MlpKind::Gelu,
        tie_embeddings: false,
    }
}

/// The width-8 model the gradient check differentiates (small enough for central differences).
pub fn gradient_shape(mlp: MlpKind, tie_embeddings: bool) -> ModelShape {
    ModelShape { vocab_size: 11, d_model: 8, n_layers: 2, n_heads: 2, seq_len: 5, mlp, tie_embeddings }
}

/// Runs the gradient check on [`gradient_shape`] and 30 training steps of [`check_shape`].
pub fn check_device(device: &ComputeDevice) -> Result<DeviceCheck> {
    let gradient = gradient_check(&gradient_shape(MlpKind::Gelu, false), &device.device)?;
    let shape = check_shape();
    let steps = 30;
    let cpu_f32 = training_losses(&shape, &Device::Cpu, DType::F32, steps)?;
    let device_f32 = training_losses(&shape, &device.device, DType::F32, steps)?;
    let device_bf16 = match device.device.is_cuda() {
        true => Some(training_losses(&shape, &device.device, DType::BF16, steps)?),
        false => None,
    };
    let ops = check_fused_ops(&device.device)?;
    Ok(DeviceCheck { device: device.name.clone(), gradient, cpu_f32, device_f32, device_bf16, ops })
}

/// |numeric − analytic| relative to the larger of the two (at least 1e-7); a non-finite value on
/// either side is an infinite error, never 0 (f64::max would drop a NaN).
fn relative_error(numeric: f64, analytic: f64) -> f64 {
    let relative = (numeric - analytic).abs() / numeric.abs().max(analytic.abs()).max(1e-7);
    if relative.is_finite() {
        relative
    } else {
        f64::INFINITY
    }
}

/// The largest |a − b| over two loss curves; a non-finite loss, or curves of different lengths,
/// is an infinite difference.
fn max_difference(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, |worst, d| if d.is_finite() { worst.max(d) } else { f64::INFINITY })
}

impl DeviceCheck {
    pub fn f32_difference(&self) -> f64 {
        max_difference(&self.cpu_f32, &self.device_f32)
    }

    pub fn bf16_difference(&self) -> Option<f64> {
        self.device_bf16.as_ref().map(|bf16| max_difference(bf16, &self.device_f32))
    }

    pub fn passed(&self) -> bool {
        self.gradient.max_relative_error < GRADIENT_TOLERANCE
            && self.f32_difference() < F32_TOLERANCE
            && self.bf16_difference().is_none_or(|d| d < BF16_TOLERANCE)
            && self.ops.iter().all(OpCheck::passed)
    }

    /// The report `sweeplaw bench --check` prints: one line per check, then the loss curves.
    pub fn describe(&self) -> String {
        let verdict = |ok: bool| if ok { "ok" } else { "FAILED" };
        let g = &self.gradient;
        let mut lines = vec![
            format!(
                "gradients vs finite differences (f64, {} entries): max relative error {:.2e} at {} (< {GRADIENT_TOLERANCE:.0e}) {}",
                g.checked, g.max_relative_error, g.worst, verdict(g.max_relative_error < GRADIENT_TOLERANCE)
            ),
            format!(
                "f32 training on {} vs cpu ({} steps): max |Δloss| {:.2e} (< {F32_TOLERANCE:.0e}) {}",
                self.device, self.cpu_f32.len(), self.f32_difference(), verdict(self.f32_difference() < F32_TOLERANCE)
            ),
        ];
        if let Some(d) = self.bf16_difference() {
            lines.push(format!(
                "bf16 matmuls vs f32 on {}: max |Δloss| {d:.3} (< {BF16_TOLERANCE}) {}",
                self.device,
                verdict(d < BF16_TOLERANCE)
            ));
        }
        lines.push(format!("fused ops vs composite on {} (relative errors):", self.device));
        lines.extend(self.ops.iter().map(|op| format!("  {}", op.describe())));
        lines.push("step  cpu_f32  device_f32  device_bf16".into());
        for (i, (cpu, dev)) in self.cpu_f32.iter().zip(&self.device_f32).enumerate().step_by(5) {
            let bf16 = self.device_bf16.as_ref().map_or("-".to_string(), |b| format!("{:.5}", b[i]));
            lines.push(format!("{i:>4}  {cpu:.5}  {dev:.5}  {bf16}"));
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradients_match_finite_differences() {
        for shape in [gradient_shape(MlpKind::Gelu, false), gradient_shape(MlpKind::Swiglu, true)] {
            let check = gradient_check(&shape, &Device::Cpu).unwrap();
            assert!(check.checked >= 4 * 10, "{check:?}");
            assert!(check.max_relative_error < GRADIENT_TOLERANCE, "{check:?}");
        }
    }

    fn passing_check() -> DeviceCheck {
        DeviceCheck {
            device: "test".into(),
            gradient: GradientCheck { max_relative_error: 1e-6, worst: "w[0]".into(), checked: 4 },
            cpu_f32: vec![5.5, 5.0, 4.5],
            device_f32: vec![5.5, 5.0, 4.5],
            device_bf16: Some(vec![5.52, 5.01, 4.49]),
            ops: Vec::new(),
        }
    }

    #[test]
    fn the_check_fails_on_a_nan_an_inf_and_a_wrong_gradient() {
        assert!(passing_check().passed(), "{}", passing_check().describe());
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut check = passing_check();
            check.device_f32[1] = bad;
            assert!(!check.passed(), "a {bad} f32 loss passed");
            assert_eq!(check.f32_difference(), f64::INFINITY);
            assert!(check.describe().contains("FAILED"), "{}", check.describe());
            let mut check = passing_check();
            check.device_bf16.as_mut().unwrap()[2] = bad;
            assert!(!check.passed(), "a {bad} bf16 loss passed");
            let mut check = passing_check();
            check.gradient.max_relative_error = relative_error(bad, 0.3);
            assert!(!check.passed(), "a {bad} numeric gradient passed");
            assert_eq!(relative_error(0.3, bad), f64::INFINITY, "a {bad} analytic gradient");
        }
        let mut check = passing_check();
        check.device_f32.pop();
        assert!(!check.passed(), "a curve cut short passed");
        // A gradient off by a factor of two, and one of the wrong sign.
        assert!((relative_error(0.4, 0.8) - 0.5).abs() < 1e-12);
        assert!((relative_error(0.4, -0.4) - 2.0).abs() < 1e-12);
        let mut check = passing_check();
        check.gradient.max_relative_error = relative_error(0.4, 0.8);
        assert!(!check.passed());
    }

    #[test]
    fn cpu_check_passes_and_training_learns() {
        let cpu = crate::device::resolve("cpu", "f32").unwrap();
        let check = check_device(&cpu).unwrap();
        assert!(check.passed(), "{}", check.describe());
        assert_eq!(check.f32_difference(), 0.0, "the cpu is deterministic");
        assert!(check.device_bf16.is_none());
        let (first, last) = (check.cpu_f32[0], *check.cpu_f32.last().unwrap());
        assert!((first - 256f64.ln()).abs() < 0.1 && last < first - 0.5, "{first} -> {last}");
        assert_eq!(check.ops.len(), 6);
        assert!(check.describe().contains("causal_attention f32   fused"), "{}", check.describe());
    }
}
