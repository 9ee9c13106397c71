"""The entry point: scripts/mutation-score."""
import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from . import build, judge, mutants, report

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONFIG = os.path.join(ROOT, "config", "raft_lab_test.yml")

USAGE = """The grade's mutation score: how many small bugs put into a server.rs the
grade catches, with the suite alone, with the safety monitor, and with
explored schedules too.

    scripts/mutation-score SERVER_RS [--modules protocol,node,fibers] [--sample N]
                           [--seeds S] [--jobs J] [--equivalent FILE] [--classified FILE] [--out DIR]
    scripts/mutation-score SERVER_RS --rescore --out DIR [--merge RUN_DIR ...]

Each mutant (scripts/grade-tools' raft-mutate: flipped comparisons and
booleans, swapped && and ||, dropped negations, conditions made constant,
off-by-one on + 1 / - 1, statements removed, bool results made constant) is
built and linked into the stand-in's labtest and judged in three modes: S
plain virtual seeds (suite: a failed run kills it; + monitor: a finding
does too) and S explored seeds (+ exploration), of those the file itself
passes without a finding (a file that fails every plain seed is refused).
Mutants marked equivalent
in FILE (one per line, 'ID<TAB>REASON': a person says why it cannot change
behaviour) are not judged; mutants that do not build are not counted.
Prints killed / survived / timed out per mode, the score, the survivors;
DIR/report.txt and DIR/results.json keep them. Survivors a person reviewed
(--classified FILE, 'ID<TAB>KIND<TAB>REASON': progress, defended or
teardown, which no sound grade can fail; liveness, safety or unused, which
are bugs) are grouped by kind, with the share of the bugs killed.
"""


def parse(argv):
    p = argparse.ArgumentParser(prog="scripts/mutation-score", description=USAGE,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("server_rs")
    p.add_argument("--modules", help="mutate only inside these top-level modules, e.g. protocol,node,fibers")
    p.add_argument("--sample", type=int, default=0, help="judge N mutants drawn evenly across operators (0: all)")
    p.add_argument("--sample-seed", type=int, default=1)
    p.add_argument("--seeds", type=int, default=20, help="plain and explored seeds tried (20 each); the file's failing ones are left out")
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="mutants at once (the cores)")
    p.add_argument("--equivalent", default=os.path.join(ROOT, "tests", "mutation", "equivalent.txt"),
                   help="the mutants a person marked equivalent (tests/mutation/equivalent.txt)")
    p.add_argument("--classified", default=os.path.join(ROOT, "tests", "mutation", "survivors.txt"),
                   help="survivors a person reviewed, each with its kind and why (tests/mutation/survivors.txt): "
                        "the report groups them and gives the share of the bugs killed")
    p.add_argument("--out", default="mutation-out")
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build-grade"))
    p.add_argument("--wall", type=float, default=30,
                   help="seconds one run (one labtest process, one seed) may take before it counts as hung (30)")
    p.add_argument("--only", metavar="FILE",
                   help="judge only the mutants whose ids FILE lists, one per line (e.g. an earlier run's survivors)")
    p.add_argument("--list", action="store_true", help="only list the mutants (id and line)")
    p.add_argument("--rescore", action="store_true",
                   help="judge nothing: apply the equivalent list and the survivors' classification to "
                        "DIR/results.json (--out) and print the table again")
    p.add_argument("--merge", metavar="RUN_DIR", action="append", default=[],
                   help="with --rescore: take in the kills of a later run of the same file (RUN_DIR/results.json; "
                        "say, its survivors judged again with --only and more seeds): a mutant that run killed "
                        "in a mode counts as killed in that mode (repeatable)")
    args = p.parse_args(argv)
    if args.merge and not args.rescore:
        p.error("--merge goes with --rescore")
    if not os.path.isfile(args.server_rs):
        p.error(f"'{args.server_rs}' is not a file")
    if args.seeds < 1 or args.jobs < 1 or args.sample < 0:
        p.error("--seeds and --jobs must be at least 1, --sample not negative")
    return args


def say(text):
    print(f"mutation-score: {text}", file=sys.stderr, flush=True)


