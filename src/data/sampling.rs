//! Deterministic randomness for the synthetic language: a SplitMix64 stream, a hash of words,
//! platform-independent `ln`/`exp`, and discrete distributions quantised to integer weights.
//!
//! Every probability the synthetic language uses is an integer weight out of [`PROB_ONE`]
//! (2^32) and is sampled by comparing a 32-bit draw against integer thresholds, so the
//! probability of every emitted token is an exact rational number and the batches are
//! bit-identical on every platform. The only floating point in the tables is in building the
//! Zipf weights, which uses [`det_ln`] and [`det_exp`]: basic IEEE-754 operations only (no libm),
//! so the quantised integers do not depend on the platform's `pow`.

/// Total integer weight of every quantised distribution: probabilities are `weight / 2^32`.
pub const PROB_ONE: u64 = 1 << 32;

const LN_2: f64 = std::f64::consts::LN_2;
const SQRT_2: f64 = std::f64::consts::SQRT_2;

pub use crate::rng::{mix64, SplitMix64};

/// A hash of a list of words (a seed, a stream tag, indices), used to derive independent streams.
pub fn hash_words(words: &[u64]) -> u64 {
    words.iter().fold(0x243f_6a88_85a3_08d3, |acc, &word| mix64(acc ^ mix64(word.wrapping_add(0x9e37_79b9_7f4a_7c15))))
}

/// Natural logarithm of a positive normal number from +, −, ×, ÷ only, so that it gives the same
/// bits on every platform. x = 2^e·f with f in [√½, √2); ln f = 2·atanh((f−1)/(f+1)) by its
/// series (|z| ≤ 0.172, 14 terms reach 1e-17 relative). Relative error ~1e-15.
pub fn det_ln(x: f64) -> f64 {
    let bits = x.to_bits();
    let mut exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut fraction = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    if fraction > SQRT_2 {
        fraction /= 2.0;
        exponent += 1;
    }
    let z = (fraction - 1.0) / (fraction + 1.0);
    let z_squared = z * z;
    let mut power = z;
    let mut series = 0.0;
    for k in 0..16 {
        series += power / (2 * k + 1) as f64;
        power *= z_squared;
    }
    2.0 * series + exponent as f64 * LN_2
}

/// e^y from +, −, ×, ÷ only: y = n·ln2 + r with |r| ≤ ½ln2, e^r by its Taylor series (20 terms),
/// then scaled by 2^n built from bits. Returns 0 below e^-708 (no subnormals needed here).
pub fn det_exp(y: f64) -> f64 {
    if y < -708.0 {
        return 0.0;
    }
    let n = (y / LN_2).round();
    let r = y - n * LN_2;
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..=20 {
        term *= r / k as f64;
        sum += term;
    }
    let n = n as i64;
    if n > 1023 {
        return f64::INFINITY;
    }
    sum * f64::from_bits(((n + 1023) as u64) << 52)
}

/// Zipf weights (r+1)^(−exponent) for ranks r = 0..n, computed deterministically.
pub fn zipf_weights(n: usize, exponent: f64) -> Vec<f64> {
    (0..n).map(|rank| det_exp(-exponent * det_ln((rank + 1) as f64))).collect()
}

/// A discrete distribution over 0..n with integer weights summing to [`PROB_ONE`];
/// P(i) = weight(i) / 2^32 exactly, and `sample` with a uniform u32 draw realises it exactly.
#[derive(Clone, Debug)]
pub struct QuantizedDist {
    /// cumulative[i] = weight(0) + ... + weight(i); the last entry is PROB_ONE.
    cumulative: Vec<u64>,
}

impl QuantizedDist {
    /// Quantises non-negative weights (not all zero): each positive weight gets at least 1/2^32,
    /// the rounding remainder goes to the largest weight. Err when that is impossible.
    pub fn from_weights(weights: &[f64]) -> Result<Self, String> {
        let total: f64 = weights.iter().sum();
        if weights.is_empty() || !(total > 0.0 && total.is_finite()) {
            return Err("weights must be finite, non-negative and not all zero".into());
        }
        if weights.iter().any(|w| w.is_nan() || *w < 0.0) {
            return Err("weights must be non-negative".into());
        }
        let mut integer: Vec<u64> = weights
            .iter()
            .map(|&w| if w > 0.0 { ((w / total * PROB_ONE as f64).floor() as u64).max(1) } else { 0 })
            .collect();
        let assigned: u64 = integer.iter().sum();
        let largest = (0..weights.len()).fold(0, |best, i| if weights[i] > weights[best] { i } else { best });
        let adjusted = (integer[largest] + PROB_ONE).checked_sub(assigned).filter(|&w| w > 0);
        integer[largest] = adjusted.ok_or("too many outcomes to give each a probability of at least 2^-32")?;
        let cumulative = integer
            .iter()
            .scan(0u64, |sum, &w| {
                *sum += w;
                Some(*sum)
            })
            .collect();
        Ok(QuantizedDist { cumulative })
    }

