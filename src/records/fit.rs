//! fit.json (docs/DESIGN.md "Results: the stable contract"): the types `sweeplaw fit` writes
//! (they live with the fitter, in `crate::fit`'s report.rs, and are re-exported here) and their
//! one reader, which reads them back leniently where old or partial files need it: a law may
//! be absent, any field may be missing (a number reads as NaN, a list as empty), a NaN the
//! writer stored as null reads as NaN again, and an entry of a list that does not parse (one
//! IsoFLOP minimum, one held-out run) is left out. A file that is not JSON, or whose parts
//! have the wrong shape, is an error naming the file.

use std::path::Path;

use crate::error::{Error, Result};

pub use crate::fit::{
    BootstrapSummary, ChinchillaFit, FitReport, Fits, FrontierFit, HeldOut, HoldoutReport, Intervals, IsoFlopFit,
    IsoFlopMinimum, LawFit, Prediction, Values,
};

/// Reads fit.json: `Ok(None)` when there is none.
pub fn read_fit(path: &Path) -> Result<Option<FitReport>> {
    match std::fs::read(path) {
        Ok(bytes) => parse_fit(path, &bytes).map(Some),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(Error::io(path, error)),
    }
}

/// Parses the bytes of a fit.json; `path` only names it in the error (with serde's line).
pub fn parse_fit(path: &Path, bytes: &[u8]) -> Result<FitReport> {
    serde_json::from_slice(bytes).map_err(|e| {
        let what = if e.is_data() { "not a fit.json" } else { "not valid JSON" };
        Error::record(path, format!("line {}: {what} ({e})", e.line()))
    })
}

/// The `deserialize_with` and `default` functions of the fit.json types.
pub(crate) mod lenient {
    use std::collections::BTreeMap;

    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Deserializer};

    /// NaN: the value of a number fit.json does not give.
    pub(crate) fn nan() -> f64 {
        f64::NAN
    }

    /// [NaN, NaN].
    pub(crate) fn nan_pair() -> [f64; 2] {
        [f64::NAN; 2]
    }

    /// 6 and 1: the compute model C = 6·N·D of fit.json files written before it was recorded.
    pub(crate) fn six() -> f64 {
        6.0
    }

    pub(crate) fn one() -> f64 {
        1.0
    }

    /// "chinchilla": the law of a holdout that does not name it.
    pub(crate) fn chinchilla() -> String {
        "chinchilla".to_string()
    }

    /// `true`: what an IsoFLOP minimum without "inside" is.
    pub(crate) fn yes() -> bool {
        true
    }

    /// A number; null (how serde_json writes NaN and infinities) reads as NaN.
    pub(crate) fn number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
    }

    /// A [low, high] pair; nulls read as NaN.
    pub(crate) fn pair<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[f64; 2], D::Error> {
        let [low, high] = <[Option<f64>; 2]>::deserialize(deserializer)?;
        Ok([low.unwrap_or(f64::NAN), high.unwrap_or(f64::NAN)])
    }

    /// Named numbers; a name whose value is null (a NaN) is left out.
    pub(crate) fn numbers<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, f64>, D::Error> {
        let map = BTreeMap::<String, Option<f64>>::deserialize(deserializer)?;
        Ok(map.into_iter().filter_map(|(name, value)| Some((name, value?))).collect())
    }

    /// `numbers`, of an optional map.
    pub(crate) fn optional_numbers<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<BTreeMap<String, f64>>, D::Error> {
        let map = Option::<BTreeMap<String, Option<f64>>>::deserialize(deserializer)?;
        Ok(map.map(|map| map.into_iter().filter_map(|(name, value)| Some((name, value?))).collect()))
    }

    /// Named [low, high] intervals; one that is not a pair of numbers is left out.
    pub(crate) fn intervals<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, [f64; 2]>, D::Error> {
        let map = BTreeMap::<String, serde_json::Value>::deserialize(deserializer)?;
        let pair = |value: serde_json::Value| -> Option<[f64; 2]> {
            let [low, high] = serde_json::from_value::<[f64; 2]>(value).ok()?;
            Some([low, high])
        };
        Ok(map.into_iter().filter_map(|(name, value)| Some((name, pair(value)?))).collect())
    }

    /// A list whose entries that do not parse are left out.
    pub(crate) fn entries<'de, D: Deserializer<'de>, T: DeserializeOwned>(deserializer: D) -> Result<Vec<T>, D::Error> {
        let items = Vec::<serde_json::Value>::deserialize(deserializer)?;
        Ok(items.into_iter().filter_map(|item| serde_json::from_value(item).ok()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_fit_json_reads_with_what_it_has_and_nulls_as_nan() -> Result<()> {
        let text = br#"{ "param_count": "total",
            "fits": { "chinchilla": { "params": { "E": 1.5, "A": null }, "ci95": { "E": [1.4, 1.6], "A": [null, 2] } },
                      "isoflop": { "a": 0.5, "minima": [ { "flops": 1e12, "N_opt": 1e5, "D_opt": 1e6 }, { "flops": "x" } ] },
                      "holdout": { "held_out": [ { "run": "r", "actual": 3.0, "predicted": null } ] } } }"#;
        let fit = parse_fit(Path::new("fit.json"), text)?;
        assert_eq!((fit.param_count.as_str(), fit.points, fit.flop_count.as_str()), ("total", 0, ""));
        let chinchilla = fit.fits.chinchilla.as_ref().ok_or_else(|| Error::Usage("no chinchilla".into()))?;
        assert_eq!(chinchilla.params.e, 1.5);
        assert!(chinchilla.params.a.is_nan() && chinchilla.params.alpha.is_nan() && chinchilla.a.is_nan());
        assert_eq!(chinchilla.ci95.keys().collect::<Vec<_>>(), vec!["E"]);
        let isoflop = fit.fits.isoflop.as_ref().ok_or_else(|| Error::Usage("no isoflop".into()))?;
        assert_eq!((isoflop.a, isoflop.minima.len(), isoflop.minima[0].inside), (0.5, 1, true));
        assert!(isoflop.b.is_nan() && isoflop.minima[0].loss.is_nan());
        let holdout = fit.fits.holdout.as_ref().ok_or_else(|| Error::Usage("no holdout".into()))?;
        assert_eq!((holdout.law.as_str(), holdout.held_out.len()), ("chinchilla", 1));
        assert!(holdout.held_out[0].predicted.is_nan() && holdout.max_rel_error.is_nan());
        assert!(fit.fits.frontier.is_none() && fit.fits.kaplan_n.is_none());
        Ok(())
    }

    #[test]
    fn a_fit_json_that_does_not_parse_is_an_error_naming_the_file() {
        for (text, what) in
            [(&b"{ \"fits\": "[..], "not valid JSON"), (b"{ \"fits\": { \"isoflop\": 3 } }", "not a fit.json")]
        {
            let error = parse_fit(Path::new("dir/fit.json"), text).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.starts_with("dir/fit.json: line 1: ") && error.contains(what), "{error}");
        }
    }
}
