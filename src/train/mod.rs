//! Training one run: the loop, learning-rate schedules, AdamW, checkpoints and observers.

pub mod checkpoint;
pub mod observe;
pub mod optim;
pub mod run;
pub mod schedule;
pub mod single;
pub mod stop;
