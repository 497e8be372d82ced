//! Shared CPU machinery of the fused ops: the float trait their kernels are generic over (f32 and
//! f64), slice access to candle's CPU storage, checked matrix views over slices with a strided
//! `gemm` call (the `gemm` crate candle itself uses), and vectorisable slice kernels for exp and
//! GELU. The f32 slice kernels are compiled twice, for the baseline target and for AVX2, and pick
//! one at run time: the crate is built without `target-cpu=native`.

use candle_core::{bail, CpuStorage, Layout, Result, Storage, Tensor, WithDType};

/// Calls `f32_kernels::NAME` through its AVX2 copy when the CPU has AVX2, else its baseline copy.
macro_rules! simd_dispatch {
    (f32_kernels::$name:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                return unsafe { f32_kernels::avx2::$name($($arg),*) };
            }
        }
        f32_kernels::$name($($arg),*)
    }};
}

/// Runs `$body` with the type alias `$t` bound to f32 or f64 as `$dtype` says; other dtypes are
/// an error naming `$op`.
macro_rules! with_real_type {
    ($dtype:expr, $op:expr, |$t:ident| $body:expr) => {
        match $dtype {
            candle_core::DType::F32 => {
                #[allow(unused_imports)]
                use candle_core::WithDType as _;
                type $t = f32;
                $body
            }
            candle_core::DType::F64 => {
                #[allow(unused_imports)]
                use candle_core::WithDType as _;
                type $t = f64;
                $body
            }
            other => candle_core::bail!("{}: dtype {other:?} is not supported (f32 and f64 only)", $op),
        }
    };
}
pub(crate) use with_real_type;

/// The element types the fused ops run on (f32 and f64).
pub(crate) trait Real: WithDType {
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn maximum(self, other: Self) -> Self;
    /// `row[j] = exp(row[j] * scale - shift)`; returns the sum of the new values.
    fn exp_scaled_inplace(row: &mut [Self], scale: Self, shift: Self) -> Self;
    /// `sum_j exp(row[j] - shift)`.
    fn sum_exp(row: &[Self], shift: Self) -> Self;
    /// `dst[j] = mult * exp(src[j] - shift)`.
    fn exp_into(src: &[Self], dst: &mut [Self], shift: Self, mult: Self);
    /// Exact GELU, `dst = x * Phi(x)` (Hendrycks & Gimpel 2016, section 2).
    fn gelu_slice(x: &[Self], dst: &mut [Self]);
    /// GELU backward, `dst = g * (Phi(x) + x * phi(x))`.
    fn gelu_grad_slice(x: &[Self], g: &[Self], dst: &mut [Self]);
}

/// 1 / sqrt(2 pi), the standard normal density at 0.
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

impl Real for f64 {
    fn ln(self) -> f64 {
        f64::ln(self)
    }
    fn sqrt(self) -> f64 {
        f64::sqrt(self)
    }
    fn maximum(self, other: f64) -> f64 {
        f64::max(self, other)
    }
    fn exp_scaled_inplace(row: &mut [f64], scale: f64, shift: f64) -> f64 {
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v * scale - shift).exp();
            sum += *v;
        }
        sum
    }
    fn sum_exp(row: &[f64], shift: f64) -> f64 {
        row.iter().map(|v| (v - shift).exp()).sum()
    }
    fn exp_into(src: &[f64], dst: &mut [f64], shift: f64, mult: f64) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = mult * (s - shift).exp();
        }
    }
    fn gelu_slice(x: &[f64], dst: &mut [f64]) {
        for (d, &v) in dst.iter_mut().zip(x) {
            *d = v * normal_cdf_f64(v);
        }
    }
    fn gelu_grad_slice(x: &[f64], g: &[f64], dst: &mut [f64]) {
        for ((d, &v), &gv) in dst.iter_mut().zip(x).zip(g) {
            let density = INV_SQRT_2PI * (-0.5 * v * v).exp();
            *d = gv * (normal_cdf_f64(v) + v * density);
        }
    }
}

