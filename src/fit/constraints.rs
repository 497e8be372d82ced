//! Fixed and tied parameters (`--fix E=1.87,A=520`, `--tie alpha=beta`) for the laws with
//! parameters to hold: Chinchilla approach 3, Kaplan's L(N), L(D), L(C) (with and without an
//! irreducible term) and joint L(N, D), and the data-constrained law.
//!
//! A plain name (`alpha_N`) applies to every law being fitted that has a parameter of that
//! name (Kaplan's L(N) and joint law share alpha_N, as in the paper's eqs. 1.1 and 1.5); a name
//! qualified by the law's key (`kaplan_n.alpha_N`, `chinchilla.E`) applies to that law alone.
//! Approaches 1 and 2 have nothing to hold: their exponents are what they measure.
//!
//! Published procedures need them: Muennighoff et al. 2023 fix the base law (E 1.87, A 520,
//! B 1487, alpha = beta = 0.353) and fit only R*_D and R*_N; Gadre et al. 2024 tie the exponents.
//! A law's optimiser works on a full vector (log A, log B, log E, alpha, beta for approach 3);
//! `Mapping` (`crate::fit::mapping`) builds that vector from the free coordinates alone, so the optimiser, the
//! bootstrap and the point count a law needs (free parameters + 1) all see only what is free.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::fit::error::FitError;

/// One parameter of a law's optimiser vector: its name and whether the optimiser holds its
/// logarithm (positive scale parameters) or the value itself (exponents).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParamSpec {
    pub name: &'static str,
    pub log: bool,
}

const fn spec(name: &'static str, log: bool) -> ParamSpec {
    ParamSpec { name, log }
}

/// Approach 3's vector (a, b, e, alpha, beta) = (log A, log B, log E, alpha, beta).
pub(crate) const CHINCHILLA: [ParamSpec; 5] =
    [spec("A", true), spec("B", true), spec("E", true), spec("alpha", false), spec("beta", false)];
/// Kaplan's joint law: (alpha_N, alpha_D, log N_c, log D_c).
pub(crate) const KAPLAN_JOINT: [ParamSpec; 4] =
    [spec("alpha_N", false), spec("alpha_D", false), spec("N_c", true), spec("D_c", true)];
/// The data-constrained law's repetition parameters: (log R*_D, log R*_N).
pub(crate) const REPETITION: [ParamSpec; 2] = [spec("R_D_star", true), spec("R_N_star", true)];
/// Kaplan's single-variable laws with their irreducible term, (log E, alpha, log X_c): the plain
/// power law is the last two.
pub(crate) const KAPLAN_N: [ParamSpec; 3] = [spec("E", true), spec("alpha_N", false), spec("N_c", true)];
pub(crate) const KAPLAN_D: [ParamSpec; 3] = [spec("E", true), spec("alpha_D", false), spec("D_c", true)];
pub(crate) const KAPLAN_C: [ParamSpec; 3] = [spec("E", true), spec("alpha_C", false), spec("C_c", true)];
/// The data-constrained law: its base law and R*.
pub(crate) const DATA_CONSTRAINED: [ParamSpec; 7] =
    [CHINCHILLA[0], CHINCHILLA[1], CHINCHILLA[2], CHINCHILLA[3], CHINCHILLA[4], REPETITION[0], REPETITION[1]];

/// Every law with parameters to hold: its key (as in fit.json and a qualified name) and its
/// parameters.
pub(crate) const LAWS: [(&str, &[ParamSpec]); 6] = [
    ("chinchilla", &CHINCHILLA),
    ("kaplan_n", &KAPLAN_N),
    ("kaplan_d", &KAPLAN_D),
    ("kaplan_c", &KAPLAN_C),
    ("kaplan_nd", &KAPLAN_JOINT),
    ("data_constrained", &DATA_CONSTRAINED),
];

/// The parameters of the law with this key.
pub(crate) fn law_specs(key: &str) -> Option<&'static [ParamSpec]> {
    LAWS.iter().find(|(k, _)| *k == key).map(|(_, specs)| *specs)
}

/// Every name `--fix` and `--tie` accept, unqualified, each once.
pub fn known_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for (_, specs) in LAWS {
        for spec in specs {
            if !names.contains(&spec.name) {
                names.push(spec.name);
            }
        }
    }
    names
}

