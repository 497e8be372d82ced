//! A law's optimiser vector under fixed and tied parameters (`crate::fit::constraints`): the
//! optimiser, the bootstrap and the point count a law needs all see only the free coordinates,
//! and `Mapping` builds the full vector (log A, log B, log E, alpha, beta for approach 3) from
//! them; `Constrained` lets any objective in the full vector be minimised over the free ones.

use std::collections::BTreeMap;

use crate::fit::constraints::{Constraints, ParamSpec};
use crate::fit::error::FitError;
use crate::fit::optim::Objective;

/// Where each coordinate of a law's full vector comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    /// The free coordinate with this index.
    Free(usize),
    /// A constant (in the optimiser's form: log A, not A).
    Fixed(f64),
}

/// The map from a law's free coordinates to its full optimiser vector.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mapping {
    sources: Vec<Source>,
    free: usize,
}

impl Mapping {
    /// Every parameter free.
    #[cfg(test)]
    pub fn identity(dim: usize) -> Mapping {
        Mapping { sources: (0..dim).map(Source::Free).collect(), free: dim }
    }

    /// The mapping of a law with parameters `specs` under `constraints` (names of other laws
    /// are ignored). A fixed scale parameter must be positive; a tie must join two parameters
    /// of the same kind (both logarithmic or both not); ties may chain (alpha=beta, beta=...);
    /// a tied parameter cannot also be fixed (`Constraints::conflict`).
    pub fn new(specs: &[ParamSpec], constraints: &Constraints) -> Result<Mapping, FitError> {
        let index = |name: &str| specs.iter().position(|s| s.name == name);
        let invalid = |message: String| FitError::InvalidOption { option: "fix/tie", message };
        let own = Constraints {
            fixed: constraints.fixed.iter().filter(|(k, _)| index(k).is_some()).map(|(k, v)| (k.clone(), *v)).collect(),
            tied: constraints.tied.iter().filter(|(f, l)| index(f).is_some() && index(l).is_some()).cloned().collect(),
        };
        if let Some(conflict) = own.conflict() {
            return Err(invalid(conflict));
        }
        // Resolve each parameter to the root of its tie chain.
        let mut leader: Vec<usize> = (0..specs.len()).collect();
        for (follower, lead) in &constraints.tied {
            let (Some(f), Some(l)) = (index(follower), index(lead)) else { continue };
            if specs[f].log != specs[l].log {
                return Err(invalid(format!("{follower} and {lead} cannot be tied: one is a scale, one an exponent")));
            }
            leader[f] = l;
        }
        let root = |mut k: usize| {
            for _ in 0..specs.len() {
                if leader[k] == k {
                    return Some(k);
                }
                k = leader[k];
            }
            None
        };
        let mut sources = vec![Source::Free(usize::MAX); specs.len()];
        let mut free = 0;
        let mut free_of_root: BTreeMap<usize, usize> = BTreeMap::new();
        for k in 0..specs.len() {
            let r = root(k).ok_or_else(|| invalid(format!("the ties of {} form a cycle", specs[k].name)))?;
            // No parameter of a tie chain is fixed (checked above): a fixed one stands alone.
            sources[k] = match constraints.fixed.get(specs[k].name) {
                Some(&value) => {
                    if specs[k].log && value <= 0.0 {
                        return Err(invalid(format!("{} = {value} must be positive", specs[k].name)));
                    }
                    Source::Fixed(if specs[k].log { value.ln() } else { value })
                }
                None => Source::Free(*free_of_root.entry(r).or_insert_with(|| {
                    free += 1;
                    free - 1
                })),
            };
        }
        Ok(Mapping { sources, free })
    }

    /// Number of free coordinates.
    pub fn free(&self) -> usize {
        self.free
    }

    pub fn is_identity(&self) -> bool {
        self.free == self.sources.len()
            && self.sources.iter().enumerate().all(|(k, s)| matches!(s, Source::Free(i) if *i == k))
    }

    /// The full vector of free coordinates `z`.
    pub fn full(&self, z: &[f64]) -> Vec<f64> {
        self.sources
            .iter()
            .map(|s| match *s {
                Source::Free(i) => z[i],
                Source::Fixed(v) => v,
            })
            .collect()
    }

