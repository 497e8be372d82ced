//! plan.json: every run of a sweep in the order workers take them (the `Plan` type lives with
//! the planner, `crate::plan`); written once per results directory, read by sweep, status and
//! the summary rebuild. A plan whose run ids would leave the results directory is as corrupt as
//! one that does not parse.

use std::path::{Component, Path};

use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::plan::RunRole;

/// Reads a sweep directory's plan.json.
pub fn read_plan(path: &Path) -> Result<Plan> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_plan(path, &bytes)
}

/// Parses the bytes of a plan.json; `path` only names it in the error. A plan whose run ids
/// would leave the results directory is as corrupt as one that does not parse.
pub fn parse_plan(path: &Path, bytes: &[u8]) -> Result<Plan> {
    let plan: Plan = serde_json::from_slice(bytes).map_err(|e| {
        Error::record(
            path,
            format!(
                "not a valid plan.json: {e}; move it aside and rerun `sweeplaw sweep` on the sweep's config, which \
             writes it again (finished runs are kept: sweep.toml and each run.json still name their config)"
            ),
        )
    })?;
    for spec in &plan.runs {
        check_component(&spec.run_id).map_err(|m| Error::record(path, format!("run id: {m}")))?;
        if let RunRole::Branch { trunk, .. } = &spec.role {
            check_component(trunk).map_err(|m| Error::record(path, format!("trunk run id: {m}")))?;
        }
    }
    Ok(plan)
}

/// A name that becomes a directory under the results directory must be exactly one plain path
/// component: no separators, no `..`, not absolute, not hidden, nothing a shell would mangle.
pub fn check_component(name: &str) -> std::result::Result<(), String> {
    let mut components = Path::new(name).components();
    let single = matches!(components.next(), Some(Component::Normal(_))) && components.next().is_none();
    if single && crate::config::check_run_id(name).is_ok() {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a plain directory name (1-200 letters, digits, '-', '_' or '.', \
             not starting with '.' or '-'): it must not reach outside the results directory"
        ))
    }
}
