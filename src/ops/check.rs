//! Checks the fused ops against the composite ones on one device: for every op, the output and
//! the gradients of `sum(op(inputs) * P)` (P a fixed seeded projection) with respect to each
//! differentiable input, as errors relative to the composite result's scale. In bf16 the composite
//! reference runs in f32 on the same bf16 values. On the CPU this
//! checks the fused CPU ops in f32; on CUDA the fused kernels in f32 and bf16 (on Metal, where
//! nothing is fused, both sides are the composite op).
//!
//! `sweeplaw bench --check` prints these lines. Before the first run trains on CUDA,
//! [`verify_cuda_kernels_once`] runs the check, and a failure (or a kernel that does not load)
//! turns the fused CUDA kernels off for the process, with a warning: training goes on, slower,
//! on the composite ops.

use std::sync::OnceLock;

use candle_core::{DType, Device, Result, Tensor, Var};

use super::{composite, CudaKernel};

/// Largest relative error in f32: reduction order and `rsqrtf`/`expf` against candle's kernels.
pub const F32_TOLERANCE: f64 = 1e-4;
/// Largest relative error of a bf16 op against the composite op in f32 on the same bf16 values:
/// the kernels compute in f32 and round their outputs (and attention's P and dS) to bf16, about
/// 0.4% each; a wrong kernel is off by O(1).
pub const BF16_TOLERANCE: f64 = 3e-2;

/// One op in one dtype, fused against composite.
#[derive(Clone, Debug)]
pub struct OpCheck {
    pub op: &'static str,
    pub dtype: DType,
    /// Whether the dispatcher took a fused path on this device and dtype (else both sides are composite).
    pub fused: bool,
    pub output_error: f64,
    /// Largest over the differentiable inputs (for `adamw`: over the two moments, the output
    /// being the updated parameter).
    pub gradient_error: f64,
    pub tolerance: f64,
    /// The CUDA kernel the fused side ran, if any (what a failure turns off).
    pub kernel: Option<CudaKernel>,
    /// Why the fused side could not run at all (a kernel that did not load, say).
    pub error: Option<String>,
}

impl OpCheck {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.output_error < self.tolerance && self.gradient_error < self.tolerance
    }

    /// One line: op, dtype, path (the CUDA kernel, if one), both errors or what went wrong, verdict.
    pub fn describe(&self) -> String {
        let path = match (self.kernel, self.fused) {
            (Some(kernel), _) => kernel.name(),
            (None, true) => "fused",
            (None, false) => "composite",
        };
        let dtype = format!("{:?}", self.dtype).to_lowercase();
        let measured = match &self.error {
            Some(error) => format!("could not run: {error}"),
            None => format!("output {:.1e}  gradients {:.1e}", self.output_error, self.gradient_error),
        };
        let verdict = if self.passed() { "ok" } else { "FAILED" };
        format!("{:<16} {dtype:<5} {path:<15} {measured}  (< {:.0e}) {verdict}", self.op, self.tolerance)
    }
}

/// An op: inputs in, output out.
pub type OpFn = fn(&[Tensor]) -> Result<Tensor>;

/// One op of the model as the fused-against-composite tools see it (this check and
/// `sweeplaw bench --ops`): its dispatcher in `crate::ops`, fused where a fused path applies, and
/// its composite reference.
#[derive(Clone, Copy)]
pub struct OpPair {
    pub name: &'static str,
    pub fused: OpFn,
    pub composite: OpFn,
}

pub const RMS_NORM: OpPair = OpPair {
    name: "rms_norm",
    fused: |t| super::rms_norm(&t[0], &t[1], 1e-5),
    composite: |t| composite::rms_norm(&t[0], &t[1], 1e-5),
};
pub const ROPE: OpPair = OpPair {
    name: "rope",
    fused: |t| super::rope(&t[0], &t[1], &t[2]),
    composite: |t| composite::rope(&t[0], &t[1], &t[2]),
};
pub const CAUSAL_ATTENTION: OpPair = OpPair {
    name: "causal_attention",
    fused: |t| super::causal_attention(&t[0], &t[1], &t[2]),
    composite: |t| composite::causal_attention(&t[0], &t[1], &t[2]),
};
pub const GELU: OpPair = OpPair { name: "gelu", fused: |t| super::gelu(&t[0]), composite: |t| composite::gelu(&t[0]) };
pub const CROSS_ENTROPY: OpPair = OpPair {
    name: "cross_entropy",
    fused: |t| super::cross_entropy(&t[0], &t[1]),
    composite: |t| composite::cross_entropy(&t[0], &t[1]),
};
pub const LINEAR: OpPair =
    OpPair { name: "linear", fused: |t| super::linear(&t[0], &t[1]), composite: |t| composite::linear(&t[0], &t[1]) };

