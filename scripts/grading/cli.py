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

A class in parts: --shard K/N grades the K-th of N parts (a part of the
submissions; with one submission, a part of its seeds) into its own --out,
and `scripts/grade merge DIR... --out DIR` puts parts together into what
one process would have reported (scripts/grade-slurm does both on Slurm).
--gradescope FILE writes Gradescope's results JSON for one submission
(--gradescope-dir DIR: one per submission), points from --points FILE.

Exit status: 0 when every run of every submission passed (defect runs
aside), 1 otherwise, 2 for bad arguments or a sandbox that cannot start.
"""
import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import json
import shutil

from . import build, collect, gradescope, report, rules, run, state
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
    p.add_argument("--explore-runs", type=int, default=50, metavar="E",
                   help="explored seeds per submission (50): wider schedules the real framework can also produce "
                        "(labtest --explore); their failures and findings are reported beside the verdict")
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
    p.add_argument("--no-monitor", action="store_true",
                   help="runs without the safety monitor (for a submission whose get_state has side effects: the report says so)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run student code unsandboxed, as the grader (only where bubblewrap cannot start)")
    p.add_argument("--shard", metavar="K/N", help="grade the K-th of N parts (scripts/grade merge joins them)")
    p.add_argument("--prepare-only", action="store_true",
                   help="build the stand-in, the dependency cache and the rules checker in the build folder, then stop")
    p.add_argument("--skip-prepare", action="store_true",
                   help="the build folder is prepared already (shards of one grade: do not rebuild it at once)")
    p.add_argument("--gradescope", metavar="FILE", help="Gradescope's results JSON of the (one) submission")
    p.add_argument("--gradescope-dir", metavar="DIR", help="Gradescope's results JSON of each submission, as DIR/NAME.json")
    p.add_argument("--points", metavar="FILE", help="points per test for Gradescope (YAML or JSON; docs/grading.md)")
    return p


def merge_parser():
    p = argparse.ArgumentParser(prog="scripts/grade merge", description="Puts the parts of a grade (--shard K/N) "
                                "together: one table, report, grades.csv and Gradescope files, as one process would "
                                "have reported them. A part that did not complete is named, and its submissions "
                                "marked NOT GRADED.")
    p.add_argument("shards", nargs="+", metavar="DIR", help="the parts' --out folders")
    p.add_argument("--out", required=True, help="the merged report's folder")
    p.add_argument("--plan", metavar="FILE", help="the plan of all parts (default: from the parts themselves)")
    p.add_argument("--breach-fails", action="store_true")
    p.add_argument("--gradescope-dir", metavar="DIR")
    p.add_argument("--points", metavar="FILE")
    p.add_argument("--part-state", action="append", default=[], metavar="K=TEXT",
                   help="what became of part K (scripts/grade-slurm: the array task's final state)")
    return p


def parse_shard(text):
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise GradeError(f"--shard '{text}': expected K/N, e.g. 2/6")
    if not 1 <= k <= n:
        raise GradeError(f"--shard '{text}': K must be between 1 and N")
    return k, n


def chunk(items, k, n):
    """The k-th (1-based) of n contiguous, nearly equal parts of `items`."""
    size, extra = divmod(len(items), n)
    start = (k - 1) * size + min(k - 1, extra)
    return items[start:start + size + (1 if k <= extra else 0)]


def plan_shards(subs, args, n):
    """Which submissions (and seeds) each of n parts grades: by submission,
    round-robin; one submission alone is split by seeds."""
    virtual = list(range(args.first_seed, args.first_seed + args.virtual_runs))
    real = list(range(args.first_seed, args.first_seed + args.real_runs))
    explore = list(range(args.first_seed, args.first_seed + args.explore_runs))
    parts = []
    for k in range(1, n + 1):
        if len(subs) > 1:
            names = [s.name for s in subs if (s.index % n) == k - 1]
            parts.append({"shard": k, "names": names, "virtual_seeds": virtual, "real_seeds": real,
                          "explore_seeds": explore})
        else:
            parts.append({"shard": k, "names": [s.name for s in subs], "virtual_seeds": chunk(virtual, k, n),
                          "real_seeds": chunk(real, k, n), "explore_seeds": chunk(explore, k, n)})
    return {"by": "submission" if len(subs) > 1 else "seed", "of": n, "parts": parts,
            "order": [s.name for s in subs]}


def check_args(args):
    if args.shard:
        args.shard = parse_shard(args.shard)
    if args.gradescope and len(args.submissions) + len(args.git) > 1:
        raise GradeError("--gradescope FILE is for one submission; use --gradescope-dir DIR for more")
    if args.virtual_runs < 0 or args.real_runs < 0 or args.explore_runs < 0 or args.jobs < 1 or args.real_jobs < 1:
        raise GradeError("run counts must not be negative, --jobs and --real-jobs at least 1")
    if args.lab and not os.path.isdir(args.lab):
        raise GradeError(f"--lab '{args.lab}' is not a directory")
    if not args.submissions and not args.git and not args.git_list and not args.prepare_only:
        raise GradeError("nothing to grade: give server.rs files, lab trees, or --git repositories")


def prepare_only(args):
    from .paths import ROOT
    build_dir = os.path.abspath(args.build_dir or os.path.join(ROOT, "build-grade"))
    os.makedirs(build_dir, exist_ok=True)
    with open(os.path.join(build_dir, "prepare.log"), "w") as log:
        build.prepare_standin(build_dir, log)
        build.prepare_dependency_cache(build_dir, log)
        if not args.no_rules:
            rules.build_tool(build_dir, log)
    say(f"prepared {build_dir}")
    return 0


def grade(args):
    from .paths import ROOT
    if args.prepare_only:
        return prepare_only(args)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    names = set()
    subs = collect.from_paths(args.submissions, args.lab, names)
    if args.git or args.git_list:
        subs += collect.from_git(args.git, args.git_list, args.deadline, args.base, out, names)
    for index, sub in enumerate(subs):
        sub.index = index
    points = gradescope.load_points(args.points)
    plan = None
    first_seed_here = True
    if args.shard:
        k, n = args.shard
        plan = plan_shards(subs, args, n)
        mine = plan["parts"][k - 1]
        subs = [s for s in subs if s.name in mine["names"]]
        args.virtual_seeds, args.real_seed_list = mine["virtual_seeds"], mine["real_seeds"]
        args.virtual_runs, args.real_runs = len(mine["virtual_seeds"]), len(mine["real_seeds"])
        args.explore_seeds = mine.get("explore_seeds", [])
        args.explore_runs = len(args.explore_seeds)
        first_seed_here = plan["by"] == "submission" or k == 1
        state.write_shard(out, k, n, plan, " ".join(sys.argv[1:]), complete=False)
    sandbox = Sandbox(enabled=not args.no_sandbox, processes=args.processes)
    if args.no_sandbox:
        say("--no-sandbox: student code runs unsandboxed, with the grader's rights")
    began = time.monotonic()
    build_dir = os.path.abspath(args.build_dir or os.path.join(ROOT, "build-grade"))
    with open(os.path.join(out, "prepare.log"), "w") as log:
        if args.skip_prepare:
            link_labtest = os.path.join(build_dir, "link-labtest")
            cache = os.path.join(build_dir, "grade-dependency-cache")
            tool = None if args.no_rules else os.path.join(build_dir, "grade-tools", "release", "raft-rules")
            for needed in [link_labtest, cache] + ([tool] if tool else []):
                if not os.path.exists(needed):
                    raise GradeError(f"--skip-prepare: {needed} is missing (prepare the build folder first)", 2)
        else:
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
        if args.virtual_runs and not args.no_determinism_check and first_seed_here:
            run.check_determinism(sub, args, out, sandbox)
        run.timeline_of_first_failure(sub, args, out, sandbox)
    if not args.no_syscalls and built and first_seed_here:
        say(f"watching one real-time run of each (tests {args.syscall_tests}) under strace")
        with ThreadPoolExecutor(max_workers=args.real_jobs) as pool:
            for future in [pool.submit(run.watch_syscalls, sub, args, out, sandbox) for sub in built]:
                future.result()
    for sub in subs:
        state.save(sub, out)
    summaries = [report.summarize(s, args.log_cap << 10) for s in subs]
    elapsed = time.monotonic() - began
    part = f"part {args.shard[0]} of {args.shard[1]}: " if args.shard else ""
    footer = (f"\n{part}{len(subs)} submission(s), {args.virtual_runs} virtual, {args.explore_runs} explored and "
              f"{args.real_runs} real-time run(s) each, in {elapsed:.0f} s ({built_at - began:.0f} s building); report: {out}/report.txt, grades.csv, "
              "*/summary.json")
    print(report.write_all(out, summaries, footer, args.breach_fails) + footer)
    write_gradescope(summaries, args.gradescope, args.gradescope_dir, points)
    if args.shard:
        state.write_shard(out, args.shard[0], args.shard[1], plan, " ".join(sys.argv[1:]), complete=True)
    return 0 if all(report.verdict(s, args.breach_fails) == "PASS" for s in summaries) else 1


def write_gradescope(summaries, file, folder, points):
    if file and summaries:
        gradescope.write(file, summaries[0], points)
    if folder:
        for s in summaries:
            gradescope.write(os.path.join(folder, f"{s['submission']}.json"), s, points)


# ----- merge --------------------------------------------------------------------------------

def merge(args):
    out = os.path.abspath(args.out)
    shards = {}
    plan = None
    if args.plan:
        with open(args.plan) as f:
            plan = json.load(f)
    for folder in args.shards:
        if not os.path.isdir(folder):
            raise GradeError(f"no such part folder: {folder}")
        info = state.read_shard(folder)
        if info is not None and info["planned"] != (plan or info["planned"]):
            raise GradeError(f"{folder} is a part of another grade (its plan differs)")
        if info is None:
            continue  # a part that never started: the plan names it
        plan = plan or info["planned"]
        shards[info["shard"]] = (os.path.abspath(folder), info)
    if plan is None:
        raise GradeError("no part has a shard.json and no --plan was given: nothing says what was to be graded")
    points = gradescope.load_points(args.points)
    told = {}
    for entry in args.part_state:
        k, _, text = entry.partition("=")
        if not k.isdigit() or not text:
            raise GradeError(f"--part-state '{entry}': expected K=TEXT")
        told[int(k)] = text
    incomplete = {}
    for part in plan["parts"]:
        got = shards.get(part["shard"])
        if got is None or not got[1]["complete"]:
            why = "did not start" if got is None else "did not complete"
            detail = told.get(part["shard"], "cancelled, failed or still running")
            incomplete[part["shard"]] = f"part {part['shard']} of {plan['of']} {why} ({detail})"
    os.makedirs(out, exist_ok=True)
    subs = []
    for index, name in enumerate(plan["order"]):
        parts = [p["shard"] for p in plan["parts"] if name in p["names"]]
        missing = [incomplete[k] for k in parts if k in incomplete]
        if missing:
            sub = collect.Submission(name, None)
            sub.index = index
            sub.not_graded = "; ".join(missing)
            subs.append(sub)
            continue
        pieces = [(k, shards[k][0], state.load(os.path.join(shards[k][0], name, "state.json"))) for k in parts]
        subs.append(join_pieces(name, index, pieces, out))
    summaries = [report.summarize(s, 1 << 20) for s in subs]
    footer = (f"\nmerged {len(shards)} of {plan['of']} part(s) ({plan['by']}s split): {len(subs)} submission(s); "
              f"report: {out}/report.txt, grades.csv, */summary.json")
    if incomplete:
        footer += "\n" + "\n".join(f"not merged: {why}" for why in incomplete.values())
    print(report.write_all(out, summaries, footer, args.breach_fails) + footer)
    write_gradescope(summaries, None, args.gradescope_dir, points)
    return 0 if all(report.verdict(s, args.breach_fails) == "PASS" for s in summaries) else 1


def join_pieces(name, index, pieces, out):
    """One submission from the parts that graded it: their runs together,
    the rest from the part that holds its first seed; files copied into
    the merged folder and paths rewritten to it, so the merged report reads
    as one process's would."""
    pieces.sort(key=lambda p: p[0])
    _, first_folder, sub = pieces[0]
    runs_of = [list(piece.runs) for _, _, piece in pieces]
    timelines = {k: piece.timeline for k, _, piece in pieces}
    sub.index = index
    sub.runs = []
    target = os.path.join(out, name)
    os.makedirs(target, exist_ok=True)
    for (_, folder, piece), runs in zip(pieces, runs_of):
        for r in runs:
            if r.get("replay"):
                r["replay"] = r["replay"].replace(os.path.join(folder, name), target)
            sub.runs.append(r)
        copy_artifacts(os.path.join(folder, name), target)
        for field in ("determinism", "syscalls", "stopped_early"):
            if getattr(sub, field) is None and getattr(piece, field) is not None:
                setattr(sub, field, getattr(piece, field))
    # The timeline of the first failing seed: drawn by the part that ran it.
    failing = sorted((r["seed"], k) for (k, _, _), runs in zip(pieces, runs_of) for r in runs
                     if r["mode"] == "virtual" and r["kind"] not in ("pass", "defect"))
    sub.timeline = None
    if failing:
        drawn = timelines[failing[0][1]]
        if drawn and drawn.endswith(f"timeline-seed{failing[0][0]}.html"):
            sub.timeline = drawn
    if sub.labtest:
        sub.labtest = os.path.join(target, "labtest")
    return sub


def copy_artifacts(source, target):
    """A part's files of one submission (logs, pages, traces, labtest) into
    the merged folder."""
    if not os.path.isdir(source):
        return
    for name in os.listdir(source):
        if name in ("crate", "target", "scratch", "state.json", "summary.json"):
            continue
        src, dst = os.path.join(source, name), os.path.join(target, name)
        if os.path.isdir(src):
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["merge"]:
            return merge(merge_parser().parse_args(argv[1:]))
        args = parser().parse_args(argv)
        check_args(args)
        return grade(args)
    except GradeError as error:
        print(f"grade: {error}", file=sys.stderr)
        return error.code
