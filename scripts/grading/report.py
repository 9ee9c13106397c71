"""Report: per submission a summary (summary.json), and for all of them
one table (printed and report.txt) and grades.csv."""
import csv
import json
import os
import re
import statistics

from .paths import NTESTS


def after_third_hang(runs):
    """The virtual runs up to the third that hung or crashed, in seed order
    (the grade stops a submission there; which later seeds were already
    running when it stopped depends on timing, so they are left out: the
    same runs count in one process and in merged shards)."""
    hung = sorted(r["seed"] for r in runs if r["mode"] == "virtual" and r["kind"] in ("timeout", "crash", "panic"))
    if len(hung) < 3:
        return runs
    return [r for r in runs if r["mode"] != "virtual" or r["seed"] <= hung[2]]


def summarize(sub, log_cap_bytes):
    every_run = sorted(after_third_hang(sub.runs), key=lambda r: (r["mode"] != "virtual", r["seed"]))  # replayable ones first
    # Explored runs (--explore-runs) are reported beside the verdict, never in it.
    explored = [r for r in every_run if r["mode"] == "explore"]
    runs = [r for r in every_run if r["mode"] != "explore"]
    # A crate that starts OS threads: those run in real time beside the
    # virtual world, so its virtual runs are no replays and no verdict.
    virtual_inexact = any(r["mode"] == "virtual" and r.get("foreign_threads") for r in runs)
    counted = [r for r in runs if r["kind"] != "defect" and not (virtual_inexact and r["mode"] == "virtual")]
    per_test = per_test_counts(counted)
    unplaced = next((r for r in counted if r["kind"] != "pass" and r["test"] == 0), None)
    passing = [r for r in runs if r["kind"] == "pass"]
    # The table's figures are the ones the runs determine (virtual runs are
    # exact replays); what was measured (times, CPU) is in "measured".
    rpcs = [r["rpcs"] for r in passing if r["rpcs"] is not None and r["mode"] == "virtual"] or \
        [r["rpcs"] for r in passing if r["rpcs"] is not None]
    real_all = [r for r in runs if r["mode"] == "real" and r["wall"] > 0]
    real_counted = [r for r in counted if r["mode"] == "real"]
    virtual_all = [r for r in runs if r["mode"] == "virtual"]
    kinds = {}
    for r in counted:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    return {
        "submission": sub.name,
        "server_rs": sub.server_rs,
        "origin": sub.origin,
        "no_submission": sub.no_submission,
        "not_graded": sub.not_graded,
        "builds": sub.built,
        "build_error": sub.build_error,
        "warnings": sub.warnings,
        "files_flagged": sub.flags,
        "runs": {"virtual": len(virtual_all), "real": len(real_all), "passed": len(passing),
                 "with_findings": runs_with_findings(every_run), "explored": len(explored),
                 "suite_defect": sum(1 for r in runs if r["kind"] == "defect"), "by_outcome": kinds},
        "passed_all": sub.built and len(counted) > 0 and all(r["kind"] == "pass" for r in counted) and not sub.stopped_early,
        "stopped_early": sub.stopped_early,
        "tests": per_test,
        "failure_outside_tests": unplaced and unplaced["message"],
        "total_rpc_median": statistics.median(rpcs) if rpcs else None,
        "tests_virtual": per_test_counts([r for r in counted if r["mode"] == "virtual"]),
        "real": {"ran": len(real_counted), "passed": sum(1 for r in real_counted if r["kind"] == "pass"),
                 "first_failure": next(({"test": r["test"], "message": r["message"], "log": r.get("log")}
                                        for r in real_counted if r["kind"] != "pass"), None)},
        "measured": {
            "build_seconds": round(sub.build_seconds, 1),
            "cpu_share_real_percent": round(statistics.median(100 * r["cpu"] / r["wall"] for r in real_all), 2) if real_all else None,
            "seconds_per_virtual_run": round(statistics.median(r["wall"] for r in virtual_all), 3) if virtual_all else None,
            "real_rpc_median": statistics.median(r["rpcs"] for r in passing if r["mode"] == "real" and r["rpcs"])
            if any(r["mode"] == "real" and r["rpcs"] for r in passing) else None,
        },
        "determinism": sub.determinism,
        "timeline_of_first_failure": sub.timeline,
        "defect_runs": [{"mode": r["mode"], "seed": r["seed"]} for r in runs if r["kind"] == "defect"],
        "largest_log_bytes": max((r["log_bytes"] for r in runs), default=0),
        "log_cap_bytes": log_cap_bytes,
        "hazards": hazard_summary(runs),
        "findings": finding_summary(every_run),
        "explored": explored_summary(explored),
        "virtual_runs_inexact": virtual_inexact,
        "notes": note_summary(runs),
        "rules": sub.rules,
        "syscalls": sub.syscalls,
    }


