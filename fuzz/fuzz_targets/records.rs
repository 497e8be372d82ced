//! The records readers: arbitrary bytes as run.json, fit.json, metrics.csv and summary.csv.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sweeplaw::fuzzing::records(data));
