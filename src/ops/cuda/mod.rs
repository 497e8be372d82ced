//! Fused CUDA ops: candle `CustomOp`s whose forward and backward launch the kernels in
//! kernels/*.cu, compiled to PTX at build time (build.rs, through cudaforge as candle-kernels is).
//! On CUDA tensors in f32 or bf16 they replace the composite ops' chains of small kernels:
//! RMSNorm, causal attention (bf16 with head_dim 16, 32 or 64: a FlashAttention-2 style kernel
//! that never holds the (T, T) scores; otherwise a fused causal softmax between cuBLAS matmuls),
//! cross-entropy (read straight from bf16 logits, no f32 copy of the (N, V) logits), rotary
//! embedding and GELU; and the optimizer's AdamW update, in place. Formulas are on the kernels and on the dispatching functions in `crate::ops`.
//!
//! Checks: the kernels' arithmetic runs on the CPU through an emulation in the tests
//! (src/ops/cuda_emulated.rs); on a GPU, [`crate::ops::check`] compares every op and its gradients
//! with the composite op, in `sweeplaw bench --check` and once per process before the first run
//! trains on CUDA (a failure turns the kernels off, with a warning, and training goes on composite).

use candle_core::cuda_backend::cudarc::driver::{CudaFunction, CudaSlice, CudaView, DeviceRepr, LaunchConfig};
// The submodules import WrapErr from here: candle's `.w()` turning cudarc's errors into candle's.
use candle_core::cuda_backend::{CudaDType, WrapErr};
use candle_core::op::BackpropOp;
use candle_core::{bail, CudaDevice, CudaStorage, Layout, Result, Shape, Storage, Tensor, WithDType};

use super::CudaKernel;

mod adamw;
mod elementwise;
mod flash;
mod loss;
mod norm;
mod softmax;

pub(crate) use adamw::adamw_update;
pub(crate) use elementwise::{gelu, rope};
pub(crate) use loss::cross_entropy;
pub(crate) use norm::rms_norm;

mod ptx {
    include!(concat!(env!("OUT_DIR"), "/ptx.rs"));
}

/// The kernel causal attention of q (B, H, T, hd) takes on CUDA: flash attention where it applies
/// (bf16, hd 16, 32 or 64) and is enabled, else the fused softmax between cuBLAS matmuls where that
/// is enabled; None for the composite op.
pub(crate) fn attention_kernel(q: &Tensor) -> Option<CudaKernel> {
    if super::takes_cuda_path(q, CudaKernel::FlashAttention) && flash::supports(q) {
        Some(CudaKernel::FlashAttention)
    } else if super::takes_cuda_path(q, CudaKernel::CausalSoftmax) {
        Some(CudaKernel::CausalSoftmax)
    } else {
        None
    }
}

/// Causal attention of q, k, v (B, H, T, hd) through `kernel` (from [`attention_kernel`]).
pub(crate) fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor, kernel: CudaKernel) -> Result<Tensor> {
    crate::ops::composite::check_attention_shapes(q, k, v)?;
    match kernel {
        CudaKernel::FlashAttention => flash::causal_attention(q, k, v),
        _ => softmax::causal_attention(q, k, v),
    }
}

/// One kernels/*.cu file: its PTX and the name candle caches the loaded module under.
#[derive(Clone, Copy)]
struct Module {
    name: &'static str,
    ptx: &'static str,
}

const RMS_NORM: Module = Module { name: "sweeplaw_rms_norm", ptx: ptx::RMS_NORM };
const CAUSAL_SOFTMAX: Module = Module { name: "sweeplaw_causal_softmax", ptx: ptx::CAUSAL_SOFTMAX };
const CROSS_ENTROPY: Module = Module { name: "sweeplaw_cross_entropy", ptx: ptx::CROSS_ENTROPY };
const ELEMENTWISE: Module = Module { name: "sweeplaw_elementwise", ptx: ptx::ELEMENTWISE };
const FLASH_ATTENTION: Module = Module { name: "sweeplaw_flash_attention", ptx: ptx::FLASH_ATTENTION };
const ADAMW: Module = Module { name: "sweeplaw_adamw", ptx: ptx::ADAMW };

/// A storage dtype the kernels are compiled for, with the suffix of its entry points.
trait KernelFloat: CudaDType + DeviceRepr + WithDType {
    const SUFFIX: &'static str;
}