def per_test_counts(runs):
    """Per test: runs that passed it, runs that ran it (a run stops at its
    first failure), and the first failure in replay order."""
    per_test = []
    for t in range(1, NTESTS + 1):
        ran = sum(1 for r in runs if r["kind"] == "pass" or r["test"] >= t)
        passed = sum(1 for r in runs if r["kind"] == "pass" or r["test"] > t)
        first = next((r for r in runs if r["kind"] != "pass" and r["test"] == t), None)
        per_test.append({"test": t, "passed": passed, "ran": ran,
                         "first_failure": first and {"message": first["message"], "mode": first["mode"],
                                                     "seed": first["seed"], "replay": first.get("replay"),
                                                     "log": first.get("log")}})
    return per_test


def hazard_summary(runs):
    """Each kind of hazard (call, rule) over all runs: from which threads, in
    how many runs, how many times in all, and where it was first seen (the
    first run in replay order that had it)."""
    kinds = {}
    for r in runs:
        seen = set()
        for h in r.get("hazards", []):
            key = (h["call"], h["rule"])
            entry = kinds.get(key)
            if entry is None:
                entry = kinds[key] = {"call": h["call"], "rule": h["rule"], "threads": [], "runs": 0, "count": 0,
                                      "first_line": h["line"], "first_run": {"mode": r["mode"], "seed": r["seed"]},
                                      "log": r.get("log")}
            if h["thread"] not in entry["threads"]:
                entry["threads"].append(h["thread"])
            entry["count"] += h["count"]
            if key not in seen:
                seen.add(key)
                entry["runs"] += 1
    return list(kinds.values())


def finding_summary(runs):
    """Each property the safety monitor found broken, over all runs: in how
    many runs, and the first run in replay order that broke it (its first
    finding of that property, with the command that replays it)."""
    kinds = {}
    for r in runs:
        seen = set()
        for f in r.get("findings", []):
            entry = kinds.get(f["property"])
            if entry is None:
                entry = kinds[f["property"]] = {"property": f["property"], "runs": 0, "count": 0, "first": f["line"],
                                                "first_run": {"mode": r["mode"], "seed": r["seed"], "test": f["test"]},
                                                "replay": f.get("replay"), "shrink": f.get("shrink"), "log": r.get("log")}
            entry["count"] += 1
            if f["property"] not in seen:
                seen.add(f["property"])
                entry["runs"] += 1
    return list(kinds.values())


def explored_summary(explored):
    """Explored runs: how many passed, the first failure in seed order (with
    its replay and the command that shrinks its schedule)."""
    ordered = sorted(explored, key=lambda r: r["seed"])
    first = next((r for r in ordered if r["kind"] not in ("pass", "defect")), None)
    return {"ran": len(ordered), "passed": sum(1 for r in ordered if r["kind"] == "pass"),
            "first_failure": first and {"test": first["test"], "message": first["message"], "seed": first["seed"],
                                        "replay": first.get("replay"), "shrink": first.get("shrink"),
                                        "log": first.get("log")}}


def runs_with_findings(runs):
    return sum(1 for r in runs if r.get("findings"))


def note_summary(runs):
    """Each kind of note once (the first run's wording), kinds told apart
    by their words, not their numbers."""
    notes = {}
    for r in runs:
        for n in r.get("notes", []):
            notes.setdefault(re.sub(r"\d+", "N", n), n)
    return list(notes.values())


def verdict(s, breach_fails=False):
    if s.get("no_submission"):
        return "NONE"
    if s.get("not_graded"):
        return "NOT GRADED"
    if breach_fails and s.get("rules") and s["rules"].get("breaches"):
        return "FAIL"
    return "PASS" if s["passed_all"] else "FAIL"


def rules_cell(s):
    rules = s.get("rules")
    if not rules:
        return "-"
    if rules.get("error"):
        return "error"
    return f"{len(rules['breaches'])}/{len(rules['reviews'])}"


def findings_cell(s):
    """Runs with findings of the safety monitor, of all runs ("-": none)."""
    with_findings = s["runs"].get("with_findings", 0)
    return f"{with_findings}/{all_runs(s)}" if with_findings else "-"


def all_runs(s):
    return s["runs"]["virtual"] + s["runs"]["real"] + s["runs"].get("explored", 0)


def explored_cell(s):
    e = s.get("explored") or {"ran": 0}
    return f"{e['passed']}/{e['ran']}" if e["ran"] else "-"


