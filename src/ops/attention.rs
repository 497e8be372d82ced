//! Fused causal attention on the CPU (Vaswani et al. 2017, eq. 1, with a causal mask) and its
//! hand-written backward, computed block by block like FlashAttention (Dao et al. 2022, alg. 1-2
//! with the whole key range of a query block at once): the (T, T) probabilities are never stored.
//!
//! Queries are taken in blocks of `row_block` rows. A block whose last row is r1 - 1 sees keys
//! 0..r1 only (the lower triangle), so no work is spent above the diagonal. Forward, per block:
//! `S = Q_b K^T`, `P = softmax(S / sqrt(hd))` over the visible keys, `O_b = P V`, and the row
//! log-sum-exp `lse` is kept for the backward. Backward, per block, with `D_i = dO_i . O_i`:
//! `P = exp(S / sqrt(hd) - lse)` (recomputed), `dP = dO_b V^T`, `dS = P (dP - D) / sqrt(hd)`,
//! `dQ_b = dS K`, `dK += dS^T Q_b`, `dV += P^T dO_b`. The products run on the `gemm` crate.

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::composite::check_attention_shapes;
use super::cpu_simd::{
    dot, matmul, max_of, rank4_rows, storage_slice, tensor_from, tensor_slice, with_real_type, MatMut, MatRef, Real,
};

/// Query rows per block: 64 beat 32, 128 and 256 at the reference shape (T 256, hd 64).
const ROW_BLOCK: usize = 64;

/// Fused causal attention of q, k, v (B, H, T, hd), each any view with a unit-stride last dim.
pub(crate) fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    causal_attention_blocked(q, k, v, ROW_BLOCK)
}

/// As [`causal_attention`] with a chosen query block size (tests use small blocks).
pub(crate) fn causal_attention_blocked(q: &Tensor, k: &Tensor, v: &Tensor, row_block: usize) -> Result<Tensor> {
    check_attention_shapes(q, k, v)?;
    let readable = |t: &Tensor| if rank4_rows(t.layout()).is_some() { Ok(t.clone()) } else { t.contiguous() };
    let op = AttentionOp { row_block: row_block.max(1), lse: Mutex::new(None) };
    readable(q)?.apply_op3(&readable(k)?, &readable(v)?, op)
}

struct AttentionOp {
    row_block: usize,
    /// Row log-sum-exp of the scaled scores, (B, H, T), written by the forward for the backward.
    lse: Mutex<Option<CpuStorage>>,
}

/// One (B, H, T, hd) operand: its storage and where head `bh`'s rows start.
#[derive(Clone, Copy)]
struct Heads<'a, T> {
    data: &'a [T],
    batch_heads: usize,
    heads: usize,
    strides: [usize; 3],
    offset: usize,
    seq: usize,
    head_dim: usize,
}

impl<'a, T> Heads<'a, T> {
    fn new(data: &'a [T], layout: &Layout, name: &str) -> Result<Self> {
        let Some((strides, offset)) = rank4_rows(layout) else {
            bail!("causal_attention: {name} needs a unit-stride last dimension, got strides {:?}", layout.stride());
        };
        let dims = layout.dims();
        Ok(Self {
            data,
            batch_heads: dims[0] * dims[1],
            heads: dims[1],
            strides,
            offset,
            seq: dims[2],
            head_dim: dims[3],
        })
    }

    /// Rows `first..first + count` of head `bh` as a (count, hd) matrix (bounds-checked).
    fn rows(&self, bh: usize, first: usize, count: usize) -> Result<MatRef<'a, T>> {
        let start = self.offset + (bh / self.heads) * self.strides[0] + (bh % self.heads) * self.strides[1];
        let start = start + first * self.strides[2];
        match self.data.get(start..) {
            Some(tail) => MatRef::new(tail, count, self.head_dim, self.strides[2], 1),
            None => bail!("causal_attention: head {bh} starts past the end of its storage"),
        }
    }
}

/// The operands of one forward or backward call.
struct Operands<'a, T> {
    q: Heads<'a, T>,
    k: Heads<'a, T>,
    v: Heads<'a, T>,
    scale: T,
}