    /// The free coordinates of a full vector (a tie takes its leader's value: the first
    /// coordinate mapped to that free index).
    pub fn project(&self, x: &[f64]) -> Vec<f64> {
        let mut z = vec![f64::NAN; self.free];
        for (k, s) in self.sources.iter().enumerate() {
            if let Source::Free(i) = *s {
                if z[i].is_nan() {
                    z[i] = x[k];
                }
            }
        }
        z
    }

    /// Starting points in free coordinates: each full start projected, duplicates dropped
    /// (keeping the first), so a tied or fixed law runs fewer starts.
    pub fn starts(&self, full_starts: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let mut seen = std::collections::HashSet::new();
        full_starts
            .iter()
            .map(|x| self.project(x))
            .filter(|z| seen.insert(z.iter().map(|v| v.to_bits()).collect::<Vec<u64>>()))
            .collect()
    }
}

/// An objective in a law's full vector seen through a `Mapping`: the gradient of a free
/// coordinate is the sum over the full coordinates it feeds.
pub(crate) struct Constrained<'a, O> {
    pub inner: &'a O,
    pub mapping: &'a Mapping,
}

impl<O: Objective> Objective for Constrained<'_, O> {
    fn value_and_gradient(&self, z: &[f64], gradient: &mut [f64]) -> f64 {
        let x = self.mapping.full(z);
        let mut full_gradient = vec![0.0; x.len()];
        let value = self.inner.value_and_gradient(&x, &mut full_gradient);
        gradient.iter_mut().for_each(|g| *g = 0.0);
        for (k, source) in self.mapping.sources.iter().enumerate() {
            if let Source::Free(i) = *source {
                gradient[i] += full_gradient[k];
            }
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::constraints::CHINCHILLA;
    use crate::fit::optim::tests::numeric_gradient;

    #[test]
    fn fixing_and_tying_leave_the_free_coordinates() -> Result<(), FitError> {
        let constraints = Constraints {
            fixed: Constraints::parse_fixed("E=1.87")
                .map_err(|m| FitError::InvalidOption { option: "fix", message: m })?,
            tied: Constraints::parse_tied("alpha=beta")
                .map_err(|m| FitError::InvalidOption { option: "tie", message: m })?,
        };
        let mapping = Mapping::new(&CHINCHILLA, &constraints)?;
        assert_eq!(mapping.free(), 3);
        let x = mapping.full(&[6.0, 7.0, 0.35]);
        assert_eq!(x, vec![6.0, 7.0, 1.87f64.ln(), 0.35, 0.35]);
        assert_eq!(mapping.project(&x), vec![6.0, 7.0, 0.35]);
        // 4,500 published starts: alpha and beta each take 5 values, so tying leaves 900.
        let grid = crate::fit::chinchilla::published_grid();
        let tied_only =
            Mapping::new(&CHINCHILLA, &Constraints { tied: constraints.tied.clone(), ..Default::default() })?;
        assert_eq!(tied_only.starts(&grid).len(), 900);
        assert!(Mapping::identity(5).is_identity() && !mapping.is_identity());
        Ok(())
    }

    struct Quadratic;
    impl Objective for Quadratic {
        fn value_and_gradient(&self, x: &[f64], gradient: &mut [f64]) -> f64 {
            let weights = [1.0, 2.0, 3.0, 4.0, 5.0];
            let mut total = 0.0;
            for k in 0..5 {
                gradient[k] = weights[k] * (x[k] - k as f64);
                total += 0.5 * weights[k] * (x[k] - k as f64).powi(2);
            }
            total
        }
    }

    #[test]
    fn constrained_gradient_matches_finite_differences() -> Result<(), FitError> {
        let constraints = Constraints {
            fixed: BTreeMap::from([("B".to_string(), 3.0)]),
            tied: vec![("alpha".to_string(), "beta".to_string())],
        };
        let mapping = Mapping::new(&CHINCHILLA, &constraints)?;
        let objective = Constrained { inner: &Quadratic, mapping: &mapping };
        let z = [0.3, -0.2, 1.7];
        let mut analytic = [0.0; 3];
        objective.value_and_gradient(&z, &mut analytic);
        let numeric = numeric_gradient(&objective, &z, 1e-6);
        for k in 0..3 {
            assert!((analytic[k] - numeric[k]).abs() < 1e-6, "{analytic:?} vs {numeric:?}");
        }
        Ok(())
    }
}
