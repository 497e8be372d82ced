//! Fused mean cross-entropy on the CPU with its hand-written backward. Per row i of logits x
//! (N, V) with target t_i: `lse_i = log sum_j exp(x_ij)`, loss = `mean_i (lse_i - x_{i t_i})`;
//! backward `dx_ij = g / N * (softmax(x_i)_j - [j = t_i])`. The forward keeps `lse` for the
//! backward. Computed in the logits' dtype (f32 or f64); the dispatcher upcasts bf16/f16.

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::composite::check_targets;
use super::cpu_simd::{contiguous_slice, max_of, tensor_from, tensor_slice, with_real_type, Real};

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 8;

/// Fused mean cross-entropy of logits (N, V) f32/f64 against targets (N) u32.
pub(crate) fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let (rows, _vocab) = logits.dims2()?;
    check_targets(targets, rows)?;
    let op = CrossEntropyOp { lse: Mutex::new(Vec::new()) };
    logits.contiguous()?.apply_op2(&targets.contiguous()?, op)
}

struct CrossEntropyOp {
    /// Row log-sum-exps, written by the forward for the backward.
    lse: Mutex<Vec<f64>>,
}

fn lock_error() -> candle_core::Error {
    candle_core::Error::Msg("cross_entropy: the saved log-sum-exp lock is poisoned".into())
}

/// Checks every target is a valid class index.
fn check_target_range(targets: &[u32], vocab: usize) -> Result<()> {
    if let Some((row, t)) = targets.iter().enumerate().find(|(_, &t)| t as usize >= vocab) {
        bail!("cross_entropy: target {t} at row {row} is out of range for {vocab} classes");
    }
    Ok(())
}

/// `log sum_j exp(row_j)`, shifted by the row max.
fn log_sum_exp<T: Real>(row: &[T]) -> T {
    let max = max_of(row);
    max + T::sum_exp(row, max).ln()
}

impl CrossEntropyOp {
    fn forward<T: Real>(&self, logits: &[T], targets: &[u32]) -> Result<T> {
        let vocab = logits.len() / targets.len().max(1);
        check_target_range(targets, vocab)?;
        let per_row: Vec<(f64, f64)> = logits
            .par_chunks(vocab.max(1))
            .with_min_len(ROWS_PER_TASK)
            .zip(targets.par_iter())
            .map(|(row, &t)| {
                let lse = log_sum_exp(row);
                (lse.to_f64(), (lse - row[t as usize]).to_f64())
            })
            .collect();
        let total: f64 = per_row.iter().map(|(_, loss)| loss).sum();
        *self.lse.lock().map_err(|_| lock_error())? = per_row.iter().map(|(lse, _)| *lse).collect();
        Ok(T::from_f64(total / targets.len().max(1) as f64))
    }

    fn backward<T: Real>(&self, logits: &Tensor, targets: &Tensor, grad: &Tensor) -> Result<Tensor> {
        let (l_store, l_layout) = logits.storage_and_layout();
        let (t_store, t_layout) = targets.storage_and_layout();
        let xs = tensor_slice::<T>(&l_store, l_layout, "cross_entropy backward", "logits")?;
        let ts = tensor_slice::<u32>(&t_store, t_layout, "cross_entropy backward", "targets")?;
        let scale = grad.to_dtype(DType::F64)?.to_scalar::<f64>()? / ts.len().max(1) as f64;
        let lse = self.lse.lock().map_err(|_| lock_error())?;
        if lse.len() != ts.len() {
            bail!("cross_entropy backward: {} saved rows for {} targets", lse.len(), ts.len());
        }
        let vocab = xs.len() / ts.len().max(1);
        let mut dx = vec![T::from_f64(0.0); xs.len()];
        let rows = dx.par_chunks_mut(vocab.max(1)).zip(xs.par_chunks(vocab.max(1)));
        rows.zip(ts.par_iter().zip(lse.par_iter())).with_min_len(ROWS_PER_TASK).for_each(|((d, x), (&t, &lse))| {
            T::exp_into(x, d, T::from_f64(lse), T::from_f64(scale));
            d[t as usize] -= T::from_f64(scale);
        });
        tensor_from(dx, logits)
    }
}

