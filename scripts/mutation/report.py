"""Report: per mode, killed / survived / timed out and the score (killed
and timed out, of the mutants that build and are not marked equivalent),
then the survivors of the widest mode, the equivalents and the mutants that
do not build; results.json keeps every mutant's outcome."""
import json
import os

MODES = [("suite", "suite only"), ("monitor", "suite + monitor"), ("explore", "suite + monitor + exploration")]


def counts(results, mode):
    judged = [r for r in results if r["status"] == "judged"]
    out = {k: sum(1 for r in judged if r["modes"][mode]["outcome"] == k) for k in ("killed", "survived", "timeout")}
    out["judged"] = len(judged)
    out["score"] = (out["killed"] + out["timeout"]) / len(judged) if judged else 0.0
    return out


def table(results, title):
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
        if mode != "explore":
            lines.append(f"survivors of {name}: {len(survivors)}")
            continue
        changed = [r for r in survivors if not r.get("unchanged")]
        never = [r for r in survivors if r.get("unchanged")]
        lines.append(f"survivors of {name}: {len(survivors)}")
        lines.append(f"  changed a run and passed every check (what the grade cannot see): {len(changed)}")
        for r in changed:
            lines.append(f"    line {r['line']}: {r['id']}")
        lines.append(f"  never changed a run: every trace hash the original's (the schedules never reach the change, "
                     f"or it cannot change behaviour; candidates for the equivalent list): {len(never)}")
        for r in never:
            lines.append(f"    line {r['line']}: {r['id']}")
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


def write(out, results, title):
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    text = table(results, title)
    with open(os.path.join(out, "report.txt"), "w") as f:
        f.write(text + "\n")
    return text
