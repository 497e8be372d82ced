//! A checkpoint as a resume reads it: arbitrary bytes as state.json, model.safetensors and
//! optimizer.safetensors (split at NUL bytes).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sweeplaw::fuzzing::checkpoint_state(data));
