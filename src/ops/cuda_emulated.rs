//! Tests of the CUDA kernels in kernels/*.cu without a GPU: each kernel runs on the CPU through a
//! CUDA emulation (kernels/emulated.h, driven by [`harness`]) and its values are checked against
//! the composite candle ops ([`super::composite`]) and their autograd gradients, in f32 and bf16,
//! at awkward sizes and at the launch shapes src/ops/cuda/ uses. bf16 inputs are rounded to bf16
//! first and the reference is computed in f32 from the rounded values, so an f32 output (losses,
//! weight-gradient partials) must match to f32 precision and a bf16 output to bf16 rounding.
//! Without g++ the tests print why and return. This file holds the shared helpers and the norm,
//! loss and elementwise kernels; [`attention`] the softmax and flash kernels; [`adamw`] the optimizer's.

mod adamw;
mod attention;
mod harness;

use candle_core::{bail, DType, Device, Result, Tensor, Var, D};

use self::harness::{emulator, Arg, Buffer, Emulator};
use super::composite;
use super::testing::{relative_error, seeded};

const EPS: f64 = 1e-5;
const DTYPES: [DType; 2] = [DType::F32, DType::BF16];

/// Relative tolerance for an output stored in `dtype`.
fn tolerance(dtype: DType) -> f64 {
    if dtype == DType::BF16 {
        1e-2
    } else {
        1e-5
    }
}

/// The entry point of kernel `name` for `dtype` (`name_f32`, `name_bf16`).
fn kernel(name: &str, dtype: DType) -> String {
    format!("{name}_{}", if dtype == DType::BF16 { "bf16" } else { "f32" })
}

/// Block of the row kernels as src/ops/cuda/ launches them: min(1024, round_up(cols, 32)).
fn row_block(cols: usize) -> u32 {
    (cols.div_ceil(32) * 32).clamp(32, 1024) as u32
}

/// Grid of the elementwise kernels as launched, in blocks of 256: min(ceil(work / 256), 1024).
fn elementwise_grid(work: usize) -> u32 {
    work.div_ceil(256).clamp(1, 1024) as u32
}

/// Seeded values in [-scale, scale) as the kernel's input (in `dtype`) and the reference's (the
/// same values in f32).
fn input(dims: &[usize], seed: u64, scale: f64, dtype: DType) -> Result<(Tensor, Tensor)> {
    let kernel_input = (seeded(dims, seed, DType::F32)? * scale)?.to_dtype(dtype)?;
    let reference_input = kernel_input.to_dtype(DType::F32)?;
    Ok((kernel_input, reference_input))
}

/// Fails when `got` holds a NaN or is further than `tol` from `want`, relative to want's scale.
fn check(what: &str, got: &Tensor, want: &Tensor, tol: f64) -> Result<()> {
    if got.flatten_all()?.to_vec1::<f32>()?.iter().any(|v| v.is_nan()) {
        bail!("{what}: NaN in the kernel's output");
    }
    let err = relative_error(got, want)?;
    if err > tol {
        bail!("{what}: relative error {err:e} > {tol:e}");
    }
    Ok(())
}

/// Autograd gradients of sum(f(inputs) * dy) with respect to every input.
fn vjp(f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor], dy: &Tensor) -> Result<Vec<Tensor>> {
    let vars: Vec<Var> = inputs.iter().map(Var::from_tensor).collect::<Result<_>>()?;
    let tracked: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let grads = (f(&tracked)? * dy)?.sum_all()?.backward()?;
    tracked.iter().map(|t| grads.get(t).cloned().ok_or_else(|| candle_core::Error::Msg("no gradient".into()))).collect()
}

/// rms_norm_fwd over x (rows, d) with `block` threads per row, against composite::rms_norm.
fn rms_norm_forward(emu: &Emulator, dtype: DType, rows: usize, d: usize, block: u32) -> Result<()> {
    let what = format!("rms_norm_fwd {dtype:?} rows {rows} d {d} block {block}");
    let (x, x_ref) = input(&[rows, d], 1, 2.0, dtype)?;
    let (w, w_ref) = input(&[d], 2, 1.0, dtype)?;
    let (xb, wb, mut y) = (Buffer::of(&x)?, Buffer::of(&w)?, Buffer::zeros(dtype, rows * d)?);
    let args = vec![xb.input(), wb.input(), y.output(), Arg::I32(d as i32), Arg::F32(EPS as f32)];
    emu.launch(&kernel("rms_norm_fwd", dtype), (rows as u32, 1), block, args)?;
    let want = composite::rms_norm(&x_ref, &w_ref, EPS)?;
    check(&what, &y.to_f32_tensor(&[rows, d])?, &want, tolerance(dtype))
}

