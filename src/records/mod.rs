//! The results files of docs/DESIGN.md "Results: the stable contract", one module per file:
//! run.json (`run`), metrics.csv (`metrics`), summary.csv (`summary`), plan.json (`plan`, with
//! the `RunSpec`s), fit.json (`fit`, with the verdicts of `verdict`), tuned.json (`tuned`) and
//! ladder.json (`ladder`).
//! Each owns its typed structs, its one reader (tolerant where a damaged line
//! can be skipped with a warning naming the file and line) and its one writer; every record is
//! written through `crate::fs::write_atomic` (temporary file + rename, so a kill at any instant
//! leaves the previous good version). Commands read records through here only.

pub mod fit;
pub mod ladder;
pub mod metrics;
pub mod plan;
pub mod run;
pub mod summary;
pub mod tuned;
/// The verdict vocabulary (a top-level module: the config's centre law carries one too, and
/// `config` may not depend on `records`), under the name fit.json's readers have always used.
pub use crate::verdict;

pub use metrics::{parse_metrics, read_metrics, MetricsRow, MetricsWriter, METRICS_HEADER};
pub use plan::{check_component, parse_plan, read_plan};
pub use run::{Counts, DataInfo, RunInfo, RunRecord, RunResult, RunStatus, Versions, FORMAT_VERSION};
pub use summary::{
    check_header, find_column, is_summary_header, parse_summary, parse_summary_file, read_summary, read_summary_file,
    rebuild_hint, write_summary, RejectedRow, SummaryFile, SummaryRow, SUMMARY_HEADER,
};

/// `value` as a record holds it: written as JSON and read back. serde_json's parser may land one
/// unit in the last place off a number it wrote (1.4142682562448459 reads back as
/// 1.414268256244846), so a value computed now equals one read from a record only after the
/// same trip; every comparison of a computed spec or data with a recorded one goes through
/// here. (The parser is kept: config hashes hold the numbers it reads from tuned.json and
/// fit.json.) A value that does not make the trip is returned as it is.
pub fn as_recorded<T: serde::Serialize + serde::de::DeserializeOwned + Clone>(value: &T) -> T {
    serde_json::to_string(value).ok().and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_else(|| value.clone())
}

/// The atomic write lives in the filesystem layer (`crate::fs`); these paths are kept for callers.
pub use crate::fs::{commit_temp, temp_sibling, unix_now, write_atomic};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_computed_number_equals_its_record_after_the_same_trip() {
        let computed = vec![1.4142682562448459_f64, 6e-3, 0.1 + 0.2];
        let recorded: Vec<f64> = serde_json::from_str(&serde_json::to_string_pretty(&computed).unwrap()).unwrap();
        assert_ne!(recorded[0], computed[0], "serde_json reads this one back one unit in the last place off");
        assert_eq!(as_recorded(&computed), recorded);
    }
}