impl OpPair {
    /// Whether the dispatcher takes a fused path when `t` is the op's first input, and the CUDA
    /// kernel if it takes one.
    pub fn path(&self, t: &Tensor) -> (bool, Option<CudaKernel>) {
        let kernel = cuda_kernel_taken(self.name, t);
        (kernel.is_some() || super::takes_fused_path(t), kernel)
    }
}

/// One op under check: its inputs' shapes (cross-entropy's second input is u32 targets) and which
/// inputs get gradients.
struct Case {
    op: OpPair,
    shapes: &'static [&'static [usize]],
    wrt: &'static [usize],
}

/// Awkward sizes: rows and widths that are not multiples of a warp or a block.
const CASES: &[Case] = &[
    Case { op: RMS_NORM, shapes: &[&[3, 5, 37], &[37]], wrt: &[0, 1] },
    Case { op: ROPE, shapes: &[&[2, 3, 7, 8], &[7, 4], &[7, 4]], wrt: &[0] },
    Case { op: CAUSAL_ATTENTION, shapes: &[&[2, 3, 37, 16], &[2, 3, 37, 16], &[2, 3, 37, 16]], wrt: &[0, 1, 2] },
    Case { op: GELU, shapes: &[&[5, 67]], wrt: &[0] },
    Case { op: CROSS_ENTROPY, shapes: &[&[13, 1100], &[13]], wrt: &[0] },
];

/// Checks every op on `device`: f32 everywhere, and bf16 too on CUDA.
pub fn check_fused_ops(device: &Device) -> Result<Vec<OpCheck>> {
    let dtypes: &[DType] = if device.is_cuda() { &[DType::F32, DType::BF16] } else { &[DType::F32] };
    let mut checks = Vec::new();
    for &dtype in dtypes {
        for case in CASES {
            checks.push(check_case(case, dtype, device)?);
        }
    }
    checks.push(check_adamw(device)?);
    Ok(checks)
}

/// Three AdamW updates of a (67, 33) f32 parameter with weight decay and clipping, through
/// `adamw_update` (fused on CUDA) and `composite_update`, from the same start.
fn check_adamw(device: &Device) -> Result<OpCheck> {
    use super::adamw::{adamw_update, composite_update, takes_fused_path, AdamWUpdate};
    let tensor = |seed: u64, scale: f32| -> Result<Tensor> {
        let values: Vec<f32> = seeded(67 * 33, seed).map(|v| scale * (v - 0.5)).collect();
        Tensor::from_vec(values, (67, 33), device)
    };
    let (fused_param, reference_param) = (Var::from_tensor(&tensor(1, 2.0)?)?, Var::from_tensor(&tensor(1, 2.0)?)?);
    let fused = takes_fused_path(fused_param.as_tensor());
    let kernel = fused.then_some(CudaKernel::AdamW);
    let check = OpCheck {
        op: "adamw",
        dtype: DType::F32,
        fused,
        output_error: 0.0,
        gradient_error: 0.0,
        tolerance: F32_TOLERANCE,
        kernel,
        error: None,
    };
    let (mut fused_m, mut fused_v) = (tensor(2, 0.1)?, tensor(3, 0.01)?.abs()?);
    let (mut reference_m, mut reference_v) = (fused_m.copy()?, fused_v.copy()?);
    for step in 1..=3 {
        let grad = tensor(10 + step, 1.0)?;
        let update =
            AdamWUpdate { clip_scale: 0.7, beta1: 0.9, beta2: 0.95, step, eps: 1e-8, lr: 1e-2, weight_decay: 0.1 };
        if let Err(e) = adamw_update(&fused_param, &mut fused_m, &mut fused_v, &grad, &update) {
            return Ok(OpCheck { error: Some(first_line(&e)), ..check });
        }
        (reference_m, reference_v) = composite_update(&reference_param, &reference_m, &reference_v, &grad, &update)?;
    }
    let output_error = relative_error(fused_param.as_tensor(), reference_param.as_tensor())?;
    let gradient_error = relative_error(&fused_m, &reference_m)?.max(relative_error(&fused_v, &reference_v)?);
    Ok(OpCheck { output_error, gradient_error, ..check })
}

