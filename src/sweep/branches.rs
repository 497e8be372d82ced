//! WSD branching's waiting rule: a branch starts from its trunk's checkpoint at its branch
//! point, so a branch with no checkpoint to start from waits while its trunk may still reach that
//! point, and gives up (failed or diverged, naming the trunk) once the trunk is finished without
//! it, instead of waiting for ever (docs/sweep-design.md "WSD branching: a trunk that cannot
//! serve its branches").

use std::sync::Mutex;

use crate::records::plan::{RunRole, RunSpec};
use crate::records::run::RunStatus;
use crate::sweep::store::SweepStore;
use crate::train::run::branch_checkpoint_name;

/// The WSD trunks as one sweep process sees them: which are its own to train (a failed trunk of
/// its share is retried before its branches give up on it, as every failed run is retried on a
/// rerun), and which it has settled (attempted to an end) since it started, with the failure
/// when the attempt failed.
pub(super) struct Trunks {
    mine: Vec<String>,
    settled: Mutex<Vec<(String, Option<String>)>>,
}

impl Trunks {
    pub(super) fn new(mine: &[&RunSpec]) -> Self {
        let mine = mine.iter().filter(|r| matches!(r.role, RunRole::Trunk { .. })).map(|r| r.run_id.clone()).collect();
        Trunks { mine, settled: Mutex::new(Vec::new()) }
    }

    pub(super) fn settle(&self, trunk: &str, failure: Option<String>) {
        let mut settled = self.settled.lock().unwrap_or_else(|e| e.into_inner());
        settled.retain(|(id, _)| id != trunk);
        settled.push((trunk.to_string(), failure));
    }

    /// None: not settled by this process yet; Some(failure) once it is.
    fn settled(&self, trunk: &str) -> Option<Option<String>> {
        let settled = self.settled.lock().unwrap_or_else(|e| e.into_inner());
        settled.iter().find(|(id, _)| id == trunk).map(|(_, failure)| failure.clone())
    }
}

/// Why a branch with no checkpoint to start from gives up on its trunk.
pub(super) enum GiveUp {
    /// The trunk is finished without the checkpoint: the branch fails, with why (retried on a
    /// rerun, as failed runs are, once the trunk is retried).
    Failed(String),
    /// The trunk diverged before the branch point: the branch is not trainable, and diverged.
    Diverged(String),
}

/// What a branch with no checkpoint to start from does: None, wait while its trunk may still
/// reach the branch point (pending, training, or failed and about to be retried by this
/// process); or give up on a trunk that is finished (done, diverged, or failed and not to be
/// retried by this process) without the checkpoint, saying why.
pub(super) fn give_up(store: &SweepStore, trunks: &Trunks, trunk: &str, from_step: u64) -> Option<GiveUp> {
    let checkpoint = store.run_dir(trunk).join("checkpoint").join(branch_checkpoint_name(from_step));
    let record = store.record(trunk);
    let status = record.as_ref().map_or(RunStatus::Pending, |r| r.status);
    let reason = record.as_ref().and_then(|r| r.reason.clone()).map(|r| format!(" ({r})")).unwrap_or_default();
    let settled = trunks.settled(trunk);
    Some(match status {
        RunStatus::Done => GiveUp::Failed(format!(
            "its trunk {trunk} is done but has no checkpoint at this branch's branch point, step {from_step} \
             ({} is missing); move the trunk's run folder aside and rerun the sweep to train it again",
            checkpoint.display()
        )),
        RunStatus::Diverged => {
            let at = record.as_ref().and_then(|r| r.result.as_ref()).map_or(0, |r| r.steps);
            if from_step >= at {
                GiveUp::Diverged(format!(
                    "its trunk {trunk} diverged at step {at}{reason}, before this branch's branch point, \
                     step {from_step}: the branch is not trainable"
                ))
            } else {
                GiveUp::Failed(format!(
                    "its trunk {trunk} diverged at step {at}, after this branch's branch point, step \
                     {from_step}, but the checkpoint there ({}) is missing",
                    checkpoint.display()
                ))
            }
        }
        RunStatus::Failed if settled.is_some() || !trunks.mine.iter().any(|t| t == trunk) => GiveUp::Failed(format!(
            "its trunk {trunk} failed{reason} before this branch's branch point, step {from_step}; \
                 rerun the sweep to retry the trunk and then this branch"
        )),
        // The trunk failed here without a record that reads (its folder cannot hold one).
        RunStatus::Pending | RunStatus::Running if matches!(settled, Some(Some(_))) => {
            let failure = settled.flatten().unwrap_or_default();
            GiveUp::Failed(format!(
                "its trunk {trunk} failed ({failure}) before this branch's branch point, step {from_step}; \
                 rerun the sweep to retry the trunk and then this branch"
            ))
        }
        _ => return None,
    })
}
