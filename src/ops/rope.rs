//! Fused rotary position embedding on the CPU (Su et al. 2021, eq. 34) on interleaved pairs,
//! matching scripts/ref_torch_train.py's `rope()`, with its hand-written backward.
//!
//! Each pair (x[2i], x[2i+1]) at position t is rotated by the angle whose cosine and sine are
//! cos[t, i] and sin[t, i]; the backward rotates the incoming gradient by minus that angle.
//! x may be any (B, H, T, hd) view with a unit-stride last dimension (a permuted projection is
//! read in place); the output is contiguous. cos and sin get no gradient (fixed tables).

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::composite::check_rope_tables;
use super::cpu_simd::{contiguous_slice, rank4_rows, tensor_from, tensor_slice, with_real_type, Real};

/// Fused rope of x (B, H, T, hd) with cos, sin (T, hd/2).
pub(crate) fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    check_rope_tables(x, cos, sin)?;
    let x = if rank4_rows(x.layout()).is_some() { x.clone() } else { x.contiguous()? };
    x.apply_op3(&cos.contiguous()?, &sin.contiguous()?, RopeOp)
}

struct RopeOp;

/// Where the rows of a (B, H, T, hd) view with unit-stride last dimension lie in its storage.
struct HeadRows {
    heads: usize,
    strides: [usize; 3],
    offset: usize,
}

impl HeadRows {
    /// Reads the layout, checking that every element lies inside a storage of `len` elements.
    fn new(layout: &Layout, len: usize) -> Result<Self> {
        let Some((strides, offset)) = rank4_rows(layout) else {
            bail!("rope: x needs a unit-stride last dimension, got strides {:?}", layout.stride());
        };
        let dims = layout.dims();
        let last =
            offset + dims.iter().zip(strides.iter().chain([&1])).map(|(d, s)| d.saturating_sub(1) * s).sum::<usize>();
        if dims.iter().product::<usize>() > 0 && last >= len {
            bail!("rope: layout {layout:?} reaches past its storage of {len} elements");
        }
        Ok(Self { heads: dims[1], strides, offset })
    }

    /// Start of row `pos` of head `bh` (batch-major index b * H + h).
    fn row_start(&self, bh: usize, pos: usize) -> usize {
        self.offset + (bh / self.heads) * self.strides[0] + (bh % self.heads) * self.strides[1] + pos * self.strides[2]
    }
}

/// Rotates each pair of `x` by the angle (cos, sin), or by its negative when `inverse`.
fn rotate_row<T: Real>(x: &[T], cos: &[T], sin: &[T], out: &mut [T], inverse: bool) {
    for ((o, pair), (&c, &s)) in out.chunks_exact_mut(2).zip(x.chunks_exact(2)).zip(cos.iter().zip(sin)) {
        let s = if inverse { T::from_f64(0.0) - s } else { s };
        o[0] = pair[0] * c - pair[1] * s;
        o[1] = pair[0] * s + pair[1] * c;
    }
}

/// Rotates every row of x (rows located by `rows`) into the contiguous (B, H, T, hd) `out`.
fn rotate_all<T: Real>(x: &[T], rows: &HeadRows, dims: &[usize], cos: &[T], sin: &[T], inverse: bool) -> Vec<T> {
    let (seq, head_dim) = (dims[2], dims[3]);
    let half = head_dim / 2;
    let mut out = vec![T::from_f64(0.0); dims.iter().product()];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(seq * head_dim).enumerate().for_each(|(bh, head)| {
        for (pos, out_row) in head.chunks_exact_mut(head_dim).enumerate() {
            let start = rows.row_start(bh, pos);
            let angles = pos * half..(pos + 1) * half;
            rotate_row(&x[start..start + head_dim], &cos[angles.clone()], &sin[angles], out_row, inverse);
        }
    });
    out
}

impl RopeOp {
    fn backward<T: Real>(&self, x: &Tensor, cos: &Tensor, sin: &Tensor, grad: &Tensor) -> Result<Tensor> {
        let grad = grad.contiguous()?;
        let (c_store, c_layout) = cos.storage_and_layout();
        let (s_store, s_layout) = sin.storage_and_layout();
        let (g_store, g_layout) = grad.storage_and_layout();
        let cs = tensor_slice::<T>(&c_store, c_layout, "rope backward", "cos")?;
        let ss = tensor_slice::<T>(&s_store, s_layout, "rope backward", "sin")?;
        let gs = tensor_slice::<T>(&g_store, g_layout, "rope backward", "grad")?;
        let rows = HeadRows::new(g_layout, gs.len())?;
        let dx = rotate_all(gs, &rows, x.dims(), cs, ss, true);
        tensor_from(dx, x)
    }
}

