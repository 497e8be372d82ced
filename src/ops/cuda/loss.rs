//! Fused cross-entropy on CUDA (kernels/cross_entropy.cu): per-row losses in one kernel, read
//! straight from f32 or bf16 logits, and the logits' gradient in one more; candle takes the mean.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::{CpuStorage, CudaStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

use super::{
    alloc, by_dtype, check_rows, cuda_device, cuda_only, function, output, rows_launch, view, with_storage,
    KernelFloat, WrapErr, CROSS_ENTROPY,
};
use crate::ops::composite::check_targets;

/// Mean cross-entropy of logits (N, V) against targets (N) u32, as an f32 scalar (as
/// `crate::ops::cross_entropy`).
pub(crate) fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let (rows, _vocab) = logits.dims2()?;
    check_targets(targets, rows)?;
    check_rows(rows, "cross_entropy")?;
    let losses = logits.contiguous()?.apply_op2(&targets.contiguous()?, CrossEntropyRows)?; // (N) f32
    losses.mean_all()
}

/// Per-row losses `logsumexp(l) - l_target`, (N) f32.
struct CrossEntropyRows;

impl CustomOp2 for CrossEntropyRows {
    fn name(&self) -> &'static str {
        "cross-entropy-cuda"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }

    fn cuda_fwd(&self, l: &CudaStorage, ll: &Layout, t: &CudaStorage, tl: &Layout) -> Result<(CudaStorage, Shape)> {
        let losses = by_dtype!(l.dtype(), forward(l, ll, t, tl))?;
        Ok((losses, Shape::from(ll.dims()[0])))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _: &Tensor,
        d_losses: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let d_losses = d_losses.to_dtype(DType::F32)?.contiguous()?;
        let d_logits = by_dtype!(logits.dtype(), backward(logits, targets, &d_losses))?;
        Ok((Some(d_logits), None))
    }
}

fn forward<T: KernelFloat>(l: &CudaStorage, ll: &Layout, t: &CudaStorage, tl: &Layout) -> Result<CudaStorage> {
    let device = l.device().clone();
    let (rows, vocab) = (ll.dims()[0], ll.dims()[1]);
    let logits = view::<T>(l, ll, "cross_entropy logits")?;
    let targets = view::<u32>(t, tl, "cross_entropy targets")?;
    let mut losses = alloc::<f32>(&device, rows)?;
    let vocab_i32 = vocab as i32;
    let func = function::<T>(&device, CROSS_ENTROPY, "cross_entropy_fwd")?;
    let stream = device.cuda_stream();
    let mut launch = stream.launch_builder(&func);
    launch.arg(&logits).arg(&targets).arg(&mut losses).arg(&vocab_i32);
    // SAFETY: matches cross_entropy_fwd; logits rows x vocab, targets and losses rows.
    unsafe { launch.launch(rows_launch(rows, vocab)) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(losses, device))
}

/// d_logits (N, V) for logits (N, V), targets (N) u32 and d_losses (N) f32, all contiguous.
fn backward<T: KernelFloat>(logits: &Tensor, targets: &Tensor, d_losses: &Tensor) -> Result<Tensor> {
    let device = cuda_device(logits)?;
    let (rows, vocab) = logits.dims2()?;
    let mut d_logits = alloc::<T>(&device, rows * vocab)?;
    let vocab_i32 = vocab as i32;
    with_storage(logits, |ls, ll| {
        with_storage(targets, |ts, tl| {
            with_storage(d_losses, |ds, dl| {
                let logits = view::<T>(ls, ll, "cross_entropy logits")?;
                let targets = view::<u32>(ts, tl, "cross_entropy targets")?;
                let d_losses = view::<f32>(ds, dl, "cross_entropy gradient")?;
                let func = function::<T>(&device, CROSS_ENTROPY, "cross_entropy_bwd")?;
                let stream = device.cuda_stream();
                let mut launch = stream.launch_builder(&func);
                launch.arg(&logits).arg(&targets).arg(&d_losses).arg(&mut d_logits).arg(&vocab_i32);
                // SAFETY: matches cross_entropy_bwd; d_logits is rows x vocab.
                unsafe { launch.launch(rows_launch(rows, vocab)) }.w()?;
                Ok(())
            })
        })
    })?;
    Ok(output(d_logits, &device, (rows, vocab)))
}