/// Turns the scores of query rows `first..first + rows` against keys `0..keys` (keys = first +
/// rows, row-major in `scores`) in place into `exp(s * scale - shift_i)` on visible keys (j <= i)
/// and 0 on future ones. With `shift` None, row i's shift is its max and the row is normalised
/// (softmax); the row log-sum-exps are returned. With `shift` given (the saved lse), the rows
/// come out normalised already and the returned vector is empty.
fn probabilities<T: Real>(scores: &mut [T], keys: usize, first: usize, scale: T, shift: Option<&[T]>) -> Vec<T> {
    let mut lse = Vec::new();
    for (i, row) in scores.chunks_exact_mut(keys).enumerate() {
        let (live, future) = row.split_at_mut(first + i + 1);
        future.fill(T::from_f64(0.0));
        if let Some(shift) = shift {
            T::exp_scaled_inplace(live, scale, shift[i]);
            continue;
        }
        let max = max_of(live) * scale;
        let sum = T::exp_scaled_inplace(live, scale, max);
        let inv_sum = T::from_f64(1.0) / sum;
        for p in live.iter_mut() {
            *p *= inv_sum;
        }
        lse.push(max + sum.ln());
    }
    lse
}

fn lock_error() -> candle_core::Error {
    candle_core::Error::Msg("causal_attention: the saved log-sum-exp lock is poisoned".into())
}

impl AttentionOp {
    /// Output rows `first..first + lse_block.len()` of head `bh` and their log-sum-exps.
    fn forward_block<T: Real>(
        &self,
        ops: &Operands<T>,
        bh: usize,
        first: usize,
        out: &mut [T],
        lse: &mut [T],
    ) -> Result<()> {
        let (rows, head_dim) = (lse.len(), ops.q.head_dim);
        let keys = first + rows;
        let mut scores = vec![T::from_f64(0.0); rows * keys];
        let queries = ops.q.rows(bh, first, rows)?;
        matmul(MatMut::rows(&mut scores, rows, keys)?, queries, ops.k.rows(bh, 0, keys)?.t(), false, 1)?;
        lse.copy_from_slice(&probabilities(&mut scores, keys, first, ops.scale, None));
        let probs = MatRef::rows(&scores, 0, rows, keys)?;
        matmul(MatMut::rows(out, rows, head_dim)?, probs, ops.v.rows(bh, 0, keys)?, false, 1)
    }

    /// The contiguous (B, H, T, hd) output and the (B, H, T) log-sum-exps.
    fn forward<T: Real>(&self, ops: &Operands<T>) -> Result<(Vec<T>, Vec<T>)> {
        let (seq, head_dim) = (ops.q.seq, ops.q.head_dim);
        let batch_heads = ops.q.batch_heads;
        let mut out = vec![T::from_f64(0.0); batch_heads * seq * head_dim];
        let mut lse = vec![T::from_f64(0.0); batch_heads * seq];
        if out.is_empty() {
            return Ok((out, lse));
        }
        let block = self.row_block;
        out.par_chunks_mut(seq * head_dim).zip(lse.par_chunks_mut(seq)).enumerate().try_for_each(
            |(bh, (out_head, lse_head))| {
                let blocks = out_head.par_chunks_mut(block * head_dim).zip(lse_head.par_chunks_mut(block));
                blocks.enumerate().try_for_each(|(b, (out_block, lse_block))| {
                    self.forward_block(ops, bh, b * block, out_block, lse_block)
                })
            },
        )?;
        Ok((out, lse))
    }
}

impl AttentionOp {
    /// dq, dk, dv of head `bh` (each (T, hd), contiguous) from that head's output and its gradient.
    #[allow(clippy::too_many_arguments)]
    fn backward_head<T: Real>(
        &self,
        ops: &Operands<T>,
        out: &[T],
        grad: &[T],
        lse: &[T],
        bh: usize,
        dq: &mut [T],
        dk: &mut [T],
        dv: &mut [T],
    ) -> Result<()> {
        let (seq, head_dim) = (ops.q.seq, ops.q.head_dim);
        for first in (0..seq).step_by(self.row_block) {
            let rows = self.row_block.min(seq - first);
            let keys = first + rows;
            let (queries, all_keys, all_values) =
                (ops.q.rows(bh, first, rows)?, ops.k.rows(bh, 0, keys)?, ops.v.rows(bh, 0, keys)?);
            let grad_rows = MatRef::rows(grad, first * head_dim, rows, head_dim)?;
            let mut probs = vec![T::from_f64(0.0); rows * keys];
            matmul(MatMut::rows(&mut probs, rows, keys)?, queries, all_keys.t(), false, 1)?;
            probabilities(&mut probs, keys, first, ops.scale, Some(&lse[first..keys]));
            let mut dscores = vec![T::from_f64(0.0); rows * keys];
            matmul(MatMut::rows(&mut dscores, rows, keys)?, grad_rows, all_values.t(), false, 1)?;
            let block_rows = first * head_dim..keys * head_dim;
            softmax_backward(
                &mut dscores,
                &probs,
                keys,
                &out[block_rows.clone()],
                &grad[block_rows.clone()],
                ops.scale,
            );
            let dscores = MatRef::rows(&dscores, 0, rows, keys)?;
            matmul(MatMut::rows(&mut dq[block_rows], rows, head_dim)?, dscores, all_keys, false, 1)?;
            matmul(MatMut::rows(&mut dk[..keys * head_dim], keys, head_dim)?, dscores.t(), queries, true, 1)?;
            let probs = MatRef::rows(&probs, 0, rows, keys)?;
            matmul(MatMut::rows(&mut dv[..keys * head_dim], keys, head_dim)?, probs.t(), grad_rows, true, 1)?;
        }
        Ok(())
    }

