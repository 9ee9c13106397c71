"""Grades Raft lab submissions: each server.rs on the lab's glue, through the
stand-in's lab suite, in virtual time (many seeds, deterministic, each
failure replayable) and in real time, every build and run sandboxed.

    scripts/grade SUBMISSION... [--virtual-runs N] [--real-runs M] [--freeze MS]
                  [--out DIR] [--jobs J] [--real-jobs R] [--lab PRISTINE_LAB_TREE]
    scripts/grade --git REPO... [--git-list FILE] [--deadline DATE] [--base REF] [options]

A SUBMISSION is a server.rs file, or a directory: a lab tree (its
src/protocol/rust_raft/server.rs is graded, and the folder's other files
are compared with the lab's, see --lab) or a crate folder with a server.rs.
--git grades repositories as the handout says students submit: the last
commit on lab-raft-solution whose message starts with "submit" (before
--deadline), its files other than server.rs compared with the lab's base
(rule 1).

For each submission: a crate of the twin glue plus that server.rs, built in
a target folder of its own (cargo build --release, as the lab does), linked
with the stand-in's labtest; N virtual-time runs (one process per seed, so
a replay is exact) and M real-time runs of the whole suite, in parallel up
to the cores; then one table: builds?, per test passed/ran, Total RPC count
median, hazards, CPU; under it, per failing test, the first failure and the
command that replays it, and every hazard (what the real framework runs
anyway but the contract forbids: never a failed test). In DIR (default
grade-out/), per submission: build.log, the log of every failing run
(capped), the timeline page of the first failing seed, summary.json; and
grades.csv, report.txt for all. docs/grading.md says more.

Exit status: 0 when every run of every submission passed (defect runs
aside), 1 otherwise, 2 for bad arguments or a sandbox that cannot start.
"""
import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from . import build, collect, report, rules, run
from .paths import GradeError
from .sandbox import Sandbox


def say(message):
    print(f"grade: {message}", file=sys.stderr, flush=True)


