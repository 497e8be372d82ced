//! Fused RMSNorm on the CPU (Zhang & Sennrich 2019, eq. 4) with its hand-written backward.
//!
//! Per row of d values, with `r = (mean(x^2) + eps)^(-1/2)` and `xhat = x r`:
//! forward `y = xhat * w`; backward `dx = r (g w - xhat * mean(g w xhat))`, `dw = sum_rows g xhat`.
//! Nothing is saved for the backward: `r` is recomputed from x (one pass over a row).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::composite::check_norm_shapes;
use super::cpu_simd::{contiguous_slice, dot, tensor_from, tensor_slice, with_real_type, Real};

/// Rows handled by one parallel task; fixed, so the weight-gradient sum has a fixed order.
const ROWS_PER_TASK: usize = 32;

/// Fused RMSNorm of x (..., d) with weight (d).
pub(crate) fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    check_norm_shapes(x, weight)?;
    x.contiguous()?.apply_op2(&weight.contiguous()?, RmsNormOp { eps })
}

struct RmsNormOp {
    eps: f64,
}

/// `(mean(row^2) + eps)^(-1/2)`.
fn inv_rms<T: Real>(row: &[T], eps: T) -> T {
    T::from_f64(1.0) / (dot(row, row) / T::from_f64(row.len() as f64) + eps).sqrt()
}

impl RmsNormOp {
    fn forward<T: Real>(&self, x: &[T], weight: &[T]) -> Vec<T> {
        let dim = weight.len();
        let eps = T::from_f64(self.eps);
        let mut out = vec![T::from_f64(0.0); x.len()];
        let chunk = dim * ROWS_PER_TASK;
        out.par_chunks_mut(chunk).zip(x.par_chunks(chunk)).for_each(|(out_rows, x_rows)| {
            for (out_row, x_row) in out_rows.chunks_exact_mut(dim).zip(x_rows.chunks_exact(dim)) {
                let r = inv_rms(x_row, eps);
                for ((o, &xv), &wv) in out_row.iter_mut().zip(x_row).zip(weight) {
                    *o = xv * r * wv;
                }
            }
        });
        out
    }

    /// dx for a block of rows, written into `dx_rows`; returns that block's share of dw.
    fn backward_rows<T: Real>(&self, x_rows: &[T], g_rows: &[T], weight: &[T], dx_rows: &mut [T]) -> Vec<T> {
        let dim = weight.len();
        let eps = T::from_f64(self.eps);
        let mut dw = vec![T::from_f64(0.0); dim];
        let rows = x_rows.chunks_exact(dim).zip(g_rows.chunks_exact(dim));
        for ((x_row, g_row), dx_row) in rows.zip(dx_rows.chunks_exact_mut(dim)) {
            let r = inv_rms(x_row, eps);
            for (d, (&gv, &wv)) in dx_row.iter_mut().zip(g_row.iter().zip(weight)) {
                *d = gv * wv; // g w, kept in dx_row until the last loop
            }
            // sum_j g_j w_j xhat_j, with xhat = x r
            let mean_dot = dot(dx_row, x_row) * r / T::from_f64(dim as f64);
            for ((dwv, &gv), &xv) in dw.iter_mut().zip(g_row).zip(x_row) {
                *dwv += gv * xv * r;
            }
            for (d, &xv) in dx_row.iter_mut().zip(x_row) {
                *d = r * (*d - xv * r * mean_dot);
            }
        }
        dw
    }

