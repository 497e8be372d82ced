//! The counting conventions (docs/DESIGN.md "Counting"): which parameter count is N, which FLOP
//! convention gives C, and the formulas behind them. One home, so that the model's run.json, the
//! plan's budgets, the fit's derived compute and the command line agree on every name and number.
//!
//! Each convention is parsed in one place ([`FromStr`], which serde goes through too): an
//! unknown name is an [`UnknownName`] error listing the valid ones, never a silent default.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A name that is not one of a convention's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{value}' (expected one of: {expected})")]
pub struct UnknownName {
    /// What kind of name it should have been ("parameter count", "FLOP count", "MLP kind").
    pub what: &'static str,
    pub value: String,
    /// The valid names, comma-separated.
    pub expected: &'static str,
}

/// Defines `as_str`, `NAMES`, `FromStr` (trimmed, case-insensitive), `Display` and serde as the
/// name for a convention enum.
macro_rules! named_enum {
    ($ty:ident, $what:literal, $($variant:ident => $name:literal),+ $(,)?) => {
        impl $ty {
            /// Every variant, in the order of `NAMES`.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The name on the command line, in configs and in the records.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(text: &str) -> Result<Self, UnknownName> {
                match text.trim().to_ascii_lowercase().as_str() {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(UnknownName {
                        what: $what,
                        value: text.to_string(),
                        expected: concat!($($name, ", "),+).trim_end_matches(", "),
                    }),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Which parameter count is N. The default (a fit without `--params`, a fit.json without
/// "param_count") is nonembedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ParamCount {
    /// The blocks and the final norm; no token embedding, no head (Kaplan et al. 2020).
    #[default]
    Nonembedding,
    /// Every weight, embeddings and head included.
    Total,
    /// Non-embedding plus the output head's matmul.
    Matmul,
}

named_enum!(ParamCount, "parameter count", Nonembedding => "nonembedding", Total => "total", Matmul => "matmul");

impl ParamCount {
    /// The summary.csv column holding this count.
    pub fn column(self) -> &'static str {
        match self {
            ParamCount::Nonembedding => "params_nonembedding",
            ParamCount::Total => "params_total",
            ParamCount::Matmul => "params_matmul",
        }
    }
}

/// Which FLOP-counting convention gives C (FLOPs per token; a run's C is that times its tokens).
/// The default (a sweep config without `budget.flop_convention`, a fit without `--flops`) is 6n.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FlopConvention {
    /// 6·params_nonembedding (Kaplan et al. 2020, C ≈ 6NBS).
    #[default]
    SixN,
    /// 6·params_matmul + 6·L·T·d (the head and the attention scores included).
    MatmulAttn,
    /// 3 × the forward count of Hoffmann et al. 2022, Appendix F.
    Chinchilla,
}

named_enum!(FlopConvention, "FLOP count", SixN => "6n", MatmulAttn => "matmul_attn", Chinchilla => "chinchilla");

impl FlopConvention {
    /// The summary.csv column with a run's total compute under this convention.
    pub fn column(self) -> &'static str {
        match self {
            FlopConvention::SixN => "flops_6n",
            FlopConvention::MatmulAttn => "flops_matmul_attn",
            FlopConvention::Chinchilla => "flops_chinchilla",
        }
    }
}

/// Which feed-forward block the model uses; it decides the MLP's weights and so every count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MlpKind {
    /// GELU (erf) with hidden 4·d_model, two matrices.
    #[default]
    Gelu,
    /// SwiGLU with hidden 8·d_model/3 rounded up to a multiple of 64, three matrices.
    Swiglu,
}

named_enum!(MlpKind, "MLP kind", Gelu => "gelu", Swiglu => "swiglu");

impl MlpKind {
    /// Hidden width of the MLP at width `d_model`.
    pub fn hidden(self, d_model: u64) -> u64 {
        match self {
            MlpKind::Gelu => 4 * d_model,
            MlpKind::Swiglu => (8 * d_model).div_ceil(3).div_ceil(64) * 64,
        }
    }

    /// Weights of the MLP's matrices in one block at width `d_model`.
    pub fn matrix_params(self, d_model: u64) -> u64 {
        let matrices = match self {
            MlpKind::Gelu => 2,
            MlpKind::Swiglu => 3,
        };
        matrices * d_model * self.hidden(d_model)
    }

    /// The MLP kind whose non-embedding count at (`d_model`, `n_layers`) is `params_nonembedding`
    /// (how the fit tells a run's MLP from summary.csv, which records the counts, not the kind).
    pub fn from_counts(params_nonembedding: u64, d_model: u64, n_layers: u64) -> Option<MlpKind> {
        MlpKind::ALL.iter().copied().find(|&mlp| nonembedding_params(d_model, n_layers, mlp) == params_nonembedding)
    }
}

/// Every weight in the blocks plus the final norm: per block 4·d² (attention) + the MLP's
/// matrices + 2·d (two norm gains), plus d for the final norm; 12·L·d² + 2·L·d + d for GELU.
pub fn nonembedding_params(d_model: u64, n_layers: u64, mlp: MlpKind) -> u64 {
    let d = d_model;
    n_layers * (4 * d * d + mlp.matrix_params(d) + 2 * d) + d
}

