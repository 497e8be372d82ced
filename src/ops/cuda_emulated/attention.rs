//! The attention kernels under emulation: the fused causal softmax (kernels/causal_softmax.cu)
//! and flash attention (kernels/flash_attention.cu), against the composite ops.

use candle_core::{DType, Device, Result, Tensor, D};

use super::harness::{emulator, Arg, Buffer, Emulator};
use super::{check, input, kernel, row_block, tolerance, vjp, DTYPES};
use crate::ops::composite;

/// The composite causal softmax of scores (H, T, T), as composite::causal_attention computes it:
/// scale, mask the keys after the query with -inf, softmax over the keys.
fn masked_softmax(scores: &Tensor, scale: f64) -> Result<Tensor> {
    let seq = scores.dim(D::Minus1)?;
    let positions = Tensor::arange(0u32, seq as u32, &Device::Cpu)?;
    let future = positions.reshape((1, seq))?.broadcast_gt(&positions.reshape((seq, 1))?)?;
    let neg_inf = Tensor::new(f32::NEG_INFINITY, &Device::Cpu)?.broadcast_as(scores.shape())?;
    let masked = future.broadcast_as(scores.shape())?.where_cond(&neg_inf, &(scores * scale)?)?;
    candle_nn::ops::softmax(&masked, D::Minus1)
}

/// causal_softmax_fwd then _bwd (from the forward's probabilities) over H heads of (seq, seq)
/// scores, rows = H seq, against the composite masked softmax and its autograd gradient.
fn causal_softmax(emu: &Emulator, dtype: DType, heads: usize, seq: usize, block: u32) -> Result<()> {
    let what = format!("causal_softmax {dtype:?} heads {heads} seq {seq} block {block}");
    let (rows, scale) = (heads * seq, 0.7);
    let (scores, scores_ref) = input(&[heads, seq, seq], 4, 4.0, dtype)?;
    let (d_probs, d_probs_ref) = input(&[heads, seq, seq], 5, 1.0, dtype)?;
    let (sb, dpb, mut probs) = (Buffer::of(&scores)?, Buffer::of(&d_probs)?, Buffer::zeros(dtype, rows * seq)?);
    let args = vec![sb.input(), probs.output(), Arg::I32(seq as i32), Arg::F32(scale as f32)];
    emu.launch(&kernel("causal_softmax_fwd", dtype), (rows as u32, 1), block, args)?;
    let want = masked_softmax(&scores_ref, scale)?;
    check(&format!("{what}: probs"), &probs.to_f32_tensor(&[heads, seq, seq])?, &want, tolerance(dtype))?;
    let mut d_scores = Buffer::zeros(dtype, rows * seq)?;
    let args = vec![probs.input(), dpb.input(), d_scores.output(), Arg::I32(seq as i32), Arg::F32(scale as f32)];
    emu.launch(&kernel("causal_softmax_bwd", dtype), (rows as u32, 1), block, args)?;
    let grads = vjp(|t| masked_softmax(&t[0], scale), &[scores_ref], &d_probs_ref)?;
    check(&format!("{what}: d_scores"), &d_scores.to_f32_tensor(&[heads, seq, seq])?, &grads[0], tolerance(dtype))
}

#[test]
fn causal_softmax_matches_composite_and_its_gradient() -> Result<()> {
    let Some(emu) = emulator() else { return Ok(()) };
    for dtype in DTYPES {
        for (heads, seq, block) in [(2, 5, 32), (1, 45, 32), (1, 40, 96), (1, 37, row_block(37))] {
            causal_softmax(emu, dtype, heads, seq, block)?;
        }
    }
    Ok(())
}

/// Log-sum-exp over the visible keys of each row of scaled, causally masked scores q k^T.
fn causal_logsumexp(q: &Tensor, k: &Tensor, scale: f64) -> Result<Tensor> {
    let seq = q.dim(2)?;
    let scores = (q.matmul(&k.t()?)? * scale)?;
    let mask: Vec<f32> = (0..seq * seq).map(|i| if i % seq > i / seq { f32::NEG_INFINITY } else { 0.0 }).collect();
    let masked = scores.broadcast_add(&Tensor::from_vec(mask, (seq, seq), &Device::Cpu)?)?;
    let max = masked.max_keepdim(D::Minus1)?;
    (masked.broadcast_sub(&max)?.exp()?.sum_keepdim(D::Minus1)?.log()? + max)?.squeeze(D::Minus1)
}

