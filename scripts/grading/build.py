"""Build: the stand-in's labtest objects and a cache of the lab's
dependencies once, then each submission's crate (the twin of the lab's
glue plus its server.rs) and a labtest linked against it."""
import os
import re
import shutil
import subprocess
import time

from .paths import COLLECTED, GradeError, ROOT, SCRIPTS


def prepare_standin(build_dir, log):
    """Configures and builds the stand-in's labtest objects; returns the
    path of link-labtest (links labtest against one crate's archive)."""
    if not os.path.isfile(os.path.join(build_dir, "CMakeCache.txt")):
        run = subprocess.run(["cmake", "-S", ROOT, "-B", build_dir, "-DBUILD_RAFT_LAB_TESTS=ON", "-DUSE_RUST_RAFT=ON"],
                             capture_output=True, text=True)
        log.write(run.stdout + run.stderr)
        if run.returncode != 0:
            raise GradeError(f"cmake failed for {build_dir}:\n{run.stderr[-2000:]}", 1)
    run = subprocess.run(["cmake", "--build", build_dir, "--target", "labtest_parts", "-j", str(os.cpu_count() or 2)],
                         capture_output=True, text=True)
    log.write(run.stdout + run.stderr)
    if run.returncode != 0:
        raise GradeError(f"building the stand-in failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}", 1)
    return os.path.join(build_dir, "link-labtest")


def prepare_dependency_cache(build_dir, log):
    """A cargo target folder with the lab's dependencies built once; each
    submission's own target folder starts as a copy of it (only the crate
    itself is then compiled: seconds, not a minute)."""
    cache = os.path.join(build_dir, "grade-dependency-cache")
    marker = os.path.join(cache, ".complete")
    lock = os.path.join(ROOT, "Cargo.lock")
    if os.path.isfile(marker) and open(marker).read() == open(lock).read():
        return cache
    shutil.rmtree(cache, ignore_errors=True)
    crate = os.path.join(build_dir, "grade-dependency-crate")
    subprocess.run([os.path.join(SCRIPTS, "lab-crate"), crate,
                    "--server", os.path.join(ROOT, "tests", "submissions", "skeleton_stub.rs")], check=True)
    run = subprocess.run(["cargo", "build", "--release"], cwd=crate, env=dict(os.environ, CARGO_TARGET_DIR=cache),
                         capture_output=True, text=True)
    log.write(run.stdout + run.stderr)
    if run.returncode != 0:
        raise GradeError(f"building the lab's dependencies failed:\n{run.stderr[-2000:]}", 1)
    with open(marker, "w") as f:
        f.write(open(lock).read())
    return cache


def first_compiler_error(text):
    """The compiler's first error, with its location: a line or two."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("error"):
            where = next((l.strip() for l in lines[i + 1:i + 4] if l.strip().startswith("-->")), "")
            return f"{line.strip()} {where}".strip()
    return lines[-1].strip() if lines else "cargo build failed"


def clear_folder(folder):
    """Empties a submission's folder of an earlier grade's files, keeping
    what collect put there for this one."""
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name == COLLECTED:
            continue
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)


def build(sub, out, cache, link_labtest, sandbox):
    """Builds one submission in its folder under `out`; sets sub.built and
    sub.labtest, or sub.build_error. The build of student code (cargo runs
    its build scripts and macros) happens in the sandbox."""
    folder = os.path.join(out, sub.name)
    crate, target = os.path.join(folder, "crate"), os.path.join(folder, "target")
    clear_folder(folder)
    shutil.copytree(cache, target, symlinks=True)
    for stale in ("release/librust_raft.a", "release/librust_raft.so", "release/librust_raft.d"):
        try:
            os.remove(os.path.join(target, stale))
        except FileNotFoundError:
            pass
    deps = os.path.join(target, "release", "deps")
    for name in os.listdir(deps):
        if "rust_raft" in name:
            os.remove(os.path.join(deps, name))
    subprocess.run([os.path.join(SCRIPTS, "lab-crate"), crate, "--server", sub.server_rs], check=True)
    sandbox.prepare_folder(folder)
    started = time.monotonic()
    try:
        run = sandbox.run(["cargo", "build", "--release", "--offline"], cwd=crate, writable=[folder],
                          env={"CARGO_TARGET_DIR": target}, timeout=900, purpose="build")
        text, ok = run.stdout + run.stderr, run.returncode == 0
    except subprocess.TimeoutExpired:
        text, ok = "cargo build took longer than 900 s", False
    with open(os.path.join(folder, "build.log"), "w") as f:
        f.write(text)
    sub.build_seconds = time.monotonic() - started
    if not ok:
        sub.build_error = first_compiler_error(text)
        return
    sub.warnings = len(re.findall(r"^warning: ", text, re.M))
    labtest = os.path.join(folder, "labtest")
    link = subprocess.run([link_labtest, os.path.join(target, "release", "librust_raft.a"), labtest],
                          capture_output=True, text=True)
    if link.returncode != 0:
        with open(os.path.join(folder, "build.log"), "a") as f:
            f.write("\n--- link ---\n" + link.stdout + link.stderr)
        undefined = re.search(r"undefined reference to `([^']+)'", link.stderr)
        sub.build_error = ("links only with imports the lab does not provide: " + undefined.group(1)) if undefined \
            else "labtest does not link: " + (link.stderr.strip().splitlines() or ["?"])[-1]
        return
    shutil.rmtree(target, ignore_errors=True)  # keep the folder small; the archive is linked in
    sub.labtest, sub.built = labtest, True
