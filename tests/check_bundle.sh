#!/usr/bin/env bash
# ctest bundle.on_lab_glue: the handed-in form of the crate.
#   tests/check_bundle.sh TARGET_DIR
# Bundles src/server.rs into one file, puts it in a crate folder with the
# twin of the lab's glue (scripts/lab-crate), and checks: one self-contained
# file (no `mod name;` left to resolve); `cargo build --release` shows no
# warning from server.rs; `cargo clippy --release` shows nothing at all.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
target=${1:?usage: tests/check_bundle.sh TARGET_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "check_bundle: $*"; exit 1; }

"$here/scripts/lab-crate" "$work/crate" || fail "scripts/lab-crate failed"
server="$work/crate/server.rs"
if grep -nE '^\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*;' "$server"; then fail "server.rs still declares file modules"; fi
lines=$(wc -l <"$server")
modules=$(grep -c "^ *// mod [a-z_]*: from " "$server")
(cd "$work/crate" && CARGO_TARGET_DIR="$target" cargo build --release 2>"$work/build.log") || { cat "$work/build.log"; fail "the crate does not build"; }
if grep -A4 "^warning" "$work/build.log" | grep -q "server.rs"; then
  grep -A8 "^warning" "$work/build.log"
  fail "cargo build warns about server.rs"
fi
(cd "$work/crate" && CARGO_TARGET_DIR="$target" cargo clippy --release 2>"$work/clippy.log") || { cat "$work/clippy.log"; fail "clippy failed"; }
if grep -qE "^(warning|error)" "$work/clippy.log"; then
  cat "$work/clippy.log"
  fail "clippy is not clean"
fi
echo "check_bundle: server.rs is one file ($lines lines, $modules inlined modules); cargo build --release: no warning from server.rs; cargo clippy --release: clean"
