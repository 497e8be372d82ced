//! The transformer's tensor ops with gradients: RMSNorm, rotary embedding, causal attention,
//! exact GELU, cross-entropy and a bias-free linear layer (called by src/model.rs).
//!
//! Each op has two implementations that compute the same function:
//! - [`composite`]: built from candle ops, differentiated by candle's autograd. It is the
//!   reference, and the path used on CUDA/Metal and for dtypes other than f32/f64.
//! - a fused candle `CustomOp` with a hand-written backward, used when the input is on the CPU
//!   in f32 or f64 and [`set_fused`] has not turned the fused ops off.
//!
//! - on CUDA, in f32 or bf16, fused CUDA kernels (`cuda`, feature `cuda`): the same ops as candle
//!   `CustomOp`s launching kernels/*.cu, except attention, where only the causal softmax is fused
//!   between two cuBLAS matmuls. [`set_cuda_kernels`] turns them off alone.
//!
//! candle 0.11.1's own fused ops (`candle_nn::ops::softmax_last_dim`, `rms_norm`, `rope*`) have no
//! backward and silently drop gradients (docs/gpu.md): nothing here uses them.
//!
//! The fused ops read contiguous inputs; the public functions make an input contiguous first
//! (a no-op when it already is), except that `rope` and `causal_attention` read any (B, H, T, hd)
//! view whose last dimension is unit-stride (a permuted projection) without copying it.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use candle_core::{DType, Result, Tensor};

mod activation;
pub mod adamw;
mod attention;
pub mod check;
pub mod composite;
mod cpu_simd;
#[cfg(feature = "cuda")]
mod cuda;
#[cfg(test)]
mod cuda_emulated;
mod linear;
mod loss;
mod norm;
mod rope;
#[cfg(test)]
mod testing;

static FUSED_ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the fused CPU ops on (the default) or off for the whole process, so a bench can compare
/// them with the composite path. Off, every op takes the composite path.
pub fn set_fused(enabled: bool) {
    FUSED_ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether the fused CPU ops are on (see [`set_fused`]).
pub fn fused_enabled() -> bool {
    FUSED_ENABLED.load(Ordering::Relaxed)
}

/// Whether an op on `t` takes the fused path: CPU tensor, f32 or f64, fused ops on.
fn takes_fused_path(t: &Tensor) -> bool {
    fused_enabled() && t.device().is_cpu() && matches!(t.dtype(), DType::F32 | DType::F64)
}

static CUDA_KERNELS_ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the fused CUDA kernels on (the default) or off for the whole process; off, CUDA tensors
/// take the composite path. [`set_fused`]`(false)` turns them off too.
pub fn set_cuda_kernels(enabled: bool) {
    CUDA_KERNELS_ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether this binary has the fused CUDA kernels (the `cuda` feature) and they are on.
pub fn cuda_kernels_enabled() -> bool {
    cfg!(feature = "cuda") && fused_enabled() && CUDA_KERNELS_ENABLED.load(Ordering::Relaxed)
}

/// sweeplaw's CUDA kernels, each of which can be turned off alone: its op then takes the next
/// path (flash attention: the fused softmax between cuBLAS matmuls; the others: the composite ops).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CudaKernel {
    RmsNorm,
    Rope,
    FlashAttention,
    CausalSoftmax,
    Gelu,
    CrossEntropy,
    AdamW,
}

impl CudaKernel {
    pub const ALL: [CudaKernel; 7] = [
        CudaKernel::RmsNorm,
        CudaKernel::Rope,
        CudaKernel::FlashAttention,
        CudaKernel::CausalSoftmax,
        CudaKernel::Gelu,
        CudaKernel::CrossEntropy,
        CudaKernel::AdamW,
    ];

    /// The kernel called `name` (as [`CudaKernel::name`] writes it).
    pub fn from_name(name: &str) -> Option<CudaKernel> {
        CudaKernel::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            CudaKernel::RmsNorm => "rms_norm",
            CudaKernel::Rope => "rope",
            CudaKernel::FlashAttention => "flash_attention",
            CudaKernel::CausalSoftmax => "causal_softmax",
            CudaKernel::Gelu => "gelu",
            CudaKernel::CrossEntropy => "cross_entropy",
            CudaKernel::AdamW => "adamw",
        }
    }

    fn bit(self) -> u32 {
        1 << self as u32
    }
}

static CUDA_KERNELS_OFF: AtomicU32 = AtomicU32::new(0);

/// Turns one CUDA kernel off for the whole process (see [`CudaKernel`]).
pub fn disable_cuda_kernel(kernel: CudaKernel) {
    CUDA_KERNELS_OFF.fetch_or(kernel.bit(), Ordering::Relaxed);
}

