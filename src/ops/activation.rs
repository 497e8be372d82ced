//! Fused exact GELU on the CPU (Hendrycks & Gimpel 2016, section 2) with its hand-written
//! backward: forward `x * Phi(x)`, backward `g * (Phi(x) + x * phi(x))`, Phi and phi the
//! standard normal CDF and density. f32 uses the vectorised kernels of `kernels::f32_kernels`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_simd::{contiguous_slice, tensor_from, tensor_slice, with_real_type, Real};

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// Fused exact GELU of x (any shape).
pub(crate) fn gelu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(GeluOp)
}

struct GeluOp;

fn forward<T: Real>(x: &[T]) -> Vec<T> {
    let mut out = vec![T::from_f64(0.0); x.len()];
    out.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(o, xs)| T::gelu_slice(xs, o));
    out
}

fn backward<T: Real>(x: &Tensor, grad: &Tensor) -> Result<Tensor> {
    let grad = grad.contiguous()?;
    let (x_store, x_layout) = x.storage_and_layout();
    let (g_store, g_layout) = grad.storage_and_layout();
    let xs = tensor_slice::<T>(&x_store, x_layout, "gelu backward", "x")?;
    let gs = tensor_slice::<T>(&g_store, g_layout, "gelu backward", "grad")?;
    let mut dx = vec![T::from_f64(0.0); xs.len()];
    dx.par_chunks_mut(CHUNK)
        .zip(xs.par_chunks(CHUNK).zip(gs.par_chunks(CHUNK)))
        .for_each(|(d, (xc, gc))| T::gelu_grad_slice(xc, gc, d));
    tensor_from(dx, x)
}

impl CustomOp1 for GeluOp {
    fn name(&self) -> &'static str {
        "fused-gelu"
    }

    fn cpu_fwd(&self, x: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let out = with_real_type!(x.dtype(), "gelu", |R| {
            R::to_cpu_storage_owned(forward(contiguous_slice::<R>(x, layout, "gelu", "x")?))
        });
        Ok((out, layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let dx = with_real_type!(x.dtype(), "gelu backward", |R| backward::<R>(x, grad)?);
        Ok(Some(dx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::composite;
    use crate::ops::testing::{assert_matches_composite, assert_same_forward, seeded};
    use candle_core::{DType, Device};

    fn fused(t: &[Tensor]) -> Result<Tensor> {
        gelu(&t[0])
    }
    fn reference(t: &[Tensor]) -> Result<Tensor> {
        composite::gelu(&t[0])
    }

    #[test]
    fn forward_matches_composite_in_f32_and_f64() -> Result<()> {
        for dtype in [DType::F32, DType::F64] {
            let x = (seeded(&[40_000], 1, dtype)? * 6.0)?; // spans several parallel chunks
            assert_same_forward(&fused, &reference, &[x], 1e-6)?;
        }
        Ok(())
    }

    #[test]
    fn known_values() -> Result<()> {
        // GELU(0) = 0, GELU(1) = Phi(1) = 0.841344746..., GELU(-1) = -(1 - Phi(1)).
        for dtype in [DType::F32, DType::F64] {
            let x = Tensor::new(&[0.0f64, 1.0, -1.0], &Device::Cpu)?.to_dtype(dtype)?;
            let y = gelu(&x)?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
            let want = [0.0, 0.841_344_746_068_543, -0.158_655_253_931_457];
            for (got, want) in y.iter().zip(want) {
                assert!((got - want).abs() < 1e-6, "{dtype:?}: {y:?}");
            }
        }
        Ok(())
    }

    #[test]
    fn gradients_match_finite_differences_and_composite() -> Result<()> {
        let x = (seeded(&[3, 17], 2, DType::F64)? * 4.0)?;
        assert_matches_composite(&fused, &reference, &[x], &[0])
    }

    #[test]
    fn non_contiguous_input_works() -> Result<()> {
        let f = |t: &[Tensor]| gelu(&t[0].t()?);
        let r = |t: &[Tensor]| composite::gelu(&t[0].t()?);
        let x = (seeded(&[5, 4], 3, DType::F64)? * 3.0)?;
        assert_matches_composite(&f, &r, &[x], &[0])
    }
}