fn normal_cdf_f64(v: f64) -> f64 {
    0.5 * (1.0 + candle_core::cpu::erf::erf_f64(v * std::f64::consts::FRAC_1_SQRT_2))
}

impl Real for f32 {
    fn ln(self) -> f32 {
        f32::ln(self)
    }
    fn sqrt(self) -> f32 {
        f32::sqrt(self)
    }
    fn maximum(self, other: f32) -> f32 {
        f32::max(self, other)
    }
    fn exp_scaled_inplace(row: &mut [f32], scale: f32, shift: f32) -> f32 {
        simd_dispatch!(f32_kernels::exp_scaled_inplace(row, scale, shift))
    }
    fn sum_exp(row: &[f32], shift: f32) -> f32 {
        simd_dispatch!(f32_kernels::sum_exp(row, shift))
    }
    fn exp_into(src: &[f32], dst: &mut [f32], shift: f32, mult: f32) {
        simd_dispatch!(f32_kernels::exp_into(src, dst, shift, mult))
    }
    fn gelu_slice(x: &[f32], dst: &mut [f32]) {
        simd_dispatch!(f32_kernels::gelu(x, dst))
    }
    fn gelu_grad_slice(x: &[f32], g: &[f32], dst: &mut [f32]) {
        simd_dispatch!(f32_kernels::gelu_grad(x, g, dst))
    }
}

/// f32 slice kernels written so LLVM vectorises them: branch-free, a polynomial exp and erf.
pub(crate) mod f32_kernels {
    /// exp(x) for f32 by Cody-Waite range reduction and the Cephes `expf` polynomial (rel. error
    /// about 2e-7); inputs below -87.3 give about 1e-38 instead of a subnormal or zero.
    #[inline(always)]
    pub fn fast_exp(x: f32) -> f32 {
        const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
        let x = x.clamp(-87.3, 88.7);
        let shifted = x * std::f32::consts::LOG2_E + ROUND;
        let n = shifted - ROUND;
        let n_int = shifted.to_bits() as i32 - ROUND.to_bits() as i32;
        let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
        let mut p = 1.987_569_1e-4_f32;
        p = p * r + 1.398_199_9e-3;
        p = p * r + 8.333_452e-3;
        p = p * r + 4.166_579_6e-2;
        p = p * r + 1.666_666_5e-1;
        p = p * r + 0.5;
        let poly = p * r * r + r + 1.0;
        poly * f32::from_bits(((n_int + 127) << 23) as u32)
    }

    /// Phi(x), the standard normal CDF, with erf from Abramowitz & Stegun 7.1.26
    /// (absolute error of erf below 1.5e-7).
    #[inline(always)]
    pub fn normal_cdf(x: f32) -> f32 {
        let z = x * std::f32::consts::FRAC_1_SQRT_2;
        let a = z.abs();
        let t = 1.0 / (1.0 + 0.327_591_1 * a);
        let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
        let erf_abs = 1.0 - poly * fast_exp(-a * a);
        let erf = erf_abs.copysign(z);
        0.5 * (1.0 + erf)
    }