    fn backward<T: Real>(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        out: &Tensor,
        grad: &Tensor,
    ) -> Result<[Tensor; 3]> {
        let (out, grad) = (out.contiguous()?, grad.contiguous()?);
        let (q_store, q_layout) = q.storage_and_layout();
        let (k_store, k_layout) = k.storage_and_layout();
        let (v_store, v_layout) = v.storage_and_layout();
        let (o_store, o_layout) = out.storage_and_layout();
        let (g_store, g_layout) = grad.storage_and_layout();
        let name = "causal_attention backward";
        let ops = Operands {
            q: Heads::new(storage_slice(&q_store, name)?, q_layout, "q")?,
            k: Heads::new(storage_slice(&k_store, name)?, k_layout, "k")?,
            v: Heads::new(storage_slice(&v_store, name)?, v_layout, "v")?,
            scale: T::from_f64(1.0 / (q.dims()[3] as f64).sqrt()),
        };
        let out_data = tensor_slice::<T>(&o_store, o_layout, name, "output")?;
        let grad_data = tensor_slice::<T>(&g_store, g_layout, name, "grad")?;
        let saved = self.lse.lock().map_err(|_| lock_error())?;
        let Some(lse) = saved.as_ref() else {
            bail!("{name}: no saved log-sum-exp (the forward did not run on the CPU)");
        };
        let lse = T::cpu_storage_as_slice(lse)?;
        let (seq, head_dim) = (ops.q.seq, ops.q.head_dim);
        let head_len = seq * head_dim;
        let mut grads = [
            vec![T::from_f64(0.0); out_data.len()],
            vec![T::from_f64(0.0); out_data.len()],
            vec![T::from_f64(0.0); out_data.len()],
        ];
        if head_len > 0 {
            let [dq, dk, dv] = &mut grads;
            let heads = dq.par_chunks_mut(head_len).zip(dk.par_chunks_mut(head_len)).zip(dv.par_chunks_mut(head_len));
            heads.enumerate().try_for_each(|(bh, ((dq, dk), dv))| {
                let span = bh * head_len..(bh + 1) * head_len;
                let (o, g) = (&out_data[span.clone()], &grad_data[span]);
                self.backward_head(&ops, o, g, &lse[bh * seq..(bh + 1) * seq], bh, dq, dk, dv)
            })?;
        }
        let [dq, dk, dv] = grads;
        Ok([tensor_from(dq, q)?, tensor_from(dk, k)?, tensor_from(dv, v)?])
    }
}

/// In place: `dS = P (dP - D) * scale` for a block of rows, `D_i = dO_i . O_i` (softmax backward).
fn softmax_backward<T: Real>(dprobs: &mut [T], probs: &[T], keys: usize, out: &[T], grad: &[T], scale: T) {
    let head_dim = out.len() / (dprobs.len() / keys.max(1)).max(1);
    let rows = dprobs.chunks_exact_mut(keys).zip(probs.chunks_exact(keys));
    for ((ds_row, p_row), (o_row, g_row)) in rows.zip(out.chunks_exact(head_dim).zip(grad.chunks_exact(head_dim))) {
        let row_dot = dot(o_row, g_row); // D_i
        for (ds, &p) in ds_row.iter_mut().zip(p_row) {
            *ds = p * (*ds - row_dot) * scale;
        }
    }
}

