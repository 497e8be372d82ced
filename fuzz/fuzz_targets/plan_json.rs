//! A sweep directory's plan.json: arbitrary bytes parsed and rendered as a plan.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sweeplaw::fuzzing::plan_json(data));
