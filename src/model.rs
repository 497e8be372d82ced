//! The decoder-only transformer (docs/DESIGN.md "The model"), its exact parameter counts and its
//! FLOPs per token under the three counting conventions (docs/DESIGN.md "Counting").
//!
//! Pre-norm, no biases: `x += attn(rmsnorm(x)); x += mlp(rmsnorm(x))`, final RMSNorm, untied
//! head by default. Rotary embeddings on q and k, causal multi-head attention, GELU MLP of
//! 4·d_model (or SwiGLU of 8·d_model/3 rounded up to a multiple of 64). Master weights are kept
//! in `Model::dtype` (f32, or f64 for the gradient check); matmuls run in `matmul_dtype` (bf16 on
//! CUDA); norms, the residual stream and the loss stay in the master dtype.

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::counting::{self as counts, ChinchillaShape, ParamCount};
pub use crate::counting::{FlopConvention, MlpKind};
use crate::error::{Error, Result};
use crate::ops;
use crate::rng::SplitMix64;

const NORM_EPS: f64 = 1e-6;
const INIT_STD: f64 = 0.02;
const ROPE_BASE: f64 = 10_000.0;

/// The full shape of a model: everything its counts and FLOPs depend on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelShape {
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub seq_len: usize,
    pub mlp: MlpKind,
    pub tie_embeddings: bool,
}

/// FLOPs per token under each convention, as recorded in run.json.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlopsPerToken {
    #[serde(rename = "6n")]
    pub six_n: f64,
    pub matmul_attn: f64,
    pub chinchilla: f64,
}

/// `L{layers}-d{width}`: a model size as run ids, warnings and tables name it.
pub fn size_label(n_layers: usize, d_model: usize) -> String {
    format!("L{n_layers}-d{d_model}")
}

impl ModelShape {
    /// Checks the shape is buildable; the error names the offending field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("seq_len", self.seq_len),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("model.{name} must be positive"));
            }
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(format!(
                "model.d_model = {} is not divisible by model.n_heads = {}",
                self.d_model, self.n_heads
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(format!(
                "model.d_model / model.n_heads = {} must be even for rotary embeddings",
                self.head_dim()
            ));
        }
        if self.vocab_size > u32::MAX as usize {
            return Err("model.vocab_size is too large".into());
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// Hidden width of the MLP.
    pub fn mlp_hidden(&self) -> usize {
        self.mlp.hidden(self.d_model as u64) as usize
    }

    /// Every weight in the blocks plus the final norm: 12·L·d² + 2·L·d + d for the GELU MLP.
    pub fn params_nonembedding(&self) -> u64 {
        counts::nonembedding_params(self.d_model as u64, self.n_layers as u64, self.mlp)
    }

    /// Everything: blocks, token embedding and (when untied) the output head.
    pub fn params_total(&self) -> u64 {
        let table = (self.vocab_size * self.d_model) as u64;
        let head = if self.tie_embeddings { 0 } else { table };
        self.params_nonembedding() + table + head
    }

    /// Non-embedding weights plus the output head's matmul (nanochat's Kaplan-style count).
    pub fn params_matmul(&self) -> u64 {
        self.params_nonembedding() + (self.vocab_size * self.d_model) as u64
    }

    /// N under `count`.
    pub fn params(&self, count: ParamCount) -> u64 {
        match count {
            ParamCount::Nonembedding => self.params_nonembedding(),
            ParamCount::Total => self.params_total(),
            ParamCount::Matmul => self.params_matmul(),
        }
    }

    pub fn flops_per_token(&self) -> FlopsPerToken {
        FlopsPerToken {
            six_n: self.flops_per_token_for(FlopConvention::SixN),
            matmul_attn: self.flops_per_token_for(FlopConvention::MatmulAttn),
            chinchilla: self.flops_per_token_for(FlopConvention::Chinchilla),
        }
    }

    pub fn flops_per_token_for(&self, convention: FlopConvention) -> f64 {
        let (l, t, d) = (self.n_layers as f64, self.seq_len as f64, self.d_model as f64);
        match convention {
            FlopConvention::SixN => 6.0 * self.params_nonembedding() as f64,
            FlopConvention::MatmulAttn => 6.0 * self.params_matmul() as f64 + 6.0 * l * t * d,
            FlopConvention::Chinchilla => 3.0 * self.chinchilla_forward_flops_per_token(),
        }
    }

    /// Forward FLOPs per token, Hoffmann et al. 2022, Appendix F
    /// ([`counts::chinchilla_forward_flops_per_token`], with this model's MLP).
    pub fn chinchilla_forward_flops_per_token(&self) -> f64 {
        counts::chinchilla_forward_flops_per_token(&ChinchillaShape {
            vocab_size: self.vocab_size as f64,
            d_model: self.d_model as f64,
            n_layers: self.n_layers as f64,
            n_heads: self.n_heads as f64,
            seq_len: self.seq_len as f64,
            mlp_matrix_params: self.mlp.matrix_params(self.d_model as u64) as f64,
        })
    }
}

/// What a parameter is, which decides its optimiser group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// A weight matrix inside a block or the output head (decayed).
    Matrix,
    /// An RMSNorm gain (never decayed).
    NormGain,
    /// The token embedding table (decay configurable).
    Embedding,
}

