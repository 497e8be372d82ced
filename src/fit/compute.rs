//! How a sweep's training compute grows with model size, C = k·N^c·D, fitted to the runs' own
//! (N, D, C). Chinchilla's allocation (Hoffmann et al. 2022, eq. 4) assumes C = 6·N·D; that holds
//! for `--flops 6n` with N non-embedding, but not for the matmul_attn or chinchilla counts, where a
//! tiny model's head and attention cost more per token than 6·N. Minimising approach 3's
//! L = E + A/N^α + B/D^β under C = k·N^c·D instead gives
//!   N_opt = G·(C/k)^a,  D_opt = C/(k·N_opt^c),  G = (αA/(βcB))^(1/(α+βc)),
//!   a = β/(α+βc),  b = 1 − c·a,
//! which is eq. 4 when k = 6 and c = 1.

use crate::fit::data::Point;
use crate::records::fit::ComputeModel;

/// Points whose C is within this relative distance of 6·N·D keep the default model exactly.
const SIX_ND_TOLERANCE: f64 = 1e-3;

impl ComputeModel {
    /// Least squares of ln(C/D) on ln N over the points; C = 6·N·D when every point is (to 0.1%)
    /// 6·N·D, and c = 1 with the geometric-mean k when the points have a single size.
    pub fn fit(points: &[Point]) -> ComputeModel {
        let usable: Vec<&Point> = points.iter().filter(|p| p.params > 0.0 && p.tokens > 0.0 && p.flops > 0.0).collect();
        let six_nd = usable.iter().all(|p| (p.flops / (6.0 * p.params * p.tokens) - 1.0).abs() < SIX_ND_TOLERANCE);
        if usable.is_empty() || six_nd {
            return ComputeModel::default();
        }
        let x: Vec<f64> = usable.iter().map(|p| p.params.ln()).collect();
        let y: Vec<f64> = usable.iter().map(|p| (p.flops / p.tokens).ln()).collect();
        let n = x.len() as f64;
        let (mean_x, mean_y) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
        let var_x: f64 = x.iter().map(|v| (v - mean_x).powi(2)).sum();
        let cov: f64 = x.iter().zip(&y).map(|(a, b)| (a - mean_x) * (b - mean_y)).sum();
        let exponent = if var_x > 1e-12 { cov / var_x } else { 1.0 };
        let coefficient = (mean_y - exponent * mean_x).exp();
        ComputeModel { coefficient, params_exponent: exponent }
    }

    /// Tokens that `flops` buys a model of `params` parameters.
    pub fn tokens(&self, flops: f64, params: f64) -> f64 {
        flops / (self.coefficient * params.powf(self.params_exponent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(params: f64, tokens: f64, flops: f64) -> Point {
        Point { run_id: String::new(), params, tokens, flops, unique_tokens: None, loss: 3.0 }
    }

    #[test]
    fn six_nd_points_keep_the_default_and_planted_models_are_recovered() {
        let six = [point(1e6, 2e7, 6.0 * 1e6 * 2e7), point(4e6, 1e7, 6.0 * 4e6 * 1e7)];
        assert_eq!(ComputeModel::fit(&six), ComputeModel::default());
        // C = 40·N^0.7·D, as a head-dominated small model's count behaves.
        let planted: Vec<Point> =
            [1e3, 1e4, 1e5].iter().map(|&n: &f64| point(n, 1e6, 40.0 * n.powf(0.7) * 1e6)).collect();
        let model = ComputeModel::fit(&planted);
        assert!((model.params_exponent - 0.7).abs() < 1e-9 && (model.coefficient - 40.0).abs() < 1e-6, "{model:?}");
        assert!((model.tokens(40.0 * 1e4f64.powf(0.7) * 5e5, 1e4) - 5e5).abs() < 1e-3);
    }
}
