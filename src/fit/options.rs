//! What `sweeplaw fit` is asked to do: which law, which counting conventions, how many
//! bootstrap resamples, how many runs to hold out, where to predict.

use std::fmt;
use std::str::FromStr;

/// The counting conventions live in `crate::counting`; `FlopCount` is the fit's name for
/// `FlopConvention`.
pub use crate::counting::{FlopConvention as FlopCount, ParamCount};
use crate::fit::constraints::Constraints;
use crate::fit::error::FitError;
use crate::records::fit::FitSettings;

/// The law family (or all of them) to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    /// Hoffmann et al. 2022 approach 3: L = E + A/N^alpha + B/D^beta (and the a/b table).
    Chinchilla,
    /// Kaplan et al. 2020: L(N), L(D), L(C) on the frontier, and the joint L(N, D).
    Kaplan,
    /// Hoffmann et al. 2022 approach 2: a parabola per FLOP budget.
    IsoFlop,
    /// Hoffmann et al. 2022 approach 1: the lowest loss at each compute.
    Frontier,
    /// Muennighoff et al. 2023: effective data and parameters under repetition.
    DataConstrained,
    /// Every law the data supports.
    All,
}

impl Law {
    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Law::Chinchilla => "chinchilla",
            Law::Kaplan => "kaplan",
            Law::IsoFlop => "isoflop",
            Law::Frontier => "frontier",
            Law::DataConstrained => "data-constrained",
            Law::All => "all",
        }
    }

    /// Whether fitting `self` includes the family `other`.
    pub fn includes(self, other: Law) -> bool {
        self == Law::All || self == other
    }
}

impl FromStr for Law {
    type Err = FitError;
    fn from_str(text: &str) -> Result<Self, FitError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "chinchilla" => Ok(Law::Chinchilla),
            "kaplan" => Ok(Law::Kaplan),
            "isoflop" => Ok(Law::IsoFlop),
            "frontier" => Ok(Law::Frontier),
            "data-constrained" | "data_constrained" => Ok(Law::DataConstrained),
            "all" => Ok(Law::All),
            _ => Err(FitError::UnknownValue {
                what: "law",
                value: text.to_string(),
                expected: "chinchilla, kaplan, isoflop, frontier, data-constrained, all",
            }),
        }
    }
}

impl fmt::Display for Law {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How rows that share (N, D) are combined before fitting (`--reduce`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduce {
    /// Rows differing in a hyperparameter column (lr, batch_size, ...) keep their lowest loss
    /// (the best setting tried); seeds of one configuration are averaged.
    #[default]
    Auto,
    /// Every group keeps its lowest loss.
    Min,
    /// Every group is averaged.
    Mean,
    /// Rows are fitted as they are, each as an independent point.
    None,
}

impl Reduce {
    pub fn as_str(self) -> &'static str {
        match self {
            Reduce::Auto => "auto",
            Reduce::Min => "min",
            Reduce::Mean => "mean",
            Reduce::None => "none",
        }
    }
}

impl FromStr for Reduce {
    type Err = FitError;
    fn from_str(text: &str) -> Result<Self, FitError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Reduce::Auto),
            "min" => Ok(Reduce::Min),
            "mean" => Ok(Reduce::Mean),
            "none" => Ok(Reduce::None),
            _ => Err(FitError::UnknownValue {
                what: "reduction",
                value: text.to_string(),
                expected: "auto, min, mean, none",
            }),
        }
    }
}

/// Whether the data-constrained fit leaves out runs that overfit (`--overfit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overfit {
    /// Left out when the base law is fitted, kept when it is fixed (`--fix`).
    #[default]
    Auto,
    Drop,
    Keep,
}

impl Overfit {
    pub fn as_str(self) -> &'static str {
        match self {
            Overfit::Auto => "auto",
            Overfit::Drop => "drop",
            Overfit::Keep => "keep",
        }
    }
}