/// rms_norm_bwd_x (grid (rows), `block`), then rms_norm_bwd_w (grid (ceil(d / w_block),
/// ceil(rows / chunk)), `w_block`, rows_per_chunk `chunk`) with its partials summed over the
/// chunks, against the inverse RMS and the autograd gradients (x and weight) of composite::rms_norm.
fn rms_norm_backward(emu: &Emulator, dtype: DType, (rows, d): (usize, usize), launch: (u32, u32, usize)) -> Result<()> {
    let (block, w_block, chunk) = launch;
    let what = format!("rms_norm_bwd {dtype:?} rows {rows} d {d} block {block} w_block {w_block} chunk {chunk}");
    let (x, x_ref) = input(&[rows, d], 1, 2.0, dtype)?;
    let (w, w_ref) = input(&[d], 2, 1.0, dtype)?;
    let (dy, dy_ref) = input(&[rows, d], 3, 1.0, dtype)?;
    let (xb, wb, dyb) = (Buffer::of(&x)?, Buffer::of(&w)?, Buffer::of(&dy)?);
    let (mut dx, mut inv_rms) = (Buffer::zeros(dtype, rows * d)?, Buffer::zeros(DType::F32, rows)?);
    let (d_arg, eps_arg) = (Arg::I32(d as i32), Arg::F32(EPS as f32));
    let args = vec![xb.input(), wb.input(), dyb.input(), dx.output(), inv_rms.output(), d_arg, eps_arg];
    emu.launch(&kernel("rms_norm_bwd_x", dtype), (rows as u32, 1), block, args)?;
    let chunks = rows.div_ceil(chunk);
    let mut partial = Buffer::zeros(DType::F32, chunks * d)?;
    let sizes = [Arg::I32(rows as i32), Arg::I32(d as i32), Arg::I32(chunk as i32)];
    let args = [vec![xb.input(), dyb.input(), inv_rms.input(), partial.output()], sizes.into()].concat();
    let grid = (d.div_ceil(w_block as usize) as u32, chunks as u32);
    emu.launch(&kernel("rms_norm_bwd_w", dtype), grid, w_block, args)?;
    let want_inv_rms = (x_ref.sqr()?.mean(1)? + EPS)?.sqrt()?.recip()?;
    check(&format!("{what}: inv_rms"), &inv_rms.to_f32_tensor(&[rows])?, &want_inv_rms, 1e-5)?;
    let grads = vjp(|t| composite::rms_norm(&t[0], &t[1], EPS), &[x_ref, w_ref], &dy_ref)?;
    check(&format!("{what}: dx"), &dx.to_f32_tensor(&[rows, d])?, &grads[0], tolerance(dtype))?;
    let dw = partial.to_f32_tensor(&[chunks, d])?.sum(0)?;
    check(&format!("{what}: dw"), &dw, &grads[1], 1e-5)
}

#[test]
fn rms_norm_fwd_matches_composite() -> Result<()> {
    let Some(emu) = emulator() else { return Ok(()) };
    for dtype in DTYPES {
        for (rows, d, block) in
            [(3, 37, 32), (2, 37, 64), (2, 100, 96), (3, 37, row_block(37)), (2, 300, row_block(300))]
        {
            rms_norm_forward(emu, dtype, rows, d, block)?;
        }
    }
    Ok(())
}

#[test]
fn rms_norm_bwd_matches_composite_gradients() -> Result<()> {
    let Some(emu) = emulator() else { return Ok(()) };
    for dtype in DTYPES {
        rms_norm_backward(emu, dtype, (5, 37), (32, 32, 2))?; // grid (2, 3)
        rms_norm_backward(emu, dtype, (4, 100), (96, 64, 3))?; // grid (2, 2), the last chunk one row
                                                               // The launch shapes: bwd_w in blocks of 256, chunks of 64 rows.
        rms_norm_backward(emu, dtype, (130, 20), (row_block(20), 256, 64))?; // grid (1, 3)
        rms_norm_backward(emu, dtype, (3, 300), (row_block(300), 256, 64))?; // grid (2, 1)
    }
    Ok(())
}