    macro_rules! kernels {
        ($($attr:meta)?) => {
            $(#[$attr])?
            pub fn exp_scaled_inplace(row: &mut [f32], scale: f32, shift: f32) -> f32 {
                let mut sums = [0f32; 8];
                let mut chunks = row.chunks_exact_mut(8);
                for c in &mut chunks {
                    for (v, s) in c.iter_mut().zip(sums.iter_mut()) {
                        *v = crate::ops::cpu_simd::f32_kernels::fast_exp(*v * scale - shift);
                        *s += *v;
                    }
                }
                let mut sum: f32 = sums.iter().sum();
                for v in chunks.into_remainder() {
                    *v = crate::ops::cpu_simd::f32_kernels::fast_exp(*v * scale - shift);
                    sum += *v;
                }
                sum
            }

            $(#[$attr])?
            pub fn sum_exp(row: &[f32], shift: f32) -> f32 {
                let mut sums = [0f32; 8];
                let chunks = row.chunks_exact(8);
                let rest = chunks.remainder();
                for c in chunks {
                    for (v, s) in c.iter().zip(sums.iter_mut()) {
                        *s += crate::ops::cpu_simd::f32_kernels::fast_exp(*v - shift);
                    }
                }
                let tail: f32 = rest.iter().map(|v| crate::ops::cpu_simd::f32_kernels::fast_exp(v - shift)).sum();
                sums.iter().sum::<f32>() + tail
            }

            $(#[$attr])?
            pub fn exp_into(src: &[f32], dst: &mut [f32], shift: f32, mult: f32) {
                for (d, s) in dst.iter_mut().zip(src) {
                    *d = mult * crate::ops::cpu_simd::f32_kernels::fast_exp(s - shift);
                }
            }

            $(#[$attr])?
            pub fn gelu(x: &[f32], dst: &mut [f32]) {
                for (d, &v) in dst.iter_mut().zip(x) {
                    *d = v * crate::ops::cpu_simd::f32_kernels::normal_cdf(v);
                }
            }

            $(#[$attr])?
            pub fn gelu_grad(x: &[f32], g: &[f32], dst: &mut [f32]) {
                for ((d, &v), &gv) in dst.iter_mut().zip(x).zip(g) {
                    let density = 0.398_942_3 * crate::ops::cpu_simd::f32_kernels::fast_exp(-0.5 * v * v);
                    *d = gv * (crate::ops::cpu_simd::f32_kernels::normal_cdf(v) + v * density);
                }
            }
        };
    }
    kernels!();

    /// The same kernels compiled for AVX2; callers must check the CPU supports it.
    #[cfg(target_arch = "x86_64")]
    pub mod avx2 {
        kernels!(target_feature(enable = "avx2"));
    }
}

/// Independent partial sums in the reductions below, so LLVM can keep them in vector lanes (a
/// single running sum is a serial dependency chain that it must not reorder).
const LANES: usize = 8;

/// `sum_j a_j b_j`.
pub(crate) fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let mut lanes = [T::from_f64(0.0); LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: T = a_chunks.remainder().iter().zip(b_chunks.remainder()).fold(T::from_f64(0.0), |s, (&x, &y)| s + x * y);
    for (ca, cb) in a_chunks.zip(b_chunks) {
        for ((lane, &x), &y) in lanes.iter_mut().zip(ca).zip(cb) {
            *lane += x * y;
        }
    }
    lanes.iter().fold(tail, |s, &l| s + l)
}

/// `max_j row_j` (minus infinity for an empty row).
pub(crate) fn max_of<T: Real>(row: &[T]) -> T {
    let mut lanes = [T::from_f64(f64::NEG_INFINITY); LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder().iter().fold(T::from_f64(f64::NEG_INFINITY), |m, &v| m.maximum(v));
    for c in chunks {
        for (lane, &v) in lanes.iter_mut().zip(c) {
            *lane = lane.maximum(v);
        }
    }
    lanes.iter().fold(tail, |m, &l| m.maximum(l))
}

/// The contiguous data of a CPU storage as a slice of `T`, or an error naming the op and argument.
pub(crate) fn contiguous_slice<'a, T: WithDType>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
    arg: &str,
) -> Result<&'a [T]> {
    let data = T::cpu_storage_as_slice(storage)?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{op}: {arg} must be contiguous, got strides {:?}", layout.stride()),
    }
}

/// The whole data of a CPU storage (strided access goes through the layout's offsets).
pub(crate) fn storage_slice<'a, T: WithDType>(storage: &'a Storage, op: &str) -> Result<&'a [T]> {
    match storage {
        Storage::Cpu(cpu) => T::cpu_storage_as_slice(cpu),
        _ => bail!("{op}: the fused op runs on the CPU only"),
    }
}

/// The contiguous data of a CPU tensor's storage (call on a tensor made contiguous).
pub(crate) fn tensor_slice<'a, T: WithDType>(
    storage: &'a Storage,
    layout: &Layout,
    op: &str,
    arg: &str,
) -> Result<&'a [T]> {
    match storage {
        Storage::Cpu(cpu) => contiguous_slice(cpu, layout, op, arg),
        _ => bail!("{op}: {arg} is not on the CPU"),
    }
}

