"""Rules: the handout's DO NOT list inside server.rs, from its syntax tree
(scripts/grade-tools, raft-rules: a real Rust parser, so aliases, nested
modules and macros are resolved and comments and strings never match).

Rule 1 (files other than server.rs) is collect's: it compares a git
submission's commit with the lab's base, or a tree with --lab."""
import json
import os
import subprocess

from .paths import GradeError, SCRIPTS

TOOLS = os.path.join(SCRIPTS, "grade-tools")


def build_tool(build_dir, log):
    """Builds raft-rules (once; cargo keeps it up to date); its path."""
    target = os.path.join(build_dir, "grade-tools")
    run = subprocess.run(["cargo", "build", "--release", "--manifest-path", os.path.join(TOOLS, "Cargo.toml")],
                         env=dict(os.environ, CARGO_TARGET_DIR=target), capture_output=True, text=True)
    log.write(run.stdout + run.stderr)
    if run.returncode != 0:
        raise GradeError(f"building the rules checker failed:\n{run.stderr[-2000:]}", 1)
    return os.path.join(target, "release", "raft-rules")


def check(tool, sub):
    """Sets sub.rules: {"breaches": [...], "reviews": [...]} or {"error"}.
    (It only parses the file: nothing of the submission runs.)"""
    run = subprocess.run([tool, sub.server_rs], capture_output=True, text=True, timeout=120)
    if run.returncode != 0 or not run.stdout.strip():
        sub.rules = {"error": (run.stderr.strip() or f"raft-rules exited {run.returncode}").splitlines()[-1],
                     "breaches": [], "reviews": []}
        return
    result = json.loads(run.stdout.splitlines()[0])
    result.pop("file", None)
    if "error" in result:
        result.setdefault("breaches", [])
        result.setdefault("reviews", [])
    sub.rules = result


def add_rule1(sub, files):
    """Files other than server.rs that the submission changed, created or
    deleted (from git or a tree comparison): breaches of rule 1."""
    if sub.rules is None:
        sub.rules = {"breaches": [], "reviews": []}
    for what in files:
        sub.rules["breaches"].insert(0, {"rule": 1, "class": "breach", "line": 0, "what": what,
                                         "rule_text": "DO NOT change or create files other than the files allowed for this lab"})