impl CustomOp3 for RopeOp {
    fn name(&self) -> &'static str {
        "fused-rope"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_l: &Layout,
        cos: &CpuStorage,
        cos_l: &Layout,
        sin: &CpuStorage,
        sin_l: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = with_real_type!(x.dtype(), "rope", |R| {
            let xs = R::cpu_storage_as_slice(x)?;
            let rows = HeadRows::new(x_l, xs.len())?;
            let cs = contiguous_slice::<R>(cos, cos_l, "rope", "cos")?;
            let ss = contiguous_slice::<R>(sin, sin_l, "rope", "sin")?;
            R::to_cpu_storage_owned(rotate_all(xs, &rows, x_l.dims(), cs, ss, false))
        });
        Ok((out, x_l.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = with_real_type!(x.dtype(), "rope backward", |R| self.backward::<R>(x, cos, sin, grad)?);
        Ok((Some(dx), None, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::composite;
    use crate::ops::testing::{assert_matches_composite, assert_same_forward, seeded};
    use candle_core::{DType, Device};

    /// cos/sin tables of the reference script: angle = t / 10000^(2i / hd).
    fn tables(seq: usize, head_dim: usize, dtype: DType) -> Result<(Tensor, Tensor)> {
        let half = head_dim / 2;
        let angles: Vec<f64> = (0..seq * half)
            .map(|j| (j / half) as f64 / 10000f64.powf((2 * (j % half)) as f64 / head_dim as f64))
            .collect();
        let angles = Tensor::from_vec(angles, (seq, half), &Device::Cpu)?;
        Ok((angles.cos()?.to_dtype(dtype)?, angles.sin()?.to_dtype(dtype)?))
    }

    #[test]
    fn forward_matches_composite_in_f32_and_f64() -> Result<()> {
        for dtype in [DType::F32, DType::F64] {
            let (cos, sin) = tables(9, 8, dtype)?;
            let x = seeded(&[2, 3, 9, 8], 1, dtype)?;
            let f = |t: &[Tensor]| rope(&t[0], &t[1], &t[2]);
            let r = |t: &[Tensor]| composite::rope(&t[0], &t[1], &t[2]);
            assert_same_forward(&f, &r, &[x, cos, sin], 1e-6)?;
        }
        Ok(())
    }

    #[test]
    fn rotates_pairs_by_the_known_angle() -> Result<()> {
        // One pair (1, 0) rotated by 90 degrees is (0, 1); (0, 2) by 180 degrees is (0, -2).
        let x = Tensor::new(&[1.0f64, 0.0, 0.0, 2.0], &Device::Cpu)?.reshape((1, 1, 1, 4))?;
        let cos = Tensor::new(&[[0.0f64, -1.0]], &Device::Cpu)?;
        let sin = Tensor::new(&[[1.0f64, 0.0]], &Device::Cpu)?;
        let y = rope(&x, &cos, &sin)?.flatten_all()?.to_vec1::<f64>()?;
        assert_eq!(y, vec![0.0, 1.0, 0.0, -2.0]);
        Ok(())
    }

    #[test]
    fn gradients_match_finite_differences_and_composite() -> Result<()> {
        let (cos, sin) = tables(5, 6, DType::F64)?;
        let x = seeded(&[2, 2, 5, 6], 2, DType::F64)?;
        let f = |t: &[Tensor]| rope(&t[0], &t[1], &t[2]);
        let r = |t: &[Tensor]| composite::rope(&t[0], &t[1], &t[2]);
        assert_matches_composite(&f, &r, &[x, cos, sin], &[0])
    }

    #[test]
    fn permuted_input_is_read_in_place() -> Result<()> {
        // x arrives as (B, T, H, hd) and is viewed as (B, H, T, hd), as after a qkv projection.
        let (cos, sin) = tables(5, 4, DType::F64)?;
        let x = seeded(&[2, 5, 3, 4], 3, DType::F64)?;
        let f = |t: &[Tensor]| rope(&t[0].transpose(1, 2)?, &t[1], &t[2]);
        let r = |t: &[Tensor]| composite::rope(&t[0].transpose(1, 2)?, &t[1], &t[2]);
        assert!(rank4_rows(x.transpose(1, 2)?.layout()).is_some());
        assert_matches_composite(&f, &r, &[x, cos, sin], &[0])
    }
}
