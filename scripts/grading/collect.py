"""Collect: the submissions to grade, each a server.rs and where it came
from (a file, a lab tree, a crate folder, or a commit of a git repository)."""
import os
import re
import threading

from .paths import GradeError


class Submission:
    def __init__(self, name, server_rs, folder=None):
        self.name = name
        self.server_rs = server_rs   # the server.rs to grade (a path)
        self.folder = folder         # the crate folder it came in, if any
        self.flags = []              # files other than server.rs (the handout's rule 1)
        self.origin = None           # for git submissions: {"repo", "commit", "date", "message"}
        self.no_submission = None    # why there is nothing to grade (a git repo without a submit commit)
        self.built = False
        self.build_error = None
        self.build_seconds = 0.0
        self.warnings = None
        self.labtest = None
        self.runs = []
        self.determinism = None
        self.timeline = None
        self.lock = threading.Lock()
        self.stopped_early = None
        self.rules = None            # findings of the rules check (rules.py)
        self.syscalls = None         # what one watched run did (syscalls.py)


def unique_name(base, names):
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", base) or "submission"
    candidate, k = name, 2
    while candidate in names:
        candidate = f"{name}_{k}"
        k += 1
    names.add(candidate)
    return candidate


def from_paths(paths, lab, names=None):
    """Submissions given as server.rs files, lab trees or crate folders."""
    subs, names = [], names if names is not None else set()
    for path in paths:
        if os.path.isdir(path):
            crate = os.path.join(path, "src", "protocol", "rust_raft")
            if not os.path.isdir(crate):
                crate = path
            server = os.path.join(crate, "server.rs")
            if not os.path.isfile(server):
                raise GradeError(f"'{path}' is neither a lab tree (src/protocol/rust_raft/server.rs) "
                                 "nor a crate folder with a server.rs")
            base = os.path.basename(os.path.abspath(path))
        elif os.path.isfile(path):
            server, crate = path, None
            base = os.path.splitext(os.path.basename(path))[0]
            if base == "server":  # a.../server.rs: name it after its folder
                base = os.path.basename(os.path.dirname(os.path.abspath(path))) or "server"
        else:
            raise GradeError(f"no such file or directory: {path}")
        sub = Submission(unique_name(base, names), os.path.abspath(server), crate)
        if crate:
            sub.flags = compare_with_lab(crate, lab)
        subs.append(sub)
    return subs


def compare_with_lab(crate, lab):
    """Which files of a submitted crate folder differ from the lab's own
    (the handout allows server.rs only)."""
    if lab is None:
        return ["other files not compared (give --lab PRISTINE_LAB_TREE to compare them with the lab's)"]
    reference = os.path.join(lab, "src", "protocol", "rust_raft")
    if not os.path.isdir(reference):
        reference = lab
    flags = []
    for name in sorted(set(os.listdir(crate)) | set(os.listdir(reference))):
        if name in ("server.rs", "target", "Cargo.lock") or name.startswith("."):
            continue
        mine, theirs = os.path.join(crate, name), os.path.join(reference, name)
        if not os.path.exists(theirs):
            flags.append(f"{name}: not in the lab's tree (added)")
        elif not os.path.exists(mine):
            flags.append(f"{name}: missing (the lab has it)")
        elif os.path.isfile(mine) and open(mine, "rb").read() != open(theirs, "rb").read():
            flags.append(f"{name}: differs from the lab's")
    return flags