/// Whether `kernel` runs for CUDA tensors: the kernels on, and this one not turned off.
pub fn cuda_kernel_enabled(kernel: CudaKernel) -> bool {
    cuda_kernels_enabled() && CUDA_KERNELS_OFF.load(Ordering::Relaxed) & kernel.bit() == 0
}

/// Which ops a model on `device` runs: "fused" where sweeplaw's fused CPU ops or CUDA kernels
/// apply and are on, `"fused except <kernels>"` where some CUDA kernels were turned off, else
/// "composite" (recorded in run.json and by `sweeplaw bench`).
pub fn ops_in_use(device: &candle_core::Device) -> String {
    let fused = match device {
        candle_core::Device::Cpu => fused_enabled(),
        candle_core::Device::Cuda(_) => cuda_kernels_enabled(),
        _ => false,
    };
    if !fused {
        return "composite".into();
    }
    let off: Vec<&str> = match device {
        candle_core::Device::Cuda(_) => {
            CudaKernel::ALL.iter().filter(|k| !cuda_kernel_enabled(**k)).map(|k| k.name()).collect()
        }
        _ => Vec::new(),
    };
    if off.is_empty() {
        "fused".into()
    } else {
        format!("fused except {}", off.join(", "))
    }
}

/// Whether an op on `t` takes `kernel`: non-empty CUDA tensor, f32 or bf16, the kernel enabled.
#[cfg(feature = "cuda")]
fn takes_cuda_path(t: &Tensor, kernel: CudaKernel) -> bool {
    cuda_kernel_enabled(kernel)
        && t.device().is_cuda()
        && matches!(t.dtype(), DType::F32 | DType::BF16)
        && t.elem_count() > 0
}

/// RMSNorm (Zhang & Sennrich 2019, eq. 4): x (..., d), weight (d):
/// `x * rsqrt(mean(x^2, -1) + eps) * weight`.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    if takes_fused_path(x) {
        return norm::rms_norm(x, weight, eps);
    }
    #[cfg(feature = "cuda")]
    if takes_cuda_path(x, CudaKernel::RmsNorm) {
        return cuda::rms_norm(x, weight, eps);
    }
    composite::rms_norm(x, weight, eps)
}

/// Rotary position embedding (Su et al. 2021, eq. 34) on interleaved pairs `(x[2i], x[2i+1])`:
/// x (B, H, T, hd); cos, sin (T, hd/2).
/// `out[2i] = x[2i] cos_i - x[2i+1] sin_i`, `out[2i+1] = x[2i] sin_i + x[2i+1] cos_i`.
/// No gradient flows to cos and sin (they are fixed tables).
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    if takes_fused_path(x) {
        return rope::rope(x, cos, sin);
    }
    #[cfg(feature = "cuda")]
    if takes_cuda_path(x, CudaKernel::Rope) {
        return cuda::rope(x, cos, sin);
    }
    composite::rope(x, cos, sin)
}

/// Causal scaled dot-product attention (Vaswani et al. 2017, eq. 1) with a causal mask:
/// q, k, v (B, H, T, hd) -> (B, H, T, hd), `softmax(q k^T / sqrt(hd) + mask) v`.
pub fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    if takes_fused_path(q) {
        return attention::causal_attention(q, k, v);
    }
    #[cfg(feature = "cuda")]
    if let Some(kernel) = cuda::attention_kernel(q) {
        return cuda::causal_attention(q, k, v, kernel);
    }
    composite::causal_attention(q, k, v)
}

/// Exact GELU (Hendrycks & Gimpel 2016, section 2): `x * Phi(x)`, Phi the standard normal CDF (erf).
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    if takes_fused_path(x) {
        return activation::gelu(x);
    }
    #[cfg(feature = "cuda")]
    if takes_cuda_path(x, CudaKernel::Gelu) {
        return cuda::gelu(x);
    }
    composite::gelu(x)
}

/// Mean cross-entropy of logits (N, V) against targets (N) u32, as a scalar. Computed in f32 for
/// f32/bf16/f16 logits (the result is f32) and in f64 for f64 logits.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if takes_cuda_path(logits, CudaKernel::CrossEntropy) {
        return cuda::cross_entropy(logits, targets);
    }
    let on_cpu = fused_enabled() && logits.device().is_cpu();
    match logits.dtype() {
        DType::F32 | DType::F64 if on_cpu => loss::cross_entropy(logits, targets),
        DType::BF16 | DType::F16 if on_cpu => loss::cross_entropy(&logits.to_dtype(DType::F32)?, targets),
        _ => composite::cross_entropy(logits, targets),
    }
}

/// Bias-free linear layer: x (..., in), w (out, in) -> x w^T (..., out). The fused backward runs
/// both gradient products as single 2-D gemms over all rows of x.
pub fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if takes_fused_path(x) {
        linear::linear(x, w)
    } else {
        composite::linear(x, w)
    }
}
