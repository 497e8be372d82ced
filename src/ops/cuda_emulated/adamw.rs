//! The AdamW kernels under emulation (kernels/adamw.cu), against the composite update.

use candle_core::{DType, Device, Result, Tensor, Var};

use super::harness::{emulator, Arg, Buffer};
use super::{check, elementwise_grid, input};

/// Three AdamW updates through adamw_moment and adamw_apply against `adamw::composite_update`.
#[test]
fn adamw_matches_the_composite_update() -> Result<()> {
    use crate::ops::adamw::{composite_update, AdamWUpdate};
    let Some(emu) = emulator() else { return Ok(()) };
    let n = 1000;
    let (theta, _) = input(&[n], 11, 2.0, DType::F32)?;
    let param = Var::from_tensor(&theta)?;
    let (mut m, mut v) = (Tensor::zeros(n, DType::F32, &Device::Cpu)?, Tensor::zeros(n, DType::F32, &Device::Cpu)?);
    let (mut theta_b, mut m_b, mut v_b) = (Buffer::of(&theta)?, Buffer::F32(vec![0.0; n]), Buffer::F32(vec![0.0; n]));
    for step in 1..=3 {
        let (grad, _) = input(&[n], 20 + step, 1.0, DType::F32)?;
        let u = AdamWUpdate { clip_scale: 0.5, beta1: 0.9, beta2: 0.95, step, eps: 1e-8, lr: 0.01, weight_decay: 0.1 };
        (m, v) = composite_update(&param, &m, &v, &grad, &u)?;
        let gb = Buffer::of(&grad)?;
        let grid = (elementwise_grid(n).min(2), 1); // fewer threads than elements: grid-stride loops
        for (moment, beta, squared) in [(&mut m_b, u.beta1, 0), (&mut v_b, u.beta2, 1)] {
            let args = vec![
                moment.output(),
                gb.input(),
                Arg::Usize(n),
                Arg::F32(beta as f32),
                Arg::F32((1.0 - beta) as f32),
                Arg::F32(u.clip_scale as f32),
                Arg::I32(squared),
            ];
            emu.launch("adamw_moment", grid, 256, args)?;
        }
        let args = vec![
            theta_b.output(),
            m_b.input(),
            v_b.input(),
            Arg::Usize(n),
            Arg::F32(u.lr as f32),
            Arg::F32((1.0 - u.lr * u.weight_decay) as f32),
            Arg::F32((1.0 / u.bias1()) as f32),
            Arg::F32((1.0 / u.bias2()) as f32),
            Arg::F32(u.eps as f32),
        ];
        emu.launch("adamw_apply", grid, 256, args)?;
    }
    check("adamw m", &m_b.to_f32_tensor(&[n])?, &m, 1e-6)?;
    check("adamw v", &v_b.to_f32_tensor(&[n])?, &v, 1e-6)?;
    check("adamw theta", &theta_b.to_f32_tensor(&[n])?, param.as_tensor(), 1e-6)
}
