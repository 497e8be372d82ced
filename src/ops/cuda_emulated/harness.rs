//! Runs the CUDA kernels of kernels/*.cu on the CPU: compiles them once per test process with g++
//! against kernels/emulated.h (one OS thread per CUDA thread) into a shared library in a temp
//! directory, loads it with libloading, and launches a kernel by name with a grid, a block and
//! its arguments passed as cuLaunchKernel takes them. Host buffers convert to and from tensors.

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use candle_core::{bail, DType, Device, Result, Tensor};
use libloading::{Library, Symbol};

/// The emulated kernels, loaded.
pub(super) struct Emulator {
    library: Library,
}

/// Why there is no emulator: no g++ (the tests skip) or kernels that do not compile (they fail).
enum Unavailable {
    NoCompiler(String),
    Broken(String),
}

/// The emulator of this test process, built on first use; None, after printing why, without g++.
/// Panics when the kernels do not compile.
pub(super) fn emulator() -> Option<&'static Emulator> {
    static EMULATOR: OnceLock<std::result::Result<Emulator, Unavailable>> = OnceLock::new();
    match EMULATOR.get_or_init(build) {
        Ok(emulator) => Some(emulator),
        Err(Unavailable::NoCompiler(why)) => {
            crate::requirements::skip("emulator", "the emulated CUDA kernel test", why.as_str());
            None
        }
        Err(Unavailable::Broken(why)) => panic!("{why}"),
    }
}

/// Compiles kernels/emulated/launch.cpp (which includes every kernel file) and loads it.
fn build() -> std::result::Result<Emulator, Unavailable> {
    let kernels = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels");
    let dir = std::env::temp_dir().join(format!("sweeplaw-emulated-{}", std::process::id()));
    let library_path = dir.join("libsweeplaw_emulated.so");
    std::fs::create_dir_all(&dir).map_err(|e| Unavailable::Broken(format!("creating {}: {e}", dir.display())))?;
    let output = Command::new("g++")
        .args(["-std=c++20", "-O2", "-shared", "-fPIC", "-pthread", "-DSWEEPLAW_EMULATED", "-I"])
        .arg(&kernels)
        .args(["-x", "c++"])
        .arg(kernels.join("emulated/launch.cpp"))
        .arg("-o")
        .arg(&library_path)
        .output()
        .map_err(|e| Unavailable::NoCompiler(format!("cannot run g++ ({e})")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(Unavailable::Broken(format!("g++ failed on {}:\n{stderr}", kernels.display())));
    }
    // SAFETY: the library is ours, just built; its initialisers only build the kernel table.
    let library = unsafe { Library::new(&library_path) }
        .map_err(|e| Unavailable::Broken(format!("loading {}: {e}", library_path.display())))?;
    let _ = std::fs::remove_dir_all(&dir); // loaded: the file is no longer needed
    Ok(Emulator { library })
}

/// One kernel argument, held by value so a pointer to it can be passed.
#[derive(Clone, Copy)]
pub(super) enum Arg {
    Ptr(*mut c_void),
    I32(i32),
    F32(f32),
    Usize(usize),
}

impl Arg {
    /// A pointer to the value and its size in bytes.
    fn param(&mut self) -> (*mut c_void, usize) {
        match self {
            Arg::Ptr(p) => (p as *mut *mut c_void as *mut c_void, size_of::<*mut c_void>()),
            Arg::I32(v) => (v as *mut i32 as *mut c_void, size_of::<i32>()),
            Arg::F32(v) => (v as *mut f32 as *mut c_void, size_of::<f32>()),
            Arg::Usize(v) => (v as *mut usize as *mut c_void, size_of::<usize>()),
        }
    }
}

type LaunchFn = unsafe extern "C" fn(
    *const c_char,
    u32,
    u32,
    u32,
    *mut *mut c_void,
    *const usize,
    usize,
    *mut c_char,
    usize,
) -> i32;
type RoundFn = unsafe extern "C" fn(*const f32, *mut u16, usize);

impl Emulator {
    /// Runs `kernel` on grid (x, y) with `block` threads per block. The emulator checks the number
    /// and sizes of the arguments against the kernel's signature, and that every thread of a block
    /// reached the same number of barriers; the pointers must cover what the kernel touches.
    pub(super) fn launch(&self, kernel: &str, grid: (u32, u32), block: u32, mut args: Vec<Arg>) -> Result<()> {
        let (mut pointers, sizes): (Vec<*mut c_void>, Vec<usize>) = args.iter_mut().map(Arg::param).unzip();
        let name = CString::new(kernel).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let mut error = vec![0u8; 512];
        // SAFETY: the symbol has this signature (kernels/emulated/launch.cpp); the argument pointers
        // live until the call returns, and the buffers they point to belong to the caller.
        let status = unsafe {
            let launch: Symbol<LaunchFn> = self.symbol(b"sweeplaw_emulated_launch\0")?;
            let (ptrs, n) = (pointers.as_mut_ptr(), pointers.len());
            launch(
                name.as_ptr(),
                grid.0,
                grid.1,
                block,
                ptrs,
                sizes.as_ptr(),
                n,
                error.as_mut_ptr().cast(),
                error.len(),
            )
        };
        if status != 0 {
            let why = CStr::from_bytes_until_nul(&error).map(|c| c.to_string_lossy().into_owned()).unwrap_or_default();
            bail!("emulated launch of {kernel} grid {grid:?} block {block}: {why}");
        }
        Ok(())
    }

    /// The emulator's `__float2bfloat16` of each value, as bits.
    pub(super) fn float2bfloat16(&self, values: &[f32]) -> Result<Vec<u16>> {
        let mut bits = vec![0u16; values.len()];
        // SAFETY: the symbol has this signature; both slices hold values.len() elements.
        unsafe {
            let round: Symbol<RoundFn> = self.symbol(b"sweeplaw_emulated_float2bfloat16\0")?;
            round(values.as_ptr(), bits.as_mut_ptr(), values.len());
        }
        Ok(bits)
    }

    /// # Safety
    /// `T` must be the symbol's type.
    unsafe fn symbol<T>(&self, name: &[u8]) -> Result<Symbol<'_, T>> {
        self.library.get(name).map_err(|e| candle_core::Error::Msg(format!("emulated kernels: {e}")))
    }
}

