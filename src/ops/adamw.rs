//! One AdamW update of one parameter tensor (Loshchilov & Hutter 2019, alg. 2, with Adam's bias
//! corrections, Kingma & Ba 2015, alg. 1), called by `crate::train::optim::AdamW` for each
//! parameter. Two paths compute the same update: [`composite_update`] from candle ops (CPU,
//! Metal; it allocates new moments), and, for f32 tensors on CUDA with the kernels on, three
//! in-place kernels (kernels/adamw.cu) that follow it operation for operation.

use candle_core::{DType, Result, Tensor, Var};

/// The coefficients of one update.
#[derive(Clone, Copy, Debug)]
pub struct AdamWUpdate {
    /// Gradient-clipping factor applied to the gradient first (1 = no clipping).
    pub clip_scale: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// Which update this is, from 1 (sets the bias corrections).
    pub step: u64,
    pub eps: f64,
    pub lr: f64,
    pub weight_decay: f64,
}

impl AdamWUpdate {
    /// Adam's bias correction of the first moment at this step, `1 - beta1^t`.
    pub fn bias1(&self) -> f64 {
        1.0 - self.beta1.powi(self.step as i32)
    }

    /// Adam's bias correction of the second moment at this step, `1 - beta2^t`.
    pub fn bias2(&self) -> f64 {
        1.0 - self.beta2.powi(self.step as i32)
    }
}

/// Updates `param` and its moments `m`, `v` from gradient `grad`:
/// `m = b1 m + (1-b1) s g`, `v = b2 v + (1-b2) (s g)^2`,
/// `theta = theta (1 - lr wd) - lr (m / bias1) / (sqrt(v / bias2) + eps)`.
pub fn adamw_update(param: &Var, m: &mut Tensor, v: &mut Tensor, grad: &Tensor, u: &AdamWUpdate) -> Result<()> {
    #[cfg(feature = "cuda")]
    if takes_fused_path(param) {
        return super::cuda::adamw_update(param.as_tensor(), m, v, grad, u);
    }
    let (new_m, new_v) = composite_update(param, m, v, grad, u)?;
    *m = new_m;
    *v = new_v;
    Ok(())
}

/// The update from candle ops: sets `param`, returns the new (m, v).
pub fn composite_update(
    param: &Var,
    m: &Tensor,
    v: &Tensor,
    grad: &Tensor,
    u: &AdamWUpdate,
) -> Result<(Tensor, Tensor)> {
    let g = if u.clip_scale != 1.0 { grad.affine(u.clip_scale, 0.0)? } else { grad.clone() };
    let m = (m.affine(u.beta1, 0.0)? + g.affine(1.0 - u.beta1, 0.0)?)?;
    let v = (v.affine(u.beta2, 0.0)? + g.sqr()?.affine(1.0 - u.beta2, 0.0)?)?;
    let denom = (v.affine(1.0 / u.bias2(), 0.0)?.sqrt()? + u.eps)?;
    let update = m.affine(1.0 / u.bias1(), 0.0)?.div(&denom)?;
    let theta = param.as_tensor();
    let decayed = if u.weight_decay > 0.0 { theta.affine(1.0 - u.lr * u.weight_decay, 0.0)? } else { theta.clone() };
    param.set(&(decayed - update.affine(u.lr, 0.0)?)?)?;
    Ok((m, v))
}

/// Whether `adamw_update` takes the fused CUDA path for `param`.
pub fn takes_fused_path(param: &Tensor) -> bool {
    super::cuda_kernel_enabled(super::CudaKernel::AdamW) && param.device().is_cuda() && param.dtype() == DType::F32
}
