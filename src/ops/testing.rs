//! Test helpers shared by the fused-op tests: seeded inputs, the scalar `sum(op(inputs) * P)` for
//! a fixed seeded projection P, its autograd gradients and its central finite differences.

use candle_core::{bail, DType, Device, Result, Tensor, Var};

/// An op under test: takes its inputs in order, returns its output.
pub(crate) type OpFn<'a> = &'a dyn Fn(&[Tensor]) -> Result<Tensor>;

/// Deterministic values uniform in [-1, 1) (a 64-bit LCG), as a CPU tensor of `dtype`.
pub(crate) fn seeded(dims: &[usize], seed: u64, dtype: DType) -> Result<Tensor> {
    let count: usize = dims.iter().product();
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    let values: Vec<f64> = (0..count)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(values, dims, &Device::Cpu)?.to_dtype(dtype)
}

/// max |a - b| over all elements, computed in f64.
pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f64> {
    if a.dims() != b.dims() {
        bail!("shapes differ: {:?} vs {:?}", a.dims(), b.dims());
    }
    let diff = (a.to_dtype(DType::F64)? - b.to_dtype(DType::F64)?)?;
    diff.abs()?.flatten_all()?.max(0)?.to_scalar::<f64>()
}

/// max |a - b| / max |b|: the error of `a` relative to the scale of the reference `b`.
pub(crate) use super::check::relative_error;

/// `sum(op(inputs) * projection)` with a projection seeded from the output's shape.
fn projected_loss(op: OpFn, inputs: &[Tensor]) -> Result<Tensor> {
    let out = op(inputs)?;
    let projection = seeded(out.dims(), 99, out.dtype())?;
    (out * projection)?.sum_all()
}

/// Autograd gradients of the projected loss with respect to the inputs listed in `wrt`.
pub(crate) fn autograd(op: OpFn, inputs: &[Tensor], wrt: &[usize]) -> Result<Vec<Tensor>> {
    let tracked: Vec<Tensor> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| if wrt.contains(&i) { Var::from_tensor(t).map(|v| v.as_tensor().clone()) } else { Ok(t.clone()) })
        .collect::<Result<_>>()?;
    let grads = projected_loss(op, &tracked)?.backward()?;
    wrt.iter()
        .map(|&i| match grads.get(&tracked[i]) {
            Some(g) => Ok(g.clone()),
            None => bail!("no gradient reached input {i}"),
        })
        .collect()
}

/// Central finite differences (step 1e-5) of the projected loss with respect to input `wrt`
/// (an f64 tensor, read whatever its strides).
pub(crate) fn finite_differences(op: OpFn, inputs: &[Tensor], wrt: usize) -> Result<Tensor> {
    let step = 1e-5;
    let target = &inputs[wrt];
    let base = target.flatten_all()?.to_vec1::<f64>()?;
    let mut grad = Vec::with_capacity(base.len());
    for j in 0..base.len() {
        let at = |delta: f64| -> Result<f64> {
            let mut values = base.clone();
            values[j] += delta;
            let mut moved = inputs.to_vec();
            moved[wrt] = Tensor::from_vec(values, target.dims(), &Device::Cpu)?;
            projected_loss(op, &moved)?.to_scalar::<f64>()
        };
        grad.push((at(step)? - at(-step)?) / (2.0 * step));
    }
    Tensor::from_vec(grad, target.dims(), &Device::Cpu)
}

/// Forward outputs of `fused` and `reference` agree within `tol` relative to the output's scale.
pub(crate) fn assert_same_forward(fused: OpFn, reference: OpFn, inputs: &[Tensor], tol: f64) -> Result<()> {
    let (a, b) = (fused(inputs)?, reference(inputs)?);
    if a.dtype() != b.dtype() {
        bail!("fused output is {:?}, reference {:?}", a.dtype(), b.dtype());
    }
    let err = relative_error(&a, &b)?;
    if err > tol {
        bail!("forward differs: relative error {err:e} > {tol:e} ({:?})", a.dtype());
    }
    Ok(())
}

/// For f64 inputs: the fused forward equals the reference; the fused gradients match central
/// finite differences (relative error < 1e-6) and the reference's autograd gradients (< 1e-9).
/// Then the same comparisons with the reference in f32 (forward < 1e-5, gradients < 1e-4).
pub(crate) fn assert_matches_composite(fused: OpFn, reference: OpFn, inputs: &[Tensor], wrt: &[usize]) -> Result<()> {
    assert_same_forward(fused, reference, inputs, 1e-12)?;
    let fused_grads = autograd(fused, inputs, wrt)?;
    let reference_grads = autograd(reference, inputs, wrt)?;
    for (slot, &i) in wrt.iter().enumerate() {
        let numeric = finite_differences(fused, inputs, i)?;
        let fd_err = relative_error(&fused_grads[slot], &numeric)?;
        let ref_err = relative_error(&fused_grads[slot], &reference_grads[slot])?;
        if fd_err > 1e-6 || ref_err > 1e-9 {
            bail!("input {i}: gradient vs finite differences {fd_err:e}, vs composite {ref_err:e}");
        }
    }
    let as_f32: Vec<Tensor> = inputs
        .iter()
        .map(|t| if t.dtype() == DType::F64 { t.to_dtype(DType::F32) } else { Ok(t.clone()) })
        .collect::<Result<_>>()?;
    assert_same_forward(fused, reference, &as_f32, 1e-5)?;
    let fused_grads = autograd(fused, &as_f32, wrt)?;
    let reference_grads = autograd(reference, &as_f32, wrt)?;
    for (slot, &i) in wrt.iter().enumerate() {
        let err = relative_error(&fused_grads[slot], &reference_grads[slot])?;
        if err > 1e-4 {
            bail!("input {i}: f32 gradient vs composite {err:e}");
        }
    }
    Ok(())
}