/// Targets (rows) spread over the vocabulary.
fn targets(rows: usize, vocab: usize) -> Result<Tensor> {
    Tensor::from_vec((0..rows).map(|i| ((i * 37 + 3) % vocab) as u32).collect::<Vec<_>>(), rows, &Device::Cpu)
}

/// cross_entropy_fwd over logits (rows, vocab), f32 per-row losses into a buffer.
fn cross_entropy_losses(emu: &Emulator, logits: &Tensor, targets: &Tensor, block: u32) -> Result<Tensor> {
    let (rows, vocab) = logits.dims2()?;
    let (lb, tb, mut losses) = (Buffer::of(logits)?, Buffer::of(targets)?, Buffer::zeros(DType::F32, rows)?);
    let args = vec![lb.input(), tb.input(), losses.output(), Arg::I32(vocab as i32)];
    emu.launch(&kernel("cross_entropy_fwd", logits.dtype()), (rows as u32, 1), block, args)?;
    losses.to_f32_tensor(&[rows])
}

/// Per-row cross-entropy, -log_softmax(logits) gathered at the targets.
fn row_losses(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let log_probs = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    log_probs.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?.neg()
}

/// cross_entropy_fwd and _bwd (d_losses = 1/rows each) against log_softmax + gather per row,
/// composite::cross_entropy (the mean) and its autograd gradient.
fn cross_entropy(emu: &Emulator, dtype: DType, rows: usize, vocab: usize, block: u32) -> Result<()> {
    let what = format!("cross_entropy {dtype:?} rows {rows} vocab {vocab} block {block}");
    let (logits, logits_ref) = input(&[rows, vocab], 6, 6.0, dtype)?;
    let targets = targets(rows, vocab)?;
    let losses = cross_entropy_losses(emu, &logits, &targets, block)?;
    check(&format!("{what}: losses"), &losses, &row_losses(&logits_ref, &targets)?, 1e-5)?;
    let mean = composite::cross_entropy(&logits_ref, &targets)?;
    check(&format!("{what}: mean loss"), &losses.mean_all()?, &mean, 1e-5)?;
    let (lb, tb) = (Buffer::of(&logits)?, Buffer::of(&targets)?);
    let (d_losses, mut d_logits) = (Buffer::F32(vec![1.0 / rows as f32; rows]), Buffer::zeros(dtype, rows * vocab)?);
    let args = vec![lb.input(), tb.input(), d_losses.input(), d_logits.output(), Arg::I32(vocab as i32)];
    emu.launch(&kernel("cross_entropy_bwd", dtype), (rows as u32, 1), block, args)?;
    let one = Tensor::new(1f32, &Device::Cpu)?;
    let grads = vjp(|t| composite::cross_entropy(&t[0], &targets), &[logits_ref], &one)?;
    check(&format!("{what}: d_logits"), &d_logits.to_f32_tensor(&[rows, vocab])?, &grads[0], tolerance(dtype))
}

#[test]
fn cross_entropy_matches_composite_and_its_gradient() -> Result<()> {
    let Some(emu) = emulator() else { return Ok(()) };
    for dtype in DTYPES {
        for (rows, vocab, block) in [(3, 101, 32), (4, 101, 64), (2, 300, 96), (5, 101, row_block(101))] {
            cross_entropy(emu, dtype, rows, vocab, block)?;
        }
        cross_entropy(emu, dtype, 1, 1100, row_block(1100))?; // a vocab larger than the largest block
    }
    Ok(())
}

#[test]
fn cross_entropy_of_a_target_outside_the_vocab_is_nan() -> Result<()> {
    let Some(emu) = emulator() else { return Ok(()) };
    for dtype in DTYPES {
        let (logits, logits_ref) = input(&[4, 101], 6, 6.0, dtype)?;
        let targets = Tensor::new(&[3u32, 101, 50, u32::MAX], &Device::Cpu)?;
        let losses = cross_entropy_losses(emu, &logits, &targets, 64)?.to_vec1::<f32>()?;
        let valid = Tensor::new(&[3u32, 0, 50, 0], &Device::Cpu)?;
        let want = row_losses(&logits_ref, &valid)?.to_vec1::<f32>()?;
        for row in [0, 2] {
            if (losses[row] - want[row]).abs() > 1e-5 * want[row].abs().max(1.0) {
                bail!("{dtype:?} row {row}: loss {} but log_softmax gives {}", losses[row], want[row]);
            }
        }
        if !losses[1].is_nan() || !losses[3].is_nan() {
            bail!("{dtype:?}: targets 101 and u32::MAX of vocab 101 give losses {} and {}", losses[1], losses[3]);
        }
    }
    Ok(())
}

