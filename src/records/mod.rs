//! The results files of docs/DESIGN.md "Results: the stable contract", one module per file:
//! run.json (`run`), metrics.csv (`metrics`), summary.csv (`summary`), plan.json (`plan`, with
//! the `RunSpec`s), fit.json (`fit`, with the verdicts of `verdict`) and tuned.json (`tuned`).
//! Each owns its typed structs, its one reader (tolerant where a damaged line
//! can be skipped with a warning naming the file and line) and its one writer; every record is
//! written through `crate::fs::write_atomic` (temporary file + rename, so a kill at any instant
//! leaves the previous good version). Commands read records through here only.

pub mod fit;
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

/// The atomic write lives in the filesystem layer (`crate::fs`); these paths are kept for callers.
pub use crate::fs::{commit_temp, temp_sibling, unix_now, write_atomic};
