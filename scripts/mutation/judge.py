"""Judge: a mutant's labtest run in the three modes of the score, each a
superset of the one before:

    suite     SEEDS plain virtual runs: killed when a run fails (a test
              fails, the process aborts, crashes or panics);
    monitor   the same runs: also killed when the safety monitor raises a
              finding in one;
    explore   plus SEEDS explored runs (labtest --explore): killed when one
              fails or raises a finding.

A run that hits the real suite's own test-11 defect (labtest names it:
labtest.md, defect 1) kills nothing, as the grade does not count such a
run either: the defect's abort is the suite's, not the mutant's.

A run that hangs (labtest's watchdog, or the wall budget: a mutant's runs
are 0.1 s each when it is healthy, so a few seconds each means it
thrashes) counts as timed out. Each mode's outcome: killed, timeout or
survived, with the evidence (the first failure or finding, and its seed).
Only seeds the file itself passes without a finding are used (baseline):
a seed it already fails cannot tell a mutant apart. Every run's trace
hash is kept: a survivor whose runs all have the
original's hashes never changed a run (the schedules never reached the
change, or it cannot change behaviour)."""
import re
import subprocess

WATCHDOG = re.compile(r"^labtest --virtual: no progress for", re.M)
DEADLOCK = re.compile(r"^labtest --virtual: the deadlock came in test (\d+)", re.M)
ABORTED = re.compile(r"^standin: (.*)$", re.M)
PANIC = re.compile(r"panicked at [^\n]*:\n(.*)")
HASH = re.compile(r"^virtual run seed (\d+): trace hash ([0-9a-f]{16}) \((passed|FAILED)", re.M)
ONE_FAILED = re.compile(r"^TEST \d+ Failed: (.*)$", re.M)
ONE_FINDING = re.compile(r"^labtest: finding: (.*?) \(test \d+, at", re.M)
# labtest's own line for a run that hit the suite's test-11 defect
# (scripts/grading/run.py reads it too).
DEFECT = "labtest: test 11's final reconnect hits the real suite's own defect"


class Outcome:
    """What some runs of a mutant showed."""

    def __init__(self, failure=None, finding=None, hung=None, hashes=None):
        self.failure, self.finding, self.hung = failure, finding, hung
        self.hashes = hashes or {}

    def merge(self, later):
        return Outcome(self.failure or later.failure, self.finding or later.finding, self.hung or later.hung,
                       {**self.hashes, **later.hashes})


def run_seeds(labtest, config, seeds, explore, wall, stop_at_finding=True):
    """The seeds (a list), one labtest process each, as the grade runs them
    (in one process, a run can depend on what ran before it: a crate's
    `static`s, std's per-thread HashMap keys), until one fails or hangs,
    or (stop_at_finding) raises a finding."""
    outcome = Outcome()
    for seed in seeds:
        outcome = outcome.merge(run_process(labtest, config, seed, explore, wall))
        if outcome.failure or outcome.hung or (stop_at_finding and outcome.finding):
            break
    return outcome


def baseline(labtest, config, seeds, explore, wall):
    """The file itself on `seeds`, one process each: ({seed: hash} of its
    runs, the seeds it passes without a finding). Only those can tell a
    mutant apart: a seed the file already fails kills nothing."""
    hashes, passing = {}, []
    for seed in seeds:
        text, _ = labtest_output(labtest, config, seed, explore, wall)
        run = HASH.search(text or "")
        if run:
            hashes[seed] = run.group(2)
        if run and run.group(3) == "passed" and not ONE_FINDING.search(text):
            passing.append(seed)
    return hashes, passing


def labtest_argv(labtest, config, seed, explore):
    """A labtest process for one virtual seed."""
    argv = [labtest, "-f", config, "--virtual", "--seed", str(seed), "--watchdog", "5"]
    return argv + ["--explore"] if explore else argv