def table(summaries, breach_fails=False):
    width = max([10] + [len(s["submission"]) for s in summaries])
    head = f"{'submission':<{width}}  builds  " + " ".join(f"{'T' + str(t):>7}" for t in range(1, NTESTS + 1)) + \
        "   real  explored  RPCs (median)  hazards  findings  rules  verdict"
    lines = [head, "-" * len(head)]
    for s in summaries:
        if s.get("no_submission"):
            lines.append(f"{s['submission']:<{width}}  -       no submission: {s['no_submission']}")
            continue
        if s.get("not_graded"):
            lines.append(f"{s['submission']:<{width}}  -       NOT GRADED: {s['not_graded']}")
            continue
        if not s["builds"]:
            lines.append(f"{s['submission']:<{width}}  no      build error: {s['build_error']}")
            continue
        cells = [f"{t['passed']}/{t['ran']}" if t["ran"] else "-" for t in s["tests_virtual"]]
        real = f"{s['real']['passed']}/{s['real']['ran']}" if s["real"]["ran"] else "-"
        rpcs = f"{s['total_rpc_median']:.0f}" if s["total_rpc_median"] is not None else "-"
        lines.append(f"{s['submission']:<{width}}  yes     " + " ".join(f"{c:>7}" for c in cells) +
                     f"   {real:>4}  {explored_cell(s):>8}  {rpcs:>13}  {len(s['hazards']):>7}  {findings_cell(s):>8}  "
                     f"{rules_cell(s):>5}  "
                     f"{verdict(s, breach_fails)}")
    lines.append("")
    for s in summaries:
        notes = notes_of(s)
        if notes:
            lines.append(f"{s['submission']}:")
            lines.extend(notes)
    return "\n".join(lines)


def replay_lines(first):
    """The replay and shrink commands under a first failure or finding."""
    return [f"      {what}: {first[what]}" for what in ("replay", "shrink") if first.get(what)]


def notes_of(s):
    notes = []
    if s.get("origin"):
        o = s["origin"]
        if not o["commit"]:
            notes.append(f"  not graded: nothing submitted in {o['repo']}")
        else:
            notes.append(f"  graded: commit {o['commit'][:12]} of {o['date']} on {o['branch']}: \"{o['message']}\" ({o['repo']})")
    for t in s["tests"]:
        f = t["first_failure"]
        if f:
            notes.append(f"  test {t['test']}: {f['message']}  [{f['mode']} seed {f['seed']}; log {f['log']}]")
            if f.get("replay"):
                notes.append(f"      replay: {f['replay']}")
    f = s["real"]["first_failure"]
    if f and not any(t["first_failure"] and t["first_failure"]["mode"] == "real" for t in s["tests"]):
        notes.append(f"  real time: {f['message']}  [log {f['log']}]")
    if s["failure_outside_tests"]:
        notes.append(f"  before any test: {s['failure_outside_tests']}")
    if s["stopped_early"]:
        notes.append(f"  {s['stopped_early']}")
    if s["runs"]["suite_defect"]:
        seeds = ", ".join(f"{d['mode']} {d['seed']}" for d in s["defect_runs"][:8])
        notes.append(f"  {s['runs']['suite_defect']} run(s) hit the real suite's own test-11 defect (not counted): {seeds}")
    if s.get("virtual_runs_inexact"):
        notes.append("  virtual runs are no exact replays: the submission starts OS threads (pthread_create), which run "
                     "in real time beside the virtual world; the verdict is the real-time runs' alone" +
                     ("" if s["runs"]["real"] else " (none were run: no verdict; grade it with --real-runs)"))
    for h in s["hazards"]:
        total = s["runs"]["virtual"] + s["runs"]["real"]
        others = len(h["threads"]) - 1
        also = f"; also from {others} other thread(s): {', '.join(h['threads'][1:])}" if others else ""
        notes.append(f"  hazard: {h['first_line']} [in {h['runs']} of {total} runs; first {h['first_run']['mode']} seed "
                     f"{h['first_run']['seed']}{also}; log {h['log']}]")
    e = s.get("explored")
    if e and e["first_failure"]:
        f = e["first_failure"]
        notes.append(f"  explored schedules (beside the verdict): {e['ran'] - e['passed']} of {e['ran']} failed; first: "
                     f"test {f['test']}: {f['message']}  [explore seed {f['seed']}; log {f['log']}]")
        notes.extend(replay_lines(f))
    for f in s.get("findings", []):
        first = f["first_run"]
        notes.append(f"  finding (beside the verdict): {f['first']} [{f['property']} in {f['runs']} of {all_runs(s)} runs; "
                     f"first {first['mode']} seed {first['seed']}; log {f['log']}]")
        notes.extend(replay_lines(f))
    for n in s["notes"]:
        notes.append(f"  note: {n}")
    rules = s.get("rules")
    if rules and rules.get("error"):
        notes.append(f"  rules: not checked: {rules['error']}")
    elif rules:
        for f in rules["breaches"] + rules["reviews"]:
            where = f"server.rs:{f['line']}: " if f["line"] else ""  # rule 1 names files, not lines
            notes.append(f"  rule {f['rule']} {f['class']}: {where}{f['what']} ({f['rule_text']})")
    sys_ = s.get("syscalls")
    if sys_ and sys_.get("error"):
        notes.append(f"  system calls: not watched: {sys_['error']}")
    elif sys_:
        for e in sys_.get("evidence", []):
            notes.append(f"  system call: {e}  [a real-time run of tests {sys_.get('tests')} under strace]")
        if not sys_.get("evidence"):
            notes.append(f"  system calls: nothing beyond the framework's own (a real-time run of tests "
                         f"{sys_.get('tests')} under strace)")
        if sys_.get("note"):
            notes.append(f"  system calls: {sys_['note']}")
    d = s["determinism"]
    if d and d["same"] and d.get("monitor_neutral") is False:
        notes.append(f"  the safety monitor changes this submission's runs (seed {d['seed']}: {d['hashes'][0]} with it, "
                     f"{d['hashes'][1]} without; its get_state has side effects): its verdict needs a grade with "
                     "--no-monitor, as the real framework has no monitor")
    elif d and d["same"]:
        first = d["hashes"][0]
        what = f"the same trace hash ({first})" if not first.startswith("no hash") else "the same outcome (it ends before a trace hash)"
        without = ", with and without the safety monitor" if d.get("monitor_neutral") else ""
        notes.append(f"  replay check: seed {d['seed']} twice gave {what}{without}")
    if s["determinism"] and not s["determinism"]["same"]:
        notes.append(f"  replays are NOT exact: seed {s['determinism']['seed']} gave trace hashes "
                     f"{s['determinism']['hashes'][0]} and {s['determinism']['hashes'][1]}")
    if s["timeline_of_first_failure"]:
        notes.append(f"  timeline of the first failing seed: {s['timeline_of_first_failure']}")
    if s["largest_log_bytes"] > s["log_cap_bytes"]:
        notes.append(f"  output capped: up to {s['largest_log_bytes'] / 1e6:.1f} MB in one run "
                     f"(kept {s['log_cap_bytes'] // 1024} KiB per run)")
    for flag in s["files_flagged"]:
        notes.append(f"  file: {flag}")
    return notes