/// A new CPU tensor of `shape` that takes ownership of `data` (no copy).
pub(crate) fn tensor_from<T: WithDType>(data: Vec<T>, like: &Tensor) -> Result<Tensor> {
    Tensor::from_vec(data, like.shape(), like.device())
}

/// Strides of a rank-4 layout whose last dimension is unit-stride, with its start offset, so a
/// permuted or narrowed (B, H, T, hd) view can be read without a copy; None for other layouts.
pub(crate) fn rank4_rows(layout: &Layout) -> Option<([usize; 3], usize)> {
    match layout.stride() {
        [s0, s1, s2, 1] => Some(([*s0, *s1, *s2], layout.start_offset())),
        _ => None,
    }
}

/// A read-only strided matrix over a slice; `new` checks every element lies inside the slice.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a, T> MatRef<'a, T> {
    pub fn new(data: &'a [T], rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> Result<Self> {
        check_extent(data.len(), rows, cols, row_stride, col_stride)?;
        Ok(Self { data, rows, cols, row_stride, col_stride })
    }
    /// Row-major `rows x cols` matrix starting at `offset`.
    pub fn rows(data: &'a [T], offset: usize, rows: usize, cols: usize) -> Result<Self> {
        Self::new(slice_from(data, offset)?, rows, cols, cols, 1)
    }
    pub fn t(self) -> Self {
        Self { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }
}

/// A writable strided matrix over a slice; `new` checks every element lies inside the slice.
pub(crate) struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a, T> MatMut<'a, T> {
    pub fn new(data: &'a mut [T], rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> Result<Self> {
        check_extent(data.len(), rows, cols, row_stride, col_stride)?;
        Ok(Self { data, rows, cols, row_stride, col_stride })
    }
    /// Row-major `rows x cols` matrix at the start of `data`.
    pub fn rows(data: &'a mut [T], rows: usize, cols: usize) -> Result<Self> {
        Self::new(data, rows, cols, cols, 1)
    }
}

fn slice_from<T>(data: &[T], offset: usize) -> Result<&[T]> {
    match data.get(offset..) {
        Some(s) => Ok(s),
        None => bail!("matrix offset {offset} is past the end of a buffer of {}", data.len()),
    }
}

