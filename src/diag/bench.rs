//! `sweeplaw bench`: training throughput of one model shape on random tokens — tokens/s, model
//! FLOP/s (matmul_attn convention) and the fraction of the machine's measured matmul peak.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use crate::config::AdamWConfig;
use crate::device::ComputeDevice;
use crate::error::{Error, Result};
use crate::model::{FlopConvention, MlpKind, Model, ModelShape};
use crate::rng::SplitMix64;
use crate::train::optim::AdamW;

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub shape: ModelShape,
    pub batch_size: usize,
    pub steps: usize,
    pub warmup_steps: usize,
}

/// What was measured (the `--json` line).
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    pub device: String,
    pub matmul_dtype: String,
    pub threads: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub seq_len: usize,
    pub vocab_size: usize,
    pub batch_size: usize,
    pub steps: usize,
    /// "fused" (the fused CPU ops or CUDA kernels) or "composite" (candle ops only).
    pub ops: String,
    pub params_total: u64,
    pub params_nonembedding: u64,
    pub step_ms: f64,
    /// Where a step's time goes: forward (to the loss), backward, clipping + AdamW.
    pub forward_ms: f64,
    pub backward_ms: f64,
    pub optimizer_ms: f64,
    pub tokens_per_s: f64,
    pub model_flops_per_s: f64,
    /// Best measured dense matmul rate on this device and dtype.
    pub peak_flops_per_s: f64,
    /// model_flops_per_s / peak_flops_per_s.
    pub utilisation: f64,
    pub final_loss: f64,
}

/// Refuses a benchmark (`bench`, `bench --ops`) that cannot run: an invalid shape, zero steps
/// or batch, a batch too large to index, or a model and batch whose estimated memory exceeds the
/// device's (which would otherwise abort the process mid-allocation).
pub fn check_shape(shape: &ModelShape, batch_size: usize, steps: usize, device: &ComputeDevice) -> Result<()> {
    shape.validate().map_err(Error::Usage)?;
    if steps == 0 || batch_size == 0 {
        return Err(Error::Usage("--steps and --batch-size must be positive".into()));
    }
    crate::data::check_batch_shape(batch_size, shape.seq_len)
        .map_err(|e| Error::Usage(format!("--batch-size and --seq-len: {e}")))?;
    let bf16_matmuls = device.matmul_dtype == DType::BF16;
    crate::plan::memory::check_shape_fits("the benchmark model", shape, batch_size, bf16_matmuls, &device.name)
        .map_err(Error::Usage)
}

/// Trains `steps` timed steps (after `warmup_steps` untimed ones) and measures the matmul peak.
pub fn run_bench(options: &BenchOptions, device: &ComputeDevice) -> Result<BenchResult> {
    let shape = &options.shape;
    check_shape(shape, options.batch_size, options.steps, device)?;
    crate::ops::check::verify_cuda_kernels_once(&device.device);
    let model = Model::new(shape, 0, DType::F32, device.matmul_dtype, &device.device)?;
    let mut optimizer = AdamW::new(model.params(), AdamWConfig::default())?;
    let mut rng = SplitMix64::new(0);
    let mut final_loss = f64::NAN;
    let mut phases = [0.0f64; 3]; // forward, backward, optimizer (seconds, timed steps only)
    for step in 0..options.warmup_steps + options.steps {
        let (ids, targets) = random_batch(&mut rng, options.batch_size, shape, &device.device)?;
        let t0 = Instant::now();
        let loss = model.loss(&ids, &targets)?;
        final_loss = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        let t1 = Instant::now();
        let grads = loss.backward()?;
        device.device.synchronize()?;
        let t2 = Instant::now();
        optimizer.step(model.params(), &grads, 1e-3)?;
        device.device.synchronize()?;
        if step >= options.warmup_steps {
            phases[0] += (t1 - t0).as_secs_f64();
            phases[1] += (t2 - t1).as_secs_f64();
            phases[2] += t2.elapsed().as_secs_f64();
        }
    }
    let timed: f64 = phases.iter().sum();
    let tokens = (options.steps * options.batch_size * shape.seq_len) as f64;
    let tokens_per_s = tokens / timed;
    let model_flops_per_s = tokens_per_s * shape.flops_per_token_for(FlopConvention::MatmulAttn);
    let peak_flops_per_s = matmul_peak(device)?;
    Ok(BenchResult {
        device: device.name.clone(),
        matmul_dtype: format!("{:?}", device.matmul_dtype).to_lowercase(),
        threads: candle_core::utils::get_num_threads(),
        d_model: shape.d_model,
        n_layers: shape.n_layers,
        n_heads: shape.n_heads,
        seq_len: shape.seq_len,
        vocab_size: shape.vocab_size,
        batch_size: options.batch_size,
        steps: options.steps,
        ops: crate::ops::ops_in_use(&device.device),
        params_total: shape.params_total(),
        params_nonembedding: shape.params_nonembedding(),
        step_ms: 1000.0 * timed / options.steps as f64,
        forward_ms: 1000.0 * phases[0] / options.steps as f64,
        backward_ms: 1000.0 * phases[1] / options.steps as f64,
        optimizer_ms: 1000.0 * phases[2] / options.steps as f64,
        tokens_per_s,
        model_flops_per_s,
        peak_flops_per_s,
        utilisation: model_flops_per_s / peak_flops_per_s,
        final_loss,
    })
}

