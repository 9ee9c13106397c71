#!/usr/bin/env bash
# expect_failure.sh PATTERN... -- COMMAND...
# Passes when COMMAND exits non-zero and its output (stdout+stderr) matches
# every PATTERN (grep -E). Used by ctest for the cases that must fail.
patterns=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do patterns+=("$1"); shift; done
shift
output=$("$@" 2>&1)
status=$?
printf '%s\n' "$output"
if [ $status -eq 0 ]; then echo "expect_failure: exit status 0, expected non-zero"; exit 1; fi
for p in "${patterns[@]}"; do
  if ! grep -Eq -- "$p" <<<"$output"; then echo "expect_failure: output lacks /$p/"; exit 1; fi
done
echo "expect_failure: exit status $status and all patterns found"