/// A name as given: `alpha_N` or `kaplan_n.alpha_N`; an error names the known ones.
fn check_name(name: &str) -> Result<String, String> {
    let (law, parameter) = match name.split_once('.') {
        Some((law, parameter)) => (Some(law), parameter),
        None => (None, name),
    };
    match law {
        Some(law) => {
            let specs = law_specs(law).ok_or_else(|| {
                let keys: Vec<&str> = LAWS.iter().map(|(k, _)| *k).collect();
                format!("unknown law '{law}' in '{name}' (known: {})", keys.join(", "))
            })?;
            if !specs.iter().any(|s| s.name == parameter) {
                return Err(format!("{law} has no parameter '{parameter}' (its parameters: {})", names_of(specs)));
            }
        }
        None if !known_names().contains(&parameter) => {
            return Err(format!("unknown parameter '{name}' (known: {})", known_names().join(", ")));
        }
        None => {}
    }
    Ok(name.to_string())
}

fn names_of(specs: &[ParamSpec]) -> String {
    specs.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

/// The parameter a given name means for the law `law`, if it concerns that law.
fn for_law<'n>(name: &'n str, law: &str, specs: &[ParamSpec]) -> Option<&'n str> {
    let parameter = match name.split_once('.') {
        Some((qualifier, parameter)) if qualifier == law => parameter,
        Some(_) => return None,
        None => name,
    };
    specs.iter().any(|s| s.name == parameter).then_some(parameter)
}

/// What the user fixed and tied, as given on the command line (names, natural values).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Constraints {
    /// name -> value (A = 520, not its logarithm).
    pub fixed: BTreeMap<String, f64>,
    /// (follower, leader): the follower takes the leader's value (`--tie alpha=beta`).
    pub tied: Vec<(String, String)>,
}

impl Constraints {
    pub fn is_empty(&self) -> bool {
        self.fixed.is_empty() && self.tied.is_empty()
    }