fn random_batch(rng: &mut SplitMix64, batch: usize, shape: &ModelShape, device: &Device) -> Result<(Tensor, Tensor)> {
    let n = batch * shape.seq_len;
    let mut draw = || (0..n).map(|_| rng.below(shape.vocab_size as u64) as u32).collect::<Vec<_>>();
    let ids = Tensor::from_vec(draw(), (batch, shape.seq_len), device)?;
    let targets = Tensor::from_vec(draw(), (batch, shape.seq_len), device)?;
    Ok((ids, targets))
}

/// Best of several square matmuls in the matmul dtype: 1024³ on the CPU, 8192³ on a GPU.
fn matmul_peak(device: &ComputeDevice) -> Result<f64> {
    let n = if device.device.is_cpu() { 1024 } else { 8192 };
    let a = Tensor::ones((n, n), DType::F32, &device.device)?.to_dtype(device.matmul_dtype)?;
    let b = a.clone();
    let mut best = f64::INFINITY;
    for _ in 0..6 {
        let started = Instant::now();
        let c = a.matmul(&b)?;
        device.device.synchronize()?;
        best = best.min(started.elapsed().as_secs_f64());
        drop(c);
    }
    Ok(2.0 * (n as f64).powi(3) / best)
}

impl BenchResult {
    /// Human-readable lines for the terminal.
    pub fn describe(&self) -> String {
        format!(
            "shape d={} L={} H={} T={} V={} B={} ({} params, {} non-embedding) on {} ({} matmuls, {} ops, {} threads)\n\
             step {:.1} ms (forward {:.1}, backward {:.1}, optimizer {:.1})  {:.0} tokens/s  model {:.2} GFLOP/s (matmul_attn)  peak {:.2} GFLOP/s  utilisation {:.1}%",
            self.d_model,
            self.n_layers,
            self.n_heads,
            self.seq_len,
            self.vocab_size,
            self.batch_size,
            self.params_total,
            self.params_nonembedding,
            self.device,
            self.matmul_dtype,
            self.ops,
            self.threads,
            self.step_ms,
            self.forward_ms,
            self.backward_ms,
            self.optimizer_ms,
            self.tokens_per_s,
            self.model_flops_per_s / 1e9,
            self.peak_flops_per_s / 1e9,
            100.0 * self.utilisation
        )
    }
}

/// The reference shape of the speed target (README "Performance").
pub fn reference_shape() -> ModelShape {
    ModelShape {
        vocab_size: 2048,
        d_model: 256,
        n_layers: 4,
        n_heads: 4,
        seq_len: 256,
        mlp: MlpKind::Gelu,
        tie_embeddings: false,
    }
}
