"""Where things are."""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "config", "raft_lab_test.yml")
SCRIPTS = os.path.join(ROOT, "scripts")
# The folder collect puts a submission's server.rs in (taken from a git
# commit) under the submission's report folder; a build keeps it.
COLLECTED = "submitted"
NTESTS = 11
# The lab crate's files other than server.rs (the handout's rule 1).
GLUE_FILES = ["Cargo.toml", "build.rs", "lib.rs", "ffi.rs", "wrappers.rs", "raft_template.cc"]


class GradeError(Exception):
    """Bad input or an environment the grade cannot run in: one line, exit 2
    (or 1 for a failed preparation step), nothing graded."""

    def __init__(self, message, code=2):
        super().__init__(message)
        self.code = code
