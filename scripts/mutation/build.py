"""Build: one crate folder and cargo target folder per worker (a copy of
the grade's dependency cache), reused from mutant to mutant; each mutant's
server.rs is written there, built, and linked into a labtest of its own.

Mutants are built with the lab's release profile made quick to rebuild:
opt-level 1, no LTO, 16 codegen units, incremental (a mutant's build takes
1 - 3 s instead of 20 s, and its runs are as fast as the grade's). The
profile keeps what decides behaviour: no overflow checks (arithmetic wraps
as in the grade), no debug assertions, the same panic strategy."""
import os
import shutil
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.dirname(HERE)
sys.path.insert(0, SCRIPTS)
from grading import build as grade_build  # noqa: E402


class Workbench:
    """A worker's crate and target folders."""

    def __init__(self, root, index, cache, server_rs):
        self.folder = os.path.join(root, f"worker-{index}")
        self.crate = os.path.join(self.folder, "crate")
        self.target = os.path.join(self.folder, "target")
        if not os.path.isdir(self.target):
            shutil.copytree(cache, self.target, symlinks=True)
        if not os.path.isdir(self.crate):
            subprocess.run([os.path.join(SCRIPTS, "lab-crate"), self.crate, "--server", server_rs], check=True)

    def build(self, source_bytes, labtest_out, link_labtest):
        """Builds this source; (True, "") with labtest_out linked, or
        (False, the compiler's first error)."""
        with open(os.path.join(self.crate, "server.rs"), "wb") as f:
            f.write(source_bytes)
        env = dict(os.environ, CARGO_TARGET_DIR=self.target, CARGO_INCREMENTAL="1", CARGO_PROFILE_RELEASE_OPT_LEVEL="1",
                   CARGO_PROFILE_RELEASE_LTO="false", CARGO_PROFILE_RELEASE_CODEGEN_UNITS="16")
        run = subprocess.run(["cargo", "build", "--release", "--offline"], cwd=self.crate, env=env,
                             capture_output=True, text=True, timeout=900)
        if run.returncode != 0:
            return False, grade_build.first_compiler_error(run.stdout + run.stderr)
        link = subprocess.run([link_labtest, os.path.join(self.target, "release", "librust_raft.a"), labtest_out],
                              capture_output=True, text=True)
        if link.returncode != 0:
            return False, "labtest does not link: " + (link.stderr.strip().splitlines() or ["?"])[-1]
        return True, ""


class Workbenches:
    """A pool of workbenches, one per worker thread."""

    def __init__(self, root, count, cache, server_rs):
        self.free = [Workbench(root, i, cache, server_rs) for i in range(count)]
        self.lock = threading.Condition()

    def take(self):
        with self.lock:
            while not self.free:
                self.lock.wait()
            return self.free.pop()

    def give(self, bench):
        with self.lock:
            self.free.append(bench)
            self.lock.notify()


def prepare(build_dir, log):
    """The grade's stand-in objects, dependency cache and syntax-tree tools:
    (link-labtest, dependency cache, raft-mutate)."""
    from grading import rules
    link_labtest = grade_build.prepare_standin(build_dir, log)
    cache = grade_build.prepare_dependency_cache(build_dir, log)
    rules_tool = rules.build_tool(build_dir, log)
    return link_labtest, cache, os.path.join(os.path.dirname(rules_tool), "raft-mutate")
