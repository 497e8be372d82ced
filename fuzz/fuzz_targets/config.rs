//! The config parser: arbitrary bytes as a sweep config and as a run config.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sweeplaw::fuzzing::config(data));