    pub fn len(&self) -> usize {
        self.cumulative.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cumulative.is_empty()
    }

    /// The outcome for a uniform 32-bit draw: the first `i` with `draw < cumulative[i]`.
    #[inline]
    pub fn sample(&self, draw: u32) -> usize {
        let draw = draw as u64;
        if self.cumulative.len() <= 8 {
            return self.cumulative.iter().position(|&c| draw < c).unwrap_or(0);
        }
        self.cumulative.partition_point(|&c| c <= draw)
    }

    /// Total integer weight of outcomes lo..hi (hi clamped to the number of outcomes).
    pub fn mass(&self, lo: usize, hi: usize) -> u64 {
        let hi = hi.min(self.cumulative.len());
        if lo >= hi {
            return 0;
        }
        let below = |i: usize| if i == 0 { 0 } else { self.cumulative[i - 1] };
        below(hi) - below(lo)
    }

    /// Exact probability of outcome i.
    pub fn prob(&self, i: usize) -> f64 {
        self.mass(i, i + 1) as f64 / PROB_ONE as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // Reference outputs of Vigna's splitmix64.c for seed 0.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(rng.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn deterministic_ln_and_exp_agree_with_std() {
        for &x in &[1.0, 1.5, 2.0, 3.0, 10.0, 4096.0, 1e6, 0.1, 0.7, 1e-300, 123456.789] {
            let relative = (det_ln(x) - x.ln()).abs() / x.ln().abs().max(1.0);
            assert!(relative < 1e-14, "ln({x}): {} vs {}", det_ln(x), x.ln());
        }
        for &y in &[0.0, -1.0, 1.0, -0.3, -11.6, -50.0, 30.0, -700.0, 0.5] {
            let relative = (det_exp(y) - y.exp()).abs() / y.exp();
            assert!(relative < 1e-13, "exp({y}): {} vs {}", det_exp(y), y.exp());
        }
        assert_eq!(det_ln(1.0), 0.0);
        assert_eq!(det_exp(0.0), 1.0);
    }

    #[test]
    fn zipf_weights_are_inverse_powers_of_rank() {
        let weights = zipf_weights(4, 1.0);
        for (rank, w) in weights.iter().enumerate() {
            assert!((w - 1.0 / (rank + 1) as f64).abs() < 1e-15);
        }
        assert!(zipf_weights(3, 0.0).iter().all(|&w| w == 1.0));
    }

    #[test]
    fn quantized_weights_sum_to_one_and_sample_at_the_thresholds() {
        let dist = QuantizedDist::from_weights(&[3.0, 1.0, 0.0, 4.0]).unwrap();
        assert_eq!(dist.mass(0, 4), PROB_ONE);
        assert_eq!(dist.mass(2, 3), 0);
        assert_eq!(dist.mass(1, 2), PROB_ONE / 8);
        assert_eq!(dist.mass(3, 4), PROB_ONE / 2);
        let first_of_1 = dist.mass(0, 1) as u32;
        assert_eq!(dist.sample(0), 0);
        assert_eq!(dist.sample(first_of_1 - 1), 0);
        assert_eq!(dist.sample(first_of_1), 1);
        assert_eq!(dist.sample(u32::MAX), 3);
        // The long-table path (binary search) agrees with a linear scan.
        let long = QuantizedDist::from_weights(&zipf_weights(100, 1.3)).unwrap();
        for draw in [0u32, 1, 12345, 1 << 31, u32::MAX - 1, u32::MAX] {
            let linear = (0..100).position(|i| (draw as u64) < long.mass(0, i + 1)).unwrap();
            assert_eq!(long.sample(draw), linear);
        }
    }

    #[test]
    fn quantization_gives_every_positive_weight_some_mass() {
        let dist = QuantizedDist::from_weights(&[1.0, 1e-12, 1e-12]).unwrap();
        assert_eq!(dist.mass(1, 2), 1);
        assert_eq!(dist.mass(0, 3), PROB_ONE);
        assert!(QuantizedDist::from_weights(&[]).is_err());
        assert!(QuantizedDist::from_weights(&[0.0, 0.0]).is_err());
        assert!(QuantizedDist::from_weights(&[1.0, -1.0]).is_err());
    }
}
