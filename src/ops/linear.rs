//! Fused bias-free linear layer on the CPU with its hand-written backward: x (..., in), w (out, in)
//! -> y = x w^T. All leading dims of x are one row dimension M, so each product is a single 2-D
//! gemm call with explicit strides (`gemm` crate, the one candle uses): forward y (M, out) =
//! x w^T, backward dx (M, in) = g w and dw (out, in) = g^T x. candle's own matmul of a 3-D x with a
//! broadcast w runs the weight gradient as B small per-batch products plus a sum.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::composite::check_linear_shapes;
use super::cpu_simd::{
    contiguous_slice, gemm_threads, matmul, storage_slice, tensor_from, tensor_slice, with_real_type, MatMut, MatRef,
    Real,
};

/// Fused x w^T for x (..., in) and w (out, in); w may be any 2-D view (e.g. a transpose).
pub(crate) fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    check_linear_shapes(x, w)?;
    x.contiguous()?.apply_op2(w, LinearOp)
}

struct LinearOp;

/// w (out, in) as a strided matrix over its storage.
fn weight_matrix<'a, T>(data: &'a [T], layout: &Layout) -> Result<MatRef<'a, T>> {
    let (&[rows, cols], &[row_stride, col_stride]) = (layout.dims(), layout.stride()) else {
        bail!("linear: weight must be 2-D, got {:?}", layout.dims());
    };
    match data.get(layout.start_offset()..) {
        Some(tail) => MatRef::new(tail, rows, cols, row_stride, col_stride),
        None => bail!("linear: weight offset is past the end of its storage"),
    }
}

fn forward<T: Real>(x: &[T], w: MatRef<T>, out_features: usize, in_features: usize) -> Result<Vec<T>> {
    let rows = x.len() / in_features.max(1);
    let mut y = vec![T::from_f64(0.0); rows * out_features];
    let x = MatRef::rows(x, 0, rows, in_features)?;
    matmul(MatMut::rows(&mut y, rows, out_features)?, x, w.t(), false, gemm_threads())?;
    Ok(y)
}

fn backward<T: Real>(x: &Tensor, w: &Tensor, grad: &Tensor) -> Result<(Tensor, Tensor)> {
    let grad = grad.contiguous()?;
    let (x_store, x_layout) = x.storage_and_layout();
    let (w_store, w_layout) = w.storage_and_layout();
    let (g_store, g_layout) = grad.storage_and_layout();
    let xs = tensor_slice::<T>(&x_store, x_layout, "linear backward", "x")?;
    let gs = tensor_slice::<T>(&g_store, g_layout, "linear backward", "grad")?;
    let wm = weight_matrix(storage_slice::<T>(&w_store, "linear backward")?, w_layout)?;
    let (out_features, in_features) = w.dims2()?;
    let rows = xs.len() / in_features.max(1);
    let (xm, gm) = (MatRef::rows(xs, 0, rows, in_features)?, MatRef::rows(gs, 0, rows, out_features)?);
    let mut dx = vec![T::from_f64(0.0); xs.len()];
    matmul(MatMut::rows(&mut dx, rows, in_features)?, gm, wm, false, gemm_threads())?;
    let mut dw = vec![T::from_f64(0.0); out_features * in_features];
    matmul(MatMut::rows(&mut dw, out_features, in_features)?, gm.t(), xm, false, gemm_threads())?;
    Ok((tensor_from(dx, x)?, tensor_from(dw, w)?))
}

impl CustomOp2 for LinearOp {
    fn name(&self) -> &'static str {
        "fused-linear"
    }

    fn cpu_fwd(&self, x: &CpuStorage, x_l: &Layout, w: &CpuStorage, w_l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (out_features, in_features) = w_l.shape().dims2()?;
        let out = with_real_type!(x.dtype(), "linear", |R| {
            let xs = contiguous_slice::<R>(x, x_l, "linear", "x")?;
            let wm = weight_matrix(R::cpu_storage_as_slice(w)?, w_l)?;
            R::to_cpu_storage_owned(forward(xs, wm, out_features, in_features)?)
        });
        let mut dims = x_l.dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = out_features;
        }
        Ok((out, Shape::from(dims)))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = with_real_type!(x.dtype(), "linear backward", |R| backward::<R>(x, w, grad)?);
        Ok((Some(dx), Some(dw)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::composite;
    use crate::ops::testing::{assert_matches_composite, assert_same_forward, seeded};
    use candle_core::{DType, Device};

    fn fused(t: &[Tensor]) -> Result<Tensor> {
        linear(&t[0], &t[1])
    }
    fn reference(t: &[Tensor]) -> Result<Tensor> {
        composite::linear(&t[0], &t[1])
    }

    #[test]
    fn forward_matches_composite_in_f32_and_f64() -> Result<()> {
        for dtype in [DType::F32, DType::F64] {
            let inputs = [seeded(&[3, 20, 33], 1, dtype)?, seeded(&[17, 33], 2, dtype)?];
            assert_same_forward(&fused, &reference, &inputs, 1e-6)?;
        }
        Ok(())
    }

    #[test]
    fn known_product() -> Result<()> {
        let x = Tensor::new(&[[1.0f64, 2.0], [3.0, 4.0]], &Device::Cpu)?;
        let w = Tensor::new(&[[1.0f64, 0.0], [0.0, 1.0], [1.0, -1.0]], &Device::Cpu)?;
        let y = linear(&x, &w)?.to_vec2::<f64>()?;
        assert_eq!(y, vec![vec![1.0, 2.0, -1.0], vec![3.0, 4.0, -1.0]]);
        Ok(())
    }

    #[test]
    fn gradients_match_finite_differences_and_composite() -> Result<()> {
        let inputs = [seeded(&[2, 3, 5], 3, DType::F64)?, seeded(&[4, 5], 4, DType::F64)?];
        assert_matches_composite(&fused, &reference, &inputs, &[0, 1])
    }

    #[test]
    fn transposed_weight_and_strided_input_work() -> Result<()> {
        // w is used as the transpose of an (in, out) tensor (a tied head) and x as a transpose.
        let f = |t: &[Tensor]| linear(&t[0].transpose(0, 1)?, &t[1].t()?);
        let r = |t: &[Tensor]| composite::linear(&t[0].transpose(0, 1)?, &t[1].t()?);
        let inputs = [seeded(&[3, 2, 5], 5, DType::F64)?, seeded(&[5, 4], 6, DType::F64)?];
        assert_matches_composite(&f, &r, &inputs, &[0, 1])
    }
}
