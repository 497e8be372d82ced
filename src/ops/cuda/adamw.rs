//! Fused AdamW on CUDA (kernels/adamw.cu): both moments and the parameter updated in place, one
//! launch each, as candle in-place ops on the optimizer's own tensors.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::{bail, CpuStorage, CudaStorage, DType, InplaceOp2, InplaceOp3, Layout, Result, Tensor};

use super::{grid_stride_launch, load, view, WrapErr, ADAMW};
use crate::ops::adamw::AdamWUpdate;

/// One AdamW update of f32 `theta` with moments `m`, `v` (contiguous, owned by the optimizer).
pub(crate) fn adamw_update(theta: &Tensor, m: &Tensor, v: &Tensor, grad: &Tensor, u: &AdamWUpdate) -> Result<()> {
    if grad.dims() != theta.dims() || grad.dtype() != DType::F32 {
        bail!(
            "adamw: gradient {:?} {:?} does not match the parameter {:?} f32",
            grad.dims(),
            grad.dtype(),
            theta.dims()
        );
    }
    let grad = grad.contiguous()?;
    let scale = u.clip_scale as f32;
    m.inplace_op2(&grad, &Moment { beta: u.beta1 as f32, one_minus_beta: (1.0 - u.beta1) as f32, scale, squared: 0 })?;
    v.inplace_op2(&grad, &Moment { beta: u.beta2 as f32, one_minus_beta: (1.0 - u.beta2) as f32, scale, squared: 1 })?;
    let apply = Apply {
        lr: u.lr as f32,
        decay_factor: if u.weight_decay > 0.0 { (1.0 - u.lr * u.weight_decay) as f32 } else { 1.0 },
        inv_bias1: (1.0 / u.bias1()) as f32,
        inv_bias2: (1.0 / u.bias2()) as f32,
        eps: u.eps as f32,
    };
    theta.inplace_op3(m, v, &apply)
}

/// `moment = beta moment + (1 - beta) (scale g)^(1 or 2)`, in place.
struct Moment {
    beta: f32,
    one_minus_beta: f32,
    scale: f32,
    squared: i32,
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "adamw-moment-cuda"
    }

    fn cpu_fwd(&self, _: &mut CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<()> {
        super::cuda_only(self.name())
    }

    fn cuda_fwd(&self, moment: &mut CudaStorage, ml: &Layout, grad: &CudaStorage, gl: &Layout) -> Result<()> {
        let device = moment.device().clone();
        let n = ml.shape().elem_count();
        let Some((start, end)) = ml.contiguous_offsets() else { bail!("adamw: the moment must be contiguous") };
        let grad = view::<f32>(grad, gl, "adamw gradient")?;
        let mut moment = moment.as_cuda_slice_mut::<f32>()?.slice_mut(start..end);
        let n_u64 = n as u64;
        let func = load(&device, ADAMW, "adamw_moment")?;
        let stream = device.cuda_stream();
        let mut launch = stream.launch_builder(&func);
        launch.arg(&mut moment).arg(&grad).arg(&n_u64).arg(&self.beta).arg(&self.one_minus_beta);
        launch.arg(&self.scale).arg(&self.squared);
        // SAFETY: matches adamw_moment; both buffers hold n elements.
        unsafe { launch.launch(grid_stride_launch(n)) }.w()?;
        Ok(())
    }
}

/// `theta = theta decay_factor - lr (m inv_bias1) / (sqrt(v inv_bias2) + eps)`, in place.
struct Apply {
    lr: f32,
    decay_factor: f32,
    inv_bias1: f32,
    inv_bias2: f32,
    eps: f32,
}

impl InplaceOp3 for Apply {
    fn name(&self) -> &'static str {
        "adamw-apply-cuda"
    }

    fn cpu_fwd(
        &self,
        _: &mut CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<()> {
        super::cuda_only(self.name())
    }

    fn cuda_fwd(
        &self,
        theta: &mut CudaStorage,
        tl: &Layout,
        m: &CudaStorage,
        ml: &Layout,
        v: &CudaStorage,
        vl: &Layout,
    ) -> Result<()> {
        let device = theta.device().clone();
        let n = tl.shape().elem_count();
        let Some((start, end)) = tl.contiguous_offsets() else { bail!("adamw: the parameter must be contiguous") };
        let (m, v) = (view::<f32>(m, ml, "adamw m")?, view::<f32>(v, vl, "adamw v")?);
        let mut theta = theta.as_cuda_slice_mut::<f32>()?.slice_mut(start..end);
        let n_u64 = n as u64;
        let func = load(&device, ADAMW, "adamw_apply")?;
        let stream = device.cuda_stream();
        let mut launch = stream.launch_builder(&func);
        launch.arg(&mut theta).arg(&m).arg(&v).arg(&n_u64).arg(&self.lr).arg(&self.decay_factor);
        launch.arg(&self.inv_bias1).arg(&self.inv_bias2).arg(&self.eps);
        // SAFETY: matches adamw_apply; all three buffers hold n elements.
        unsafe { launch.launch(grid_stride_launch(n)) }.w()?;
        Ok(())
    }
}