/// A named trainable tensor.
pub struct Param {
    pub name: String,
    pub var: Var,
    pub kind: ParamKind,
}

struct RmsNorm {
    weight: Tensor, // (d)
}

impl RmsNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(ops::rms_norm(x, &self.weight, NORM_EPS)?)
    }
}

struct Attention {
    qkv: Tensor,  // (3d, d): rows [q; k; v]
    proj: Tensor, // (d, d)
    n_heads: usize,
}

impl Attention {
    fn forward(&self, x: &Tensor, rope: &Rope, mm: DType) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let hd = d / self.n_heads;
        let qkv = linear(x, &self.qkv, mm)?; // (B, T, 3d)
        let qkv = qkv.reshape((b, t, 3, self.n_heads, hd))?;
        let split = |i: usize| -> Result<Tensor> {
            // (B, T, H, hd) -> (B, H, T, hd): a strided view; rope and attention read it in place.
            Ok(qkv.narrow(2, i, 1)?.squeeze(2)?.transpose(1, 2)?)
        };
        let q = ops::rope(&split(0)?, &rope.cos, &rope.sin)?;
        let k = ops::rope(&split(1)?, &rope.cos, &rope.sin)?;
        let v = split(2)?;
        let y = ops::causal_attention(&q.to_dtype(mm)?, &k.to_dtype(mm)?, &v.to_dtype(mm)?)?; // (B, H, T, hd)
        let y = y.to_dtype(x.dtype())?.transpose(1, 2)?.reshape((b, t, d))?;
        linear(&y, &self.proj, mm)
    }
}

struct Mlp {
    up: Tensor,   // (hidden, d) for GELU; (2·hidden, d) = [gate; up] for SwiGLU
    down: Tensor, // (d, hidden)
    kind: MlpKind,
}

impl Mlp {
    fn forward(&self, x: &Tensor, mm: DType) -> Result<Tensor> {
        let h = linear(x, &self.up, mm)?;
        let h = match self.kind {
            MlpKind::Gelu => ops::gelu(&h)?,
            MlpKind::Swiglu => {
                let hidden = h.dim(2)? / 2;
                let gate = h.narrow(2, 0, hidden)?;
                let up = h.narrow(2, hidden, hidden)?;
                (candle_nn::ops::silu(&gate)? * up)?
            }
        };
        linear(&h, &self.down, mm)
    }
}

struct Block {
    norm_attn: RmsNorm,
    attn: Attention,
    norm_mlp: RmsNorm,
    mlp: Mlp,
}

impl Block {
    fn forward(&self, x: &Tensor, rope: &Rope, mm: DType) -> Result<Tensor> {
        let x = (x + self.attn.forward(&self.norm_attn.forward(x)?, rope, mm)?)?;
        Ok((&x + self.mlp.forward(&self.norm_mlp.forward(&x)?, mm)?)?)
    }
}