impl CustomOp3 for AttentionOp {
    fn name(&self) -> &'static str {
        "fused-causal-attention"
    }

    fn cpu_fwd(
        &self,
        q: &CpuStorage,
        q_l: &Layout,
        k: &CpuStorage,
        k_l: &Layout,
        v: &CpuStorage,
        v_l: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = with_real_type!(q.dtype(), "causal_attention", |R| {
            let ops = Operands {
                q: Heads::new(R::cpu_storage_as_slice(q)?, q_l, "q")?,
                k: Heads::new(R::cpu_storage_as_slice(k)?, k_l, "k")?,
                v: Heads::new(R::cpu_storage_as_slice(v)?, v_l, "v")?,
                scale: R::from_f64(1.0 / (q_l.dims()[3] as f64).sqrt()),
            };
            let (out, lse) = self.forward(&ops)?;
            *self.lse.lock().map_err(|_| lock_error())? = Some(R::to_cpu_storage_owned(lse));
            R::to_cpu_storage_owned(out)
        });
        Ok((out, q_l.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let [dq, dk, dv] =
            with_real_type!(q.dtype(), "causal_attention backward", |R| self.backward::<R>(q, k, v, res, grad)?);
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::composite;
    use crate::ops::testing::{assert_matches_composite, assert_same_forward, max_abs_diff, seeded};
    use candle_core::{DType, Device, IndexOp};

    fn reference(t: &[Tensor]) -> Result<Tensor> {
        composite::causal_attention(&t[0], &t[1], &t[2])
    }

    fn qkv(dims: &[usize], dtype: DType) -> Result<Vec<Tensor>> {
        (1..4).map(|seed| seeded(dims, seed, dtype)).collect()
    }

    #[test]
    fn forward_matches_composite_in_f32_and_f64() -> Result<()> {
        for dtype in [DType::F32, DType::F64] {
            for block in [1, 3, 64] {
                let f = |t: &[Tensor]| causal_attention_blocked(&t[0], &t[1], &t[2], block);
                assert_same_forward(&f, &reference, &qkv(&[2, 3, 10, 8], dtype)?, 1e-6)?;
            }
        }
        Ok(())
    }

    #[test]
    fn first_row_copies_the_first_value_and_equal_keys_average() -> Result<()> {
        // Row 0 sees only key 0, so its output is v[0]; with all keys equal, row i averages v[0..=i].
        let q = Tensor::ones((1, 1, 3, 2), DType::F64, &Device::Cpu)?;
        let k = q.clone();
        let v = Tensor::new(&[[3.0f64, 0.0], [1.0, 6.0], [2.0, 3.0]], &Device::Cpu)?.reshape((1, 1, 3, 2))?;
        let out = causal_attention(&q, &k, &v)?.reshape((3, 2))?.to_vec2::<f64>()?;
        let expected = [[3.0, 0.0], [2.0, 3.0], [2.0, 3.0]];
        for (row, want) in out.iter().zip(expected) {
            assert!((row[0] - want[0]).abs() < 1e-12 && (row[1] - want[1]).abs() < 1e-12, "{out:?}");
        }
        Ok(())
    }

    #[test]
    fn gradients_match_finite_differences_and_composite() -> Result<()> {
        let f = |t: &[Tensor]| causal_attention_blocked(&t[0], &t[1], &t[2], 3);
        assert_matches_composite(&f, &reference, &qkv(&[1, 2, 7, 4], DType::F64)?, &[0, 1, 2])
    }

    #[test]
    fn permuted_inputs_are_read_in_place() -> Result<()> {
        // q, k, v as slices of one (B, T, 3, H, hd) projection, viewed as (B, H, T, hd).
        let split = |t: &Tensor, i: usize| -> Result<Tensor> { t.i((.., .., i))?.transpose(1, 2) };
        let f = |t: &[Tensor]| causal_attention_blocked(&split(&t[0], 0)?, &split(&t[0], 1)?, &split(&t[0], 2)?, 2);
        let r = |t: &[Tensor]| composite::causal_attention(&split(&t[0], 0)?, &split(&t[0], 1)?, &split(&t[0], 2)?);
        let qkv = seeded(&[2, 5, 3, 2, 4], 7, DType::F64)?;
        assert!(rank4_rows(split(&qkv, 1)?.layout()).is_some());
        assert_matches_composite(&f, &r, &[qkv], &[0])
    }

    #[test]
    fn later_positions_do_not_change_earlier_outputs() -> Result<()> {
        let inputs = qkv(&[1, 2, 9, 4], DType::F64)?;
        let before = causal_attention_blocked(&inputs[0], &inputs[1], &inputs[2], 4)?;
        let shifted: Vec<Tensor> = inputs
            .iter()
            .map(|t| t.slice_assign(&[0..1, 0..2, 6..9, 0..4], &((t.i((.., .., 6..9, ..))? * 5.0)? + 1.0)?))
            .collect::<Result<_>>()?;
        let after = causal_attention_blocked(&shifted[0], &shifted[1], &shifted[2], 4)?;
        assert_eq!(max_abs_diff(&before.i((.., .., ..6, ..))?, &after.i((.., .., ..6, ..))?)?, 0.0);
        assert!(max_abs_diff(&before.i((.., .., 6.., ..))?, &after.i((.., .., 6.., ..))?)? > 1e-3);
        Ok(())
    }
}
