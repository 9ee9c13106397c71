"""Collect: the submissions to grade, each a server.rs and where it came
from (a file, a lab tree, a crate folder, or a commit of a git repository)."""
import os
import re
import subprocess
import threading

from .paths import COLLECTED, GradeError


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
        self.explore_stopped = False  # explored runs stopped after 3 that hung or crashed
        self.rules = None            # findings of the rules check (rules.py)
        self.syscalls = None         # what one watched run did (syscalls.py)
        self.rule1 = []              # files other than server.rs changed (git submissions)
        self.index = 0               # its place in the grade (the table's order, also when merging shards)
        self.not_graded = None       # why a merge has no result for it (a shard that did not complete)


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
        if crate and lab is None:
            sub.flags = ["other files not compared (give --lab PRISTINE_LAB_TREE to compare them with the lab's)"]
        elif crate:
            sub.rule1 = compare_with_lab(crate, lab)
        subs.append(sub)
    return subs


def compare_with_lab(crate, lab):
    """Which files of a submitted crate folder differ from the lab's own
    (the handout allows server.rs only)."""
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


# ----- Submissions from git ------------------------------------------------------------------

BRANCH = "lab-raft-solution"
SERVER_PATH = "src/protocol/rust_raft/server.rs"
DEFAULT_BASE = "origin/raft-lab-26"


# A student's repository is not trusted: no hooks, no fsmonitor, no external
# diff drivers; a clone owned by another user is read anyway.
GIT_SAFE = ["-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "-c", "diff.external=",
            "-c", "safe.directory=*", "-c", "core.pager=cat"]


def git(repo, *args, check=True):
    run = subprocess.run(["git", *GIT_SAFE, "-C", repo, *args], capture_output=True, text=True,
                         env=dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1"))
    if check and run.returncode != 0:
        raise GradeError(f"git {' '.join(args)} failed in {repo}: {run.stderr.strip()}")
    return run


def read_git_list(path):
    """`name path` per line (# comments and blank lines skipped)."""
    if not os.path.isfile(path):
        raise GradeError(f"--git-list '{path}' is not a file")
    entries = []
    with open(path) as f:
        for number, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split(None, 1)
            if len(parts) != 2:
                raise GradeError(f"{path}:{number}: expected 'NAME PATH', got {raw.strip()!r}")
            entries.append((parts[0], os.path.expanduser(parts[1])))
    return entries


def parse_deadline(text):
    """A deadline as git reads dates ("2026-12-01 23:59 -0500", ISO 8601, ...),
    as seconds since the epoch."""
    if text is None:
        return None
    import datetime
    for form in ("%Y-%m-%d %H:%M %z", "%Y-%m-%d %H:%M:%S %z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"):
        try:
            return datetime.datetime.strptime(text.strip(), form).timestamp()
        except ValueError:
            pass
    raise GradeError(f"--deadline '{text}': expected a date with its time zone, e.g. '2026-12-01 23:59 -0500'")


def branch_ref(repo):
    """The submission branch in a clone or a bare repository, or None."""
    for ref in (f"refs/heads/{BRANCH}", f"refs/remotes/origin/{BRANCH}"):
        if git(repo, "rev-parse", "--verify", "--quiet", ref, check=False).returncode == 0:
            return ref
    return None


def submit_commit(repo, ref, deadline):
    """The last commit on `ref` whose message starts with "submit" (the
    handout's rule, lower case), not after `deadline` (committer date):
    (hash, iso date, subject) or None."""
    log = git(repo, "log", "--format=%H%x1f%ct%x1f%cI%x1f%B%x1e", ref).stdout
    for record in log.split("\x1e"):
        fields = record.strip("\n").split("\x1f")
        if len(fields) != 4:
            continue
        commit, seconds, date, message = fields
        if not message.startswith("submit"):
            continue
        if deadline is not None and int(seconds) > deadline:
            continue
        return commit, date, message.strip().splitlines()[0] if message.strip() else ""
    return None


def lab_base(repo, commit, base):
    """The commit the lab was handed out at: --base, else the merge-base
    with origin/raft-lab-26, else the repository's first commit."""
    if base:
        run = git(repo, "rev-parse", "--verify", "--quiet", base + "^{commit}", check=False)
        if run.returncode != 0:
            raise GradeError(f"--base '{base}' is not a commit in {repo}")
        return run.stdout.strip(), base
    if git(repo, "rev-parse", "--verify", "--quiet", DEFAULT_BASE, check=False).returncode == 0:
        return git(repo, "merge-base", DEFAULT_BASE, commit).stdout.strip(), f"merge-base with {DEFAULT_BASE}"
    roots = git(repo, "rev-list", "--max-parents=0", commit).stdout.split()
    return roots[-1], "the first commit"


def changed_files(repo, base, commit):
    """Files other than server.rs that differ between the lab's base and the
    submitted commit (rule 1)."""
    out = git(repo, "diff", "--name-status", "--no-renames", "--no-ext-diff", "--no-textconv", base, commit).stdout
    words = {"A": "created", "D": "deleted", "M": "changed", "T": "changed (type)"}
    flags = []
    for line in out.splitlines():
        status, _, path = line.partition("\t")
        if path and path != SERVER_PATH:
            flags.append(f"{path}: {words.get(status[:1], status)} (only {SERVER_PATH} may change)")
    return flags


def from_git(repos, git_list, deadline, base, out, names=None):
    """One submission per repository: its server.rs at its last submit
    commit, or a "no submission" row."""
    entries = [(None, path) for path in repos] + (read_git_list(git_list) if git_list else [])
    limit = parse_deadline(deadline)
    subs, names = [], names if names is not None else set()
    for given, path in entries:
        if not os.path.isdir(path):
            raise GradeError(f"no such repository: {path}")
        if git(path, "rev-parse", "--git-dir", check=False).returncode != 0:
            raise GradeError(f"'{path}' is not a git repository")
        base_name = given or re.sub(r"\.git$", "", os.path.basename(os.path.abspath(path)))
        name = unique_name(base_name, names)
        sub = Submission(name, None)
        ref = branch_ref(path)
        found = submit_commit(path, ref, limit) if ref else None
        if found is None:
            why = (f"no branch {BRANCH}" if ref is None else
                   f"no commit on {BRANCH} whose message starts with 'submit'" +
                   (f" before {deadline}" if deadline else ""))
            sub.no_submission = why
            sub.origin = {"repo": os.path.abspath(path), "branch": BRANCH, "commit": "", "date": "", "message": ""}
            subs.append(sub)
            continue
        commit, date, message = found
        sub.origin = {"repo": os.path.abspath(path), "branch": BRANCH, "commit": commit, "date": date, "message": message}
        shown = git(path, "show", f"{commit}:{SERVER_PATH}", check=False)
        if shown.returncode != 0:
            sub.no_submission = f"commit {commit[:12]} has no {SERVER_PATH}"
            subs.append(sub)
            continue
        folder = os.path.join(out, name, COLLECTED)
        os.makedirs(folder, exist_ok=True)
        sub.server_rs = os.path.join(folder, "server.rs")
        with open(sub.server_rs, "w") as f:
            f.write(shown.stdout)
        base_commit, how = lab_base(path, commit, base)
        sub.origin["base"] = f"{base_commit[:12]} ({how})"
        sub.rule1 = changed_files(path, base_commit, commit)
        subs.append(sub)
    return subs
