//! Run compute under the three FLOP-counting conventions of docs/DESIGN.md "Counting", for
//! records whose summary.csv lacks the `flops_<convention>` column. The formulas are
//! `crate::counting`'s; this fills them from a summary row's counts.

use crate::counting::{chinchilla_forward_flops_per_token, ChinchillaShape, MlpKind};
use crate::fit::options::FlopCount;

/// The shape figures of one run, as summary.csv records them (NaN: unknown).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunShape {
    pub params_nonembedding: f64,
    pub params_matmul: f64,
    pub n_layers: f64,
    pub d_model: f64,
    pub n_heads: f64,
    pub seq_len: f64,
    pub vocab_size: f64,
}

/// How `run_flops` derives C under `convention` (for the warning).
pub(crate) fn derivation(convention: FlopCount) -> &'static str {
    match convention {
        FlopCount::SixN => "6 params_nonembedding tokens",
        FlopCount::MatmulAttn => "(6 params_matmul + 6 n_layers seq_len d_model) tokens",
        FlopCount::Chinchilla => "3 x Hoffmann et al. 2022 App. F forward count, MLP told from params_nonembedding",
    }
}

/// Total compute of a run of `tokens` tokens; `flops_6n` is the recorded 6n compute if any.
/// Returns NaN when a count it needs is unknown.
pub(crate) fn run_flops(convention: FlopCount, shape: &RunShape, tokens: f64, flops_6n: Option<f64>) -> f64 {
    match convention {
        FlopCount::SixN => match flops_6n {
            Some(c) if c.is_finite() && c > 0.0 => c,
            _ => 6.0 * shape.params_nonembedding * tokens,
        },
        FlopCount::MatmulAttn => {
            let attention = 6.0 * shape.n_layers * shape.seq_len * shape.d_model;
            (6.0 * shape.params_matmul + attention) * tokens
        }
        FlopCount::Chinchilla => 3.0 * chinchilla_forward_per_token(shape) * tokens,
    }
}

/// Forward FLOPs per token of Hoffmann et al. 2022, Appendix F, for the MLP (GELU or SwiGLU)
/// whose non-embedding count at the run's width and depth is the recorded one; NaN when the
/// counts match neither (or are unknown).
fn chinchilla_forward_per_token(shape: &RunShape) -> f64 {
    let whole = |x: f64| (x.is_finite() && x >= 0.0 && x.fract() == 0.0).then_some(x as u64);
    let (Some(params), Some(d_model), Some(n_layers)) =
        (whole(shape.params_nonembedding), whole(shape.d_model), whole(shape.n_layers))
    else {
        return f64::NAN;
    };
    let Some(mlp) = MlpKind::from_counts(params, d_model, n_layers) else {
        return f64::NAN;
    };
    chinchilla_forward_flops_per_token(&ChinchillaShape {
        vocab_size: shape.vocab_size,
        d_model: shape.d_model,
        n_layers: shape.n_layers,
        n_heads: shape.n_heads,
        seq_len: shape.seq_len,
        mlp_matrix_params: mlp.matrix_params(d_model) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> RunShape {
        RunShape {
            // The GELU model's exact count: 12 L d^2 + 2 L d + d.
            params_nonembedding: 12.0 * 2.0 * 64.0 * 64.0 + 2.0 * 2.0 * 64.0 + 64.0,
            params_matmul: 12.0 * 2.0 * 64.0 * 64.0 + 2.0 * 2.0 * 64.0 + 64.0 + 64.0 * 100.0,
            n_layers: 2.0,
            d_model: 64.0,
            n_heads: 4.0,
            seq_len: 32.0,
            vocab_size: 100.0,
        }
    }

    #[test]
    fn six_n_prefers_the_recorded_compute() {
        let s = shape();
        assert_eq!(run_flops(FlopCount::SixN, &s, 10.0, Some(5.0)), 5.0);
        assert_eq!(run_flops(FlopCount::SixN, &s, 10.0, None), 60.0 * s.params_nonembedding);
    }

    #[test]
    fn matmul_attn_adds_the_head_and_attention_scores() {
        let s = shape();
        let per_token = 6.0 * s.params_matmul + 6.0 * 2.0 * 32.0 * 64.0;
        assert_eq!(run_flops(FlopCount::MatmulAttn, &s, 3.0, None), 3.0 * per_token);
    }

    #[test]
    fn chinchilla_count_matches_appendix_f_by_hand() {
        // d=64, T=32, V=100, H=4, L=2: embeddings 12800; per layer 24576 + 4096 + 384
        // + 4096 + 8192 + 65536 = 106880; logits 12800; forward = 12800 + 213760 + 12800.
        let forward = 12800.0 + 2.0 * 106880.0 + 12800.0;
        assert_eq!(run_flops(FlopCount::Chinchilla, &shape(), 1.0, None), 3.0 * forward);
    }

    #[test]
    fn chinchilla_count_of_a_swiglu_run_is_the_models() {
        // A SwiGLU run without the flops_chinchilla column: the derived compute is the model's
        // own count (d = 64, T = 32, V = 100, H = 4, L = 2; SwiGLU hidden 192, so the dense
        // block is 2 x 3 x 64 x 192 = 73728 per layer, not GELU's 65536).
        let model = crate::model::ModelShape {
            vocab_size: 100,
            d_model: 64,
            n_layers: 2,
            n_heads: 4,
            seq_len: 32,
            mlp: MlpKind::Swiglu,
            tie_embeddings: false,
        };
        let s = RunShape { params_nonembedding: model.params_nonembedding() as f64, ..shape() };
        let forward = 12800.0 + 2.0 * (24576.0 + 4096.0 + 384.0 + 4096.0 + 8192.0 + 73728.0) + 12800.0;
        assert_eq!(model.chinchilla_forward_flops_per_token(), forward);
        assert_eq!(run_flops(FlopCount::Chinchilla, &s, 10.0, None), 30.0 * forward);
    }

    #[test]
    fn chinchilla_count_is_unknown_when_the_counts_fit_no_mlp() {
        let s = RunShape { params_nonembedding: 12345.0, ..shape() };
        assert!(run_flops(FlopCount::Chinchilla, &s, 1.0, None).is_nan());
    }
}