impl CustomOp2 for CrossEntropyOp {
    fn name(&self) -> &'static str {
        "fused-cross-entropy"
    }

    fn cpu_fwd(&self, x: &CpuStorage, x_l: &Layout, t: &CpuStorage, t_l: &Layout) -> Result<(CpuStorage, Shape)> {
        let targets = contiguous_slice::<u32>(t, t_l, "cross_entropy", "targets")?;
        let out = with_real_type!(x.dtype(), "cross_entropy", |R| {
            let logits = contiguous_slice::<R>(x, x_l, "cross_entropy", "logits")?;
            R::to_cpu_storage_owned(vec![self.forward(logits, targets)?])
        });
        Ok((out, Shape::from(())))
    }

    fn bwd(&self, x: &Tensor, t: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = with_real_type!(x.dtype(), "cross_entropy backward", |R| self.backward::<R>(x, t, grad)?);
        Ok((Some(dx), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::composite;
    use crate::ops::testing::{assert_matches_composite, assert_same_forward, seeded};
    use candle_core::Device;

    fn targets(rows: usize, vocab: usize) -> Result<Tensor> {
        let t: Vec<u32> = (0..rows).map(|i| ((i * 7 + 3) % vocab) as u32).collect();
        Tensor::from_vec(t, rows, &Device::Cpu)
    }
    fn fused(t: &[Tensor]) -> Result<Tensor> {
        cross_entropy(&t[0], &t[1])
    }
    fn reference(t: &[Tensor]) -> Result<Tensor> {
        composite::cross_entropy(&t[0], &t[1])
    }

    #[test]
    fn forward_matches_composite_in_f32_and_f64() -> Result<()> {
        for dtype in [DType::F32, DType::F64] {
            let logits = (seeded(&[37, 300], 1, dtype)? * 8.0)?;
            assert_same_forward(&fused, &reference, &[logits, targets(37, 300)?], 1e-6)?;
        }
        Ok(())
    }

    #[test]
    fn uniform_logits_give_log_vocab() -> Result<()> {
        // Equal logits: every class has probability 1/V, so the loss is ln V exactly.
        let logits = Tensor::zeros((4, 10), DType::F64, &Device::Cpu)?;
        let loss = cross_entropy(&logits, &targets(4, 10)?)?.to_scalar::<f64>()?;
        assert!((loss - 10f64.ln()).abs() < 1e-12, "{loss}");
        Ok(())
    }

    #[test]
    fn gradients_match_finite_differences_and_composite() -> Result<()> {
        let logits = (seeded(&[5, 7], 2, DType::F64)? * 3.0)?;
        assert_matches_composite(&fused, &reference, &[logits, targets(5, 7)?], &[0])
    }

    #[test]
    fn non_contiguous_logits_work() -> Result<()> {
        let f = |t: &[Tensor]| cross_entropy(&t[0].t()?, &t[1]);
        let r = |t: &[Tensor]| composite::cross_entropy(&t[0].t()?, &t[1]);
        let logits = (seeded(&[7, 5], 3, DType::F64)? * 3.0)?;
        assert_matches_composite(&f, &r, &[logits, targets(5, 7)?], &[0])
    }

    #[test]
    fn bf16_logits_are_computed_in_f32() -> Result<()> {
        let logits = (seeded(&[6, 50], 4, DType::F32)? * 4.0)?.to_dtype(DType::BF16)?;
        let t = targets(6, 50)?;
        let fused = crate::ops::cross_entropy(&logits, &t)?;
        let reference = composite::cross_entropy(&logits, &t)?;
        assert_eq!(fused.dtype(), DType::F32);
        let (a, b) = (fused.to_scalar::<f32>()?, reference.to_scalar::<f32>()?);
        assert!((a - b).abs() < 1e-5 * b.abs(), "{a} vs {b}");
        Ok(())
    }

    #[test]
    fn out_of_range_target_is_an_error_naming_the_row() -> Result<()> {
        let logits = Tensor::zeros((3, 4), DType::F32, &Device::Cpu)?;
        let bad = Tensor::new(&[0u32, 4, 1], &Device::Cpu)?;
        let err = cross_entropy(&logits, &bad).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("target 4 at row 1"), "{err}");
        Ok(())
    }
}
