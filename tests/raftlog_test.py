#!/usr/bin/env python3
"""ctest viewer.columns: scripts/raftlog on a real debug log of test 2.

    tests/raftlog_test.py LABTEST CONFIG

Checks, in a pipe (no terminal): no escape codes at all; a header of five
server columns; each server's lines start in its own column (the election
winner's "won term" line in the winner's column); the stand-in's events run
across the full width; and the filters (--topics, --servers, --from/--to)
keep only what they name.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VIEWER = os.path.join(ROOT, "scripts", "raftlog")


def fail(message):
    print(f"raftlog_test: {message}")
    sys.exit(1)


def view(log, *args):
    run = subprocess.run([sys.executable, VIEWER, "--width", "150", *args], input=log, capture_output=True, text=True)
    if run.returncode != 0:
        fail(f"raftlog {' '.join(args)} exited {run.returncode}: {run.stderr}")
    return run.stdout


def main():
    labtest, config = sys.argv[1:3]
    env = dict(os.environ, RUST_LOG="raft=debug,standin=info")
    run = subprocess.run([labtest, "-f", config, "--virtual", "--seed", "3", "-t", "2"], capture_output=True, text=True, env=env)
    log = run.stderr
    if "TEST 2 Passed" not in log:
        fail("the run of test 2 did not pass:\n" + log[-1500:])
    out = view(log)
    if "\x1b[" in out:
        fail("escape codes in a pipe")
    lines = out.splitlines()
    column = (150 - 9) // 5
    if not re.match(r"^\s+S0\s+S1\s+S2\s+S3\s+S4\s*$", lines[0]):
        fail(f"no five-column header: {lines[0]!r}")
    won = re.search(r"^(?:\[[^\]]*\] )?\s*\d+\.\d+ S(\d+)\s+T(\d+)\s+L\s+election\s+won term", log, re.M)
    server = int(won.group(1))
    wins = [l for l in lines if "election won term" in l]
    if not wins or wins[0].index("T") != 9 + column * server:
        fail(f"S{server}'s election is not in its column: {wins[:1]}")
    if not any(l.strip().split(" ", 1)[-1].startswith("network: disconnect S") for l in lines):
        fail("the stand-in's disconnects are not shown across the width")
    votes = view(log, "--topics", "vote")
    if "election" in votes or " vote " not in votes:
        fail("--topics vote kept other topics or dropped votes")
    only = view(log, "--servers", "2")
    if len(only.splitlines()[0].split()) != 1:
        fail("--servers 2 still shows other columns")
    window = view(log, "--from", "4", "--to", "5")
    times = [float(m.group(1)) for m in re.finditer(r"^\s*(\d+\.\d{3}) ", window, re.M)]
    if not times or min(times) < 4 or max(times) > 5:
        fail(f"--from 4 --to 5 kept times {times[:3]}...")
    if "rust_raft_server_setup called" in out or "rust_raft_server_setup called" not in view(log, "--all"):
        fail("the glue's own lines are not hidden by default, or not shown with --all")
    missing = subprocess.run([sys.executable, VIEWER, "/nonexistent.log"], capture_output=True, text=True)
    if missing.returncode == 0 or "cannot read /nonexistent.log" not in missing.stderr:
        fail("a wrong path is not reported clearly")
    print(f"raftlog_test: {len(lines)} lines in 5 columns, S{server}'s election in its column, filters hold")


if __name__ == "__main__":
    main()
