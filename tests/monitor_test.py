#!/usr/bin/env python3
"""ctest labtest.monitor_and_explore: the safety monitor, explored
schedules and scripts/shrink, end to end.

    tests/monitor_test.py BUILD_DIR LABTEST

LABTEST is this project's labtest (our crate). Checked:
- our crate: 200 plain and 50 explored seeds pass with no finding;
- the monitor cannot change a run: seed 1's trace hash is the same with
  --no-monitor;
- an explored run replays exactly (trace hash and the choices applied),
  --explore-only narrows it, bad lists and --explore without --virtual are
  refused (exit 2);
- a mutant of our crate that grants every vote request (`can_vote` always
  true in RaftCore::handle_request_vote), built here: it passes every test,
  and the monitor finds a server voting twice in a term in a plain seed and
  in an explored one; scripts/shrink narrows the explored one to a few
  choices whose replay still shows it;
- Figure 2's first receiver rule, on two mutants of the student-style
  tests/submissions/student_correct.rs built here: one that accepts an
  AppendEntries of an older term (found in seed 1: an old leader rejoins in
  test 6), and one that grants a vote to a RequestVote of an older term
  (found in explored seed 103, where a candidate's request arrives after the
  voter moved to a newer term without voting);
- Figure 2's "if votes received from majority of servers: become leader", on
  a third: one that leads when its election's wait ends without a
  yes-quorum (found in seed 1, test 2: a leader whose term only one other
  server voted in);
- Figure 2's "if RPC request or response contains term T > currentTerm:
  set currentTerm = T", on a fourth: a leader that never looks at the term
  of an AppendEntries reply (found in seed 1, test 6: the old leader
  rejoins, reads its follower's newer term and keeps its own).
"""
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "config", "raft_lab_test.yml")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from mutation import build  # noqa: E402

VOTE_RULE = "let can_vote = self.voted_for.is_none() || self.voted_for == Some(request.candidate_id);"
STUDENT = os.path.join(ROOT, "tests", "submissions", "student_correct.rs")
# Receiver rule 1 in student_correct.rs: the term test of its vote, and its
# AppendEntries handler's refusal of an older term.
STUDENT_VOTE_TERM = "let granted = can_term == self.current_term\n"
STUDENT_APPEND_TERM = """        if leader_current_term < self.current_term {
            reply.reject(self.current_term, self.last_index());
            return;
        }
"""
# Its leader's look at an AppendEntries reply's term (Figure 2, All Servers).
STUDENT_REPLY_TERM = """        if term > self.current_term {
            self.step_down(term);
            self.reset_timer();
            return;
        }
"""
# Its election's end: it leads only with the quorum event's yes.
STUDENT_WIN = "if votes.yes_count() == 0 || self.current_term != term || self.is_leader {"
problems = []


def labtest(binary, *args):
    done = subprocess.run([binary, "-f", CONFIG, *args], capture_output=True, text=True, timeout=900)
    return done.returncode, done.stdout + done.stderr


def expect(condition, what):
    print(f"monitor_test: {'ok' if condition else 'FAILED'}: {what}")
    if not condition:
        problems.append(what)


def summary(text):
    passed = re.search(r"^labtest --virtual: (\d+) of (\d+) runs passed", text, re.M)
    findings = re.search(r"^findings: (\d+) of (\d+) runs raised findings", text, re.M)
    return (passed and (int(passed.group(1)), int(passed.group(2))),
            findings and int(findings.group(1)))


def trace(text):
    found = re.search(r"trace hash ([0-9a-f]{16})", text)
    return found and found.group(1)


def ours(binary):
    _, text = labtest(binary, "--virtual", "--seed", "3000", "-r", "200")
    expect(summary(text) == ((200, 200), 0), f"our crate, 200 plain seeds: all pass, no finding ({summary(text)})")
    _, text = labtest(binary, "--virtual", "--seed", "3000", "-r", "50", "--explore")
    expect(summary(text) == ((50, 50), 0), f"our crate, 50 explored seeds: all pass, no finding ({summary(text)})")
    _, with_monitor = labtest(binary, "--virtual", "--seed", "1")
    _, without = labtest(binary, "--virtual", "--seed", "1", "--no-monitor")
    expect(trace(with_monitor) is not None and trace(with_monitor) == trace(without),
           f"the monitor changes nothing: seed 1's trace hash {trace(with_monitor)} with it, {trace(without)} without")
    runs = [labtest(binary, "--virtual", "--seed", "7", "-t", "1-3", "--explore")[1] for _ in range(2)]
    applied = [re.search(r"^labtest: explore: .*$", t, re.M) for t in runs]
    expect(all(applied) and trace(runs[0]) == trace(runs[1]) and applied[0].group(0) == applied[1].group(0),
           "an explored seed replays exactly (trace hash and choices applied)")
    _, none = labtest(binary, "--virtual", "--seed", "7", "-t", "1-3", "--explore", "--explore-only", "none")
    expect(re.search(r"^labtest: explore: 0 of \d+ choices applied: none$", none, re.M) is not None and
           trace(none) != trace(runs[0]), "--explore-only none applies no choice (another schedule)")
    code, text = labtest(binary, "--virtual", "--explore", "--explore-only", "q7")
    expect(code == 2 and "is not a choice" in text, "a bad --explore-only list is refused with exit 2")
    code, text = labtest(binary, "--explore")
    expect(code == 2 and "--explore needs --virtual" in text, "--explore without --virtual is refused with exit 2")


