//! Causal attention on CUDA with a fused softmax (kernels/causal_softmax.cu): the scores
//! `q k^T` and the output `P v` are cuBLAS matmuls (tensor cores in bf16); scaling, the causal mask
//! and the softmax are one kernel forward and one backward, in f32 arithmetic, in place of the
//! composite path's chain of elementwise and reduction kernels. The (B, H, T, T) scores and
//! probabilities are still held for the backward.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::{CpuStorage, CudaStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::{
    alloc, by_dtype, check_rows, cuda_device, cuda_only, function, output, rows_launch, view, with_storage,
    KernelFloat, WrapErr, CAUSAL_SOFTMAX,
};
use crate::ops::composite::check_attention_shapes;

/// `softmax(q k^T / sqrt(hd) + mask) v` for q, k, v (B, H, T, hd), as `crate::ops::causal_attention`.
pub(crate) fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    check_attention_shapes(q, k, v)?;
    let (batch, heads, seq, head_dim) = q.dims4()?;
    check_rows(batch * heads * seq, "causal_attention")?;
    let scale = 1.0 / (head_dim as f32).sqrt();
    let scores = q.contiguous()?.matmul(&k.contiguous()?.t()?)?; // (B, H, T, T)
    let probs = scores.contiguous()?.apply_op1(CausalSoftmax { scale })?;
    probs.matmul(&v.contiguous()?) // (B, H, T, hd)
}

struct CausalSoftmax {
    scale: f32,
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax-cuda"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }

    fn cuda_fwd(&self, scores: &CudaStorage, layout: &Layout) -> Result<(CudaStorage, Shape)> {
        let probs = by_dtype!(scores.dtype(), forward(scores, layout, self.scale))?;
        Ok((probs, layout.shape().clone()))
    }

    fn bwd(&self, _scores: &Tensor, probs: &Tensor, d_probs: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(by_dtype!(probs.dtype(), backward(probs, &d_probs.contiguous()?, self.scale))?))
    }
}

fn forward<T: KernelFloat>(scores: &CudaStorage, layout: &Layout, scale: f32) -> Result<CudaStorage> {
    let device = scores.device().clone();
    let seq = layout.dims().last().copied().unwrap_or(1);
    let rows = layout.shape().elem_count() / seq;
    let scores = view::<T>(scores, layout, "causal softmax scores")?;
    let mut probs = alloc::<T>(&device, rows * seq)?;
    let seq_i32 = seq as i32;
    let func = function::<T>(&device, CAUSAL_SOFTMAX, "causal_softmax_fwd")?;
    let stream = device.cuda_stream();
    let mut launch = stream.launch_builder(&func);
    launch.arg(&scores).arg(&mut probs).arg(&seq_i32).arg(&scale);
    // SAFETY: matches causal_softmax_fwd; both buffers are rows x seq.
    unsafe { launch.launch(rows_launch(rows, seq)) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(probs, device))
}

/// d_scores for probs and d_probs (B, H, T, T), d_probs contiguous.
fn backward<T: KernelFloat>(probs: &Tensor, d_probs: &Tensor, scale: f32) -> Result<Tensor> {
    let device = cuda_device(probs)?;
    let seq = probs.dims().last().copied().unwrap_or(1);
    let rows = probs.elem_count() / seq;
    let mut d_scores = alloc::<T>(&device, rows * seq)?;
    let seq_i32 = seq as i32;
    with_storage(probs, |ps, pl| {
        with_storage(d_probs, |ds, dl| {
            let probs = view::<T>(ps, pl, "causal softmax probabilities")?;
            let d_probs = view::<T>(ds, dl, "causal softmax gradient")?;
            let func = function::<T>(&device, CAUSAL_SOFTMAX, "causal_softmax_bwd")?;
            let stream = device.cuda_stream();
            let mut launch = stream.launch_builder(&func);
            launch.arg(&probs).arg(&d_probs).arg(&mut d_scores).arg(&seq_i32).arg(&scale);
            // SAFETY: matches causal_softmax_bwd; all three buffers are rows x seq.
            unsafe { launch.launch(rows_launch(rows, seq)) }.w()?;
            Ok(())
        })
    })?;
    Ok(output(d_scores, &device, probs.shape().clone()))
}