    fn backward<T: Real>(
        &self,
        x: &Tensor,
        weight: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (x_store, x_layout) = x.storage_and_layout();
        let (w_store, w_layout) = weight.storage_and_layout();
        let (g_store, g_layout) = grad.storage_and_layout();
        let xs = tensor_slice::<T>(&x_store, x_layout, "rms_norm backward", "x")?;
        let ws = tensor_slice::<T>(&w_store, w_layout, "rms_norm backward", "weight")?;
        let gs = tensor_slice::<T>(&g_store, g_layout, "rms_norm backward", "grad")?;
        let chunk = ws.len() * ROWS_PER_TASK;
        let mut dx = vec![T::from_f64(0.0); xs.len()];
        let partial_dw: Vec<Vec<T>> = dx
            .par_chunks_mut(chunk)
            .zip(xs.par_chunks(chunk).zip(gs.par_chunks(chunk)))
            .map(|(dx_rows, (x_rows, g_rows))| self.backward_rows(x_rows, g_rows, ws, dx_rows))
            .collect();
        let mut dw = vec![T::from_f64(0.0); ws.len()];
        for part in partial_dw {
            for (total, p) in dw.iter_mut().zip(part) {
                *total += p;
            }
        }
        Ok((Some(tensor_from(dx, x)?), Some(tensor_from(dw, weight)?)))
    }
}

impl CustomOp2 for RmsNormOp {
    fn name(&self) -> &'static str {
        "fused-rms-norm"
    }

    fn cpu_fwd(&self, x: &CpuStorage, x_l: &Layout, w: &CpuStorage, w_l: &Layout) -> Result<(CpuStorage, Shape)> {
        let out = with_real_type!(x.dtype(), "rms_norm", |R| {
            let xs = contiguous_slice::<R>(x, x_l, "rms_norm", "x")?;
            let ws = contiguous_slice::<R>(w, w_l, "rms_norm", "weight")?;
            R::to_cpu_storage_owned(self.forward(xs, ws))
        });
        Ok((out, x_l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        with_real_type!(x.dtype(), "rms_norm backward", |R| self.backward::<R>(x, w, grad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::composite;
    use crate::ops::testing::{assert_matches_composite, assert_same_forward, seeded};
    use candle_core::DType;

    fn fused(inputs: &[Tensor]) -> Result<Tensor> {
        rms_norm(&inputs[0], &inputs[1], 1e-6)
    }
    fn reference(inputs: &[Tensor]) -> Result<Tensor> {
        composite::rms_norm(&inputs[0], &inputs[1], 1e-6)
    }

    #[test]
    fn forward_matches_composite_in_f32_and_f64() -> Result<()> {
        for dtype in [DType::F32, DType::F64] {
            let x = seeded(&[3, 70, 24], 1, dtype)?;
            let w = (seeded(&[24], 2, dtype)? + 1.0)?;
            assert_same_forward(&fused, &reference, &[x, w], 1e-6)?;
        }
        Ok(())
    }

    #[test]
    fn known_answer_for_a_constant_row() -> Result<()> {
        // x = (3, 3, 3, 3): rms = 3, so y = w (eps negligible).
        let x = Tensor::new(&[[3.0f64, 3.0, 3.0, 3.0]], &candle_core::Device::Cpu)?;
        let w = Tensor::new(&[1.0f64, 2.0, -1.0, 0.5], &candle_core::Device::Cpu)?;
        let y = rms_norm(&x, &w, 0.0)?.to_vec2::<f64>()?;
        assert_eq!(y, vec![vec![1.0, 2.0, -1.0, 0.5]]);
        Ok(())
    }

    #[test]
    fn gradients_match_finite_differences_and_composite() -> Result<()> {
        let x = seeded(&[2, 5, 6], 3, DType::F64)?;
        let w = (seeded(&[6], 4, DType::F64)? + 1.0)?;
        assert_matches_composite(&fused, &reference, &[x, w], &[0, 1])
    }

    #[test]
    fn non_contiguous_input_works() -> Result<()> {
        // x is a transposed view inside the op, so the strided path is the one differentiated.
        let strided = |t: &[Tensor]| rms_norm(&t[0].transpose(0, 2)?, &t[1], 1e-6);
        let strided_ref = |t: &[Tensor]| composite::rms_norm(&t[0].transpose(0, 2)?, &t[1], 1e-6);
        let x = seeded(&[6, 2, 5], 5, DType::F64)?;
        let w = (seeded(&[6], 6, DType::F64)? + 1.0)?;
        assert_matches_composite(&strided, &strided_ref, &[x, w], &[0, 1])
    }
}