class Mutants:
    """Builds labtests of mutants of a server.rs, in one work folder."""

    def __init__(self, build_dir):
        self.work = tempfile.mkdtemp(prefix="monitor-test-")
        with open(os.path.join(self.work, "prepare.log"), "w") as log:
            self.link_labtest, self.cache, _ = build.prepare(build_dir, log)
        self.bench = None  # one crate and target folder, rebuilt per mutant

    def build(self, source, rule, replacement, name):
        """The labtest of `source` with its one `rule` replaced, or None."""
        if source.count(rule) != 1:
            expect(False, f"{name}: the rule it changes is where this test expects it")
            return None
        mutant = os.path.join(self.work, name + ".rs")
        with open(mutant, "w") as f:
            f.write(source.replace(rule, replacement))
        if self.bench is None:
            self.bench = build.Workbench(self.work, 0, self.cache, mutant)
        binary = os.path.join(self.work, "labtest-" + name)
        ok, error = self.bench.build(open(mutant, "rb").read(), binary, self.link_labtest)
        expect(ok, f"the {name} mutant builds ({error})")
        return binary if ok else None


def vote_everyone(mutants):
    bundle = os.path.join(mutants.work, "rust_raft.rs")
    subprocess.run([os.path.join(ROOT, "scripts", "bundle-server"), "-o", bundle], check=True)
    binary = mutants.build(open(bundle).read(), VOTE_RULE, "let can_vote = true;", "vote-everyone")
    if binary is None:
        return
    # Seeds 980-989 include 985, where a plain run shows it in test 2.
    _, text = labtest(binary, "--virtual", "--seed", "980", "-r", "10")
    passed, findings = summary(text)
    expect(passed == (10, 10) and findings and "one vote per term" in text,
           f"vote-everyone: every run passes the suite ({passed}), the monitor finds a second vote ({findings} runs)")
    _, plain = labtest(binary, "--virtual", "--seed", "6", "-t", "1-2")
    _, explored = labtest(binary, "--virtual", "--seed", "6", "-t", "1-2", "--explore")
    expect("finding: one vote per term" not in plain and "finding: one vote per term" in explored,
           "vote-everyone, seed 6: no finding in the plain schedule, one in the explored one")
    shrink = subprocess.run([os.path.join(ROOT, "scripts", "shrink"), "--labtest", binary, "--seed", "6", "-t", "1-2",
                             "--finding", "one vote per term"], capture_output=True, text=True, timeout=1800)
    print(shrink.stdout + shrink.stderr)
    shrunk = re.search(r"^shrink: (\d+) -> (\d+) choice\(s\) in \d+ runs: (\S+)$", shrink.stdout, re.M)
    expect(shrink.returncode == 0 and shrunk is not None and 0 < int(shrunk.group(2)) <= 10 < int(shrunk.group(1)),
           "scripts/shrink narrows the explored seed to at most 10 choices")
    if shrunk:
        _, replay = labtest(binary, "--virtual", "--seed", "6", "-t", "1-2", "--explore", "--explore-only", shrunk.group(3))
        expect("finding: one vote per term" in replay, f"the shrunk replay ({shrunk.group(3)}) still shows the second vote")


# The student-style mutants of student_correct.rs: (name, the rule it
# changes, what replaces it, the labtest arguments of the run that shows it,
# the finding expected there, what it is).
FINDING = "finding: "
STUDENT_MUTANTS = [
    ("stale-append", STUDENT_APPEND_TERM, "", ["--seed", "1", "-t", "1-6"],
     FINDING + r"reply false if term < currentTerm: S\d accepted an AppendEntries of term \d+ while its own term was \d+",
     "a student's server that accepts an older term's AppendEntries: found in seed 1"),
    ("stale-vote", STUDENT_VOTE_TERM, "let granted = true\n", ["--seed", "103", "-t", "1-11", "--explore"],
     re.escape(FINDING + "reply false if term < currentTerm: S1 granted its vote to S2's RequestVote of term 18 "
               "while its own term was 19"),
     "a student's server that votes for an older term's candidate: found in explored seed 103"),
    ("no-majority", STUDENT_WIN, "if self.current_term != term || self.is_leader {", ["--seed", "1", "-t", "1-2"],
     FINDING + r"leader elected by a majority: S\d led term \d+ \(it sent AppendEntries in it\) with "
     r"votes in it from (only S\d|no other server); a majority of 5 needs 2 besides its own",
     "a student's server that leads without a yes-quorum: found in seed 1"),
    ("reply-term-ignored", STUDENT_REPLY_TERM, "", ["--seed", "1", "-t", "1-6"],
     FINDING + r"newer term adopted: S\d read a reply of term \d+ at [\d.]+ s while its term was \d+, "
     r"and [\d.]+ s later its term is \d+ \(test 6",
     "a student's leader that ignores the term of AppendEntries replies: found in seed 1"),
]


def student_mutants(mutants):
    student = open(STUDENT).read()
    for name, rule, replacement, args, finding, what in STUDENT_MUTANTS:
        binary = mutants.build(student, rule, replacement, name)
        if binary is not None:
            _, text = labtest(binary, "--virtual", *args)
            expect(re.search(finding, text) is not None, what)


def main():
    build_dir, binary = os.path.abspath(sys.argv[1]), sys.argv[2]
    ours(binary)
    mutants = Mutants(build_dir)
    vote_everyone(mutants)
    student_mutants(mutants)
    if problems:
        print("monitor_test: FAILED:\n  " + "\n  ".join(problems))
        return 1
    print("monitor_test: every check as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
