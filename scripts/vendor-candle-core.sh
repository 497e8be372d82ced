#!/usr/bin/env bash
# Rebuilds vendor/candle-core from the published candle-core 0.11.1 crate and sweeplaw's one
# change (vendor/candle-core/sweeplaw.patch, explained in vendor/candle-core/PATCH.md), so the
# vendored copy stays reproducible: anyone can check that it is upstream plus that patch.
#
#   scripts/vendor-candle-core.sh --check   # rebuild in a temp dir, compare with vendor/candle-core (exit 1 if they differ)
#   scripts/vendor-candle-core.sh --write   # replace vendor/candle-core with the rebuilt copy
#
# Needs cargo and access to crates.io (the crate is fetched with `cargo vendor`) and `patch`.
set -euo pipefail
MODE=${1:---check}
case "$MODE" in --check|--write) ;; *) echo "usage: $0 [--check|--write]" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENDORED="$ROOT/vendor/candle-core"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# 1. The published crate, through cargo (no other download path needed).
mkdir -p "$TMP/fetch/src"
printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\ncandle-core = "=0.11.1"\n' \
    > "$TMP/fetch/Cargo.toml"
: > "$TMP/fetch/src/lib.rs"
(cd "$TMP/fetch" && cargo vendor --versioned-dirs --quiet "$TMP/crates" > /dev/null)

# 2. Without its tests, benches, examples and packaging metadata.
BUILT="$TMP/candle-core"
cp -r "$TMP/crates/candle-core-0.11.1" "$BUILT"
rm -rf "$BUILT"/{tests,benches,examples} "$BUILT"/{.cargo_vcs_info.json,Cargo.toml.orig,.cargo-checksum.json,Cargo.lock}

# 3. sweeplaw's change, then the two files that document it.
(cd "$BUILT" && patch -p1 --quiet --no-backup-if-mismatch < "$VENDORED/sweeplaw.patch")
cp "$VENDORED/PATCH.md" "$VENDORED/sweeplaw.patch" "$BUILT/"

if [ "$MODE" = --write ]; then
    rm -rf "$VENDORED"
    cp -r "$BUILT" "$VENDORED"
    echo "vendor/candle-core rebuilt from candle-core 0.11.1 + sweeplaw.patch"
elif diff -r "$BUILT" "$VENDORED" > "$TMP/diff.txt"; then
    echo "vendor/candle-core is candle-core 0.11.1 + sweeplaw.patch, exactly"
else
    head -40 "$TMP/diff.txt" >&2
    echo "vendor/candle-core differs from candle-core 0.11.1 + sweeplaw.patch (above)" >&2
    exit 1
fi