/// flash_fwd, flash_bwd_dq and flash_bwd_dkdv for bf16 q, k, v (1, heads, seq, hd) against
/// composite::causal_attention in f32 from the same bf16 values, and its autograd gradients.
fn flash_attention(emu: &Emulator, heads: usize, seq: usize, hd: usize) -> Result<()> {
    let what = format!("flash attention heads {heads} seq {seq} hd {hd}");
    let dims = [1, heads, seq, hd];
    let (q, q_ref) = input(&dims, 7, 1.5, DType::BF16)?;
    let (k, k_ref) = input(&dims, 8, 1.5, DType::BF16)?;
    let (v, v_ref) = input(&dims, 9, 1.0, DType::BF16)?;
    let (d_o, d_o_ref) = input(&dims, 10, 1.0, DType::BF16)?;
    let scale = 1.0 / (hd as f64).sqrt();
    let (grid, block) = ((seq.div_ceil(64) as u32, heads as u32), 128);
    let (qb, kb, vb, dob) = (Buffer::of(&q)?, Buffer::of(&k)?, Buffer::of(&v)?, Buffer::of(&d_o)?);
    let (mut o, mut lse) = (Buffer::zeros(DType::BF16, q.elem_count())?, Buffer::zeros(DType::F32, heads * seq)?);
    let (seq_arg, scale_arg) = (Arg::I32(seq as i32), Arg::F32(scale as f32));
    let args = vec![qb.input(), kb.input(), vb.input(), o.output(), lse.output(), seq_arg, scale_arg];
    emu.launch(&format!("flash_fwd_hd{hd}"), grid, block, args)?;
    let want = composite::causal_attention(&q_ref, &k_ref, &v_ref)?;
    check(&format!("{what}: output"), &o.to_f32_tensor(&dims)?, &want, 2e-2)?;
    let want_lse = causal_logsumexp(&q_ref, &k_ref, scale)?;
    check(&format!("{what}: lse"), &lse.to_f32_tensor(&[1, heads, seq])?, &want_lse, 1e-5)?;

    let (mut dot, mut dq) = (Buffer::zeros(DType::F32, heads * seq)?, Buffer::zeros(DType::BF16, q.elem_count())?);
    let args = vec![qb.input(), kb.input(), vb.input(), o.input(), dob.input(), lse.input(), dot.output(), dq.output()];
    emu.launch(&format!("flash_bwd_dq_hd{hd}"), grid, block, [args, vec![seq_arg, scale_arg]].concat())?;
    let (mut dk, mut dv) = (Buffer::zeros(DType::BF16, q.elem_count())?, Buffer::zeros(DType::BF16, q.elem_count())?);
    let args =
        vec![qb.input(), kb.input(), vb.input(), dob.input(), lse.input(), dot.input(), dk.output(), dv.output()];
    emu.launch(&format!("flash_bwd_dkdv_hd{hd}"), grid, block, [args, vec![seq_arg, scale_arg]].concat())?;
    let attention = |t: &[Tensor]| composite::causal_attention(&t[0], &t[1], &t[2]);
    let grads = vjp(attention, &[q_ref, k_ref, v_ref], &d_o_ref)?;
    for (name, got, want) in [("dq", &dq, &grads[0]), ("dk", &dk, &grads[1]), ("dv", &dv, &grads[2])] {
        check(&format!("{what}: {name}"), &got.to_f32_tensor(&dims)?, want, 3e-2)?;
    }
    Ok(())
}

#[test]
fn flash_attention_matches_composite_and_its_gradient() -> Result<()> {
    let Some(emu) = emulator() else { return Ok(()) };
    // One tile with padding; exactly one tile; three key tiles, the last one partial.
    for (heads, seq, hd) in [(2, 37, 16), (1, 64, 32), (1, 130, 64)] {
        flash_attention(emu, heads, seq, hd)?;
    }
    Ok(())
}
