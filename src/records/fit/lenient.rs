//! The `deserialize_with` and `default` functions of the fit.json types: how the reader stays
//! lenient with old or partial files (a missing number reads as NaN, a null as NaN, an entry
//! that does not parse is left out).

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
pub(crate) fn intervals<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, [f64; 2]>, D::Error> {
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
