#!/usr/bin/env python3
"""ctest grade.submissions: scripts/grade on tests/submissions/*.rs and this
project's own bundled server.rs, and the verdict it must give each.

    tests/grade_test.py BUILD_DIR [--virtual-runs N]

Asserts, from each submission's summary.json: our server.rs and the correct
Instant/thread::sleep one pass every run (runs that hit the real suite's
own test-11 defect aside); the skeleton and the no-heartbeat one fail test
1; the Figure 8 one fails test 11 by committing early; the one without the
election restriction fails some run; the type error does not build (E0308);
the deadlock and the spin time out in test 1; the unchecked index panics
with its message; the log flood passes with its output capped; and every
submission that builds replays exactly (the same seed twice, the same trace
hash or outcome). The verdicts come from virtual-time runs (deterministic,
so this test cannot flake); a second, small call grades the skeleton and
the deadlocking submission with one real-time run each, whose outcomes are
certain (test 1 elects no one; the deadlock prints nothing more and is
killed after --real-stall). Prints the grade tables and the times.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build_dir")
    parser.add_argument("--virtual-runs", type=int, default=100)
    args = parser.parse_args()
    out = os.path.join(args.build_dir, "grade-test")
    ours = os.path.join(args.build_dir, "handin", "rust_raft.rs")
    subprocess.run([os.path.join(ROOT, "scripts", "bundle-server"), "-o", ours], check=True)
    submissions = sorted(glob.glob(os.path.join(ROOT, "tests", "submissions", "*.rs"))) + [ours]
    began = time.monotonic()
    run = subprocess.run([os.path.join(ROOT, "scripts", "grade"), *submissions, "--out", out,
                          "--build-dir", args.build_dir, "--virtual-runs", str(args.virtual_runs),
                          "--real-runs", "0"], capture_output=True, text=True)
    elapsed = time.monotonic() - began
    print(run.stdout)
    if run.returncode != 1:
        print(run.stderr[-3000:])
        print(f"grade_test: scripts/grade exited {run.returncode}, expected 1 (some submissions fail)")
        return 1
    summary = {}
    for path in glob.glob(os.path.join(out, "*", "summary.json")):
        with open(path) as f:
            s = json.load(f)
        summary[s["submission"]] = s

    problems = []

    def expect(name, condition, what):
        if name not in summary:
            problems.append(f"{name}: no summary")
        elif not condition(summary[name]):
            problems.append(f"{name}: expected {what}")

    def first_failure(s):
        return next((t for t in s["tests"] if t["first_failure"]), None)

    def fails_first_in(test, words=""):
        def check(s):
            f = first_failure(s)
            return not s["passed_all"] and f is not None and f["test"] == test and words in f["first_failure"]["message"]
        return check

    expect("rust_raft", lambda s: s["passed_all"] and s["runs"]["passed"] > 0, "every run to pass")
    expect("instant_sleep", lambda s: s["passed_all"], "every run to pass (it is correct)")
    expect("log_flood", lambda s: s["passed_all"] and s["largest_log_bytes"] > s["log_cap_bytes"],
           "to pass with its output capped")
    expect("skeleton_stub", fails_first_in(1, "waited too long for leader election"), "to fail test 1 electing no one")
    expect("no_heartbeats", fails_first_in(1), "to fail test 1")
    expect("figure8_counting", fails_first_in(11, "unexpectedly committed"), "to fail test 11 by committing early")
    expect("no_election_restriction", lambda s: not s["passed_all"] and first_failure(s) is not None, "to fail some run")
    expect("does_not_compile", lambda s: not s["builds"] and "E0308" in (s["build_error"] or ""),
           "a build error naming E0308")
    expect("deadlocks", fails_first_in(1, "timed out in test 1"), "to time out in test 1")
    expect("spins", fails_first_in(1, "timed out in test 1"), "to time out in test 1")
    expect("panics", lambda s: not s["passed_all"] and first_failure(s) is not None and
           "index out of bounds" in first_failure(s)["first_failure"]["message"], "a panic with its message")
    for name, s in summary.items():
        if s["builds"] and not (s["determinism"] and s["determinism"]["same"]):
            problems.append(f"{name}: the same seed twice did not give the same trace hash ({s['determinism']})")
    if len(summary) != len(submissions):
        problems.append(f"{len(summary)} summaries for {len(submissions)} submissions")
    print(f"grade_test: {len(submissions)} submissions graded in {elapsed:.0f} s ({args.virtual_runs} virtual runs each)")

    # The real-time path: budgets and classification outside virtual time.
    real_out = os.path.join(args.build_dir, "grade-test-real")
    real = subprocess.run([os.path.join(ROOT, "scripts", "grade"),
                           os.path.join(ROOT, "tests", "submissions", "skeleton_stub.rs"),
                           os.path.join(ROOT, "tests", "submissions", "deadlocks.rs"),
                           "--out", real_out, "--build-dir", args.build_dir, "--virtual-runs", "0",
                           "--real-runs", "1", "--real-stall", "30"], capture_output=True, text=True)
    print(real.stdout)
    real_summary = {}
    for path in glob.glob(os.path.join(real_out, "*", "summary.json")):
        with open(path) as f:
            s = json.load(f)
        real_summary[s["submission"]] = s
    for name, words in (("skeleton_stub", "waited too long for leader election"), ("deadlocks", "no new test line for 30 s")):
        s = real_summary.get(name)
        f = s and first_failure(s)
        if not s or s["runs"]["real"] != 1 or f is None or f["test"] != 1 or words not in f["first_failure"]["message"]:
            problems.append(f"{name}, real time: expected test 1 to fail with '{words}', got {f and f['first_failure']}")
    if problems:
        print("grade_test: wrong verdicts:\n  " + "\n  ".join(problems))
        return 1
    print("grade_test: every verdict as expected; every submission that builds replays exactly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
