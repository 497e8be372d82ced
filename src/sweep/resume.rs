//! Resume only on the data a run started on. A checkpoint holds weights trained on the data the
//! run's run.json records (`data`: the source with its tokenizer's and files' sha256, the token
//! counts, the validation sample, the token files' sha256). If the data changed after the sweep
//! stopped (a corpus edited, a token file replaced), continuing from that checkpoint would train
//! the rest of the run on other data, under another tokenizer even, and record a curve that is
//! neither run's. So before any training, each run about to resume from a checkpoint (its own,
//! or for a WSD branch its trunk's) has its recorded data compared with what the data gives it
//! now (as run.json would hold it, paths cut to file names:
//! [`DataInfo::comparable`](crate::records::DataInfo::comparable)),
//! exactly as `--reuse` compares a finished run's; a difference refuses the sweep with one
//! line naming the run, what differs and how to go on. Nothing is deleted or rewritten: restore
//! the data and the run resumes, or move the run's folder aside and it trains again.

use std::path::Path;

use crate::data::TokenSource;
use crate::diff::differs;
use crate::error::{Error, Result};
use crate::plan::{Plan, RunRole, RunSpec};
use crate::records::{RunRecord, RunStatus};
use crate::train::run::{branch_checkpoint_name, data_info, rotating_checkpoints};

/// Refuses when a run of `mine` that is not finished would resume from a checkpoint trained on
/// other data than `source` gives it now (module docs). `sweep_dir` is `<results>/<sweep>`.
pub fn check_resume_data(sweep_dir: &Path, plan: &Plan, mine: &[&RunSpec], source: &dyn TokenSource) -> Result<()> {
    let runs = sweep_dir.join("runs");
    let mut checked: Vec<&str> = Vec::new();
    for spec in mine {
        let run_dir = runs.join(&spec.run_id);
        let record = RunRecord::read(&run_dir.join("run.json")).ok();
        if record.as_ref().is_some_and(|r| matches!(r.status, RunStatus::Done | RunStatus::Diverged)) {
            continue;
        }
        let has_own = rotating_checkpoints(&run_dir.join("checkpoint")).iter().any(|c| c.join("state.json").exists());
        if has_own {
            // A run.json that does not read is the store's to report (it is moved aside and the
            // run trains again from scratch); the checkpoint is not used then.
            if let Some(record) = record {
                compare(spec, &spec.run_id, &record, &run_dir, source)?;
            }
            continue;
        }
        // A branch that has not started yet starts from its trunk's checkpoint.
        if let RunRole::Branch { trunk, from_step, .. } = &spec.role {
            let trunk_dir = runs.join(trunk);
            let point = trunk_dir.join("checkpoint").join(branch_checkpoint_name(*from_step));
            if checked.contains(&trunk.as_str()) || !point.join("state.json").exists() {
                continue;
            }
            let (Some(trunk_spec), Ok(trunk_record)) =
                (plan.runs.iter().find(|r| &r.run_id == trunk), RunRecord::read(&trunk_dir.join("run.json")))
            else {
                continue;
            };
            compare(trunk_spec, &spec.run_id, &trunk_record, &trunk_dir, source)?;
            checked.push(trunk);
        }
    }
    Ok(())
}

/// Err naming `run` (the run that would resume) when `record` (of `spec`'s run) was trained on
/// other data than `source` gives `spec` now; `folder` is the run folder to move aside.
fn compare(spec: &RunSpec, run: &str, record: &RunRecord, folder: &Path, source: &dyn TokenSource) -> Result<()> {
    let Some(why) = differs("data", &record.data.comparable(), &data_info(spec, source)?.comparable()) else {
        return Ok(());
    };
    let whose =
        if spec.run_id == run { "its checkpoint was".to_string() } else { format!("its trunk {} was", spec.run_id) };
    Err(Error::Run {
        run: run.to_string(),
        message: format!(
            "{whose} trained on other data than the data now ({why}); nothing was changed: restore the data it \
             started on to resume it, or move {} aside to train it again",
            folder.display()
        ),
    })
}