impl FromStr for Overfit {
    type Err = FitError;
    fn from_str(text: &str) -> Result<Self, FitError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Overfit::Auto),
            "drop" => Ok(Overfit::Drop),
            "keep" => Ok(Overfit::Keep),
            _ => Err(FitError::UnknownValue {
                what: "overfit rule",
                value: text.to_string(),
                expected: "auto, drop, keep",
            }),
        }
    }
}

/// Everything `fit` and `load_points` need to know besides the data.
#[derive(Debug, Clone)]
pub struct FitOptions {
    pub law: Law,
    pub params: ParamCount,
    pub flops: FlopCount,
    /// Bootstrap resamples over runs; 0 turns the intervals off.
    pub bootstrap: usize,
    /// Refit without the `holdout` largest-compute runs and predict them; 0 = no backtest.
    pub holdout: usize,
    /// Compute budget at which to predict N_opt, D_opt and the loss.
    pub target_flops: Option<f64>,
    /// Seed of the bootstrap resampling (results are identical for the same seed).
    pub seed: u64,
    /// Drop this many highest-loss points before fitting (Besiroglu et al. 2024 drop 5).
    pub exclude_highest_loss: usize,
    /// Approach 2 fits each budget's parabola to the runs at this many sizes nearest its
    /// lowest loss (Porian et al. 2024's procedure; 3 or more).
    pub isoflop_window: usize,
    /// Parameters fixed (`--fix`) and tied (`--tie`).
    pub constraints: Constraints,
    /// How rows sharing (N, D) are combined (`--reduce`).
    pub reduce: Reduce,
    /// Whether the data-constrained fit leaves out overfitting runs (`--overfit`).
    pub overfit: Overfit,
    /// Show a progress bar on stderr for long fits (the binary sets it on a terminal).
    pub progress: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            law: Law::All,
            params: ParamCount::Nonembedding,
            flops: FlopCount::default(),
            bootstrap: 1000,
            holdout: 0,
            target_flops: None,
            seed: 0,
            exclude_highest_loss: 0,
            isoflop_window: 5,
            constraints: Constraints::default(),
            reduce: Reduce::Auto,
            overfit: Overfit::Auto,
            progress: false,
        }
    }
}

impl FitOptions {
    /// What fit.json records of these options (all but the progress bar), so that a stale
    /// fit.json can be refitted the way it was made.
    pub fn settings(&self) -> FitSettings {
        FitSettings {
            law: self.law.as_str().to_string(),
            params: self.params.as_str().to_string(),
            flops: self.flops.as_str().to_string(),
            bootstrap: self.bootstrap,
            holdout: self.holdout,
            target_flops: self.target_flops,
            seed: self.seed,
            exclude_highest_loss: self.exclude_highest_loss,
            isoflop_window: self.isoflop_window,
            fixed: self.constraints.fixed.clone(),
            tied: self.constraints.tied.clone(),
            reduce: self.reduce.as_str().to_string(),
            overfit: self.overfit.as_str().to_string(),
        }
    }

    /// The options a fit.json recorded; a name this build does not know is an error.
    pub fn from_settings(settings: &FitSettings) -> Result<FitOptions, FitError> {
        let unknown = |what: &'static str, value: &str, expected: &'static str| FitError::UnknownValue {
            what,
            value: value.to_string(),
            expected,
        };
        let options = FitOptions {
            law: settings.law.parse()?,
            params: settings
                .params
                .parse()
                .map_err(|_| unknown("parameter count", &settings.params, "nonembedding, total, matmul"))?,
            flops: settings
                .flops
                .parse()
                .map_err(|_| unknown("FLOP count", &settings.flops, "6n, matmul_attn, chinchilla"))?,
            bootstrap: settings.bootstrap,
            holdout: settings.holdout,
            target_flops: settings.target_flops,
            seed: settings.seed,
            exclude_highest_loss: settings.exclude_highest_loss,
            isoflop_window: settings.isoflop_window,
            constraints: Constraints { fixed: settings.fixed.clone(), tied: settings.tied.clone() },
            reduce: settings.reduce.parse()?,
            overfit: settings.overfit.parse()?,
            progress: false,
        };
        options.validate()?;
        Ok(options)
    }

