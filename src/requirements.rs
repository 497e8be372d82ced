//! What a test needs from the machine (g++ for the emulated CUDA kernels, a Slurm install, a
//! Chromium, mount privileges, the reference data) and what happens without it: the test skips,
//! printing one line that says what was skipped and why, unless `SWEEPLAW_REQUIRE` lists that
//! need (comma-separated: `emulator`, `slurm`, `browser`, `mount`, `reference`, or `all`), in which
//! case the skip fails the test. CI sets it, so CI cannot pass by skipping.

use std::io::Write;

/// The environment variable listing the needs whose absence fails a test.
pub const ENV: &str = "SWEEPLAW_REQUIRE";

/// Whether `SWEEPLAW_REQUIRE` lists `need` (or `all`).
pub fn required(need: &str) -> bool {
    std::env::var(ENV).is_ok_and(|v| v.split(',').map(str::trim).any(|part| part == need || part == "all"))
}

/// A test cannot run for want of `need`: prints `skipped (<need>): <what>: <why>` and returns, or
/// panics with the same line when `need` is required.
pub fn skip(need: &str, what: &str, why: &str) {
    let line = format!("skipped ({need}): {what}: {why}");
    if required(need) {
        panic!("{line}; {ENV} lists {need:?}, so a skip is a failure");
    }
    // Straight to the process's stderr, past the test harness's capture, so that the skip shows
    // in `cargo test` output even when the test passes.
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_listed_need_is_required_and_others_are_not() {
        // The variable is read at the call; this test only reads it.
        let listed = std::env::var(super::ENV).unwrap_or_default();
        let parts: Vec<&str> = listed.split(',').map(str::trim).collect();
        assert_eq!(super::required("browser"), parts.contains(&"browser") || parts.contains(&"all"));
        assert_eq!(super::required("no-such-need"), parts.contains(&"all"));
    }
}
