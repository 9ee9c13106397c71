#!/usr/bin/env python3
"""ctest grade.autograder: the Gradescope autograder zip, run as Gradescope
runs it. scripts/make-autograder builds the zip (with a points file); it is
unzipped into a folder bound at /autograder in a bubblewrap sandbox of its
own (the system read-only, /autograder writable); setup.sh runs there once,
then run_autograder for each case:

- the lab's skeleton stub (fails test 1: 0 points),
- a failing submission (no heartbeats: test 1 fails),
- a passing one (tests/submissions/student_correct.rs: every point),
- a lab tree holding the passing server.rs (graded from its path),
- no server.rs at all, and two of them (a message, every test failed).

Each results.json is validated against the fields Gradescope documents
(tests/data/gradescope_results.schema.json, with the jsonschema package).

    tests/autograder_test.py BUILD_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBMISSIONS = os.path.join(ROOT, "tests", "submissions")


def main():
    try:
        import jsonschema
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "jsonschema"], check=True)
        import jsonschema
    schema = json.load(open(os.path.join(ROOT, "tests", "data", "gradescope_results.schema.json")))
    base = os.path.join(os.path.abspath(sys.argv[1]), "autograder-test")
    shutil.rmtree(base, ignore_errors=True)
    root = os.path.join(base, "autograder")
    os.makedirs(os.path.join(root, "source"))
    points = os.path.join(base, "points.yml")
    with open(points, "w") as f:
        f.write("policy: all\npoints: {1: 10, 2: 10, 3: 10, 4: 10, 5: 10, 6: 10, 7: 10, 8: 10, 9: 10, 10: 5, 11: 5}\n")
    zip_path = os.path.join(base, "autograder.zip")
    subprocess.run([os.path.join(ROOT, "scripts", "make-autograder"), zip_path, "--points", points,
                    "--virtual-runs", "3", "--real-runs", "0", "--explore-runs", "3", "--", "--no-syscalls"], check=True)
    subprocess.run(["unzip", "-q", zip_path, "-d", os.path.join(root, "source")], check=True)

    home = os.path.expanduser("~")

    def in_sandbox(command):
        """As Gradescope: root, /autograder writable, the rest read-only."""
        env = {"PATH": f"{home}/.cargo/bin:/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
               "CARGO_HOME": "/autograder/cargo-home", "RUSTUP_HOME": os.environ.get("RUSTUP_HOME", f"{home}/.rustup")}
        os.makedirs(os.path.join(root, "cargo-home"), exist_ok=True)
        # cargo's registry as the image would have it after setup (saves downloading it again here)
        registry = os.path.join(home, ".cargo", "registry")
        if os.path.isdir(registry) and not os.path.exists(os.path.join(root, "cargo-home", "registry")):
            shutil.copytree(registry, os.path.join(root, "cargo-home", "registry"), symlinks=True)
        argv = ["bwrap", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        for top in sorted(os.listdir("/")):
            if top not in ("proc", "dev", "tmp", "sys", "autograder") and os.path.isdir("/" + top) \
                    and not os.path.islink("/" + top):
                argv += ["--ro-bind", "/" + top, "/" + top]
            elif os.path.islink("/" + top):
                argv += ["--symlink", os.readlink("/" + top), "/" + top]
        argv += ["--ro-bind", "/sys", "/sys", "--bind", root, "/autograder", "--chdir", "/autograder/source",
                 "--die-with-parent", "--clearenv"]
        for key, value in env.items():
            argv += ["--setenv", key, value]
        return subprocess.run(argv + command, capture_output=True, text=True)

    began = time.monotonic()
    setup = in_sandbox(["bash", "/autograder/source/setup.sh"])
    print(setup.stdout[-2000:], setup.stderr[-3000:])
    if setup.returncode != 0:
        print(f"autograder_test: setup.sh failed ({setup.returncode})")
        return 1
    print(f"autograder_test: setup.sh took {time.monotonic() - began:.0f} s")

    ours = open(os.path.join(SUBMISSIONS, "student_correct.rs")).read()
    cases = {
        "skeleton": ({"server.rs": open(os.path.join(SUBMISSIONS, "skeleton_stub.rs")).read()}, 0, "waited too long"),
        "failing": ({"server.rs": open(os.path.join(SUBMISSIONS, "no_heartbeats.rs")).read()}, 0, "TEST 1"),
        "passing": ({"server.rs": ours}, 100, "PASS"),
        "lab tree": ({"dslabs-cpp/src/protocol/rust_raft/server.rs": ours, "dslabs-cpp/README.md": "x",
                      "notes/server.rs.bak": "x"}, 100, "PASS"),
        "missing": ({"main.rs": "fn main() {}"}, 0, "No server.rs in your submission"),
        "two files": ({"a/server.rs": ours, "b/server.rs": ours}, 0, "2 files named server.rs"),
    }
    problems = []
    for name, (files, expected_score, words) in cases.items():
        shutil.rmtree(os.path.join(root, "submission"), ignore_errors=True)
        shutil.rmtree(os.path.join(root, "results"), ignore_errors=True)
        os.makedirs(os.path.join(root, "results"))
        for path, text in files.items():
            full = os.path.join(root, "submission", path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(text)
        began = time.monotonic()
        run = in_sandbox(["/autograder/source/run_autograder"])
        seconds = time.monotonic() - began
        results_path = os.path.join(root, "results", "results.json")
        if not os.path.isfile(results_path):
            problems.append(f"{name}: no results.json (exit {run.returncode}): {run.stderr[-1500:]}")
            continue
        results = json.load(open(results_path))
        try:
            jsonschema.validate(results, schema)
            valid = "valid"
        except jsonschema.ValidationError as error:
            valid = f"INVALID: {error.message}"
            problems.append(f"{name}: results.json does not match Gradescope's fields: {error.message}")
        first = results["output"].splitlines()[:3]
        print(f"autograder_test: {name}: score {results['score']} of "
              f"{sum(t['max_score'] for t in results['tests']):g}, {len(results['tests'])} tests, {valid}, "
              f"{seconds:.0f} s; output: {' | '.join(first)}")
        if results["score"] != expected_score:
            problems.append(f"{name}: score {results['score']}, expected {expected_score}")
        if words not in results["output"] + " ".join(t["output"] + t["name"] for t in results["tests"]):
            problems.append(f"{name}: '{words}' not in the results")
        lab_tests = [t for t in results["tests"] if t["number"] != "monitor"]
        if [t["number"] for t in lab_tests] != [str(n) for n in range(1, 12)]:
            problems.append(f"{name}: lab tests {[t['number'] for t in lab_tests]}, expected 1-11")
        monitor = [t for t in results["tests"] if t["number"] == "monitor"]
        if any(t["max_score"] != 0 for t in monitor) or len(monitor) > 1:
            problems.append(f"{name}: the safety monitor's entry must carry no points: {monitor}")
    if problems:
        print("autograder_test:\n  " + "\n  ".join(problems))
        return 1
    print("autograder_test: every case as expected; every results.json valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
