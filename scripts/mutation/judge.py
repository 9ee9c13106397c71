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

SUMMARY = re.compile(r"^labtest --virtual: (\d+) of (\d+) runs passed", re.M)
FIRST_FAILURE = re.compile(r"^    seed (\d+): (.*)$", re.M)
FINDING_RUN = re.compile(r"^  seed (\d+): \d+ finding\(s\), first: (.*)$", re.M)
WATCHDOG = re.compile(r"^labtest --virtual: no progress for", re.M)
DEADLOCK = re.compile(r"^labtest --virtual: the deadlock came in test (\d+)", re.M)
ABORTED = re.compile(r"^standin: (.*)$", re.M)
PANIC = re.compile(r"panicked at [^\n]*:\n(.*)")
HASH = re.compile(r"^virtual run seed (\d+): trace hash ([0-9a-f]{16}) \((passed|FAILED)", re.M)
# A process of one seed prints no summary: its run's own lines.
ONE_FAILED = re.compile(r"^TEST \d+ Failed: (.*)$", re.M)
ONE_FINDING = re.compile(r"^labtest: finding: (.*?) \(test \d+, at", re.M)
# labtest's own line for a run that hit the suite's test-11 defect; it comes
# before that run's trace hash line (scripts/grading/run.py reads it too).
DEFECT = "labtest: test 11's final reconnect hits the real suite's own defect"


class Outcome:
    """What some runs of a mutant showed."""

    def __init__(self, failure=None, finding=None, hung=None, hashes=None):
        self.failure, self.finding, self.hung = failure, finding, hung
        self.hashes = hashes or {}

    def merge(self, later):
        return Outcome(self.failure or later.failure, self.finding or later.finding, self.hung or later.hung,
                       {**self.hashes, **later.hashes})


def consecutive(seeds):
    """[(first, count)]: the sorted seeds as runs of consecutive ones."""
    runs = []
    for seed in sorted(seeds):
        if runs and runs[-1][0] + runs[-1][1] == seed:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((seed, 1))
    return runs


def run_seeds(labtest, config, seeds, explore, wall):
    """The seeds (a list): the first alone (most mutants that fail, fail
    there: no need to run the others), then the rest, one labtest process
    per run of consecutive seeds."""
    if not seeds:
        return Outcome()
    first = run_process(labtest, config, 1, seeds[0], explore, wall / 4)
    if first.failure or first.finding or first.hung or len(seeds) == 1:
        return first
    outcome = first
    for start, count in consecutive(seeds[1:]):
        outcome = outcome.merge(run_process(labtest, config, count, start, explore, wall))
        if outcome.failure or outcome.finding or outcome.hung:
            break
    return outcome


def baseline(labtest, config, seeds, explore, wall):
    """The file itself on `seeds`: ({seed: hash} of its runs, the seeds it
    passes without a finding). Only those can tell a mutant apart: a seed
    the file already fails kills nothing."""
    argv = labtest_argv(labtest, config, len(seeds), seeds[0], explore)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=wall * 4)
        text = done.stdout + done.stderr
    except subprocess.TimeoutExpired as hung:
        text = (hung.stdout or b"").decode(errors="replace") if isinstance(hung.stdout, bytes) else (hung.stdout or "")
    verdicts = {int(seed): (h, verdict) for seed, h, verdict in HASH.findall(text)}
    with_findings = {int(seed) for seed, _ in FINDING_RUN.findall(text)}
    if len(seeds) == 1 and ONE_FINDING.search(text):
        with_findings.add(seeds[0])
    passing = [seed for seed in seeds if verdicts.get(seed, ("", ""))[1] == "passed" and seed not in with_findings]
    return {seed: h for seed, (h, _) in verdicts.items()}, passing


def labtest_argv(labtest, config, seeds, first_seed, explore):
    """A labtest process for `seeds` consecutive virtual seeds from `first_seed`."""
    argv = [labtest, "-f", config, "--virtual", "--seed", str(first_seed), "-r", str(seeds), "--watchdog", "5"]
    return argv + ["--explore"] if explore else argv


def defect_seeds(text):
    """The seeds whose run hit the suite's own test-11 defect: each
    defect line belongs to the next run's trace hash line."""
    seeds, pending = set(), False
    for line in text.splitlines():
        if line.startswith(DEFECT):
            pending = True
        elif pending:
            run = HASH.match(line)
            if run:
                seeds.add(int(run.group(1)))
                pending = False
    return seeds


def run_process(labtest, config, seeds, first_seed, explore, wall):
    """One labtest process for `seeds` consecutive seeds."""
    argv = labtest_argv(labtest, config, seeds, first_seed, explore)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=wall)
        text, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired:
        return Outcome(hung=f"no end within {wall:.0f} s")
    hashes = {int(seed): h for seed, h, _ in HASH.findall(text)}
    if seeds == 1:
        one = ONE_FINDING.search(text)
        finding = one and f"{one.group(1)} (seed {first_seed})"
    else:
        found = FINDING_RUN.search(text)
        finding = found and f"{found.group(2)} (seed {found.group(1)})"
    if WATCHDOG.search(text):
        return Outcome(None, finding, "a run made no progress for 5 s (watchdog)", hashes)
    verdicts = HASH.findall(text)
    defects = defect_seeds(text)
    if seeds == 1 and verdicts and (verdicts[0][2] == "passed" or int(verdicts[0][0]) in defects):
        return Outcome(None, finding, None, hashes)
    if seeds == 1 and ONE_FAILED.search(text):
        return Outcome(f"{ONE_FAILED.search(text).group(1).strip()} (seed {first_seed})", finding, None, hashes)
    summary = SUMMARY.search(text)
    if summary and int(summary.group(2)) - int(summary.group(1)) <= len(defects):
        return Outcome(None, finding, None, hashes)  # every run failing was a defect run
    first = next((f for f in FIRST_FAILURE.finditer(text) if int(f.group(1)) not in defects), None)
    if first:
        return Outcome(f"{first.group(2).strip()} (seed {first.group(1)})", finding, None, hashes)
    deadlock = DEADLOCK.search(text)
    if deadlock:
        return Outcome(f"deadlock in test {deadlock.group(1)}", finding, None, hashes)
    # (The abort a defect run ends with is the suite's, not a kill.)
    aborted = next((a for a in ABORTED.finditer(text)
                    if not (defects and "RaftTestConfig::Reconnect" in a.group(1) and "is not disconnected" in a.group(1))),
                   None)
    if aborted:
        return Outcome(f"aborted: {aborted.group(1).strip()}", finding, None, hashes)
    panic = PANIC.search(text)
    if panic:
        return Outcome(f"panic: {panic.group(1).strip()}", finding, None, hashes)
    return Outcome(f"labtest ended with status {code} before its summary", finding, None, hashes)


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
        for start, count in consecutive(plain_seeds):
            plain = plain.merge(run_process(labtest, config, count, start, False, wall))
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
