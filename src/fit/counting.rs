//! Run compute under the three FLOP-counting conventions of docs/DESIGN.md "Counting", for
//! records whose summary.csv lacks the `flops_<convention>` column.

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
        FlopCount::Chinchilla => "3 x Hoffmann et al. 2022 App. F forward count, GELU MLP 4 d_model",
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

/// Forward FLOPs per token of Hoffmann et al. 2022, Appendix F, Table A4 (key_size x
/// n_heads = d_model, feed-forward width 4 d_model).
fn chinchilla_forward_per_token(shape: &RunShape) -> f64 {
    let (d, t, v, h) = (shape.d_model, shape.seq_len, shape.vocab_size, shape.n_heads);
    let ffw = 4.0 * d;
    let embeddings = 2.0 * v * d;
    let projections = 2.0 * 3.0 * d * d;
    let logits = 2.0 * t * d;
    let softmax = 3.0 * h * t;
    let reductions = 2.0 * t * d;
    let output = 2.0 * d * d;
    let dense = 2.0 * (d * ffw + d * ffw);
    let per_layer = projections + logits + softmax + reductions + output + dense;
    let final_logits = 2.0 * d * v;
    embeddings + shape.n_layers * per_layer + final_logits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> RunShape {
        RunShape {
            params_nonembedding: 12.0 * 2.0 * 64.0 * 64.0,
            params_matmul: 12.0 * 2.0 * 64.0 * 64.0 + 64.0 * 100.0,
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
}
