#!/usr/bin/env python3
"""ctest grade.mutation: scripts/mutation-score end to end on a small sample.

    tests/mutation_test.py BUILD_DIR

- this project's bundled server.rs, 10 mutants of protocol/node/fibers, 3
  plain and 3 explored seeds each: the original passes all of them (the
  tool runs it on every seed first), every mutant is judged, not built or marked
  equivalent, the table has its three modes, and at least one mutant is
  killed by the suite;
- a server.rs that fails the suite itself on every seed (tests/submissions/no_heartbeats.rs)
  is refused (exit 2, saying so): no mutant of it could be judged;
- every mutant tests/mutation/equivalent.txt and tests/mutation/survivors.txt
  name is still a mutant of the bundle (a change to the product that moves
  them must bring the lists along).
"""
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    build_dir = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="mutation-test-")
    bundle = os.path.join(work, "rust_raft.rs")
    subprocess.run([os.path.join(ROOT, "scripts", "bundle-server"), "-o", bundle], check=True)
    tool = os.path.join(ROOT, "scripts", "mutation-score")
    problems = []
    run = subprocess.run([tool, bundle, "--modules", "protocol,node,fibers", "--sample", "10", "--seeds", "3",
                          "--build-dir", build_dir, "--out", os.path.join(work, "ours"), "--jobs", "2"],
                         capture_output=True, text=True, timeout=3000)
    print(run.stdout + run.stderr[-3000:])
    if run.returncode != 0:
        problems.append(f"mutation-score exited {run.returncode} on our server.rs")
    else:
        results = json.load(open(os.path.join(work, "ours", "results.json")))
        statuses = [r["status"] for r in results]
        if len(results) != 10:
            problems.append(f"{len(results)} mutants judged, expected the sample of 10")
        for mode in ("suite only", "suite + monitor", "suite + monitor + exploration"):
            if not re.search(rf"^{re.escape(mode)}\s+\d+\s+\d+\s+\d+\s+[\d.]+%$", run.stdout, re.M):
                problems.append(f"no table line for '{mode}'")
        killed = sum(1 for r in results if r["status"] == "judged" and r["modes"]["suite"]["outcome"] == "killed")
        if killed == 0:
            problems.append("no mutant killed by the suite")
        if "the original passes 3 plain and 3 explored seeds" not in run.stderr:
            problems.append("the original was not run on every seed first (or it failed one)")
        print(f"mutation_test: statuses {sorted(set(statuses))}, {killed} killed by the suite")
    listed = subprocess.run([tool, bundle, "--modules", "protocol,node,fibers", "--list", "--build-dir", build_dir,
                             "--out", os.path.join(work, "list")], capture_output=True, text=True, timeout=1200)
    ids = {m.group(1) for m in re.finditer(r"^\s*\d+  (.+)$", listed.stdout, re.M)}
    if listed.returncode != 0 or not ids:
        problems.append(f"--list: exit {listed.returncode}, {listed.stderr[-300:]!r}")
    else:
        sys.path.insert(0, os.path.join(ROOT, "scripts"))
        from mutation import mutants
        for name in ("equivalent.txt", "survivors.txt"):
            named = mutants.load_ids(os.path.join(ROOT, "tests", "mutation", name))
            stale = sorted(named - ids)
            if stale:
                problems.append(f"tests/mutation/{name}: {len(stale)} id(s) are no longer mutants of the bundle, "
                                f"first: {stale[0]}")
        print(f"mutation_test: {len(ids)} mutants of the bundle; the equivalent and survivors lists name only those")
    failing = os.path.join(ROOT, "tests", "submissions", "no_heartbeats.rs")
    run = subprocess.run([tool, failing, "--sample", "2", "--seeds", "2", "--build-dir", build_dir,
                          "--out", os.path.join(work, "failing")], capture_output=True, text=True, timeout=1200)
    if run.returncode != 2 or "itself fails (or raises a finding in) every one of the" not in run.stderr:
        problems.append(f"a failing server.rs: exit {run.returncode}, {run.stderr[-500:]!r}")
    if problems:
        print("mutation_test: FAILED:\n  " + "\n  ".join(problems))
        return 1
    print("mutation_test: as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