    /// Checks the ranges the types cannot express.
    pub fn validate(&self) -> Result<(), FitError> {
        if let Some(target) = self.target_flops {
            if !(target.is_finite() && target > 0.0) {
                return Err(FitError::InvalidOption {
                    option: "target-flops",
                    message: format!("must be a positive number, got {target}"),
                });
            }
        }
        if self.isoflop_window < 3 {
            return Err(FitError::InvalidOption {
                option: "isoflop-window",
                message: format!("a parabola needs 3 or more sizes, got {}", self.isoflop_window),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() -> Result<(), Box<dyn std::error::Error>> {
        for law in [Law::Chinchilla, Law::Kaplan, Law::IsoFlop, Law::Frontier, Law::DataConstrained, Law::All] {
            assert_eq!(law.as_str().parse::<Law>()?, law);
        }
        for count in [ParamCount::Nonembedding, ParamCount::Total, ParamCount::Matmul] {
            assert_eq!(count.as_str().parse::<ParamCount>()?, count);
        }
        for count in [FlopCount::SixN, FlopCount::MatmulAttn, FlopCount::Chinchilla] {
            assert_eq!(count.as_str().parse::<FlopCount>()?, count);
        }
        assert!("data_constrained".parse::<Law>().is_ok());
        assert!("chinchila".parse::<Law>().is_err());
        assert!("7n".parse::<FlopCount>().is_err());
        Ok(())
    }

    #[test]
    fn options_round_trip_through_what_fit_json_records() -> Result<(), FitError> {
        let options = FitOptions {
            law: Law::Chinchilla,
            params: ParamCount::Total,
            flops: FlopCount::MatmulAttn,
            bootstrap: 200,
            holdout: 3,
            target_flops: Some(1e15),
            seed: 7,
            exclude_highest_loss: 2,
            isoflop_window: 4,
            constraints: Constraints {
                fixed: [("E".to_string(), 1.5)].into_iter().collect(),
                tied: vec![("alpha".to_string(), "beta".to_string())],
            },
            reduce: Reduce::Mean,
            overfit: Overfit::Keep,
            progress: true,
        };
        let json = serde_json::to_string(&options.settings())
            .map_err(|e| FitError::InvalidOption { option: "settings", message: e.to_string() })?;
        let settings: FitSettings = serde_json::from_str(&json)
            .map_err(|e| FitError::InvalidOption { option: "settings", message: e.to_string() })?;
        let back = FitOptions::from_settings(&settings)?;
        assert_eq!(back.settings(), options.settings());
        assert!(!back.progress, "a refit from fit.json shows no progress bar");
        let defaults = FitOptions::default().settings();
        assert_eq!(
            settings.flags_beyond(&defaults),
            [
                "--law chinchilla",
                "--params total",
                "--flops matmul_attn",
                "--bootstrap 200",
                "--holdout 3",
                "--target-flops 1e15",
                "--seed 7",
                "--exclude-highest-loss 2",
                "--isoflop-window 4",
                "--fix E=1.5",
                "--tie alpha=beta",
                "--reduce mean",
                "--overfit keep",
            ]
        );
        assert!(defaults.flags_beyond(&defaults).is_empty());
        let mut unknown = options.settings();
        unknown.reduce = "median".into();
        assert!(matches!(FitOptions::from_settings(&unknown), Err(FitError::UnknownValue { .. })));
        Ok(())
    }

    #[test]
    fn nonpositive_target_flops_is_rejected() {
        let options = FitOptions { target_flops: Some(-1.0), ..FitOptions::default() };
        assert!(options.validate().is_err());
        assert!(FitOptions::default().validate().is_ok());
    }
}
