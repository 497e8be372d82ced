//! Fused elementwise ops on CUDA (kernels/elementwise.cu): rotary embedding (the backward is the
//! inverse rotation, the same kernel with the sine negated) and exact GELU, one kernel each way.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::{CpuStorage, CudaStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};

use super::{
    alloc, by_dtype, cuda_device, cuda_only, function, grid_stride_launch, output, view, with_storage, KernelFloat,
    WrapErr, ELEMENTWISE,
};
use crate::ops::composite::check_rope_tables;

/// Rotary embedding of x (B, H, T, hd) with cos, sin (T, hd/2), as `crate::ops::rope`.
pub(crate) fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    check_rope_tables(x, cos, sin)?;
    x.contiguous()?.apply_op3(&cos.contiguous()?, &sin.contiguous()?, Rope { sign: 1.0 })
}

/// Exact GELU of x, as `crate::ops::gelu`.
pub(crate) fn gelu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Gelu)
}

/// Rotates pairs by +angle (sign 1, the forward) or -angle (sign -1, the backward).
struct Rope {
    sign: f32,
}

impl CustomOp3 for Rope {
    fn name(&self) -> &'static str {
        "rope-cuda"
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
        x: &CudaStorage,
        xl: &Layout,
        cos: &CudaStorage,
        cl: &Layout,
        sin: &CudaStorage,
        sl: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let y = by_dtype!(x.dtype(), rope_forward(x, xl, cos, cl, sin, sl, self.sign))?;
        Ok((y, xl.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = dy.contiguous()?.apply_op3_no_bwd(cos, sin, &Rope { sign: -self.sign })?;
        Ok((Some(dx), None, None))
    }
}

fn rope_forward<T: KernelFloat>(
    x: &CudaStorage,
    xl: &Layout,
    cos: &CudaStorage,
    cl: &Layout,
    sin: &CudaStorage,
    sl: &Layout,
    sign: f32,
) -> Result<CudaStorage> {
    let device = x.device().clone();
    let (seq, half) = (cl.dims()[0], cl.dims()[1]);
    let pairs = xl.shape().elem_count() / 2;
    let x = view::<T>(x, xl, "rope x")?;
    let (cos, sin) = (view::<T>(cos, cl, "rope cos")?, view::<T>(sin, sl, "rope sin")?);
    let mut y = alloc::<T>(&device, pairs * 2)?;
    let (pairs_u64, seq_i32, half_i32) = (pairs as u64, seq as i32, half as i32);
    let func = function::<T>(&device, ELEMENTWISE, "rope")?;
    let stream = device.cuda_stream();
    let mut launch = stream.launch_builder(&func);
    launch.arg(&x).arg(&cos).arg(&sin).arg(&mut y).arg(&pairs_u64).arg(&seq_i32).arg(&half_i32).arg(&sign);
    // SAFETY: matches rope; x and y hold 2 x pairs elements, cos and sin seq x half.
    unsafe { launch.launch(grid_stride_launch(pairs)) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(y, device))
}

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu-cuda"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }

    fn cuda_fwd(&self, x: &CudaStorage, layout: &Layout) -> Result<(CudaStorage, Shape)> {
        let y = by_dtype!(x.dtype(), gelu_forward(x, layout))?;
        Ok((y, layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(by_dtype!(x.dtype(), gelu_backward(x, &dy.contiguous()?))?))
    }
}

fn gelu_forward<T: KernelFloat>(x: &CudaStorage, layout: &Layout) -> Result<CudaStorage> {
    let device = x.device().clone();
    let n = layout.shape().elem_count();
    let x = view::<T>(x, layout, "gelu x")?;
    let mut y = alloc::<T>(&device, n)?;
    let n_u64 = n as u64;
    let func = function::<T>(&device, ELEMENTWISE, "gelu_fwd")?;
    let stream = device.cuda_stream();
    let mut launch = stream.launch_builder(&func);
    launch.arg(&x).arg(&mut y).arg(&n_u64);
    // SAFETY: matches gelu_fwd; both buffers hold n elements.
    unsafe { launch.launch(grid_stride_launch(n)) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(y, device))
}

/// dx for x and dy of one shape, dy contiguous.
fn gelu_backward<T: KernelFloat>(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    let device = cuda_device(x)?;
    let n = x.elem_count();
    let mut dx = alloc::<T>(&device, n)?;
    let n_u64 = n as u64;
    with_storage(x, |xs, xl| {
        with_storage(dy, |ds, dl| {
            let (x, dy) = (view::<T>(xs, xl, "gelu x")?, view::<T>(ds, dl, "gelu gradient")?);
            let func = function::<T>(&device, ELEMENTWISE, "gelu_bwd")?;
            let stream = device.cuda_stream();
            let mut launch = stream.launch_builder(&func);
            launch.arg(&x).arg(&dy).arg(&mut dx).arg(&n_u64);
            // SAFETY: matches gelu_bwd; all three buffers hold n elements.
            unsafe { launch.launch(grid_stride_launch(n)) }.w()?;
            Ok(())
        })
    })?;
    Ok(output(dx, &device, x.shape().clone()))
}