    /// Parses `--fix NAME=VALUE,...`.
    pub fn parse_fixed(text: &str) -> Result<BTreeMap<String, f64>, String> {
        let mut fixed = BTreeMap::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) =
                item.split_once('=').ok_or_else(|| format!("'{item}' is not NAME=VALUE (for example E=1.87)"))?;
            let name = check_name(name.trim())?;
            let value: f64 =
                value.trim().parse().map_err(|_| format!("{name} = '{}' is not a number", value.trim()))?;
            if !value.is_finite() {
                return Err(format!("{name} = {value} is not finite"));
            }
            if fixed.insert(name.clone(), value).is_some() {
                return Err(format!("{name} is fixed twice"));
            }
        }
        Ok(fixed)
    }

    /// Parses `--tie NAME=NAME,...`.
    pub fn parse_tied(text: &str) -> Result<Vec<(String, String)>, String> {
        let mut tied = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (follower, leader) =
                item.split_once('=').ok_or_else(|| format!("'{item}' is not NAME=NAME (for example alpha=beta)"))?;
            let (follower, leader) = (check_name(follower.trim())?, check_name(leader.trim())?);
            if follower == leader {
                return Err(format!("{follower} is tied to itself"));
            }
            tied.push((follower, leader));
        }
        Ok(tied)
    }

    /// The constraints that concern the law `law` with parameters `specs`, its parameters
    /// unqualified (for its `Mapping` and fit.json).
    pub(crate) fn for_law(&self, law: &str, specs: &[ParamSpec]) -> Constraints {
        let mut fixed = BTreeMap::new();
        for (name, value) in &self.fixed {
            if let Some(parameter) = for_law(name, law, specs) {
                // A qualified name is the more specific and wins over a plain one.
                if name.contains('.') || !fixed.contains_key(parameter) {
                    fixed.insert(parameter.to_string(), *value);
                }
            }
        }
        let tied = self
            .tied
            .iter()
            .filter_map(|(f, l)| Some((for_law(f, law, specs)?.to_string(), for_law(l, law, specs)?.to_string())))
            .collect();
        Constraints { fixed, tied }
    }

    /// Every name that no law in `laws` (key, parameters) has, or a tie within no one law: a
    /// usage error listing the parameters of the laws being fitted.
    pub(crate) fn check_against(&self, laws: &[(&str, &[ParamSpec])]) -> Result<(), FitError> {
        let listing =
            || laws.iter().map(|(key, specs)| format!("{key}: {}", names_of(specs))).collect::<Vec<_>>().join("; ");
        let in_law = |name: &str, (key, specs): &(&str, &[ParamSpec])| for_law(name, key, specs).is_some();
        for name in self.fixed.keys().chain(self.tied.iter().flat_map(|(f, l)| [f, l])) {
            if !laws.iter().any(|law| in_law(name, law)) {
                return Err(FitError::InvalidOption {
                    option: "fix/tie",
                    message: format!("{name} is not a parameter of the law(s) being fitted ({})", listing()),
                });
            }
        }
        for (follower, leader) in &self.tied {
            if !laws.iter().any(|law| in_law(follower, law) && in_law(leader, law)) {
                return Err(FitError::InvalidOption {
                    option: "tie",
                    message: format!("{follower} and {leader} are not parameters of one law ({})", listing()),
                });
            }
        }
        for (key, specs) in laws {
            if let Some(conflict) = self.for_law(key, specs).conflict() {
                return Err(FitError::InvalidOption { option: "fix/tie", message: format!("{key}: {conflict}") });
            }
        }
        Ok(())
    }

    /// Why one law's constraints (names unqualified, as `for_law` gives them) contradict each
    /// other, if they do. A tie holds its follower at its leader's value, so a tied parameter
    /// that is also fixed would have two values (`--fix alpha=0.3,beta=0.4 --tie alpha=beta`
    /// fitted beta at 0.3 while fit.json said 0.4); a follower tied to two leaders would keep
    /// only one tie; ties that lead round in a circle name no leader.
    pub(crate) fn conflict(&self) -> Option<String> {
        for (follower, leader) in &self.tied {
            let tie = format!("--tie {follower}={leader}");
            match (self.fixed.get(follower), self.fixed.get(leader)) {
                (Some(f), Some(l)) => {
                    return Some(format!(
                        "{follower} and {leader} are both fixed (to {f} and {l}) and tied ({tie}); drop the tie or \
                         the fix"
                    ))
                }
                (Some(v), None) | (None, Some(v)) => {
                    let name = if self.fixed.contains_key(follower) { follower } else { leader };
                    return Some(format!(
                        "{name} is both fixed ({name} = {v}) and tied ({tie}); to hold both at {v}, fix both \
                         (--fix {follower}={v},{leader}={v}) and drop the tie"
                    ));
                }
                (None, None) => {}
            }
        }
        for (k, (follower, leader)) in self.tied.iter().enumerate() {
            if let Some((_, other)) = self.tied[..k].iter().find(|(f, l)| f == follower && l != leader) {
                return Some(format!(
                    "{follower} is tied to both {other} and {leader}; tie it to one (a chain such as \
                     {follower}={other},{other}={leader} holds all three equal)"
                ));
            }
        }
        let leader_of = |name: &str| self.tied.iter().find(|(f, _)| f == name).map(|(_, l)| l.as_str());
        for (follower, _) in &self.tied {
            let mut chain = vec![follower.as_str()];
            while let Some(next) = leader_of(chain[chain.len() - 1]) {
                if chain.contains(&next) {
                    chain.push(next);
                    return Some(format!("the ties {} lead round in a circle; drop one of them", chain.join(" = ")));
                }
                chain.push(next);
            }
        }
        None
    }
}

