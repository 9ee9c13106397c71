#!/usr/bin/env python3
"""ctest grade.submissions: scripts/grade on tests/submissions/*.rs and this
project's own bundled server.rs, and the verdict it must give each: the
real framework's, as each file's header states it (and why).

    tests/grade_test.py BUILD_DIR [--virtual-runs N]

The verdicts come from virtual-time runs (deterministic, so this test cannot
flake); a second, small call grades three submissions with one real-time
run each, whose outcomes are certain: the skeleton (test 1 elects no one),
the deadlock (it hangs before the first test and is killed after
--real-stall) and the election timer on an OS thread (aborts at its first
wait; its virtual runs are no replays). Prints the grade tables and times.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBMISSIONS = os.path.join(ROOT, "tests", "submissions")


def load(out):
    summary = {}
    for path in glob.glob(os.path.join(out, "*", "summary.json")):
        with open(path) as f:
            s = json.load(f)
        summary[s["submission"]] = s
    return summary


def first_failure(s):
    return next((t for t in s["tests"] if t["first_failure"]), None)


def failures_at(s, test):
    """Runs that failed test `test` (ran it, did not pass it)."""
    t = s["tests"][test - 1]
    return t["ran"] - t["passed"]


def has_finding(s, prop):
    return any(f["property"] == prop for f in s.get("findings", []))


def explored_all_passed(s):
    e = s.get("explored") or {"ran": 0}
    return e["ran"] > 0 and e["passed"] == e["ran"]


def has_hazard(s, words, thread=None):
    return any(words in h["call"] and (thread is None or thread in h["threads"]) for h in s["hazards"])


def checks():
    """Per submission: (condition on its summary, what was expected)."""
    passes = lambda s: s["passed_all"] and s["runs"]["passed"] > 0
    no_hazard = lambda s: not s["hazards"]

    def fails_first_in(test, words=""):
        def check(s):
            f = first_failure(s)
            return not s["passed_all"] and f is not None and f["test"] == test and words in f["first_failure"]["message"]
        return check

    def fails_test9_mostly(s):
        # Tests 1-8 pass in every run; test 9 fails in most, on the initial
        # election's RPC budget (the real launch).
        t9 = s["tests"][8]
        return (not s["passed_all"] and all(t["passed"] == t["ran"] for t in s["tests"][:8]) and
                failures_at(s, 9) * 2 > t9["ran"] and t9["first_failure"] is not None and
                "to elect initial leader (max 60)" in t9["first_failure"]["message"])

    return {
        "rust_raft": (lambda s: passes(s) and no_hazard(s) and s["rules"] == {"breaches": [], "reviews": []} and
                      not s["findings"] and explored_all_passed(s),
                      "every run to pass, explored ones too, no hazard, no finding, no rule finding"),
        "instant_sleep": (fails_test9_mostly, "tests 1-8 to pass and test 9 to fail in most runs (initial election RPCs)"),
        "log_flood": (lambda s: passes(s) and s["largest_log_bytes"] > s["log_cap_bytes"], "to pass with its output capped"),
        "skeleton_stub": (lambda s: fails_first_in(1, "waited too long for leader election")(s) and not s["rules"]["breaches"],
                          "to fail test 1 electing no one, with no rule breach"),
        "no_heartbeats": (fails_first_in(1), "to fail test 1"),
        "figure8_counting": (lambda s: failures_at(s, 11) > 0 and s["tests"][10]["passed"] == 0 and
                             "unexpectedly committed" in s["tests"][10]["first_failure"]["message"],
                             "to fail test 11 by committing early, in every run that gets there"),
        "no_election_restriction": (lambda s: not s["passed_all"] and first_failure(s) is not None and
                                    has_finding(s, "State Machine Safety"),
                                    "to fail some run, with State Machine Safety findings"),
        "does_not_compile": (lambda s: not s["builds"] and "E0308" in (s["build_error"] or ""), "a build error naming E0308"),
        "deadlocks": (lambda s: not s["passed_all"] and "timed out before the first test" in (s["failure_outside_tests"] or ""),
                      "to time out before the first test (its setup never finishes)"),
        "spins": (lambda s: not s["passed_all"] and "timed out before the first test" in (s["failure_outside_tests"] or ""),
                  "to time out before the first test"),
        "panics": (lambda s: not s["passed_all"] and first_failure(s) is not None and
                   "index out of bounds" in first_failure(s)["first_failure"]["message"], "a panic with its message"),
        "student_correct": (lambda s: passes(s) and no_hazard(s) and not s["rules"]["breaches"] and not s["findings"],
                            "to pass with no hazard, no finding and no rule breach"),
        "student_proxies_in_disconnect": (
            lambda s: passes(s) and has_hazard(s, "raft_commo_save_rpc_proxies", "the test thread") and
            has_hazard(s, "raft_commo_save_rpc_proxies", "the unreliable-network thread") and
            has_hazard(s, "raft_commo_restore_rpc_proxies", "the test thread") and len(s["hazards"]) == 2,
            "to pass, with the two proxy hazards from the test and the network threads"),
        "student_heartbeat_loop": (fails_test9_mostly, "tests 1-8 to pass and test 9 to fail in most runs"),
        "student_timer_thread": (lambda s: s["virtual_runs_inexact"] and not s["passed_all"],
                                 "its virtual runs marked as no replays (it starts an OS thread), no pass"),
        "student_handler_waits": (
            lambda s: passes(s) and has_hazard(s, "raft_int_event_wait inside the RPC handler rust_raft_server_on_append_entries")
            and len(s["hazards"]) == 1, "to pass, with the handler-wait hazard"),
        "student_mutex_across_wait": (lambda s: not s["passed_all"] and first_failure(s) is not None and
                                      first_failure(s)["test"] in (1, 2) and "timed out" in first_failure(s)["first_failure"]["message"],
                                      "to time out in test 1 or 2"),
        "student_reply_unset": (
            lambda s: passes(s) and has_hazard(s, "rust_raft_server_on_append_entries replied without writing followerAppendOK"),
            "to pass (the stand-in's zeros), with the unset-reply hazard"),
        "student_command_kept": (lambda s: passes(s) and no_hazard(s) and has_finding(s, "State Machine Safety"),
                                 "to pass (the 11 tests miss its bug), and the monitor to find it: State Machine Safety"),
        "student_spawn_in_start": (fails_first_in(7, "still waiting when that thread ended"),
                                   "to abort in test 7, a helper thread ending with its fiber waiting"),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build_dir")
    parser.add_argument("--virtual-runs", type=int, default=60)
    parser.add_argument("--explore-runs", type=int, default=20)
    args = parser.parse_args()
    out = os.path.join(args.build_dir, "grade-test")
    ours = os.path.join(args.build_dir, "handin", "rust_raft.rs")
    subprocess.run([os.path.join(ROOT, "scripts", "bundle-server"), "-o", ours], check=True)
    # (The hostile ones are tests/hostile_test.py's.)
    submissions = sorted(p for p in glob.glob(os.path.join(SUBMISSIONS, "*.rs"))
                         if not os.path.basename(p).startswith("hostile_")) + [ours]
    began = time.monotonic()
    run = subprocess.run([os.path.join(ROOT, "scripts", "grade"), *submissions, "--out", out,
                          "--build-dir", args.build_dir, "--virtual-runs", str(args.virtual_runs),
                          "--explore-runs", str(args.explore_runs), "--real-runs", "0", "--no-syscalls"],
                         capture_output=True, text=True)
    elapsed = time.monotonic() - began
    print(run.stdout)
    if run.returncode != 1:
        print(run.stderr[-3000:])
        print(f"grade_test: scripts/grade exited {run.returncode}, expected 1 (some submissions fail)")
        return 1
    summary = load(out)
    problems = []
    expected = checks()
    for name, (condition, what) in expected.items():
        if name not in summary:
            problems.append(f"{name}: no summary")
        elif not condition(summary[name]):
            problems.append(f"{name}: expected {what}")
    unchecked = set(summary) - set(expected)
    if unchecked:
        problems.append(f"no expectation for: {', '.join(sorted(unchecked))}")
    for name, s in summary.items():
        if s["builds"] and not s["virtual_runs_inexact"] and not (s["determinism"] and s["determinism"]["same"]):
            problems.append(f"{name}: the same seed twice did not give the same trace hash ({s['determinism']})")
    if len(summary) != len(submissions):
        problems.append(f"{len(summary)} summaries for {len(submissions)} submissions")
    print(f"grade_test: {len(submissions)} submissions graded in {elapsed:.0f} s ({args.virtual_runs} virtual and "
          f"{args.explore_runs} explored runs each)")

    # The real-time path: budgets and classification outside virtual time.
    real_out = os.path.join(args.build_dir, "grade-test-real")
    real = subprocess.run([os.path.join(ROOT, "scripts", "grade"),
                           os.path.join(SUBMISSIONS, "skeleton_stub.rs"), os.path.join(SUBMISSIONS, "deadlocks.rs"),
                           os.path.join(SUBMISSIONS, "student_timer_thread.rs"),
                           "--out", real_out, "--build-dir", args.build_dir, "--virtual-runs", "0", "--explore-runs", "0",
                           "--real-runs", "1", "--real-stall", "30", "--no-syscalls"], capture_output=True, text=True)
    print(real.stdout)
    real_summary = load(real_out)
    # (The deadlock hangs at the start-up or in test 1, as its first lock
    # meets its first wait: a race in real time.)
    for name, tests, words in (("skeleton_stub", (1,), "waited too long for leader election"),
                               ("deadlocks", (0, 1), "no new test line for 30 s"),
                               ("student_timer_thread", (0,), "the real framework's Event::Wait fails verify(sp_coro)")):
        s = real_summary.get(name)
        f = s and first_failure(s)
        message = (f["first_failure"]["message"] if f else (s or {}).get("failure_outside_tests")) or ""
        placed = f["test"] if f else 0
        if not s or s["runs"]["real"] != 1 or placed not in tests or words not in message:
            problems.append(f"{name}, real time: expected a failure in test {' or '.join(map(str, tests))} "
                            f"(0: before the first) with '{words}', got {message!r}")
    if problems:
        print("grade_test: wrong verdicts:\n  " + "\n  ".join(problems))
        return 1
    print("grade_test: every verdict as expected; every submission that builds replays exactly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