/// What Chinchilla's FLOP count depends on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChinchillaShape {
    pub vocab_size: f64,
    pub d_model: f64,
    pub n_layers: f64,
    pub n_heads: f64,
    pub seq_len: f64,
    /// Weights of one block's MLP matrices ([`MlpKind::matrix_params`]).
    pub mlp_matrix_params: f64,
}

/// Forward FLOPs per token, Hoffmann et al. 2022, Appendix F (Table A4's terms divided by
/// seq_len, key_size × n_heads = d_model): embeddings 2·V·d; per layer: q,k,v projections
/// 2·3·d·d, logits 2·T·d, softmax 3·H·T, values 2·T·d, output projection 2·d·d, dense block
/// 2·(MLP matrix weights) (2·2·d·4d for the paper's GELU MLP); final logits 2·d·V.
pub fn chinchilla_forward_flops_per_token(s: &ChinchillaShape) -> f64 {
    let (v, d, t, h) = (s.vocab_size, s.d_model, s.seq_len, s.n_heads);
    let embeddings = 2.0 * v * d;
    let attention = 2.0 * 3.0 * d * d + 2.0 * t * d + 3.0 * h * t + 2.0 * t * d + 2.0 * d * d;
    let dense = 2.0 * s.mlp_matrix_params;
    let logits = 2.0 * d * v;
    embeddings + s.n_layers * (attention + dense) + logits
}

/// Passes over the unique training tokens: tokens trained / unique tokens (Muennighoff et al.
/// 2023's epochs, the count their data-constrained law repeats over).
pub fn epochs(tokens: u64, unique_tokens: u64) -> f64 {
    tokens as f64 / unique_tokens.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_parse_and_serde() -> Result<(), Box<dyn std::error::Error>> {
        for &count in ParamCount::ALL {
            assert_eq!(count.as_str().parse::<ParamCount>()?, count);
            assert_eq!(serde_json::from_str::<ParamCount>(&serde_json::to_string(&count)?)?, count);
        }
        for &convention in FlopConvention::ALL {
            assert_eq!(convention.as_str().parse::<FlopConvention>()?, convention);
            assert_eq!(serde_json::from_str::<FlopConvention>(&serde_json::to_string(&convention)?)?, convention);
        }
        assert_eq!(serde_json::to_string(&FlopConvention::SixN)?, "\"6n\"");
        assert_eq!(" Total ".parse::<ParamCount>()?, ParamCount::Total);
        assert_eq!("swiglu".parse::<MlpKind>()?, MlpKind::Swiglu);
        Ok(())
    }

    #[test]
    fn an_unknown_name_is_an_error_listing_the_valid_names() {
        let err = "7n".parse::<FlopConvention>().err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("unknown FLOP count '7n' (expected one of: 6n, matmul_attn, chinchilla)"));
        let err = "embedding".parse::<ParamCount>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unknown parameter count 'embedding' (expected one of: nonembedding, total, matmul)")
        );
        let json = serde_json::from_str::<ParamCount>("\"all\"").err().map(|e| e.to_string());
        assert!(json.is_some_and(|m| m.contains("unknown parameter count 'all'")));
    }

    #[test]
    fn mlp_counts_match_the_formulas() {
        // GELU, d = 64, L = 2: 12·2·64² + 2·2·64 + 64 = 98624.
        assert_eq!(nonembedding_params(64, 2, MlpKind::Gelu), 98_624);
        // SwiGLU, d = 64: hidden ceil(512/3) = 171 -> 192; 3·64·192 = 36864 per block;
        // 2·(4·64² + 36864 + 128) + 64 = 106816.
        assert_eq!(MlpKind::Swiglu.hidden(64), 192);
        assert_eq!(nonembedding_params(64, 2, MlpKind::Swiglu), 106_816);
        assert_eq!(MlpKind::from_counts(98_624, 64, 2), Some(MlpKind::Gelu));
        assert_eq!(MlpKind::from_counts(106_816, 64, 2), Some(MlpKind::Swiglu));
        assert_eq!(MlpKind::from_counts(98_625, 64, 2), None);
    }

    #[test]
    fn chinchilla_count_matches_appendix_f_by_hand() {
        // d = 64, T = 32, V = 100, H = 4, L = 2, GELU: embeddings 12800; per layer 24576 + 4096
        // + 384 + 4096 + 8192 + 65536 = 106880; logits 12800.
        let gelu = ChinchillaShape {
            vocab_size: 100.0,
            d_model: 64.0,
            n_layers: 2.0,
            n_heads: 4.0,
            seq_len: 32.0,
            mlp_matrix_params: MlpKind::Gelu.matrix_params(64) as f64,
        };
        assert_eq!(chinchilla_forward_flops_per_token(&gelu), 12800.0 + 2.0 * 106880.0 + 12800.0);
        // SwiGLU: the dense block is 2·3·64·192 = 73728 instead of 65536.
        let swiglu = ChinchillaShape { mlp_matrix_params: MlpKind::Swiglu.matrix_params(64) as f64, ..gelu };
        assert_eq!(
            chinchilla_forward_flops_per_token(&swiglu),
            12800.0 + 2.0 * (106880.0 - 65536.0 + 73728.0) + 12800.0
        );
    }
}
