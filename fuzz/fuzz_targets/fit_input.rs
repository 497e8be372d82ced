//! The fit input reader: arbitrary bytes as the CSV given to `sweeplaw fit`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // /dev/shm keeps the scratch file in memory where it exists.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
    sweeplaw::fuzzing::fit_input(&dir, data)
});