fn check_extent(len: usize, rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> Result<()> {
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let last = (rows - 1) * row_stride + (cols - 1) * col_stride;
    if last >= len {
        bail!(
            "a {rows}x{cols} matrix with strides ({row_stride}, {col_stride}) needs {} elements, the buffer has {len}",
            last + 1
        );
    }
    Ok(())
}

/// `dst = lhs * rhs`, or `dst += lhs * rhs` when `accumulate`, on `threads` threads (1 inside a
/// parallel loop). Every operand may be strided or transposed: the gemm crate packs its operands.
pub(crate) fn matmul<T: Real>(
    dst: MatMut<T>,
    lhs: MatRef<T>,
    rhs: MatRef<T>,
    accumulate: bool,
    threads: usize,
) -> Result<()> {
    if lhs.rows != dst.rows || rhs.cols != dst.cols || lhs.cols != rhs.rows {
        bail!(
            "matmul: ({}x{}) * ({}x{}) does not fit a ({}x{}) destination",
            lhs.rows,
            lhs.cols,
            rhs.rows,
            rhs.cols,
            dst.rows,
            dst.cols
        );
    }
    if dst.rows == 0 || dst.cols == 0 {
        return Ok(());
    }
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: MatRef/MatMut::new checked that every strided element lies inside its slice, the
    // shapes agree (checked above), and `dst` is borrowed mutably so it aliases neither operand.
    unsafe {
        gemm::gemm(
            dst.rows,
            dst.cols,
            lhs.cols,
            dst.data.as_mut_ptr(),
            dst.col_stride as isize,
            dst.row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            T::from_f64(1.0),
            T::from_f64(1.0),
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

/// Threads for a whole-tensor gemm: rayon's pool size (RAYON_NUM_THREADS), as candle uses.
pub(crate) fn gemm_threads() -> usize {
    rayon::current_num_threads()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_matches_std_exp() {
        let mut worst: f32 = 0.0;
        for i in -8000..8000 {
            let x = i as f32 * 0.01;
            let rel = (f32_kernels::fast_exp(x) - x.exp()).abs() / x.exp();
            worst = worst.max(rel);
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
    }

    #[test]
    fn normal_cdf_matches_f64_erf() {
        let mut worst: f64 = 0.0;
        for i in -1000..1000 {
            let x = i as f32 * 0.01;
            let err = (f32_kernels::normal_cdf(x) as f64 - normal_cdf_f64(x as f64)).abs();
            worst = worst.max(err);
        }
        // A&S 7.1.26 gives 7.5e-8 on Phi; f32 rounding near 1 (ulp 1.2e-7) adds about as much.
        assert!(worst < 3e-7, "worst absolute error {worst}");
    }

    #[test]
    fn simd_and_baseline_kernels_agree() {
        let x: Vec<f32> = (0..37).map(|i| (i as f32 - 18.0) * 0.37).collect();
        let mut a = x.clone();
        let mut b = x.clone();
        let sa = f32::exp_scaled_inplace(&mut a, 0.5, 1.0);
        let sb = f32_kernels::exp_scaled_inplace(&mut b, 0.5, 1.0);
        assert!((sa - sb).abs() < 1e-5 * sa, "{sa} vs {sb}");
        let expected: f32 = x.iter().map(|v| (v * 0.5 - 1.0).exp()).sum();
        assert!((sa - expected).abs() < 1e-5 * expected, "{sa} vs {expected}");
        assert!((f32::sum_exp(&x, 2.0) - f32_kernels::sum_exp(&x, 2.0)).abs() < 1e-4);
    }

    #[test]
    fn lane_reductions_match_sequential_ones() {
        let a: Vec<f64> = (0..29).map(|i| (i as f64 - 11.0) * 0.25).collect();
        let b: Vec<f64> = (0..29).map(|i| (i as f64 * 0.7).sin()).collect();
        let sequential: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - sequential).abs() < 1e-12);
        assert_eq!(max_of(&b), b.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
        assert_eq!(max_of(&a[..3]), -2.25);
    }

    #[test]
    fn matmul_transposed_views_match_naive() -> Result<()> {
        let a: Vec<f64> = (0..6).map(|i| i as f64).collect(); // 2x3
        let b: Vec<f64> = (0..12).map(|i| (i as f64) * 0.5).collect(); // 4x3, used transposed
        let mut c = vec![1.0f64; 8];
        let lhs = MatRef::rows(&a, 0, 2, 3)?;
        let rhs = MatRef::rows(&b, 0, 4, 3)?.t();
        matmul(MatMut::rows(&mut c, 2, 4)?, lhs, rhs, false, 1)?;
        for i in 0..2 {
            for j in 0..4 {
                let want: f64 = (0..3).map(|k| a[i * 3 + k] * b[j * 3 + k]).sum();
                assert_eq!(c[i * 4 + j], want);
            }
        }
        assert!(MatRef::rows(&a, 1, 2, 3).is_err(), "out-of-bounds view must be refused");
        Ok(())
    }
}