/// One case in one dtype; a fused side that fails to run is a failed check, not an error.
fn check_case(case: &Case, dtype: DType, device: &Device) -> Result<OpCheck> {
    let inputs = case_inputs(case, dtype, device)?;
    let (fused, kernel) = case.op.path(&inputs[0]);
    let tolerance = if dtype == DType::BF16 { BF16_TOLERANCE } else { F32_TOLERANCE };
    let check = OpCheck {
        op: case.op.name,
        dtype,
        fused,
        output_error: 0.0,
        gradient_error: 0.0,
        tolerance,
        kernel,
        error: None,
    };
    let (fused_out, fused_grads) = match output_and_gradients(case.op.fused, &inputs, case.wrt) {
        Ok(result) => result,
        Err(e) => return Ok(OpCheck { error: Some(first_line(&e)), ..check }),
    };
    // The reference runs in f32 from the very same (bf16-rounded) values, so a bf16 kernel is
    // held to its own rounding, not to the composite ops' bf16 arithmetic as well.
    let reference_inputs: Vec<Tensor> = inputs
        .iter()
        .map(|t| if t.dtype() == DType::BF16 { t.to_dtype(DType::F32) } else { Ok(t.clone()) })
        .collect::<Result<_>>()?;
    let (reference_out, reference_grads) = output_and_gradients(case.op.composite, &reference_inputs, case.wrt)?;
    let mut gradient_error: f64 = 0.0;
    for (a, b) in fused_grads.iter().zip(&reference_grads) {
        gradient_error = gradient_error.max(relative_error(a, b)?);
    }
    let output_error = relative_error(&fused_out, &reference_out)?;
    Ok(OpCheck { output_error, gradient_error, ..check })
}

fn first_line(e: &candle_core::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// The CUDA kernel `op` takes for `t`, if any.
#[cfg(feature = "cuda")]
fn cuda_kernel_taken(op: &str, t: &Tensor) -> Option<CudaKernel> {
    let kernel = match op {
        "causal_attention" => return super::cuda::attention_kernel(t),
        "rms_norm" => CudaKernel::RmsNorm,
        "rope" => CudaKernel::Rope,
        "gelu" => CudaKernel::Gelu,
        "cross_entropy" => CudaKernel::CrossEntropy,
        _ => return None,
    };
    super::takes_cuda_path(t, kernel).then_some(kernel)
}

#[cfg(not(feature = "cuda"))]
fn cuda_kernel_taken(_op: &str, _t: &Tensor) -> Option<CudaKernel> {
    None
}

/// Seeded inputs uniform in [-2, 2) (cross-entropy: logits times 4, targets u32 below the vocabulary).
fn case_inputs(case: &Case, dtype: DType, device: &Device) -> Result<Vec<Tensor>> {
    let mut inputs = Vec::new();
    for (i, dims) in case.shapes.iter().enumerate() {
        let count: usize = dims.iter().product();
        let input = if case.op.name == "cross_entropy" && i == 1 {
            let vocab = case.shapes[0][1] as u64;
            let targets: Vec<u32> = (0..count as u64).map(|r| ((r * 7919 + 3) % vocab) as u32).collect();
            Tensor::from_vec(targets, count, device)?
        } else {
            let scale = if case.op.name == "cross_entropy" { 8.0 } else { 4.0 };
            let values: Vec<f32> = seeded(count, 17 + i as u64).map(|v| scale * (v - 0.5)).collect();
            Tensor::from_vec(values, *dims, device)?.to_dtype(dtype)?
        };
        inputs.push(input);
    }
    Ok(inputs)
}

/// `count` values uniform in [0, 1) from the seeded `crate::rng::SplitMix64`.
fn seeded(count: usize, seed: u64) -> impl Iterator<Item = f32> {
    let mut rng = crate::rng::SplitMix64::new(seed);
    (0..count).map(move |_| rng.uniform() as f32)
}

/// `inputs`, those listed in `wrt` as fresh variables (so backward reaches them).
pub(crate) fn track(inputs: &[Tensor], wrt: &[usize]) -> Result<Vec<Tensor>> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, t)| if wrt.contains(&i) { Ok(Var::from_tensor(t)?.as_tensor().clone()) } else { Ok(t.clone()) })
        .collect()
}