/// Rotary tables for interleaved pairs: angle[t, i] = t · base^(−2i/hd) (Su et al. 2021, eq. 15).
struct Rope {
    cos: Tensor, // (T, hd/2)
    sin: Tensor, // (T, hd/2)
}

impl Rope {
    fn new(seq_len: usize, head_dim: usize, dtype: DType, device: &Device) -> Result<Self> {
        let half = head_dim / 2;
        let mut angles = Vec::with_capacity(seq_len * half);
        for pos in 0..seq_len {
            for i in 0..half {
                let inv_freq = 1.0 / ROPE_BASE.powf(2.0 * i as f64 / head_dim as f64);
                angles.push(pos as f64 * inv_freq);
            }
        }
        let table = |f: fn(f64) -> f64| -> Result<Tensor> {
            let values: Vec<f64> = angles.iter().map(|&a| f(a)).collect();
            Ok(Tensor::from_vec(values, (seq_len, half), device)?.to_dtype(dtype)?)
        };
        Ok(Rope { cos: table(f64::cos)?, sin: table(f64::sin)? })
    }
}

/// `x (..., in) · w (out, in)ᵀ`, with operands cast to the matmul dtype and the result cast back.
fn linear(x: &Tensor, w: &Tensor, mm: DType) -> Result<Tensor> {
    if x.dtype() == mm {
        return Ok(ops::linear(x, w)?);
    }
    let y = ops::linear(&x.to_dtype(mm)?, &w.to_dtype(mm)?)?;
    Ok(y.to_dtype(x.dtype())?)
}

/// The transformer: parameters in a fixed order, plus the rotary tables.
pub struct Model {
    pub shape: ModelShape,
    pub dtype: DType,
    pub matmul_dtype: DType,
    params: Vec<Param>,
    wte: Tensor, // (V, d)
    blocks: Vec<Block>,
    norm_final: RmsNorm,
    lm_head: Tensor, // (V, d); the same tensor as wte when tied
    rope: Rope,
}

impl Model {
    /// Builds a freshly initialised model: normal(0, 0.02), residual output projections scaled
    /// by 1/sqrt(2·n_layers) (GPT-2, Radford et al. 2019, section 2.3), norm gains 1.
    /// The same seed gives the same weights on every device.
    pub fn new(shape: &ModelShape, seed: u64, dtype: DType, matmul_dtype: DType, device: &Device) -> Result<Self> {
        shape.validate().map_err(Error::Usage)?;
        let mut builder = ParamBuilder { seed, dtype, device, params: Vec::new() };
        let (d, v) = (shape.d_model, shape.vocab_size);
        let residual_std = INIT_STD / (2.0 * shape.n_layers as f64).sqrt();
        let wte = builder.normal("wte", (v, d), INIT_STD, ParamKind::Embedding)?;
        let mut blocks = Vec::with_capacity(shape.n_layers);
        for layer in 0..shape.n_layers {
            let p = format!("blocks.{layer}");
            let up_rows = match shape.mlp {
                MlpKind::Gelu => shape.mlp_hidden(),
                MlpKind::Swiglu => 2 * shape.mlp_hidden(),
            };
            blocks.push(Block {
                norm_attn: RmsNorm { weight: builder.ones(&format!("{p}.norm_attn"), d)? },
                attn: Attention {
                    qkv: builder.normal(&format!("{p}.attn.qkv"), (3 * d, d), INIT_STD, ParamKind::Matrix)?,
                    proj: builder.normal(&format!("{p}.attn.proj"), (d, d), residual_std, ParamKind::Matrix)?,
                    n_heads: shape.n_heads,
                },
                norm_mlp: RmsNorm { weight: builder.ones(&format!("{p}.norm_mlp"), d)? },
                mlp: Mlp {
                    up: builder.normal(&format!("{p}.mlp.up"), (up_rows, d), INIT_STD, ParamKind::Matrix)?,
                    down: builder.normal(
                        &format!("{p}.mlp.down"),
                        (d, shape.mlp_hidden()),
                        residual_std,
                        ParamKind::Matrix,
                    )?,
                    kind: shape.mlp,
                },
            });
        }
        let norm_final = RmsNorm { weight: builder.ones("norm_final", d)? };
        let lm_head = if shape.tie_embeddings {
            wte.clone()
        } else {
            builder.normal("lm_head", (v, d), INIT_STD, ParamKind::Matrix)?
        };
        let rope = Rope::new(shape.seq_len, shape.head_dim(), dtype, device)?;
        let params = builder.params;
        Ok(Model { shape: shape.clone(), dtype, matmul_dtype, params, wte, blocks, norm_final, lm_head, rope })
    }