/// Rotary tables cos, sin (seq, half) of the angles t 10000^(-i / half), in `dtype` and in f32.
fn rope_tables(seq: usize, half: usize, dtype: DType) -> Result<[(Tensor, Tensor); 2]> {
    let angles: Vec<f32> =
        (0..seq * half).map(|n| (n / half) as f32 * 10000f32.powf(-((n % half) as f32) / half as f32)).collect();
    let angles = Tensor::from_vec(angles, (seq, half), &Device::Cpu)?;
    let table = |t: Tensor| -> Result<(Tensor, Tensor)> {
        let rounded = t.to_dtype(dtype)?;
        let reference = rounded.to_dtype(DType::F32)?;
        Ok((rounded, reference))
    };
    Ok([table(angles.cos()?)?, table(angles.sin()?)?])
}

/// rope with sign 1 on x (B, H, T, hd) against composite::rope, and with sign -1 on dy against the
/// autograd gradient of composite::rope with respect to x; grid (grid) of `block` threads.
fn rope(emu: &Emulator, dtype: DType, dims: [usize; 4], block: u32, grid: u32) -> Result<()> {
    let what = format!("rope {dtype:?} {dims:?} block {block} grid {grid}");
    let (seq, half) = (dims[2], dims[3] / 2);
    let pairs = dims.iter().product::<usize>() / 2;
    let (x, x_ref) = input(&dims, 7, 1.0, dtype)?;
    let (dy, dy_ref) = input(&dims, 8, 1.0, dtype)?;
    let [(cos, cos_ref), (sin, sin_ref)] = rope_tables(seq, half, dtype)?;
    let (cb, sb) = (Buffer::of(&cos)?, Buffer::of(&sin)?);
    let run = |input: &Tensor, sign: f32| -> Result<Tensor> {
        let (ib, mut out) = (Buffer::of(input)?, Buffer::zeros(dtype, 2 * pairs)?);
        let sizes = [Arg::Usize(pairs), Arg::I32(seq as i32), Arg::I32(half as i32), Arg::F32(sign)];
        let args = [vec![ib.input(), cb.input(), sb.input(), out.output()], sizes.into()].concat();
        emu.launch(&kernel("rope", dtype), (grid, 1), block, args)?;
        out.to_f32_tensor(&dims)
    };
    let want = composite::rope(&x_ref, &cos_ref, &sin_ref)?;
    check(&format!("{what}: forward"), &run(&x, 1.0)?, &want, tolerance(dtype))?;
    let grads = vjp(|t| composite::rope(&t[0], &cos_ref, &sin_ref), &[x_ref], &dy_ref)?;
    check(&format!("{what}: backward"), &run(&dy, -1.0)?, &grads[0], tolerance(dtype))
}

#[test]
fn rope_matches_composite_and_its_gradient() -> Result<()> {
    let Some(emu) = emulator() else { return Ok(()) };
    for dtype in DTYPES {
        rope(emu, dtype, [2, 3, 5, 8], 32, 2)?; // 120 pairs, 64 threads: two grid strides
        rope(emu, dtype, [1, 2, 7, 6], 32, 1)?; // half = 3
        rope(emu, dtype, [2, 3, 5, 8], 64, 1)?;
        rope(emu, dtype, [2, 3, 5, 8], 256, elementwise_grid(120))?;
        rope(emu, dtype, [2, 2, 33, 10], 256, elementwise_grid(660))?; // three blocks
    }
    Ok(())
}

