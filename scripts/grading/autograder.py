"""Gradescope's autograder: what run_autograder does for one submission.

Gradescope unpacks the zip (scripts/make-autograder) into
/autograder/source, runs setup.sh once when the image is built, and for
each submission puts the student's files in /autograder/submission and runs
run_autograder, which calls this: find the one server.rs (a file of that
name, or a lab tree's src/protocol/rust_raft/server.rs), grade it, and
write /autograder/results/results.json. A submission without a server.rs,
or with several, gets a results.json that says so (score 0), never a crash;
so does any error of the grade itself.

The container is Gradescope's sandbox: where bubblewrap cannot start in it
(Docker's default profile refuses it the namespaces it needs), the grade
runs the submission without a sandbox of its own and says so."""
import glob
import json
import os
import subprocess
import sys
import time

from . import gradescope
from .paths import GradeError, NTESTS, ROOT

AUTOGRADER = os.environ.get("AUTOGRADER_ROOT", "/autograder")
LAB_PATH = os.path.join("src", "protocol", "rust_raft", "server.rs")


def find_server(submission):
    """(path, notes) of the file to grade, or (None, why)."""
    found = sorted(p for p in glob.glob(os.path.join(submission, "**", "server.rs"), recursive=True)
                   if os.path.isfile(p))
    shown = [os.path.relpath(p, submission) for p in found]
    if not found:
        everything = sorted(os.path.relpath(p, submission) for p in glob.glob(os.path.join(submission, "**"),
                                                                                recursive=True) if os.path.isfile(p))
        return None, ("No server.rs in your submission (found: " + (", ".join(everything[:10]) or "nothing") +
                      "). Submit your src/protocol/rust_raft/server.rs, or the lab's tree.")
    if len(found) == 1:
        return found[0], []
    in_tree = [p for p in found if p.endswith(os.sep + LAB_PATH) or p == os.path.join(submission, LAB_PATH)]
    if len(in_tree) == 1:
        others = [s for s in shown if s != os.path.relpath(in_tree[0], submission)]
        return in_tree[0], [f"graded {os.path.relpath(in_tree[0], submission)}; also found, not graded: {', '.join(others)}"]
    return None, (f"{len(found)} files named server.rs in your submission ({', '.join(shown)}): "
                  "submit exactly one (or the lab's tree, whose src/protocol/rust_raft/server.rs is graded).")


def failed_results(message, points, execution_time):
    """Every test failed, with `message` saying why."""
    tests = [{"name": f"TEST {t}: {gradescope.TITLES[t - 1]}", "number": str(t), "score": 0.0,
              "max_score": float(points["points"][t]), "status": "failed", "output": message,
              "visibility": points["visibility"]} for t in range(1, NTESTS + 1)]
    return {"score": 0.0, "output": message, "output_format": "text", "visibility": "visible",
            "stdout_visibility": "hidden", "execution_time": int(execution_time), "tests": tests}


def sandbox_works():
    if subprocess.run(["which", "bwrap"], capture_output=True).returncode != 0:
        return False
    probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true"],
                           capture_output=True)
    return probe.returncode == 0


def main():
    began = time.monotonic()
    settings_path = os.path.join(ROOT, "autograder-settings.json")
    settings = json.load(open(settings_path)) if os.path.isfile(settings_path) else {}
    results_dir = os.path.join(AUTOGRADER, "results")
    os.makedirs(results_dir, exist_ok=True)
    results_file = os.path.join(results_dir, "results.json")
    points_file = settings.get("points") and os.path.join(ROOT, settings["points"])
    try:
        points = gradescope.load_points(points_file)
    except GradeError as error:
        points = gradescope.load_points(None)
        json.dump(failed_results(f"The autograder's points file is wrong: {error}", points, 0), open(results_file, "w"))
        return 0
    server, notes = find_server(os.path.join(AUTOGRADER, "submission"))
    if server is None:
        with open(results_file, "w") as f:
            json.dump(failed_results(notes, points, time.monotonic() - began), f, indent=2)
        print(notes)
        return 0
    argv = [sys.executable, os.path.join(ROOT, "scripts", "grade"), server,
            "--out", os.path.join(results_dir, "grade"), "--build-dir", os.path.join(AUTOGRADER, "build"),
            "--skip-prepare", "--gradescope", results_file,
            "--virtual-runs", str(settings.get("virtual_runs", 200)), "--real-runs", str(settings.get("real_runs", 1)),
            "--explore-runs", str(settings.get("explore_runs", 50))]
    if points_file:
        argv += ["--points", points_file]
    argv += settings.get("grade_options", [])
    if not sandbox_works():
        argv.append("--no-sandbox")
        notes.append("bubblewrap cannot start in this container: the submission ran without a sandbox of its own "
                     "(the container is Gradescope's)")
    run = subprocess.run(argv, capture_output=True, text=True)
    print(run.stdout)
    print(run.stderr[-5000:], file=sys.stderr)
    if run.returncode not in (0, 1) or not os.path.isfile(results_file):
        why = (run.stderr.strip().splitlines() or [f"exit status {run.returncode}"])[-1]
        with open(results_file, "w") as f:
            json.dump(failed_results(f"The grade could not run: {why}", points, time.monotonic() - began), f, indent=2)
        return 0
    with open(results_file) as f:
        results = json.load(f)
    results["execution_time"] = int(time.monotonic() - began)
    if notes:
        results["output"] = "\n".join(notes) + "\n" + results["output"]
    with open(results_file, "w") as f:
        json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    assert NTESTS == 11
    sys.exit(main())
