#!/usr/bin/env bash
# ctest install.into_scratch_lab: scripts/install-into-lab against a scratch
# directory shaped like the lab's tree (the skeleton's file names, our
# contract header), then the crate is built there as the lab's CMake does
# (cargo build --release in src/protocol/rust_raft) and its symbols checked;
# and the script must refuse, with a clear message, a wrong path and a tree
# without the skeleton.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
fail() { echo "install_into_lab_test: $*"; exit 1; }

lab="$scratch/lab"
mkdir -p "$lab/src/protocol/rust_raft" "$lab/src/protocol/raft"
cp "$here/include/rust_ffi_wrapper.h" "$lab/src/protocol/raft/"
printf '[package]\nname = "rust_raft"\nversion = "0.1.0"\n\n[lib]\npath = "lib.rs"\n' > "$lab/src/protocol/rust_raft/Cargo.toml"
for f in lib.rs ffi.rs server.rs wrappers.rs; do echo "// skeleton $f" > "$lab/src/protocol/rust_raft/$f"; done
printf '// skeleton build.rs\nfn main() {}\n' > "$lab/src/protocol/rust_raft/build.rs"
echo "// the skeleton's C++ side" > "$lab/src/protocol/rust_raft/raft_template.cc"

out=$("$here/scripts/install-into-lab" "$lab" 2>&1) || fail "install failed: $out"
echo "$out"
dir="$lab/src/protocol/rust_raft"
for f in lib.rs ffi.rs server.rs wrappers.rs logging.rs core/mod.rs Cargo.toml raft_template.cc build.rs; do
  [ -e "$dir/$f" ] || fail "$f missing after the install"
done
grep -q "skeleton lib.rs" "$dir"/.skeleton-backup-*/lib.rs || fail "the skeleton's lib.rs was not kept aside"
grep -q "skeleton build.rs" "$dir/build.rs" || fail "the skeleton's build.rs was replaced"
(cd "$dir" && CARGO_TARGET_DIR="$scratch/target" cargo build --release --quiet) || fail "the installed crate does not build"
"$here/scripts/check-symbols" "$scratch/target/release/librust_raft.a" || fail "the installed crate's symbols do not match the contract"

msg=$("$here/scripts/install-into-lab" "$scratch/nowhere" 2>&1); status=$?
[ $status -eq 2 ] && grep -q "is not a directory" <<<"$msg" || fail "a wrong path was not refused clearly: $status $msg"
mkdir -p "$scratch/notlab/src"
msg=$("$here/scripts/install-into-lab" "$scratch/notlab" 2>&1); status=$?
[ $status -eq 2 ] && grep -q "does not look like the lab's tree: src/protocol/rust_raft is missing" <<<"$msg" ||
  fail "a tree without the skeleton was not refused clearly: $status $msg"
echo "install_into_lab_test: installed, built and checked in a scratch lab tree; wrong paths refused"