impl KernelFloat for f32 {
    const SUFFIX: &'static str = "f32";
}

impl KernelFloat for half::bf16 {
    const SUFFIX: &'static str = "bf16";
}

/// Calls `f::<T>(args)` with T the kernel element type of `dtype` (f32 or bf16).
macro_rules! by_dtype {
    ($dtype:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $dtype {
            candle_core::DType::F32 => $f::<f32>($($arg),*),
            candle_core::DType::BF16 => $f::<half::bf16>($($arg),*),
            other => candle_core::bail!("the fused CUDA kernels take f32 or bf16 tensors, not {other:?}"),
        }
    };
}
use by_dtype;

/// The entry point `name_<T suffix>` of `module` (a kernel compiled for f32 and bf16), loaded on
/// `device`.
fn function<T: KernelFloat>(device: &CudaDevice, module: Module, name: &str) -> Result<CudaFunction> {
    load(device, module, &format!("{name}_{}", T::SUFFIX))
}

/// The entry point `entry` of `module`, loaded (JIT-compiled once per device) on `device`; launch
/// it on `device.cuda_stream()`.
fn load(device: &CudaDevice, module: Module, entry: &str) -> Result<CudaFunction> {
    Ok(device.get_or_load_custom_func(entry, module.name, module.ptx)?.into_cuda_function())
}

/// The data of a contiguous `layout` over `storage`, as a view of T.
fn view<'a, T: CudaDType>(storage: &'a CudaStorage, layout: &Layout, what: &str) -> Result<CudaView<'a, T>> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(storage.as_cuda_slice::<T>()?.slice(start..end)),
        None => bail!("{what}: the fused CUDA kernel needs a contiguous tensor, got strides {:?}", layout.stride()),
    }
}

/// A device buffer of `len` elements, every one of which the kernel writes.
fn alloc<T: DeviceRepr>(device: &CudaDevice, len: usize) -> Result<CudaSlice<T>> {
    // SAFETY: the kernels this buffer is passed to write all `len` elements before any read.
    unsafe { device.alloc::<T>(len) }
}

/// A kernel's output as a tensor outside the autograd graph (the backward ops' results).
fn output<T: CudaDType>(slice: CudaSlice<T>, device: &CudaDevice, shape: impl Into<Shape>) -> Tensor {
    let storage = Storage::Cuda(CudaStorage::wrap_cuda_slice(slice, device.clone()));
    Tensor::from_storage(storage, shape, BackpropOp::none(), false)
}

/// Runs `f` on the CUDA storage and layout of `t`.
fn with_storage<R>(t: &Tensor, f: impl FnOnce(&CudaStorage, &Layout) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cuda(s) => f(s, layout),
        _ => bail!("a fused CUDA op got a tensor on {:?}", t.device().location()),
    }
}

/// One block per row of `cols` elements: whole warps, at most 1024 threads (kernels/common.cuh).
fn rows_launch(rows: usize, cols: usize) -> LaunchConfig {
    let threads = cols.next_multiple_of(32).clamp(32, 1024) as u32;
    LaunchConfig { grid_dim: (rows as u32, 1, 1), block_dim: (threads, 1, 1), shared_mem_bytes: 0 }
}

/// A grid-stride loop over `work` items: blocks of 256 threads, at most 1024 blocks.
fn grid_stride_launch(work: usize) -> LaunchConfig {
    let blocks = work.div_ceil(256).clamp(1, 1024) as u32;
    LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 }
}

/// Rows of a row kernel's grid: at least one, within CUDA's grid limit.
fn check_rows(rows: usize, what: &str) -> Result<()> {
    if rows == 0 || rows > i32::MAX as usize {
        bail!("{what}: {rows} rows is outside what one kernel launch covers (1 ..= 2^31 - 1)");
    }
    Ok(())
}

/// The error a fused CUDA op's `cpu_fwd` returns: the dispatcher in `crate::ops` never sends CPU tensors.
fn cuda_only<R>(op: &str) -> Result<R> {
    bail!("{op} is a CUDA kernel; CPU tensors take crate::ops' CPU path")
}

/// Shared by the backward functions: the CUDA device `t` lives on.
fn cuda_device(t: &Tensor) -> Result<CudaDevice> {
    Ok(t.device().as_cuda_device()?.clone())
}