def parser():
    p = argparse.ArgumentParser(prog="scripts/grade", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("submissions", nargs="*", metavar="SUBMISSION")
    p.add_argument("--git", nargs="+", default=[], metavar="REPO", help="git repositories (clones or bare)")
    p.add_argument("--git-list", metavar="FILE", help="'NAME PATH' per line: repositories to grade under those names")
    p.add_argument("--deadline", metavar="DATE", help="only submit commits not after DATE, e.g. '2026-12-01 23:59 -0500'")
    p.add_argument("--base", metavar="REF",
                   help="the lab's base commit for rule 1 (default: merge-base with origin/raft-lab-26, else the first commit)")
    p.add_argument("--breach-fails", action="store_true", help="a breach of the DO NOT rules makes the verdict FAIL")
    p.add_argument("--no-rules", action="store_true", help="skip the DO NOT rules check")
    p.add_argument("--no-syscalls", action="store_true", help="skip the run watched by strace")
    p.add_argument("--syscall-tests", default="1-3", metavar="LIST",
                   help="the tests of the real-time run watched by strace (1-3: about 40 s)")
    p.add_argument("--virtual-runs", type=int, default=200, metavar="N", help="virtual-time seeds per submission (200)")
    p.add_argument("--real-runs", type=int, default=1, metavar="M", help="real-time runs per submission (1)")
    p.add_argument("--first-seed", type=int, default=1, help="the first seed (1): seeds S..S+N-1")
    p.add_argument("--freeze", type=int, default=0, metavar="MS",
                   help="whole-process freezes of MS ms every 10-20 s (virtual: --freeze; real: SIGSTOP)")
    p.add_argument("--out", default="grade-out", help="report folder (grade-out)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="virtual runs at once (the cores)")
    p.add_argument("--real-jobs", type=int, default=4, help="real-time runs at once (4; they mostly sleep)")
    p.add_argument("--lab", metavar="PRISTINE_LAB_TREE", help="compare submitted folders' other files with this tree's")
    p.add_argument("--correct-test11", action="store_true", help="run test 11 without the real suite's defect")
    p.add_argument("--older-framework", action="store_true",
                   help="the older framework's 2 s agreement window and slowness stalls (stricter than the 2026 lab)")
    p.add_argument("--build-dir", default=None, help="where the stand-in is built (build-grade/)")
    p.add_argument("--watchdog", type=int, default=5, help="virtual runs: seconds without progress = hung (5)")
    p.add_argument("--virtual-wall", type=float, default=60, help="wall budget per virtual run, s (60)")
    p.add_argument("--virtual-cpu", type=int, default=60, help="CPU budget per virtual run, s (60)")
    p.add_argument("--real-wall", type=float, default=900, help="wall budget per real-time run, s (900)")
    p.add_argument("--real-cpu", type=int, default=300, help="CPU budget per real-time run, s (300)")
    p.add_argument("--real-stall", type=float, default=180,
                   help="real-time runs: seconds without a new TEST line = hung (180; test 10 takes about 20)")
    p.add_argument("--memory", type=int, default=4096, help="address-space budget per run, MiB (4096)")
    p.add_argument("--log-cap", type=int, default=1024, help="output kept per run, KiB (1024)")
    p.add_argument("--processes", type=int, default=512, help="processes and threads per submission's sandbox user (512)")
    p.add_argument("--no-determinism-check", action="store_true", help="skip running the first seed twice")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run student code unsandboxed, as the grader (only where bubblewrap cannot start)")
    return p


def check_args(args):
    if args.virtual_runs < 0 or args.real_runs < 0 or args.jobs < 1 or args.real_jobs < 1:
        raise GradeError("run counts must not be negative, --jobs and --real-jobs at least 1")
    if args.lab and not os.path.isdir(args.lab):
        raise GradeError(f"--lab '{args.lab}' is not a directory")
    if not args.submissions and not args.git and not args.git_list:
        raise GradeError("nothing to grade: give server.rs files, lab trees, or --git repositories")


def grade(args):
    from .paths import ROOT
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    names = set()
    subs = collect.from_paths(args.submissions, args.lab, names)
    if args.git or args.git_list:
        subs += collect.from_git(args.git, args.git_list, args.deadline, args.base, out, names)
    sandbox = Sandbox(enabled=not args.no_sandbox, processes=args.processes)
    if args.no_sandbox:
        say("--no-sandbox: student code runs unsandboxed, with the grader's rights")
    began = time.monotonic()
    build_dir = os.path.abspath(args.build_dir or os.path.join(ROOT, "build-grade"))
    with open(os.path.join(out, "prepare.log"), "w") as log:
        link_labtest = build.prepare_standin(build_dir, log)
        cache = build.prepare_dependency_cache(build_dir, log)
        tool = None if args.no_rules else rules.build_tool(build_dir, log)
    present = [s for s in subs if not s.no_submission]
    for sub in present:
        if tool:
            rules.check(tool, sub)
        if sub.rule1:
            rules.add_rule1(sub, sub.rule1)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(build.build, sub, out, cache, link_labtest, sandbox) for sub in present]:
            future.result()
    built_at = time.monotonic()
    say(f"built {sum(s.built for s in subs)} of {len(subs)} submission(s) in {built_at - began:.0f} s")
    run.run_all(subs, args, out, sandbox, say)
    built = [s for s in subs if s.built]
    for sub in built:
        if args.virtual_runs and not args.no_determinism_check:
            run.check_determinism(sub, args, out, sandbox)
        run.timeline_of_first_failure(sub, args, out, sandbox)
    if not args.no_syscalls and built:
        say(f"watching one real-time run of each (tests {args.syscall_tests}) under strace")
        with ThreadPoolExecutor(max_workers=args.real_jobs) as pool:
            for future in [pool.submit(run.watch_syscalls, sub, args, out, sandbox) for sub in built]:
                future.result()
    summaries = [report.summarize(s, args.log_cap << 10) for s in subs]
    elapsed = time.monotonic() - began
    footer = (f"\n{len(subs)} submission(s), {args.virtual_runs} virtual and {args.real_runs} real-time run(s) each, "
              f"in {elapsed:.0f} s ({built_at - began:.0f} s building); report: {out}/report.txt, grades.csv, */summary.json")
    print(report.write_all(out, summaries, footer, args.breach_fails) + footer)
    return 0 if all(report.verdict(s, args.breach_fails) == "PASS" for s in summaries) else 1


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        check_args(args)
        return grade(args)
    except GradeError as error:
        print(f"grade: {error}", file=sys.stderr)
        return error.code