def labtest_output(labtest, config, seed, explore, wall):
    """(output, exit status) of one run, or (None, None) past `wall` seconds."""
    try:
        done = subprocess.run(labtest_argv(labtest, config, seed, explore), capture_output=True, text=True, timeout=wall)
    except subprocess.TimeoutExpired:
        return None, None
    return done.stdout + done.stderr, done.returncode


def run_process(labtest, config, seed, explore, wall):
    """One labtest process for one seed: what its run showed."""
    text, code = labtest_output(labtest, config, seed, explore, wall)
    if text is None:
        return Outcome(hung=f"no end within {wall:.0f} s")
    run = HASH.search(text)
    hashes = {seed: run.group(2)} if run else {}
    found = ONE_FINDING.search(text)
    finding = found and f"{found.group(1)} (seed {seed})"
    if WATCHDOG.search(text):
        return Outcome(None, finding, "a run made no progress for 5 s (watchdog)", hashes)
    defect = DEFECT in text
    if run and (run.group(3) == "passed" or defect):
        return Outcome(None, finding, None, hashes)  # a defect run is the suite's failure, not the mutant's
    failed = ONE_FAILED.search(text)
    if failed:
        return Outcome(f"{failed.group(1).strip()} (seed {seed})", finding, None, hashes)
    deadlock = DEADLOCK.search(text)
    if deadlock:
        return Outcome(f"deadlock in test {deadlock.group(1)} (seed {seed})", finding, None, hashes)
    aborted = ABORTED.search(text)
    if aborted:
        return Outcome(f"aborted: {aborted.group(1).strip()} (seed {seed})", finding, None, hashes)
    panic = PANIC.search(text)
    if panic:
        return Outcome(f"panic: {panic.group(1).strip()} (seed {seed})", finding, None, hashes)
    return Outcome(f"labtest ended with status {code} before its verdict (seed {seed})", finding, None, hashes)


def judge(labtest, config, plain_seeds, explore_seeds, wall):
    """(modes, hashes): {mode: {"outcome": killed|timeout|survived, "by":
    evidence}} for the three modes, and {"plain": {seed: hash}, "explore":
    {...}} of the runs made, on the given seeds (those the file itself
    passes). The explored seeds run only when the first two modes leave the
    mutant alive."""
    plain = run_seeds(labtest, config, plain_seeds, False, wall)
    if not plain.failure and plain.finding and not plain.hung:
        # The monitor killed it: whether the suite alone does needs the
        # remaining plain seeds.
        rest = [seed for seed in plain_seeds if seed not in plain.hashes]
        plain = plain.merge(run_seeds(labtest, config, rest, False, wall, stop_at_finding=False))
    hashes = {"plain": plain.hashes, "explore": {}}
    if plain.hung:
        outcome = {"outcome": "timeout", "by": plain.hung}
        return {"suite": outcome, "monitor": outcome, "explore": outcome}, hashes
    modes = {"suite": {"outcome": "killed", "by": plain.failure} if plain.failure else {"outcome": "survived", "by": None}}
    if plain.failure or plain.finding:
        modes["monitor"] = {"outcome": "killed", "by": plain.failure or f"finding: {plain.finding}"}
        modes["explore"] = modes["monitor"]
        return modes, hashes
    modes["monitor"] = {"outcome": "survived", "by": None}
    explored = run_seeds(labtest, config, explore_seeds, True, wall)
    hashes["explore"] = explored.hashes
    if explored.hung:
        modes["explore"] = {"outcome": "timeout", "by": f"explored: {explored.hung}"}
    elif explored.failure or explored.finding:
        modes["explore"] = {"outcome": "killed", "by": f"explored: {explored.failure or 'finding: ' + explored.finding}"}
    else:
        modes["explore"] = {"outcome": "survived", "by": None}
    return modes, hashes


def unchanged(hashes, original):
    """Whether every run of a survivor had the original's trace hash."""
    for kind in ("plain", "explore"):
        theirs, ours = hashes[kind], original[kind]
        if (not theirs and ours) or any(ours.get(seed) != h for seed, h in theirs.items()):
            return False
    return True