/// The op's output and the gradients of `sum(output * P)` with respect to inputs `wrt`.
fn output_and_gradients(op: OpFn, inputs: &[Tensor], wrt: &[usize]) -> Result<(Tensor, Vec<Tensor>)> {
    let tracked = track(inputs, wrt)?;
    let out = op(&tracked)?;
    let projection: Vec<f32> = seeded(out.elem_count(), 99).map(|v| v - 0.5).collect();
    // Rounded to bf16 first, so the projection is the same in every dtype.
    let projection = Tensor::from_vec(projection, out.shape(), out.device())?.to_dtype(DType::BF16)?;
    let projection = projection.to_dtype(out.dtype())?;
    let grads = (&out * projection)?.sum_all()?.backward()?;
    let mut gradients = Vec::new();
    for &i in wrt {
        match grads.get(&tracked[i]) {
            Some(g) => gradients.push(g.clone()),
            None => candle_core::bail!("no gradient reaches input {i}"),
        }
    }
    Ok((out.detach(), gradients))
}

/// max |a - b| / max |b|, in f64 on the CPU; infinite where `a` holds a NaN or an infinity.
pub(crate) fn relative_error(a: &Tensor, b: &Tensor) -> Result<f64> {
    let a = a.to_dtype(DType::F64)?.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f64>()?;
    let b = b.to_dtype(DType::F64)?.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f64>()?;
    if a.len() != b.len() {
        candle_core::bail!("fused and composite results differ in size: {} vs {}", a.len(), b.len());
    }
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f64, f64::max);
    Ok(if a.iter().all(|v| v.is_finite()) { diff / scale } else { f64::INFINITY })
}

/// Before the first run on a CUDA device: checks the fused CUDA kernels once per process, turns
/// off each kernel that fails or cannot run (its op takes the next path), with a warning on
/// stderr, and checks again until everything passes. Does nothing elsewhere.
pub fn verify_cuda_kernels_once(device: &Device) {
    static VERIFIED: OnceLock<()> = OnceLock::new();
    if !device.is_cuda() || !super::cuda_kernels_enabled() {
        return;
    }
    VERIFIED.get_or_init(|| {
        let failures = settle(
            || check_fused_ops(device),
            |kernel| match kernel {
                Some(kernel) => super::disable_cuda_kernel(kernel),
                None => super::set_cuda_kernels(false),
            },
        );
        if !failures.is_empty() {
            eprintln!(
                "warning: fused CUDA kernels disagree with the composite ops or do not run, and are turned off for \
                 this process (their ops take the composite path, slower). Please report this with `sweeplaw bench \
                 --check --device cuda:0`:\n  {}",
                failures.join("\n  ")
            );
        }
    });
}