    /// The trainable parameters in a fixed order (the order of the checkpoint and the optimiser).
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// Logits (B·T, V) in the master dtype for token ids (B, T) u32.
    pub fn logits(&self, ids: &Tensor) -> Result<Tensor> {
        linear(&self.final_hidden(ids)?, &self.lm_head, self.matmul_dtype) // (B·T, V)
    }

    /// Mean cross-entropy (nats per token, f32 or f64 scalar) of predicting targets (B, T) from ids (B, T).
    /// The logits stay in the matmul dtype (they were rounded to it by the head's matmul anyway):
    /// the cross-entropy computes in f32 from bf16 logits, and on CUDA reads them without an f32 copy.
    pub fn loss(&self, ids: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let x = self.final_hidden(ids)?.to_dtype(self.matmul_dtype)?; // (B·T, d)
        let logits = ops::linear(&x, &self.lm_head.to_dtype(self.matmul_dtype)?)?; // (B·T, V)
        Ok(ops::cross_entropy(&logits, &targets.flatten_all()?)?)
    }

    /// The final norm's output (B·T, d) in the master dtype for token ids (B, T) u32.
    fn final_hidden(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if t > self.shape.seq_len {
            return Err(Error::Failed(format!("sequence of {t} tokens is longer than seq_len {}", self.shape.seq_len)));
        }
        let rope = if t == self.shape.seq_len { self.rope_ref() } else { self.rope_prefix(t)? };
        let mut x = self.wte.embedding(&ids.flatten_all()?)?.reshape((b, t, self.shape.d_model))?; // (B, T, d)
        for block in &self.blocks {
            x = block.forward(&x, &rope, self.matmul_dtype)?;
        }
        Ok(self.norm_final.forward(&x)?.reshape((b * t, self.shape.d_model))?) // (B·T, d)
    }

    fn rope_ref(&self) -> Rope {
        Rope { cos: self.rope.cos.clone(), sin: self.rope.sin.clone() }
    }

    fn rope_prefix(&self, t: usize) -> Result<Rope> {
        Ok(Rope { cos: self.rope.cos.narrow(0, 0, t)?, sin: self.rope.sin.narrow(0, 0, t)? })
    }
}

/// Creates parameters in order, each from its own seeded stream so that the values of one
/// parameter do not depend on which others exist.
struct ParamBuilder<'a> {
    seed: u64,
    dtype: DType,
    device: &'a Device,
    params: Vec<Param>,
}

