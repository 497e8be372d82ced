//! Whether the data identify a fitted law: every law sweeplaw reports carries a verdict, the
//! reasons for it and, where there is one, the fix (what to add to the sweep), so that a number
//! the data cannot support is never printed as a result.
//!
//! fit.json carries the verdict inside each law's object (`fits.<law>.verdict`, `.reasons`,
//! `.fixes`); the table, the report and the figures show it. The criteria per law live beside
//! the law's fitter (`crate::fit`); this module holds the shared vocabulary and the rule that the worst finding
//! wins.

use serde::{Deserialize, Serialize};

/// The fewest distinct model sizes and token counts approach 3 and Kaplan's L(N, D) are
/// identified from. With the two minima below, the design minima that `plan` checks before
/// training and the fitter applies after it: they live here, below both.
pub const MIN_DISTINCT: usize = 3;
/// The fewest distinct model sizes an IsoFLOP budget needs for its parabola (approach 2).
pub const MIN_BUDGET_SIZES: usize = 3;
/// The fewest budgets with a bracketed minimum that identify approach 2's exponents: a line
/// through two minima fits them exactly and says nothing of its own error.
pub const MIN_BUDGETS: usize = 3;

/// How well the data pin a law down, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub enum Verdict {
    /// Every reported quantity is constrained by the data.
    #[default]
    #[serde(rename = "identified")]
    Identified,
    /// Fitted, but some quantity is loosely constrained (wide interval, few points).
    #[serde(rename = "weak")]
    Weak,
    /// The data cannot determine the law: it is shown only as a diagnosis, never as a result.
    #[serde(rename = "not identified")]
    NotIdentified,
}

impl Verdict {
    /// The word printed in tables and the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Identified => "identified",
            Verdict::Weak => "weak",
            Verdict::NotIdentified => "not identified",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verdict with its reasons and fixes. Serialised flattened into each law's fit.json object
/// (`#[serde(flatten)] pub assessment: Assessment`).
/// Read back leniently (see `Stored`): a law without a verdict (fit.json written before verdicts
/// existed) is identified; an unknown verdict is not identified, saying so.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "Stored")]
pub struct Assessment {
    pub verdict: Verdict,
    /// Why the verdict is not `identified` (empty when it is).
    pub reasons: Vec<String>,
    /// What to add or change in the sweep to identify the law ("add a FLOP budget above 1e12").
    pub fixes: Vec<String>,
}

/// An assessment as fit.json holds it, every part optional.
#[derive(Deserialize)]
struct Stored {
    #[serde(default)]
    verdict: Option<serde_json::Value>,
    #[serde(default)]
    reasons: Vec<String>,
    #[serde(default)]
    fixes: Vec<String>,
}

impl From<Stored> for Assessment {
    fn from(stored: Stored) -> Assessment {
        let mut assessment = Assessment { verdict: Verdict::Identified, reasons: stored.reasons, fixes: stored.fixes };
        match stored.verdict {
            None | Some(serde_json::Value::Null) => {}
            Some(verdict) => match serde_json::from_value::<Verdict>(verdict.clone()) {
                Ok(verdict) => assessment.verdict = verdict,
                Err(_) => assessment.not_identified(format!("fit.json gives the unknown verdict {verdict}"), None),
            },
        }
        assessment
    }
}

impl Assessment {
    /// No finding against the law.
    pub fn identified() -> Assessment {
        Assessment::default()
    }

    /// Records a finding: the verdict becomes the worse of the two; the reason (and the fix,
    /// when given and not already listed) are appended.
    pub fn add(&mut self, verdict: Verdict, reason: impl Into<String>, fix: Option<String>) {
        self.verdict = self.verdict.max(verdict);
        let reason = reason.into();
        if !self.reasons.contains(&reason) {
            self.reasons.push(reason);
        }
        if let Some(fix) = fix {
            if !self.fixes.contains(&fix) {
                self.fixes.push(fix);
            }
        }
    }

    /// Records a `weak` finding.
    pub fn weak(&mut self, reason: impl Into<String>, fix: Option<String>) {
        self.add(Verdict::Weak, reason, fix);
    }

    /// Records a `not identified` finding.
    pub fn not_identified(&mut self, reason: impl Into<String>, fix: Option<String>) {
        self.add(Verdict::NotIdentified, reason, fix);
    }

    /// Takes in every finding of `other`.
    pub fn merge(&mut self, other: &Assessment) {
        self.verdict = self.verdict.max(other.verdict);
        for reason in &other.reasons {
            if !self.reasons.contains(reason) {
                self.reasons.push(reason.clone());
            }
        }
        for fix in &other.fixes {
            if !self.fixes.contains(fix) {
                self.fixes.push(fix.clone());
            }
        }
    }

    pub fn is_identified(&self) -> bool {
        self.verdict == Verdict::Identified
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_finding_wins_and_serialises_inside_the_law() {
        let mut assessment = Assessment::identified();
        assessment.weak("alpha's interval spans 0.9", Some("add sizes above 2e5".into()));
        assert_eq!(assessment.verdict, Verdict::Weak);
        assessment.not_identified("E ran to its bound 0", None);
        assessment.weak("alpha's interval spans 0.9", Some("add sizes above 2e5".into()));
        assert_eq!(assessment.verdict, Verdict::NotIdentified);
        assert_eq!(assessment.reasons.len(), 2);
        assert_eq!(assessment.fixes, vec!["add sizes above 2e5".to_string()]);
        let json = serde_json::to_value(&assessment).unwrap_or_default();
        assert_eq!(json["verdict"], "not identified");
        let back: Assessment = serde_json::from_value(json).unwrap_or_default();
        assert_eq!(back, assessment);
    }
}