/// gelu_fwd and gelu_bwd over n elements against composite::gelu and its autograd gradient.
fn gelu(emu: &Emulator, dtype: DType, n: usize, block: u32, grid: u32) -> Result<()> {
    let what = format!("gelu {dtype:?} n {n} block {block} grid {grid}");
    let (x, x_ref) = input(&[n], 9, 4.0, dtype)?;
    let (dy, dy_ref) = input(&[n], 10, 1.0, dtype)?;
    let (xb, dyb) = (Buffer::of(&x)?, Buffer::of(&dy)?);
    let (mut y, mut dx) = (Buffer::zeros(dtype, n)?, Buffer::zeros(dtype, n)?);
    emu.launch(&kernel("gelu_fwd", dtype), (grid, 1), block, vec![xb.input(), y.output(), Arg::Usize(n)])?;
    check(&format!("{what}: forward"), &y.to_f32_tensor(&[n])?, &composite::gelu(&x_ref)?, tolerance(dtype))?;
    let args = vec![xb.input(), dyb.input(), dx.output(), Arg::Usize(n)];
    emu.launch(&kernel("gelu_bwd", dtype), (grid, 1), block, args)?;
    let grads = vjp(|t| composite::gelu(&t[0]), &[x_ref], &dy_ref)?;
    check(&format!("{what}: backward"), &dx.to_f32_tensor(&[n])?, &grads[0], tolerance(dtype))
}

#[test]
fn gelu_matches_composite_and_its_gradient() -> Result<()> {
    let Some(emu) = emulator() else { return Ok(()) };
    for dtype in DTYPES {
        gelu(emu, dtype, 1000, 32, 3)?; // 96 threads: eleven grid strides
        gelu(emu, dtype, 37, 32, 1)?;
        gelu(emu, dtype, 1000, 64, 5)?;
        gelu(emu, dtype, 1000, 256, elementwise_grid(1000))?;
    }
    Ok(())
}

#[test]
fn float2bfloat16_rounds_to_nearest_even_like_candle() -> Result<()> {
    let Some(emu) = emulator() else { return Ok(()) };
    let specials = [0.0, -0.0, 1.0, f32::MAX, f32::MIN_POSITIVE, 1e-40, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
    let ties = [0x3f80_8000u32, 0x3f81_8000, 0x3f80_7fff, 0x3f80_8001, 0x7f7f_8000, 0x0000_8000, 0xffc0_0001];
    let mut state = 12345u64;
    let random = (0..10_000).map(|_| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        f32::from_bits((state >> 32) as u32)
    });
    let values: Vec<f32> = specials.into_iter().chain(ties.map(f32::from_bits)).chain(random).collect();
    let got = emu.float2bfloat16(&values)?;
    let Buffer::Bf16(want) = Buffer::of(&Tensor::new(values.as_slice(), &Device::Cpu)?.to_dtype(DType::BF16)?)? else {
        bail!("a bf16 tensor gave a buffer that is not bf16");
    };
    for ((v, g), w) in values.iter().zip(got).zip(want) {
        let widened = f32::from_bits((g as u32) << 16);
        if if v.is_nan() { !widened.is_nan() } else { g != w } {
            bail!("__float2bfloat16({v:e} = {:#010x}) = {g:#06x}, candle rounds to {w:#06x}", v.to_bits());
        }
    }
    Ok(())
}

#[test]
fn launch_rejects_arguments_that_do_not_match_the_kernel() -> Result<()> {
    let Some(emu) = emulator() else { return Ok(()) };
    let (x, mut y) = (Buffer::F32(vec![1.0; 4]), Buffer::zeros(DType::F32, 4)?);
    let too_small = emu.launch("gelu_fwd_f32", (1, 1), 32, vec![x.input(), y.output(), Arg::I32(4)]);
    let too_few = emu.launch("gelu_fwd_f32", (1, 1), 32, vec![x.input(), y.output()]);
    let unknown = emu.launch("gelu_f32", (1, 1), 32, vec![x.input(), y.output(), Arg::Usize(4)]);
    let ok = emu.launch("gelu_fwd_f32", (1, 1), 32, vec![x.input(), y.output(), Arg::Usize(4)]);
    let messages: Vec<String> = [too_small, too_few, unknown].into_iter().map(|r| format!("{r:?}")).collect();
    let expected = ["argument 2 has 4 bytes, the kernel takes 8", "takes 3 arguments, got 2", "no such kernel"];
    for (message, part) in messages.iter().zip(expected) {
        if !message.contains(part) {
            bail!("expected an error containing {part:?}, got {message}");
        }
    }
    ok
}
