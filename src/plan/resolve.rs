//! The files a config names, read when a sweep is planned: the fit.json its grid is centred on
//! (`grid.centre`) and the tuned.json its learning rates come from (`train.tuned_table`), both
//! relative to the config file. The config layer only parses; what these files hold is filled
//! into the config here, where it becomes part of the config's identity (`config_hash`), so a
//! sweep whose centre law or tuned rule changed is a different sweep.

use std::path::Path;

use crate::config::{CentreLaw, GridSection, HyperRule, SweepConfig, TrainSection};
use crate::error::{Error, Result};
use crate::records::tuned::TunedTable;

/// Reads a sweep config and the files it names. Every command that plans or runs a sweep
/// loads its config through here.
pub fn load_sweep_config(path: &Path) -> Result<SweepConfig> {
    let mut config = SweepConfig::parse_file(path)?;
    resolve_centre(&mut config.grid, path).map_err(|m| Error::config(path, m))?;
    resolve_tuned(&mut config.train, path).map_err(|m| Error::config(path, m))?;
    Ok(config)
}

/// Reads the law of `centre` when it names a fit.json (relative to the config file).
pub(crate) fn resolve_centre(grid: &mut GridSection, config_path: &Path) -> std::result::Result<(), String> {
    match grid.centre.as_deref() {
        None | Some("chinchilla") => Ok(()),
        Some(file) => {
            let base = config_path.parent().unwrap_or(Path::new("."));
            let law = CentreLaw::read(&base.join(file)).map_err(|e| format!("grid.centre = {file:?}: {e}"))?;
            grid.centre_law = Some(law);
            Ok(())
        }
    }
}

/// Reads `tuned_table` for `hyperparameters = "tuned"` when it exists (relative to the config
/// file); a missing table is left for `hyper_for` to report, so `sweeplaw tune` can read the
/// config that will use it.
pub(crate) fn resolve_tuned(train: &mut TrainSection, config_path: &Path) -> std::result::Result<(), String> {
    let (HyperRule::Tuned, Some(file)) = (train.hyperparameters, &train.tuned_table) else { return Ok(()) };
    let path = config_path.parent().unwrap_or(Path::new(".")).join(file);
    if path.exists() {
        let table = TunedTable::read(&path).map_err(|e| format!("train.tuned_table = {file:?}: {e}"))?;
        train.tuned_at_edge = table.sizes.iter().filter(|s| s.at_edge).map(|s| s.label()).collect();
        train.tuned = Some(table.rule);
    }
    Ok(())
}