def write_csv(path, summaries, breach_fails=False):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["submission", "builds", "verdict", "runs", "passed", "suite_defect_runs"] +
                   [f"test{t}" for t in range(1, NTESTS + 1)] +
                   ["real_passed", "explored_passed", "total_rpc_median", "hazards", "findings", "rule_breaches",
                    "rule_reviews",
                    "first_failure", "build_error", "files_flagged", "commit"])
        for s in summaries:
            first = next((t["first_failure"]["message"] for t in s["tests"] if t["first_failure"]), "")
            rules = s.get("rules") or {}
            w.writerow([s["submission"], "yes" if s["builds"] else "no", verdict(s, breach_fails),
                        s["runs"]["virtual"] + s["runs"]["real"], s["runs"]["passed"], s["runs"]["suite_defect"]] +
                       [f"{t['passed']}/{t['ran']}" for t in s["tests"]] +
                       [f"{s['real']['passed']}/{s['real']['ran']}", explored_cell(s),
                        s["total_rpc_median"] if s["total_rpc_median"] is not None else "",
                        "; ".join(h["first_line"] for h in s["hazards"]),
                        "; ".join(f"{f['property']} in {f['runs']} run(s): {f['first']}" for f in s.get("findings", [])),
                        "; ".join(f"line {f['line']}: {f['what']}" for f in rules.get("breaches", [])),
                        "; ".join(f"line {f['line']}: {f['what']}" for f in rules.get("reviews", [])),
                        first or s["failure_outside_tests"] or s.get("no_submission") or s.get("not_graded") or "",
                        s["build_error"] or "",
                        "; ".join(s["files_flagged"]), (s.get("origin") or {}).get("commit", "")])


def write_all(out, summaries, footer, breach_fails=False):
    for s in summaries:
        folder = os.path.join(out, s["submission"])
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "summary.json"), "w") as f:
            json.dump(s, f, indent=2)
    write_csv(os.path.join(out, "grades.csv"), summaries, breach_fails)
    report = table(summaries, breach_fails)
    with open(os.path.join(out, "report.txt"), "w") as f:
        f.write(report + footer + "\n")
    return report