impl fmt::Display for Constraints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.fixed.iter().map(|(k, v)| format!("{k} = {v} fixed")).collect();
        parts.extend(self.tied.iter().map(|(a, b)| format!("{a} = {b} tied")));
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::mapping::Mapping;

    #[test]
    fn bad_lists_are_errors_naming_the_item() {
        assert!(Constraints::parse_fixed("E=1.87,A=520").is_ok());
        let unknown = Constraints::parse_fixed("gamma=1").unwrap_err();
        assert!(unknown.contains("gamma"), "{unknown}");
        assert!(Constraints::parse_fixed("E").unwrap_err().contains("NAME=VALUE"));
        assert!(Constraints::parse_fixed("E=x").unwrap_err().contains("'x'"));
        assert!(Constraints::parse_tied("alpha=alpha").is_err());
        let mixed = Constraints { tied: vec![("A".into(), "alpha".into())], ..Default::default() };
        assert!(Mapping::new(&CHINCHILLA, &mixed).is_err());
        let negative = Constraints { fixed: BTreeMap::from([("A".to_string(), -1.0)]), ..Default::default() };
        assert!(Mapping::new(&CHINCHILLA, &negative).is_err());
    }

    #[test]
    fn qualified_names_hold_one_law_and_plain_names_every_law() -> Result<(), FitError> {
        let parse = |text: &str| {
            Constraints::parse_fixed(text).map_err(|m| FitError::InvalidOption { option: "fix", message: m })
        };
        let constraints = Constraints { fixed: parse("alpha_N=0.07,kaplan_n.alpha_N=0.076,E=1.7")?, tied: vec![] };
        let single = constraints.for_law("kaplan_n", &KAPLAN_N);
        assert_eq!(single.fixed, BTreeMap::from([("E".to_string(), 1.7), ("alpha_N".to_string(), 0.076)]));
        let joint = constraints.for_law("kaplan_nd", &KAPLAN_JOINT);
        assert_eq!(joint.fixed, BTreeMap::from([("alpha_N".to_string(), 0.07)]));
        assert_eq!(constraints.for_law("chinchilla", &CHINCHILLA).fixed, BTreeMap::from([("E".to_string(), 1.7)]));
        assert!(Constraints::parse_fixed("kaplan_n.beta=1").unwrap_err().contains("alpha_N"));
        assert!(Constraints::parse_fixed("kaplan.alpha_N=1").unwrap_err().contains("kaplan_nd"));
        // Against the laws being fitted: a parameter none has, listing what they have.
        let laws: [(&str, &[ParamSpec]); 1] = [("kaplan_n", &KAPLAN_N)];
        let beta = Constraints { fixed: parse("beta=0.3")?, tied: vec![] };
        let message = beta.check_against(&laws).unwrap_err().to_string();
        assert!(message.contains("beta") && message.contains("kaplan_n: E, alpha_N, N_c"), "{message}");
        assert!(single.check_against(&laws).is_ok());
        Ok(())
    }

    /// A tied parameter that is also fixed would have two values; a follower with two leaders
    /// would keep one tie; a circle of ties names no leader: each is a usage error naming it.
    #[test]
    fn contradictory_fixes_and_ties_are_usage_errors() -> Result<(), FitError> {
        let given = |fix: &str, tie: &str| -> Result<Constraints, FitError> {
            let usage = |option: &'static str| move |message| FitError::InvalidOption { option, message };
            Ok(Constraints {
                fixed: Constraints::parse_fixed(fix).map_err(usage("fix"))?,
                tied: Constraints::parse_tied(tie).map_err(usage("tie"))?,
            })
        };
        let laws: [(&str, &[ParamSpec]); 2] = [("chinchilla", &CHINCHILLA), ("kaplan_nd", &KAPLAN_JOINT)];
        let refused = |fix: &str, tie: &str| -> Result<String, FitError> {
            let constraints = given(fix, tie)?;
            let Err(error) = constraints.check_against(&laws) else { return Ok(String::new()) };
            assert!(matches!(error, FitError::InvalidOption { .. }), "{error}");
            Ok(error.to_string())
        };
        let both = refused("alpha=0.3,beta=0.4", "alpha=beta")?;
        assert!(both.contains("chinchilla: alpha and beta are both fixed (to 0.3 and 0.4)"), "{both}");
        for (fix, tie, fixed) in [("alpha=0.3", "alpha=beta", "alpha"), ("beta=0.3", "alpha=beta", "beta")] {
            let message = refused(fix, tie)?;
            assert!(message.contains(&format!("{fixed} is both fixed ({fixed} = 0.3)")), "{message}");
            assert!(message.contains("--fix alpha=0.3,beta=0.3"), "{message}");
            assert!(Mapping::new(&CHINCHILLA, &given(fix, tie)?).is_err());
        }
        let two = refused("", "A=B,A=E")?;
        assert!(two.contains("A is tied to both B and E"), "{two}");
        let circle = refused("", "alpha=beta,beta=alpha")?;
        assert!(circle.contains("alpha = beta = alpha lead round in a circle"), "{circle}");
        // A chain, a fix beside a tie, and a fix in one law with a tie in another are fine.
        assert_eq!(refused("alpha=0.3", "A=B,B=E")?, "");
        assert_eq!(refused("E=1.7", "alpha=beta")?, "");
        assert_eq!(refused("chinchilla.alpha=0.3", "kaplan_nd.alpha_N=kaplan_nd.alpha_D")?, "");
        let chained = Mapping::new(&CHINCHILLA, &given("", "A=B,B=E")?)?;
        assert_eq!(chained.free(), 3);
        Ok(())
    }
}
