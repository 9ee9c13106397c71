#!/usr/bin/env python3
"""ctest grade.hostile: scripts/grade on the hostile submissions
(tests/submissions/hostile_*.rs) beside a well-behaved one, and proof that
the sandbox contained them:

- a listener on 127.0.0.1:47123 (hostile_connect calls it 35 times) accepts
  no connection;
- the sha256 of every file outside the hostile submissions' own folders is
  the same before and after: this project's tree, the grader's ~/.bashrc
  and ~/.profile, the well-behaved submission's folder and the grade's own
  output (report and summaries aside, which the grade writes);
- each hostile submission shows, in its report, the rule breach of its
  attack, and the watched run's evidence (the calls it made, failed);
- what each attack printed (its own account) says it achieved nothing.

    tests/hostile_test.py BUILD_DIR
"""
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBMISSIONS = os.path.join(ROOT, "tests", "submissions")
HOSTILE = ["hostile_home_file", "hostile_delete_output", "hostile_read_others", "hostile_connect", "hostile_fork_bomb"]
WRITTEN_BY_THE_GRADE = ("report.txt", "grades.csv", "summary.json", "prepare.log")


def tree_hashes(paths, skip_dirs=()):
    """sha256 of every file under `paths` (skipping `skip_dirs`)."""
    hashes = {}
    for top in paths:
        if os.path.isfile(top):
            hashes[top] = hashlib.sha256(open(top, "rb").read()).hexdigest()
            continue
        for root, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip_dirs and d not in (".git", "target")
                       and not d.startswith("build")]
            for name in files:
                path = os.path.join(root, name)
                if os.path.islink(path) or name in WRITTEN_BY_THE_GRADE:
                    continue
                with open(path, "rb") as f:
                    hashes[path] = hashlib.sha256(f.read()).hexdigest()
    return hashes


class Listener:
    """Counts connections to 127.0.0.1:47123."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 47123))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.accepted = 0
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
                self.accepted += 1
                conn.close()
            except socket.timeout:
                pass

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


def main():
    build_dir = os.path.abspath(sys.argv[1])
    out = os.path.join(build_dir, "grade-hostile")
    home = os.path.expanduser("~")
    watched = [ROOT, os.path.join(home, ".bashrc"), os.path.join(home, ".profile")]
    watched = [p for p in watched if os.path.exists(p)]
    before = tree_hashes(watched)
    listener = Listener()
    files = [os.path.join(SUBMISSIONS, f"{name}.rs") for name in HOSTILE] + [os.path.join(SUBMISSIONS, "student_correct.rs")]
    run = subprocess.run([os.path.join(ROOT, "scripts", "grade"), *files, "--out", out, "--build-dir", build_dir,
                          "--virtual-runs", "2", "--explore-runs", "0", "--real-runs", "0", "--real-stall", "20", "--syscall-tests", "1"],
                         capture_output=True, text=True)
    listener.close()
    print(run.stdout)
    print(run.stderr[-2000:])
    problems = []
    if run.returncode not in (0, 1):
        problems.append(f"scripts/grade exited {run.returncode}")
    after = tree_hashes(watched)
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    if changed:
        problems.append(f"files outside the submissions changed: {changed[:10]}")
    if listener.accepted:
        problems.append(f"the listener on 127.0.0.1:47123 accepted {listener.accepted} connection(s)")
    # The well-behaved submission's folder, and the grade's output outside the
    # hostile folders, are intact: its labtest and crate are still there.
    kept = os.path.join(out, "student_correct")
    for needed in ("labtest", os.path.join("crate", "server.rs"), "summary.json"):
        if not os.path.exists(os.path.join(kept, needed)):
            problems.append(f"{kept}/{needed} is gone")
    summary = {}
    for name in HOSTILE + ["student_correct"]:
        path = os.path.join(out, name, "summary.json")
        if os.path.isfile(path):
            summary[name] = json.load(open(path))
        else:
            problems.append(f"{name}: no summary")
    expected_rule = {"hostile_home_file": "std::fs", "hostile_delete_output": "std::fs", "hostile_read_others": "std::fs",
                     "hostile_connect": "std::net", "hostile_fork_bomb": "libc::fork"}
    expected_calls = {"hostile_home_file": "opened /root/.bashrc for writing (failed: EACCES",
                      "hostile_delete_output": "deleted", "hostile_read_others": "listed the folder",
                      "hostile_connect": "connected to 127.0.0.1:47123 (failed: ECONNREFUSED", "hostile_fork_bomb": "started a process"}
    for name, words in expected_rule.items():
        s = summary.get(name)
        if not s:
            continue
        breaches = " ".join(f["what"] for f in (s["rules"] or {}).get("breaches", []))
        if words not in breaches:
            problems.append(f"{name}: no rule breach naming {words} (found: {breaches or 'none'})")
        evidence = " ".join((s["syscalls"] or {}).get("evidence", []))
        if expected_calls[name] and expected_calls[name] not in evidence:
            problems.append(f"{name}: the watched run does not show '{expected_calls[name]}' (found: {evidence or 'nothing'})")
    # What the attacks said they achieved (their own stderr, in the kept logs).
    said = ""
    for name in HOSTILE:
        logs = [os.path.join(out, name, "syscalls.log")]
        runs = os.path.join(out, name, "runs")
        logs += [os.path.join(runs, log) for log in sorted(os.listdir(runs))] if os.path.isdir(runs) else []
        for log in logs:
            if os.path.isfile(log):
                with open(log, errors="replace") as f:
                    said += "".join(line for line in f if line.startswith("hostile:"))
    print("what the attacks said:\n" + "".join(sorted(set(said.splitlines(True)))))
    others = os.path.join(out, "student_correct")
    for line in said.splitlines():
        success = ("/root/.bashrc: Ok" in line or (line.startswith("hostile: remove ") and ": Ok" in line) or
                   others in line or ("of 35 connections" in line and not line.startswith("hostile: 0 of 35")))
        if success:
            problems.append(f"an attack reports success: {line}")
    print(f"hostile_test: {len(before)} files outside the submissions hashed before and after; "
          f"{len(changed)} changed; the listener accepted {listener.accepted} connection(s)")
    if problems:
        print("hostile_test: NOT contained:\n  " + "\n  ".join(problems))
        return 1
    print("hostile_test: every attack contained and reported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