/// Runs `checks`, turns off (`disable`) the kernel of every failed check (None: all kernels, for a
/// failure no kernel explains or a check that could not run), and repeats until all pass; at most
/// one round per kernel plus one. Returns the failures, described.
fn settle(
    mut checks: impl FnMut() -> Result<Vec<OpCheck>>,
    mut disable: impl FnMut(Option<CudaKernel>),
) -> Vec<String> {
    let mut failures = Vec::new();
    for _ in 0..=CudaKernel::ALL.len() {
        let failed: Vec<OpCheck> = match checks() {
            Ok(all) => all.into_iter().filter(|c| !c.passed()).collect(),
            Err(e) => {
                failures.push(format!("the check could not run: {}; all kernels off", first_line(&e)));
                disable(None);
                break;
            }
        };
        if failed.is_empty() {
            return failures;
        }
        for check in failed {
            failures.push(check.describe());
            disable(check.kernel);
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fused_cpu_ops_agree_with_composite() {
        let checks = check_fused_ops(&Device::Cpu).unwrap();
        assert_eq!(checks.len(), CASES.len() + 1);
        for check in &checks {
            // The optimizer has no fused CPU path: there both sides are the composite update.
            assert_eq!(check.fused, check.op != "adamw", "{}", check.describe());
            assert!(check.passed(), "{}", check.describe());
        }
    }

    /// The bf16 tolerance leaves room: even candle's composite ops with every intermediate in bf16
    /// (on the CPU) stay within it of the f32 reference (measured: at most 1.7e-2, attention's gradients).
    #[test]
    fn composite_ops_in_bf16_pass_the_bf16_tolerance() {
        for case in CASES {
            let check = check_case(case, DType::BF16, &Device::Cpu).unwrap();
            assert!(!check.fused && check.passed(), "{}", check.describe());
            assert!(check.output_error > 0.0, "bf16 rounding must show: {}", check.describe());
        }
    }

    #[test]
    fn a_wrong_op_fails_the_check() {
        let wrong = Case {
            op: OpPair { fused: |t| composite::rms_norm(&t[0], &(&t[1] * 1.01)?, 1e-5), ..RMS_NORM },
            shapes: &[&[3, 37], &[37]],
            wrt: &[0, 1],
        };
        let check = check_case(&wrong, DType::F32, &Device::Cpu).unwrap();
        assert!(!check.passed() && check.output_error > 5e-3, "{}", check.describe());
        assert!(check.describe().ends_with("FAILED"));
    }

    fn failing(op: &'static str, kernel: Option<CudaKernel>) -> OpCheck {
        OpCheck {
            op,
            dtype: DType::BF16,
            fused: true,
            output_error: 1.0,
            gradient_error: 0.0,
            tolerance: BF16_TOLERANCE,
            kernel,
            error: None,
        }
    }

    #[test]
    fn settle_turns_off_each_failing_kernel_and_checks_again() {
        // Round 1: flash attention fails; with it off, the fused softmax takes over and fails too.
        let mut rounds = vec![
            vec![failing("causal_attention", Some(CudaKernel::CausalSoftmax))],
            vec![failing("causal_attention", Some(CudaKernel::FlashAttention))],
        ];
        let mut disabled = Vec::new();
        let failures = settle(|| Ok(rounds.pop().unwrap_or_default()), |k| disabled.push(k));
        assert_eq!(disabled, [Some(CudaKernel::FlashAttention), Some(CudaKernel::CausalSoftmax)]);
        assert_eq!(failures.len(), 2);
        assert!(failures[0].contains("flash_attention") && failures[0].ends_with("FAILED"), "{failures:?}");
    }

    #[test]
    fn settle_turns_everything_off_when_the_check_cannot_run_or_nothing_explains_a_failure() {
        let mut disabled = Vec::new();
        let failures = settle(|| Err(candle_core::Error::Msg("no PTX".into())), |k| disabled.push(k));
        assert_eq!(disabled, [None]);
        assert!(failures[0].contains("no PTX"), "{failures:?}");
        let mut disabled = Vec::new();
        let mut calls = 0;
        let failures = settle(
            || {
                calls += 1;
                Ok(vec![failing("gelu", None)])
            },
            |k| disabled.push(k),
        );
        assert_eq!(calls, CudaKernel::ALL.len() + 1, "bounded");
        assert!(disabled.iter().all(Option::is_none) && failures.len() == calls);
        let passing = || Ok(vec![OpCheck { output_error: 0.0, ..failing("gelu", None) }]);
        assert!(settle(passing, |_| panic!("nothing to turn off")).is_empty());
    }

    #[test]
    fn a_check_whose_fused_side_cannot_run_fails_with_the_reason() {
        let broken = Case {
            op: OpPair { fused: |_| Err(candle_core::Error::Msg("kernel not found\nbacktrace".into())), ..GELU },
            shapes: &[&[5, 7]],
            wrt: &[0],
        };
        let check = check_case(&broken, DType::F32, &Device::Cpu).unwrap();
        assert!(!check.passed());
        assert!(check.describe().contains("could not run: kernel not found  ("), "{}", check.describe());
    }
}
