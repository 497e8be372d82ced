//! Diagnostics, apart from the pipeline stages they measure: `sweeplaw bench` (training
//! throughput of one shape, `bench`), `bench --ops` (where a step's time goes, op by op,
//! `opbench`) and `bench --check` (the device computes what the CPU computes, `devcheck`: the
//! gate before training on an accelerator). The sweep's cost estimate reuses `bench`.

pub mod bench;
pub mod devcheck;
pub mod opbench;
