//! Test data drawn from known laws (shared by the per-law tests) and end-to-end tests of
//! `load_points` + `fit` on sweep directories and plain CSVs.

mod end_to_end;
mod published;
mod verdicts;

pub(crate) mod synth {
    //! Points and curves drawn from planted laws, with optional log-normal noise.

    use crate::fit::data::{Curve, CurvePoint, Dataset, Point};
    use crate::records::fit::ChinchillaParams;
    use crate::rng::SplitMix64;

    /// Hoffmann et al. 2022's fitted law (eq. 10): E 1.69, A 406.4, B 410.7, alpha 0.34, beta 0.28.
    pub fn hoffmann() -> ChinchillaParams {
        ChinchillaParams {
            e: 1.69,
            a: 406.4,
            b: 410.7,
            alpha: 0.34,
            beta: 0.28,
            compute: crate::fit::ComputeModel { coefficient: 6.0, params_exponent: 1.0 },
        }
    }

    /// Multiplies a loss by exp(noise x standard normal).
    pub fn noisy(loss: f64, noise: f64, rng: &mut SplitMix64) -> f64 {
        loss * (noise * rng.normal()).exp()
    }

    /// A point named `run_id` with C = 6 N D.
    pub fn point(run_id: String, params: f64, tokens: f64, loss: f64) -> Point {
        Point { run_id, params, tokens, flops: 6.0 * params * tokens, unique_tokens: None, loss }
    }

    /// An IsoFLOP design: at each budget, `sizes` model sizes log-spaced over a factor
    /// e^3 centred on the law's N_opt, D = C/(6N).
    pub fn isoflop_points(law: &ChinchillaParams, budgets: &[f64], sizes: usize, noise: f64, seed: u64) -> Vec<Point> {
        let mut rng = SplitMix64::new(seed);
        let mut points = Vec::new();
        for (b, &flops) in budgets.iter().enumerate() {
            let (n_opt, _) = law.compute_optimal(flops);
            for k in 0..sizes {
                let offset = -1.5 + 3.0 * k as f64 / (sizes - 1) as f64;
                let params = n_opt * offset.exp();
                let tokens = flops / (6.0 * params);
                let loss = noisy(law.predict(params, tokens), noise, &mut rng);
                points.push(point(format!("b{b}-n{k}"), params, tokens, loss));
            }
        }
        points
    }

    /// Log-spaced values from `low` to `high`.
    pub fn log_spaced(low: f64, high: f64, count: usize) -> Vec<f64> {
        (0..count).map(|k| (low.ln() + (high.ln() - low.ln()) * k as f64 / (count - 1) as f64).exp()).collect()
    }

    /// Runs of the given sizes, each trained to `final_tokens` with `evals` evaluations
    /// log-spaced from `first_tokens`, losses from the law.
    pub fn curve_dataset(
        law: &ChinchillaParams,
        sizes: &[f64],
        first_tokens: f64,
        final_tokens: f64,
        evals: usize,
    ) -> Dataset {
        let mut data = Dataset::from_points("curves", Vec::new());
        for (index, &params) in sizes.iter().enumerate() {
            let steps = log_spaced(first_tokens, final_tokens, evals);
            let evals: Vec<CurvePoint> = steps
                .iter()
                .map(|&tokens| CurvePoint { tokens, flops: 6.0 * params * tokens, loss: law.predict(params, tokens) })
                .collect();
            data.points.push(point(format!("n{index}"), params, final_tokens, law.predict(params, final_tokens)));
            data.curves.push(Curve { point: index, evals });
        }
        data
    }
}
