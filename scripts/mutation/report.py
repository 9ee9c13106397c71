"""Report: per mode, killed / survived / timed out and the score (killed
and timed out, of the mutants that build and are not marked equivalent),
then the survivors of the widest mode (grouped by what a person found each
to be, where tests/mutation/survivors.txt says), the equivalents and the
mutants that do not build; results.json keeps every mutant's outcome."""
import json
import math
import os

from .mutants import KINDS, NOT_BUGS

MODES = [("suite", "suite only"), ("monitor", "suite + monitor"), ("explore", "suite + monitor + exploration")]


def counts(results, mode):
    judged = [r for r in results if r["status"] == "judged"]
    out = {k: sum(1 for r in judged if r["modes"][mode]["outcome"] == k) for k in ("killed", "survived", "timeout")}
    out["judged"] = len(judged)
    out["score"] = (out["killed"] + out["timeout"]) / len(judged) if judged else 0.0
    return out


def survivor_lines(survivors, classified):
    """The survivors: those a person classified, by kind (with the reason
    once per reason), then the rest, split by whether they changed a run."""
    lines = []
    for kind, meaning in KINDS.items():
        mine = [r for r in survivors if classified.get(r["id"], ("",))[0] == kind]
        if not mine:
            continue
        lines.append(f"  {kind} ({meaning}): {len(mine)}")
        said = set()
        for r in mine:
            reason = classified[r["id"]][1]
            lines.append(f"    line {r['line']}: {r['id']}" + ("" if reason in said else f"\n        {reason}"))
            said.add(reason)
    rest = [r for r in survivors if r["id"] not in classified]
    if rest and len(rest) < len(survivors):
        lines.append(f"  not classified in the survivors list: {len(rest)}")
    changed = [r for r in rest if not r.get("unchanged")]
    never = [r for r in rest if r.get("unchanged")]
    if changed:
        lines.append(f"  changed a run and passed every check (what the grade cannot see): {len(changed)}")
        lines.extend(f"    line {r['line']}: {r['id']}" for r in changed)
    if never:
        lines.append(f"  never changed a run: every trace hash the original's (the schedules never reach the change, "
                     f"or it cannot change behaviour; candidates for the equivalent list): {len(never)}")
        lines.extend(f"    line {r['line']}: {r['id']}" for r in never)
    return lines


def bug_score(judged, survivors, classified):
    """With a classification: the share of the bugs the grade kills, where
    the bugs are every judged mutant but the survivors a person found not
    to be one (progress, defended, teardown). Killed mutants are not
    classified: a kill by a failing run counts whatever the mutant was."""
    not_bugs = [r for r in survivors if classified.get(r["id"], ("",))[0] in NOT_BUGS]
    if not not_bugs:
        return []
    bugs = len(judged) - len(not_bugs)
    caught = len(judged) - len(survivors)
    # A sound grade fails no correct Raft, so those survivors stay survivors
    # whatever checks are added: the score's ceiling on this file.
    allowed = len(judged) - math.ceil(0.95 * len(judged))
    return [f"  of the {bugs} mutants that are bugs (the {len(judged)} judged, less the {len(not_bugs)} survivors "
            f"classified {', '.join(NOT_BUGS)}): {caught} killed or timed out, "
            f"{100 * caught / bugs if bugs else 0:.1f}%",
            f"  the most a grade that fails no correct Raft can score on this file, by this review: {bugs} of "
            f"{len(judged)}, {100 * bugs / len(judged):.1f}% (95% allows at most {allowed} survivors; "
            f"the review found {len(not_bugs)} that are no bug)"]


def table(results, title, classified=None):
    unviable = [r for r in results if r["status"] == "unviable"]
    equivalent = [r for r in results if r["status"] == "equivalent"]
    judged = [r for r in results if r["status"] == "judged"]
    lines = [title,
             f"{len(results)} mutants: {len(judged)} judged, {len(equivalent)} marked equivalent, "
             f"{len(unviable)} do not build", "",
             f"{'mode':<32}{'killed':>8}{'survived':>10}{'timed out':>11}{'score':>9}",
             "-" * 70]
    for mode, name in MODES:
        c = counts(results, mode)
        lines.append(f"{name:<32}{c['killed']:>8}{c['survived']:>10}{c['timeout']:>11}{100 * c['score']:>8.1f}%")
    lines.append("")
    for mode, name in MODES:
        survivors = [r for r in judged if r["modes"][mode]["outcome"] == "survived"]
        lines.append(f"survivors of {name}: {len(survivors)}")
        if mode == "explore":
            lines.extend(survivor_lines(survivors, classified or {}))
            lines.extend(bug_score(judged, survivors, classified or {}))
    caught_late = [r for r in judged if r["modes"]["suite"]["outcome"] == "survived"
                   and r["modes"]["explore"]["outcome"] != "survived"]
    if caught_late:
        lines.append(f"missed by the suite, caught by the monitor or exploration: {len(caught_late)}")
        for r in caught_late:
            mode = "monitor" if r["modes"]["monitor"]["outcome"] != "survived" else "explore"
            lines.append(f"  line {r['line']}: {r['id']}\n      by {mode}: {r['modes'][mode]['by']}")
    if equivalent:
        lines.append(f"marked equivalent (not judged): {len(equivalent)}")
        for r in equivalent:
            lines.append(f"  line {r['line']}: {r['id']}\n      because: {r['reason']}")
    if unviable:
        lines.append(f"do not build (not judged): {len(unviable)}")
    return "\n".join(lines)


def write(out, results, title, classified=None):
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    text = table(results, title, classified)
    with open(os.path.join(out, "report.txt"), "w") as f:
        f.write(text + "\n")
    return text