def rescore(args):
    """The table of an earlier run again, with the equivalent list as it is
    now: a mutant a person has since marked is no longer counted (its
    outcome stays in results.json)."""
    path = os.path.join(args.out, "results.json")
    if not os.path.isfile(path):
        print(f"mutation-score: --rescore: no {path}", file=sys.stderr)
        return 2
    try:
        equivalents = mutants.load_equivalents(args.equivalent)
        classified = mutants.load_classified(args.classified)
    except mutants.MutationError as error:
        print(f"mutation-score: {error}", file=sys.stderr)
        return 2
    import json
    results = json.load(open(path))
    for later in args.merge:
        merged = merge(results, later)
        if merged is None:
            return 2
        say(f"--merge {later}: {merged} kill(s) taken in")
    for r in results:
        if r["id"] in equivalents:
            r["judged_as"] = r.get("judged_as", r["status"])
            r["status"], r["reason"] = "equivalent", equivalents[r["id"]]
        elif r["status"] == "equivalent" and r.get("judged_as"):
            r["status"] = r.pop("judged_as")
    for r in results:
        judged = r.get("modes")
        if r["status"] == "equivalent" and judged and any(v["outcome"] != "survived" for v in judged.values()):
            say(f"warning: marked equivalent, but a run told it apart: {r['id']} ({judged['explore']['by']})")
    earlier = os.path.join(args.out, "report.txt")
    title = open(earlier).readline().strip().split(" (rescored")[0] if os.path.isfile(earlier) else \
        f"mutation score of {path}"
    # Kills merged now or by an earlier --rescore (results.json keeps them).
    merged_from = sorted({v["merged_from"] for r in results for v in (r.get("modes") or {}).values()
                          if v.get("merged_from")})
    title += " (rescored with " + os.path.relpath(args.equivalent, ROOT) + \
        "".join(f", kills of {later} merged" for later in merged_from) + ")"
    print(report.write(args.out, results, title, classified))
    return 0


