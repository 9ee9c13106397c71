#!/usr/bin/env bash
# run_suite.sh LABTEST CONFIG: one real-time run of the whole lab suite, as
# CI's ctest case labtest.full_suite runs it. A failure is final, with one
# exception: a run whose failing test overlapped a host stall longer than the
# harness's windows tolerate (labtest prints "overlapped a host stall") is
# run once more, and says so. A stalled machine proves nothing either way.
labtest=$1
config=$2
for attempt in 1 2; do
  output=$("$labtest" -f "$config" -s 2>&1)
  status=$?
  printf '%s\n' "$output"
  if [ $status -eq 0 ] && grep -q '^ALL TESTS PASSED$' <<<"$output"; then
    exit 0
  fi
  stall=$(grep -m1 'overlapped a host stall' <<<"$output")
  if [ $attempt -eq 1 ] && [ -n "$stall" ]; then
    echo "run_suite: the run failed during a host stall (${stall#labtest: }); running the suite once more"
    continue
  fi
  exit 1
done
