//! Causal attention on CUDA without the (T, T) scores (kernels/flash_attention.cu): for bf16
//! q, k, v with head_dim 16, 32 or 64, one kernel forward (which keeps each row's log-sum-exp for
//! the backward) and two backward. Other shapes and f32 take the fused softmax between cuBLAS
//! matmuls (`super::softmax`).

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{bail, CpuStorage, CudaStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};

use super::{alloc, cuda_device, cuda_only, load, output, view, with_storage, WrapErr, FLASH_ATTENTION};

/// Rows of a block's tile (query rows forward and for dq, keys for dk and dv), 4 warps of 16.
const TILE: usize = 64;

/// Whether the flash kernels take q (B, H, T, hd): bf16, hd 16, 32 or 64, B·H within a grid column.
pub(crate) fn supports(q: &Tensor) -> bool {
    let Ok((batch, heads, _, head_dim)) = q.dims4() else { return false };
    q.dtype() == DType::BF16 && matches!(head_dim, 16 | 32 | 64) && batch * heads <= 65_535
}

/// `softmax(q k^T / sqrt(hd) + mask) v` for bf16 q, k, v (B, H, T, hd) that [`supports`] takes.
pub(crate) fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    let op = FlashAttention { lse: Mutex::new(None) };
    q.contiguous()?.apply_op3(&k.contiguous()?, &v.contiguous()?, op)
}

struct FlashAttention {
    /// Each row's log-sum-exp of the scaled scores, (B·H·T) f32, written by the forward.
    lse: Mutex<Option<Tensor>>,
}

/// (B·H, T, hd) of a (B, H, T, hd) layout.
fn heads_seq_dim(layout: &Layout) -> Result<(usize, usize, usize)> {
    match layout.dims() {
        &[batch, heads, seq, head_dim] => Ok((batch * heads, seq, head_dim)),
        dims => bail!("flash attention: expected (B, H, T, hd), got {dims:?}"),
    }
}

fn launch_config(batch_heads: usize, seq: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (seq.div_ceil(TILE) as u32, batch_heads as u32, 1),
        block_dim: (128, 1, 1),
        shared_mem_bytes: 0,
    }
}

impl CustomOp3 for FlashAttention {
    fn name(&self) -> &'static str {
        "flash-attention-cuda"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }

    fn cuda_fwd(
        &self,
        q: &CudaStorage,
        ql: &Layout,
        k: &CudaStorage,
        kl: &Layout,
        v: &CudaStorage,
        vl: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let device = q.device().clone();
        let (batch_heads, seq, head_dim) = heads_seq_dim(ql)?;
        let (qv, kv, vv) =
            (view::<half::bf16>(q, ql, "q")?, view::<half::bf16>(k, kl, "k")?, view::<half::bf16>(v, vl, "v")?);
        let mut out = alloc::<half::bf16>(&device, ql.shape().elem_count())?;
        let mut lse = alloc::<f32>(&device, batch_heads * seq)?;
        let (seq_i32, scale) = (seq as i32, 1.0 / (head_dim as f32).sqrt());
        let func = load(&device, FLASH_ATTENTION, &format!("flash_fwd_hd{head_dim}"))?;
        let stream = device.cuda_stream();
        let mut launch = stream.launch_builder(&func);
        launch.arg(&qv).arg(&kv).arg(&vv).arg(&mut out).arg(&mut lse).arg(&seq_i32).arg(&scale);
        // SAFETY: matches flash_fwd_hd<head_dim>; q, k, v, out hold B·H·T·hd elements, lse B·H·T.
        unsafe { launch.launch(launch_config(batch_heads, seq)) }.w()?;
        *self.lse.lock().map_err(|_| candle_core::Error::Msg("flash attention: lse lock poisoned".into()))? =
            Some(output(lse, &device, batch_heads * seq));
        Ok((CudaStorage::wrap_cuda_slice(out, device), ql.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        out: &Tensor,
        d_out: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let lse =
            self.lse.lock().map_err(|_| candle_core::Error::Msg("flash attention: lse lock poisoned".into()))?.clone();
        let Some(lse) = lse else { bail!("flash attention: backward before forward") };
        let (dq, dk, dv) = backward(q, k, v, out, &d_out.to_dtype(DType::BF16)?.contiguous()?, &lse)?;
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

/// (dq, dk, dv) from the forward's inputs, output and row log-sum-exps, and d_out (contiguous bf16).
fn backward(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    out: &Tensor,
    d_out: &Tensor,
    lse: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    let device = cuda_device(q)?;
    let (batch_heads, seq, head_dim) = heads_seq_dim(q.layout())?;
    let n = q.elem_count();
    let (mut dq, mut dk, mut dv) =
        (alloc::<half::bf16>(&device, n)?, alloc::<half::bf16>(&device, n)?, alloc::<half::bf16>(&device, n)?);
    let mut dot = alloc::<f32>(&device, batch_heads * seq)?;
    let (seq_i32, scale) = (seq as i32, 1.0 / (head_dim as f32).sqrt());
    let config = launch_config(batch_heads, seq);
    with_storage(q, |qs, ql| {
        with_storage(k, |ks, kl| {
            with_storage(v, |vs, vl| {
                with_storage(out, |os, ol| {
                    with_storage(d_out, |ds, dl| {
                        with_storage(lse, |ls, ll| {
                            let qv = view::<half::bf16>(qs, ql, "q")?;
                            let kv = view::<half::bf16>(ks, kl, "k")?;
                            let vv = view::<half::bf16>(vs, vl, "v")?;
                            let ov = view::<half::bf16>(os, ol, "attention output")?;
                            let dov = view::<half::bf16>(ds, dl, "attention gradient")?;
                            let lv = view::<f32>(ls, ll, "lse")?;
                            let stream = device.cuda_stream();
                            let func = load(&device, FLASH_ATTENTION, &format!("flash_bwd_dq_hd{head_dim}"))?;
                            let mut launch = stream.launch_builder(&func);
                            launch.arg(&qv).arg(&kv).arg(&vv).arg(&ov).arg(&dov).arg(&lv).arg(&mut dot).arg(&mut dq);
                            launch.arg(&seq_i32).arg(&scale);
                            // SAFETY: matches flash_bwd_dq_hd<head_dim>; dot is B·H·T, dq like q.
                            unsafe { launch.launch(config) }.w()?;
                            let func = load(&device, FLASH_ATTENTION, &format!("flash_bwd_dkdv_hd{head_dim}"))?;
                            let mut launch = stream.launch_builder(&func);
                            launch.arg(&qv).arg(&kv).arg(&vv).arg(&dov).arg(&lv).arg(&dot).arg(&mut dk).arg(&mut dv);
                            launch.arg(&seq_i32).arg(&scale);
                            // SAFETY: matches flash_bwd_dkdv_hd<head_dim>; dk and dv like k and v.
                            unsafe { launch.launch(config) }.w()?;
                            Ok(())
                        })
                    })
                })
            })
        })
    })?;
    let shape = q.shape().clone();
    Ok((output(dq, &device, shape.clone()), output(dk, &device, shape.clone()), output(dv, &device, shape)))
}
