//! Weighted least squares for the closed-form fits: a straight line (power laws in log-log
//! space, Kaplan et al. 2020) and a parabola (IsoFLOP profiles, Hoffmann et al. 2022 approach 2).

/// y = intercept + slope x.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Line {
    pub slope: f64,
    pub intercept: f64,
}

/// Weighted least-squares line through (x, y); `None` with fewer than two distinct x.
pub(crate) fn fit_line(x: &[f64], y: &[f64], weights: &[f64]) -> Option<Line> {
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let mean = |v: &[f64]| v.iter().zip(weights).map(|(a, w)| a * w).sum::<f64>() / total;
    let (mx, my) = (mean(x), mean(y));
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for ((&xi, &yi), &w) in x.iter().zip(y).zip(weights) {
        sxx += w * (xi - mx) * (xi - mx);
        sxy += w * (xi - mx) * (yi - my);
    }
    if sxx.is_nan() || sxx <= 1e-12 * total * (1.0 + mx * mx) {
        return None;
    }
    let slope = sxy / sxx;
    Some(Line { slope, intercept: my - slope * mx })
}

/// y = c0 + c1 (x - center) + c2 (x - center)^2.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Parabola {
    pub center: f64,
    pub c: [f64; 3],
}

impl Parabola {
    /// The value at `x`.
    pub fn at(&self, x: f64) -> f64 {
        let [c0, c1, c2] = self.c;
        let t = x - self.center;
        c0 + c1 * t + c2 * t * t
    }

    /// The x of the vertex and the value there; `None` unless it opens upward.
    pub fn minimum(&self) -> Option<(f64, f64)> {
        let [c0, c1, c2] = self.c;
        if c2.is_nan() || c2 <= 0.0 {
            return None;
        }
        let offset = -c1 / (2.0 * c2);
        Some((self.center + offset, c0 + c1 * offset + c2 * offset * offset))
    }
}

/// Weighted least-squares parabola; `None` with fewer than three distinct x.
pub(crate) fn fit_parabola(x: &[f64], y: &[f64], weights: &[f64]) -> Option<Parabola> {
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let center = x.iter().zip(weights).map(|(a, w)| a * w).sum::<f64>() / total;
    // Normal equations in the centred variable t = x - center.
    let mut moments = [0.0; 5];
    let mut rhs = [0.0; 3];
    for ((&xi, &yi), &w) in x.iter().zip(y).zip(weights) {
        let t = xi - center;
        let powers = [1.0, t, t * t, t * t * t, t * t * t * t];
        for (k, m) in moments.iter_mut().enumerate() {
            *m += w * powers[k];
        }
        for (k, r) in rhs.iter_mut().enumerate() {
            *r += w * powers[k] * yi;
        }
    }
    let matrix = [
        [moments[0], moments[1], moments[2]],
        [moments[1], moments[2], moments[3]],
        [moments[2], moments[3], moments[4]],
    ];
    solve3(matrix, rhs).map(|c| Parabola { center, c })
}

/// Solves a 3x3 system by Cramer's rule; `None` when it is (nearly) singular.
fn solve3(m: [[f64; 3]; 3], rhs: [f64; 3]) -> Option<[f64; 3]> {
    let det = |a: &[[f64; 3]; 3]| {
        a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
            + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
    };
    let full = det(&m);
    let scale = m.iter().flatten().map(|v| v.abs()).fold(0.0, f64::max);
    if full.is_nan() || full.abs() <= 1e-12 * scale.powi(3) {
        return None;
    }
    let mut solution = [0.0; 3];
    for (k, value) in solution.iter_mut().enumerate() {
        let mut replaced = m;
        for row in 0..3 {
            replaced[row][k] = rhs[row];
        }
        *value = det(&replaced) / full;
    }
    Some(solution)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_recovers_slope_and_intercept() -> Result<(), String> {
        let x = [1.0, 2.0, 3.0, 4.0];
        let y: Vec<f64> = x.iter().map(|v| 0.5 - 0.25 * v).collect();
        let line = fit_line(&x, &y, &[1.0, 2.0, 1.0, 3.0]).ok_or("no line")?;
        assert!((line.slope + 0.25).abs() < 1e-12 && (line.intercept - 0.5).abs() < 1e-12);
        assert!(fit_line(&[2.0, 2.0], &[1.0, 3.0], &[1.0, 1.0]).is_none());
        Ok(())
    }

    #[test]
    fn parabola_recovers_its_vertex() -> Result<(), String> {
        let x = [18.0, 19.0, 20.0, 21.0, 22.5];
        let y: Vec<f64> = x.iter().map(|v| 2.0 + 0.3 * (v - 20.4) * (v - 20.4)).collect();
        let parabola = fit_parabola(&x, &y, &[1.0; 5]).ok_or("no parabola")?;
        let (at, value) = parabola.minimum().ok_or("no minimum")?;
        assert!((at - 20.4).abs() < 1e-9 && (value - 2.0).abs() < 1e-9, "{at} {value}");
        assert!((parabola.at(22.4) - 3.2).abs() < 1e-9, "{}", parabola.at(22.4));
        let down: Vec<f64> = y.iter().map(|v| -v).collect();
        assert!(fit_parabola(&x, &down, &[1.0; 5]).and_then(|p| p.minimum()).is_none());
        assert!(fit_parabola(&x[..2], &y[..2], &[1.0; 2]).is_none());
        Ok(())
    }
}