/// A kernel's host buffer: f32 values, bf16 bits (`__nv_bfloat16` is a u16) or u32 targets.
pub(super) enum Buffer {
    F32(Vec<f32>),
    Bf16(Vec<u16>),
    U32(Vec<u32>),
}

impl Buffer {
    /// The elements of `t` (f32, bf16 or u32) in row-major order.
    pub(super) fn of(t: &Tensor) -> Result<Buffer> {
        let flat = t.flatten_all()?;
        Ok(match t.dtype() {
            DType::F32 => Buffer::F32(flat.to_vec1()?),
            // bf16 -> f32 is exact and leaves the low 16 bits zero.
            DType::BF16 => Buffer::Bf16(flat.to_dtype(DType::F32)?.to_vec1::<f32>()?.iter().map(bf16_bits).collect()),
            DType::U32 => Buffer::U32(flat.to_vec1()?),
            other => bail!("emulated kernels take f32, bf16 or u32 buffers, not {other:?}"),
        })
    }

    /// `len` zeros of `dtype` (f32 or bf16).
    pub(super) fn zeros(dtype: DType, len: usize) -> Result<Buffer> {
        match dtype {
            DType::F32 => Ok(Buffer::F32(vec![0.0; len])),
            DType::BF16 => Ok(Buffer::Bf16(vec![0; len])),
            other => bail!("emulated kernels write f32 or bf16 buffers, not {other:?}"),
        }
    }

    /// The buffer as a read-only kernel argument.
    pub(super) fn input(&self) -> Arg {
        Arg::Ptr(match self {
            Buffer::F32(v) => v.as_ptr() as *mut c_void,
            Buffer::Bf16(v) => v.as_ptr() as *mut c_void,
            Buffer::U32(v) => v.as_ptr() as *mut c_void,
        })
    }

    /// The buffer as a kernel argument the kernel writes.
    pub(super) fn output(&mut self) -> Arg {
        Arg::Ptr(match self {
            Buffer::F32(v) => v.as_mut_ptr().cast(),
            Buffer::Bf16(v) => v.as_mut_ptr().cast(),
            Buffer::U32(v) => v.as_mut_ptr().cast(),
        })
    }

    /// The values as an f32 tensor of shape `dims` (bf16 widened exactly).
    pub(super) fn to_f32_tensor(&self, dims: &[usize]) -> Result<Tensor> {
        let values: Vec<f32> = match self {
            Buffer::F32(v) => v.clone(),
            Buffer::Bf16(v) => v.iter().map(|&b| f32::from_bits((b as u32) << 16)).collect(),
            Buffer::U32(_) => bail!("a u32 buffer holds no values to compare"),
        };
        Tensor::from_vec(values, dims, &Device::Cpu)
    }
}

/// The bits of an f32 that is exactly a bf16.
fn bf16_bits(v: &f32) -> u16 {
    (v.to_bits() >> 16) as u16
}
