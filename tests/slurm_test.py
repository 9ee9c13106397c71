#!/usr/bin/env python3
"""ctest grade.slurm: scripts/grade-slurm on a real single-node Slurm
cluster that this test starts itself (tests/slurm_cluster.py: munged,
slurmctld, slurmd from a generated slurm.conf; stopped by PID).

1. A small class graded by one process (scripts/grade) and by an array job
   of 3 tasks (scripts/grade-slurm --shards 3): the two tables are
   identical (the paths of the two output folders aside).
2. The same class again; while grade-slurm waits, one task is cancelled
   (scancel JOB_2) before it ends: the merged report names the cancelled
   task and marks its submissions NOT GRADED.

    tests/slurm_test.py BUILD_DIR
"""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from slurm_cluster import LocalSlurm  # noqa: E402

CLASS = ["student_correct", "skeleton_stub", "figure8_counting", "no_heartbeats", "student_heartbeat_loop",
         "student_proxies_in_disconnect"]
OPTIONS = ["--virtual-runs", "8", "--explore-runs", "4", "--real-runs", "0", "--no-syscalls"]


def table(report_path, out):
    """The report's table and notes, with the output folder's path made
    neutral (the footer, which has times and paths, left out)."""
    with open(report_path) as f:
        lines = f.read().split("\n\n")
    body = "\n\n".join(lines[:-1]) if len(lines) > 1 else lines[0]
    return body.replace(out, "OUT")


def main():
    build_dir = os.path.abspath(sys.argv[1])
    base = os.path.join(build_dir, "grade-slurm-test")
    subprocess.run(["rm", "-rf", base], check=True)
    files = [os.path.join(ROOT, "tests", "submissions", f"{n}.rs") for n in CLASS]
    common = OPTIONS + ["--build-dir", build_dir]
    problems = []

    one = os.path.join(base, "one")
    began = time.monotonic()
    subprocess.run([os.path.join(ROOT, "scripts", "grade"), *files, *common, "--out", one], capture_output=True)
    one_seconds = time.monotonic() - began

    with LocalSlurm() as cluster:
        env = cluster.env
        slurm = os.path.join(base, "slurm")
        began = time.monotonic()
        run = subprocess.run([os.path.join(ROOT, "scripts", "grade-slurm"), *files, *common, "--shards", "3",
                              "--out", slurm], env=env, capture_output=True, text=True)
        slurm_seconds = time.monotonic() - began
        print(run.stdout[-3000:])
        print(run.stderr[-3000:])
        merged = os.path.join(slurm, "merged")
        a = table(os.path.join(one, "report.txt"), one)
        b = table(os.path.join(merged, "report.txt"), merged) if os.path.isfile(os.path.join(merged, "report.txt")) else ""
        if a != b:
            import difflib
            problems.append("the merged table differs from one process's:\n" +
                            "\n".join(difflib.unified_diff(a.splitlines(), b.splitlines(), "one process", "merged",
                                                           lineterm="")))
        print(f"slurm_test: one process {one_seconds:.0f} s, array job of 3 tasks {slurm_seconds:.0f} s "
              f"({len(CLASS)} submissions)")

        # A cancelled task.
        cancelled = os.path.join(base, "cancelled")
        waiter = subprocess.Popen([os.path.join(ROOT, "scripts", "grade-slurm"), *files, *common, "--shards", "3",
                                   "--out", cancelled, "--poll", "0.5"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        record = os.path.join(cancelled, "job.json")
        deadline = time.monotonic() + 300
        while not os.path.isfile(record) and time.monotonic() < deadline:
            time.sleep(0.2)
        job = json.load(open(record))["job"]
        time.sleep(1)  # grade-slurm has looked at the queue at least once
        subprocess.run(["scancel", f"{job}_2"], env=env, check=True)
        stdout, stderr = waiter.communicate(timeout=900)
        print(stdout[-3000:])
        print(stderr[-1500:])
        report = open(os.path.join(cancelled, "merged", "report.txt")).read()
        plan = json.load(open(os.path.join(cancelled, "plan.json")))
        lost = plan["parts"][1]["names"]
        for name in lost:
            if not any(line.startswith(name) and "NOT GRADED: part 2 of 3" in line and "CANCELLED" in line
                       for line in report.splitlines()):
                problems.append(f"{name} (part 2, cancelled) is not marked NOT GRADED with the task's state")
        for name in set(CLASS) - set(lost):
            if any(line.startswith(name + " ") and "NOT GRADED" in line for line in report.splitlines()):
                problems.append(f"{name} is marked NOT GRADED though its part completed")
        if f"array task {job}_2: CANCELLED" not in report:
            problems.append("the merged report does not name the cancelled array task")
    if problems:
        print("slurm_test:\n  " + "\n  ".join(problems))
        return 1
    print("slurm_test: the merged table is one process's; the cancelled task is named and its submissions not graded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