impl ParamBuilder<'_> {
    fn normal(&mut self, name: &str, shape: (usize, usize), std: f64, kind: ParamKind) -> Result<Tensor> {
        let mut rng = SplitMix64::for_stream(self.seed, name);
        let values: Vec<f64> = (0..shape.0 * shape.1).map(|_| rng.normal() * std).collect();
        let t = Tensor::from_vec(values, shape, self.device)?.to_dtype(self.dtype)?;
        self.push(name, t, kind)
    }

    fn ones(&mut self, name: &str, size: usize) -> Result<Tensor> {
        let t = Tensor::ones(size, self.dtype, self.device)?;
        self.push(name, t, ParamKind::NormGain)
    }

    fn push(&mut self, name: &str, t: Tensor, kind: ParamKind) -> Result<Tensor> {
        let var = Var::from_tensor(&t)?;
        let tensor = var.as_tensor().clone();
        self.params.push(Param { name: name.to_string(), var, kind });
        Ok(tensor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(mlp: MlpKind, tie: bool) -> ModelShape {
        ModelShape { vocab_size: 11, d_model: 8, n_layers: 2, n_heads: 2, seq_len: 5, mlp, tie_embeddings: tie }
    }

    fn counted(model: &Model, skip: &[&str]) -> u64 {
        model.params().iter().filter(|p| !skip.contains(&p.name.as_str())).map(|p| p.var.elem_count() as u64).sum()
    }

    #[test]
    fn analytic_counts_equal_the_tensors() {
        for mlp in [MlpKind::Gelu, MlpKind::Swiglu] {
            for tie in [false, true] {
                let s = ModelShape { d_model: 64, n_heads: 4, ..shape(mlp, tie) };
                let m = Model::new(&s, 0, DType::F32, DType::F32, &Device::Cpu).unwrap();
                assert_eq!(s.params_total(), counted(&m, &[]), "{mlp:?} tie={tie}");
                assert_eq!(s.params_nonembedding(), counted(&m, &["wte", "lm_head"]));
            }
        }
        // The docs/DESIGN.md formula for the GELU MLP: 12·L·d² plus 2·L·d + d norm gains, on the
        // reference shape (d 256, 4 layers, 4 heads, seq 256, vocab 2048).
        let s = crate::diag::bench::reference_shape();
        assert_eq!(s.params_nonembedding(), 12 * 4 * 256 * 256 + 2 * 4 * 256 + 256);
        assert_eq!(s.params_matmul(), s.params_nonembedding() + 2048 * 256);
        assert_eq!(s.params_total(), s.params_nonembedding() + 2 * 2048 * 256);
        // SwiGLU hidden: 8·256/3 = 682.67 -> 704 (multiple of 64).
        assert_eq!(ModelShape { mlp: MlpKind::Swiglu, ..s.clone() }.mlp_hidden(), 704);
        let f = s.flops_per_token();
        assert_eq!(f.six_n, 6.0 * s.params_nonembedding() as f64);
        assert_eq!(f.matmul_attn, 6.0 * s.params_matmul() as f64 + 6.0 * 4.0 * 256.0 * 256.0);
        // Hoffmann et al. Appendix F, term by term for this shape.
        let (v, d, t, h, l) = (2048.0, 256.0, 256.0, 4.0, 4.0);
        let fwd = 2.0 * v * d
            + l * (6.0 * d * d + 2.0 * t * d + 3.0 * h * t + 2.0 * t * d + 2.0 * d * d + 2.0 * 2.0 * d * 4.0 * d)
            + 2.0 * d * v;
        assert!((f.chinchilla - 3.0 * fwd).abs() < 1e-6);
    }

    #[test]
    fn bad_shapes_name_the_field() {
        let s = ModelShape { d_model: 10, n_heads: 4, ..shape(MlpKind::Gelu, false) };
        assert!(s.validate().unwrap_err().contains("not divisible by model.n_heads"));
        let s = ModelShape { n_layers: 0, ..shape(MlpKind::Gelu, false) };
        assert!(s.validate().unwrap_err().contains("model.n_layers"));
    }

    #[test]
    fn same_seed_same_weights_and_initial_loss_near_ln_vocab() {
        let s = ModelShape { vocab_size: 512, d_model: 32, n_heads: 4, seq_len: 16, ..shape(MlpKind::Gelu, false) };
        let a = Model::new(&s, 3, DType::F32, DType::F32, &Device::Cpu).unwrap();
        let b = Model::new(&s, 3, DType::F32, DType::F32, &Device::Cpu).unwrap();
        let ids =
            Tensor::from_vec((0..64u32).map(|i| (i * 37) % 512).collect::<Vec<_>>(), (4, 16), &Device::Cpu).unwrap();
        let tg = Tensor::from_vec((0..64u32).map(|i| (i * 91 + 5) % 512).collect::<Vec<_>>(), (4, 16), &Device::Cpu)
            .unwrap();
        let la = a.loss(&ids, &tg).unwrap().to_scalar::<f32>().unwrap();
        let lb = b.loss(&ids, &tg).unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(la, lb);
        assert!((la as f64 - (512f64).ln()).abs() < 0.05, "initial loss {la} vs ln V {}", (512f64).ln());
    }

    // The finite-difference gradient check is diag::devcheck::gradient_check (run on every device).
}