def merge(results, later):
    """Takes into `results` the kills of the later run in directory `later`:
    per mode, a mutant that survived here and was killed (or timed out)
    there counts as the later run says. The number taken in, or None (said
    why) if that run is missing or is of another file."""
    import json
    path = os.path.join(later, "results.json")
    if not os.path.isfile(path):
        print(f"mutation-score: --merge: no {path}", file=sys.stderr)
        return None
    theirs = {r["id"]: r for r in json.load(open(path)) if r.get("modes")}
    ours = {r["id"]: r for r in results}
    strangers = [name for name in theirs if name not in ours]
    if strangers:
        print(f"mutation-score: --merge: {len(strangers)} mutant(s) of {path} are not in this run "
              f"(another file?), e.g. {strangers[0]}", file=sys.stderr)
        return None
    taken = 0
    for name, later_record in theirs.items():
        modes = ours[name].get("modes")
        if not modes:
            continue
        for mode, outcome in later_record["modes"].items():
            if modes[mode]["outcome"] == "survived" and outcome["outcome"] != "survived":
                modes[mode] = dict(outcome, merged_from=os.path.abspath(later))
                taken += 1
    return taken


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.rescore:
        return rescore(args)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    began = time.monotonic()
    with open(os.path.join(out, "prepare.log"), "w") as log:
        link_labtest, cache, tool = build.prepare(os.path.abspath(args.build_dir), log)
    modules = args.modules.split(",") if args.modules else None
    try:
        every = mutants.listed(tool, args.server_rs, modules)
        equivalents = mutants.load_equivalents(args.equivalent)
        classified = mutants.load_classified(args.classified)
    except mutants.MutationError as error:
        print(f"mutation-score: {error}", file=sys.stderr)
        return 2
    chosen = mutants.sample(every, args.sample, args.sample_seed)
    if args.only:
        try:
            wanted = mutants.load_ids(args.only)
        except mutants.MutationError as error:
            print(f"mutation-score: {error}", file=sys.stderr)
            return 2
        unknown = sorted(wanted - {m["id"] for m in every})
        if unknown:
            print(f"mutation-score: --only: {len(unknown)} id(s) in {args.only} are not mutants of {args.server_rs}, "
                  f"first: {unknown[0]}", file=sys.stderr)
            return 2
        chosen = [m for m in chosen if m["id"] in wanted]
    if args.list:
        for m in chosen:
            print(f"{m['line']:>5}  {m['id']}")
        return 0
    say(f"{len(every)} mutants of {args.server_rs}; judging {len(chosen)} with {args.seeds} plain and "
        f"{args.seeds} explored seeds each")
    source = open(args.server_rs, "rb").read()
    benches = build.Workbenches(os.path.join(out, "work"), args.jobs, cache, args.server_rs)
    labtests = os.path.join(out, "labtests")
    os.makedirs(labtests, exist_ok=True)

    # The file itself first, on every seed: a mutant is judged on the seeds
    # the file passes without a finding (a seed it already fails kills
    # nothing). With no such plain seed, no mutant's outcome means anything.
    original_labtest = os.path.join(labtests, "original")
    bench = benches.take()
    try:
        ok, error = bench.build(source, original_labtest, link_labtest)
    finally:
        benches.give(bench)
    if not ok:
        print(f"mutation-score: {args.server_rs} itself does not build: {error}", file=sys.stderr)
        return 2
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    original = {"hashes": {}}
    passing = {}
    for kind, explore in (("plain", False), ("explore", True)):
        original["hashes"][kind], passing[kind] = judge.baseline(original_labtest, CONFIG, seeds, explore, args.wall)
    if not passing["plain"]:
        print(f"mutation-score: {args.server_rs} itself fails (or raises a finding in) every one of the "
              f"{args.seeds} plain seeds, so no mutant can be judged", file=sys.stderr)
        return 2
    left_out = {kind: sorted(set(seeds) - set(passing[kind])) for kind in passing}
    for kind, name in (("plain", "plain"), ("explore", "explored")):
        if left_out[kind]:
            say(f"the file itself fails or raises a finding in {len(left_out[kind])} of the {args.seeds} {name} "
                f"seeds; they are left out: {', '.join(map(str, left_out[kind]))}")
    say(f"the original passes {len(passing['plain'])} plain and {len(passing['explore'])} explored seeds")

    def one(index, m):
        result = dict(m, status="judged")
        if m["id"] in equivalents:
            return dict(result, status="equivalent", reason=equivalents[m["id"]])
        labtest = os.path.join(labtests, f"mutant-{index}")
        bench = benches.take()
        try:
            ok, error = bench.build(mutants.apply(source, m), labtest, link_labtest)
        finally:
            benches.give(bench)
        if not ok:
            return dict(result, status="unviable", error=error)
        result["modes"], result["hashes"] = judge.judge(labtest, CONFIG, passing["plain"], passing["explore"],
                                                        args.wall)
        os.remove(labtest)
        return result

    def judged(index, m):
        result = one(index, m)
        if result["status"] == "judged" and result["modes"]["explore"]["outcome"] == "survived":
            result["unchanged"] = judge.unchanged(result["hashes"], original["hashes"])
        result.pop("hashes", None)
        return result

    results = [None] * len(chosen)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(judged, i, m): i for i, m in enumerate(chosen)}
        for done, future in enumerate(futures, 1):
            results[futures[future]] = future.result()
            if done % 10 == 0 or done == len(chosen):
                say(f"{done} of {len(chosen)} mutants judged ({time.monotonic() - began:.0f} s)")
    unused = set(equivalents) - {m["id"] for m in every}
    title = (f"mutation score of {args.server_rs}" + (f" (modules {args.modules})" if args.modules else "") +
             (f" (only the {len(chosen)} mutants {args.only} lists)" if args.only else "") +
             f": {len(passing['plain'])} plain + {len(passing['explore'])} explored seeds per mutant "
             f"(of {args.seeds} each: those the file itself passes), {time.monotonic() - began:.0f} s")
    print(report.write(out, results, title, classified))
    if unused and len(unused) == len(equivalents):
        say(f"note: none of the {len(unused)} mutants marked equivalent in {args.equivalent} is a mutant of "
            f"this file (that list is for another server.rs)")
    elif unused:
        shown = sorted(unused)
        say(f"note: {len(unused)} mutant(s) marked equivalent in {args.equivalent} no longer exist: " +
            "; ".join(shown[:5]) + (f"; and {len(shown) - 5} more" if len(shown) > 5 else ""))
    stale = sorted(set(classified) - {m["id"] for m in every})
    if stale and len(stale) < len(classified):
        say(f"note: {len(stale)} survivor(s) classified in {args.classified} are no longer mutants of this file: " +
            "; ".join(stale[:5]) + (f"; and {len(stale) - 5} more" if len(stale) > 5 else ""))
    return 0
