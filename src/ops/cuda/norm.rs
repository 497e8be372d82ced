//! Fused RMSNorm on CUDA (kernels/rms_norm.cu): one kernel forward; backward, one kernel for dx
//! (which also writes each row's inverse RMS) and one for the weight gradient's column sums over
//! chunks of 64 rows, whose partials candle adds up.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::{CpuStorage, CudaStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::{
    alloc, by_dtype, check_rows, cuda_device, cuda_only, function, output, rows_launch, view, with_storage,
    KernelFloat, WrapErr, RMS_NORM,
};
use crate::ops::composite::check_norm_shapes;

/// Rows per chunk of the weight gradient's column sums (more when the chunks would exceed
/// CUDA's 65535 grid rows).
const ROWS_PER_CHUNK: usize = 64;

/// RMSNorm of x (..., d) with weight (d), as `crate::ops::rms_norm`.
pub(crate) fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let d = check_norm_shapes(x, weight)?;
    check_rows(x.elem_count() / d, "rms_norm")?;
    x.contiguous()?.apply_op2(&weight.contiguous()?, RmsNorm { eps: eps as f32 })
}

struct RmsNorm {
    eps: f32,
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm-cuda"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }

    fn cuda_fwd(&self, x: &CudaStorage, xl: &Layout, w: &CudaStorage, wl: &Layout) -> Result<(CudaStorage, Shape)> {
        let y = by_dtype!(x.dtype(), forward(x, xl, w, wl, self.eps))?;
        Ok((y, xl.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = by_dtype!(x.dtype(), backward(x, w, &dy.contiguous()?, self.eps))?;
        Ok((Some(dx), Some(dw)))
    }
}

fn forward<T: KernelFloat>(
    x: &CudaStorage,
    xl: &Layout,
    w: &CudaStorage,
    wl: &Layout,
    eps: f32,
) -> Result<CudaStorage> {
    let device = x.device().clone();
    let d = wl.shape().elem_count();
    let rows = xl.shape().elem_count() / d;
    let (x, w) = (view::<T>(x, xl, "rms_norm x")?, view::<T>(w, wl, "rms_norm weight")?);
    let mut y = alloc::<T>(&device, rows * d)?;
    let d_i32 = d as i32;
    let func = function::<T>(&device, RMS_NORM, "rms_norm_fwd")?;
    let stream = device.cuda_stream();
    let mut launch = stream.launch_builder(&func);
    launch.arg(&x).arg(&w).arg(&mut y).arg(&d_i32).arg(&eps);
    // SAFETY: the arguments match rms_norm_fwd's signature; buffers hold rows x d elements.
    unsafe { launch.launch(rows_launch(rows, d)) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(y, device))
}

/// (dx, dw) for x (rows, d), weight (d) and dy (rows, d) contiguous.
fn backward<T: KernelFloat>(x: &Tensor, w: &Tensor, dy: &Tensor, eps: f32) -> Result<(Tensor, Tensor)> {
    let device = cuda_device(x)?;
    let d = w.elem_count();
    let rows = x.elem_count() / d;
    let rows_per_chunk = ROWS_PER_CHUNK.max(rows.div_ceil(65_535));
    let chunks = rows.div_ceil(rows_per_chunk);
    let mut dx = alloc::<T>(&device, rows * d)?;
    let mut inv_rms = alloc::<f32>(&device, rows)?;
    let mut partial = alloc::<f32>(&device, chunks * d)?;
    let (rows_i32, d_i32, chunk_i32) = (rows as i32, d as i32, rows_per_chunk as i32);
    with_storage(x, |xs, xl| {
        with_storage(w, |ws, wl| {
            with_storage(dy, |ds, dl| {
                let x = view::<T>(xs, xl, "rms_norm x")?;
                let w = view::<T>(ws, wl, "rms_norm weight")?;
                let dy = view::<T>(ds, dl, "rms_norm gradient")?;
                let func = function::<T>(&device, RMS_NORM, "rms_norm_bwd_x")?;
                let stream = device.cuda_stream();
                let mut launch = stream.launch_builder(&func);
                launch.arg(&x).arg(&w).arg(&dy).arg(&mut dx).arg(&mut inv_rms).arg(&d_i32).arg(&eps);
                // SAFETY: matches rms_norm_bwd_x; dx is rows x d, inv_rms rows.
                unsafe { launch.launch(rows_launch(rows, d)) }.w()?;
                let func = function::<T>(&device, RMS_NORM, "rms_norm_bwd_w")?;
                let stream = device.cuda_stream();
                let mut launch = stream.launch_builder(&func);
                launch.arg(&x).arg(&dy).arg(&inv_rms).arg(&mut partial).arg(&rows_i32).arg(&d_i32).arg(&chunk_i32);
                let grid = (d.div_ceil(256) as u32, chunks as u32, 1);
                let config = LaunchConfig { grid_dim: grid, block_dim: (256, 1, 1), shared_mem_bytes: 0 };
                // SAFETY: matches rms_norm_bwd_w; partial is chunks x d.
                unsafe { launch.launch(config) }.w()?;
                Ok(())
            })
        })
    })?;
    let dx = output(dx, &device, x.shape().clone());
    let dw = output(partial, &device, (chunks, d)).sum(0)?.to_dtype(w.dtype())?;
    Ok((dx, dw))
}
