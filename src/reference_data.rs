//! Where the known-answer tests find published reference data (the Epoch refit of Chinchilla,
//! Porian et al. 2024's IsoFLOP points, Gadre et al. 2024's runs).
//!
//! The data belong to their authors and are not part of this repository. Tests look in
//! `$SWEEPLAW_REFERENCE_DATA` when it is set, otherwise in the `shared/data` folder beside the
//! checkout (the layout CI provides). A test whose file is absent skips, printing one line that
//! names the file, so a user without the data sees what did not run; under
//! `SWEEPLAW_REQUIRE=reference` a missing file fails the test instead.

use std::path::PathBuf;

/// The environment variable naming the folder that holds the reference data.
pub const ENV: &str = "SWEEPLAW_REFERENCE_DATA";

/// The folder the reference data are read from.
pub fn folder() -> PathBuf {
    if let Some(dir) = std::env::var_os(ENV) {
        return PathBuf::from(dir);
    }
    let checkout = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let beside = checkout.parent().map(|p| p.to_path_buf()).unwrap_or_else(|| checkout.clone());
    beside.join("shared").join("data")
}

/// `relative` under [`folder`] when it exists. When it does not, prints one line naming the
/// missing file (the test then returns early) or, when `SWEEPLAW_REQUIRE` lists `reference`,
/// panics so that a CI run cannot pass by skipping ([`crate::requirements::skip`]).
pub fn file(relative: &str) -> Option<PathBuf> {
    let path = folder().join(relative);
    if path.exists() {
        return Some(path);
    }
    crate::requirements::skip(
        "reference",
        &format!("reference data {}", path.display()),
        &format!("absent (set {ENV} to its folder)"),
    );
    None
}
