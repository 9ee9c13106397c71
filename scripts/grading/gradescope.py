"""Gradescope: one submission's grade as Gradescope's autograder results
JSON (the fields its documentation lists: score, output, visibility,
stdout_visibility, tests[] with name, number, score, max_score, status,
output, visibility), with points per lab test from a points file.

Points file (YAML or JSON), every key optional:

    policy: all            # all: a test earns its points when every counted run passed it
                           # fraction: points x the share of counted runs that passed it
    points: {1: 5, 2: 10, 3: 5, 4: 10, 5: 10, 6: 10, 7: 10, 8: 10, 9: 10, 10: 10, 11: 10}
    visibility: visible    # of each test's result: visible, hidden, after_due_date, after_published
    breach_penalty: 0      # points taken off per breach of the DO NOT rules (0: reported only)

A run stops at its first failing test, so under `all` the tests after a
failure earn nothing, as in the real suite, which stops there too."""
import json
import os

from .paths import GradeError, NTESTS
from .report import notes_of, verdict

TITLES = ["Initial election", "Re-election after network failure", "Basic agreement",
          "Agreement despite follower disconnection", "No agreement if too many followers disconnect",
          "Rejoin of disconnected leader", "Concurrently started agreements",
          "Leader backs up quickly over incorrect follower logs", "RPC counts aren't too high",
          "Unreliable agreement (takes a few minutes)", "Figure 8"]

DEFAULT = {"policy": "all", "points": {1: 5, 2: 10, 3: 5, 4: 10, 5: 10, 6: 10, 7: 10, 8: 10, 9: 10, 10: 10, 11: 10},
           "visibility": "visible", "breach_penalty": 0}
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


def load_points(path):
    """The points configuration, checked; DEFAULT without a file."""
    config = {key: (dict(value) if isinstance(value, dict) else value) for key, value in DEFAULT.items()}
    if path is None:
        return config
    if not os.path.isfile(path):
        raise GradeError(f"--points '{path}' is not a file")
    with open(path) as f:
        text = f.read()
    try:
        if path.endswith((".yml", ".yaml")):
            import yaml
            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as error:  # a YAML or JSON syntax error, with its place
        raise GradeError(f"--points '{path}' does not parse: {str(error).splitlines()[0]}")
    if not isinstance(data, dict):
        raise GradeError(f"--points '{path}': expected a mapping (policy, points, visibility)")
    unknown = set(data) - set(DEFAULT)
    if unknown:
        raise GradeError(f"--points '{path}': unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(DEFAULT)})")
    if data.get("policy", "all") not in ("all", "fraction"):
        raise GradeError(f"--points '{path}': policy must be 'all' or 'fraction', not {data['policy']!r}")
    if data.get("visibility", "visible") not in VISIBILITIES:
        raise GradeError(f"--points '{path}': visibility must be one of {', '.join(VISIBILITIES)}")
    points = data.get("points", {})
    if not isinstance(points, dict):
        raise GradeError(f"--points '{path}': points must map test numbers 1-11 to points")
    for key, value in points.items():
        try:
            test = int(key)
        except (TypeError, ValueError):
            test = 0
        if not 1 <= test <= NTESTS or not isinstance(value, (int, float)) or value < 0:
            raise GradeError(f"--points '{path}': points: {key!r}: {value!r} is not 'test (1-11): points (>= 0)'")
        config["points"][test] = value
    for key in ("policy", "visibility", "breach_penalty"):
        if key in data:
            config[key] = data[key]
    if not isinstance(config["breach_penalty"], (int, float)) or config["breach_penalty"] < 0:
        raise GradeError(f"--points '{path}': breach_penalty must be a number >= 0")
    return config


def results(summary, config, execution_time=None):
    """Gradescope's results dict for one submission's summary."""
    tests = []
    total = 0.0
    runs = summary["runs"]["virtual"] + summary["runs"]["real"] - summary["runs"]["suite_defect"]
    if summary.get("virtual_runs_inexact"):
        runs = summary["real"]["ran"]
    for t in summary["tests"] if summary["builds"] else []:
        max_score = float(config["points"][t["test"]])
        passed_all = runs > 0 and t["passed"] == runs
        if config["policy"] == "fraction":
            score = max_score * (t["passed"] / runs) if runs else 0.0
        else:
            score = max_score if passed_all else 0.0
        total += score
        f = t["first_failure"]
        lines = [f"passed in {t['passed']} of {runs} run(s)" + (f"; ran in {t['ran']}" if t["ran"] != runs else "")]
        if f:
            lines.append(f"first failure: {f['message']} ({f['mode']} seed {f['seed']})")
            if f.get("replay"):
                lines.append(f"replay: {f['replay']}")
        tests.append({"name": f"TEST {t['test']}: {TITLES[t['test'] - 1]}", "number": str(t["test"]),
                      "score": round(score, 2), "max_score": max_score, "status": "passed" if passed_all else "failed",
                      "output": "\n".join(lines), "visibility": config["visibility"]})
    if not tests:  # no build, or nothing to grade: every test failed, with why
        why = summary.get("no_submission") or summary.get("build_error") or summary.get("not_graded") or "not run"
        for test in range(1, NTESTS + 1):
            tests.append({"name": f"TEST {test}: {TITLES[test - 1]}", "number": str(test), "score": 0.0,
                          "max_score": float(config["points"][test]), "status": "failed", "output": why,
                          "visibility": config["visibility"]})
    if summary["builds"]:
        # The safety monitor's findings, beside the points (no points of its own).
        findings = summary.get("findings", [])
        lines = [f"{f['property']}: in {f['runs']} run(s); first: {f['first']}" + (f"\nreplay: {f['replay']}" if f.get("replay") else "")
                 for f in findings] or ["no finding: no two leaders in a term, no second vote in a term, no two commands "
                                        "applied at one index, applies in order, terms never decreasing, at most 10 "
                                        "heartbeats a second to each follower"]
        tests.append({"name": "Safety monitor: Figure 2's guarantees on every run (beside the grade, no points)",
                      "number": "monitor", "score": 0.0, "max_score": 0.0, "status": "failed" if findings else "passed",
                      "output": "\n".join(lines), "visibility": config["visibility"]})
    breaches = len((summary.get("rules") or {}).get("breaches", []))
    penalty = min(total, breaches * config["breach_penalty"])
    header = [f"{summary['submission']}: {verdict(summary)}"]
    if penalty:
        header.append(f"{penalty:g} point(s) off for {breaches} breach(es) of the DO NOT rules")
    if summary.get("build_error"):
        header.append(f"build error: {summary['build_error']}")
    out = {
        "score": round(total - penalty, 2),
        "output": "\n".join(header + [line.strip() for line in notes_of(summary)]),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }
    if execution_time is not None:
        out["execution_time"] = int(execution_time)
    return out


def write(path, summary, config, execution_time=None):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results(summary, config, execution_time), f, indent=2)
