"""The safety monitor's and the explorer's lines as the grade reads them,
the report's findings and explored columns, scripts/shrink's list handling
and delta debugging, and scripts/mutation-score's stages (sample,
equivalents, judge's reading of labtest's summary), without building or
running a crate."""
import importlib.machinery
import importlib.util
import os
import re

import pytest

from grading import report, run
from grading.collect import Submission
from mutation import cli as mutation_cli
from mutation import judge, mutants
from mutation import report as mutation_report

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_shrink():
    loader = importlib.machinery.SourceFileLoader("shrink", os.path.join(ROOT, "scripts", "shrink"))
    spec = importlib.util.spec_from_loader("shrink", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


FINDING_TEXT = (
    "TEST 1: Initial election\nTEST 1 Passed\nALL TESTS PASSED\n"
    "labtest: finding: one vote per term: S4 granted its vote in term 2 to S1 and then to S2 "
    "(test 2, at 10.193 s; servers S4, S1 and S2)\n"
    "  replay: labtest -f CONFIG --virtual --seed 985 -t 1-2\n"
    "labtest: finding: State Machine Safety: at index 13 S1 applied 605 and S4 applied 602 "
    "(test 6, at 71.974 s; servers S1 and S4)\n"
    "  explore: choices drawn before it: m1-12,f1-340\n"
    "labtest: finding: 3 more finding(s) not listed\n")


def test_finding_lines_are_parsed_with_their_servers_and_tests():
    found = run.findings_of(FINDING_TEXT)
    assert [f["property"] for f in found] == ["one vote per term", "State Machine Safety", "more"]
    assert found[0]["servers"] == [4, 1, 2] and found[0]["test"] == 2 and found[0]["at_seconds"] == 10.193
    assert found[1]["detail"] == "at index 13 S1 applied 605 and S4 applied 602"
    assert found[2]["detail"] == "3 more not listed"


def a_run(seed, mode="virtual", kind="pass", test=0, findings=()):
    return {"mode": mode, "seed": seed, "kind": kind, "test": test, "message": "" if kind == "pass" else "m",
            "exit": 0, "wall": 0.1, "cpu": 0.1, "rpcs": 3000, "trace": "ab", "log_bytes": 10, "freezes": 0,
            "hazards": [], "findings": list(findings), "notes": [], "foreign_threads": False,
            "log": f"x/runs/{mode}-seed{seed}.log"}


def finding(prop, test=2):
    return {"property": prop, "detail": "d", "test": test, "at_seconds": 1.0, "servers": [1],
            "line": f"{prop}: d", "replay": f"labtest --seed 9 -t 1-{test}"}


def test_findings_and_explored_runs_stay_beside_the_verdict():
    sub = Submission("s", "/x/server.rs")
    sub.built = True
    sub.runs = [a_run(1, findings=[finding("one vote per term")]), a_run(2),
                a_run(1, mode="explore", kind="fail", test=8), a_run(2, mode="explore",
                                                                     findings=[finding("State Machine Safety", 6)])]
    s = report.summarize(sub, 1 << 20)
    assert s["passed_all"] and report.verdict(s) == "PASS"
    assert s["runs"]["virtual"] == 2 and s["runs"]["explored"] == 2 and s["runs"]["with_findings"] == 2
    assert [t["ran"] for t in s["tests"]][:1] == [2]  # explored runs are not in the test counts
    assert s["explored"]["ran"] == 2 and s["explored"]["passed"] == 1 and s["explored"]["first_failure"]["test"] == 8
    props = {f["property"]: f for f in s["findings"]}
    assert props["one vote per term"]["runs"] == 1 and props["one vote per term"]["first_run"]["seed"] == 1
    assert props["State Machine Safety"]["first_run"]["mode"] == "explore"
    table = report.table([s])
    assert "explored  RPCs" in table and " 1/2 " in table and "2/4" in table
    assert "finding (beside the verdict): one vote per term: d" in table


def test_shrink_reads_and_writes_labtests_lists():
    shrink = load_shrink()
    assert shrink.expand("m1-3,f7,p2") == ["m1", "m2", "m3", "f7", "p2"]
    assert shrink.expand("none") == []
    assert shrink.compact(["f7", "m3", "m1", "m2", "p2"]) == "m1-3,f7,p2"
    assert shrink.compact([]) == "none"
    assert shrink.drawn_before(FINDING_TEXT, "State Machine Safety") == set(shrink.expand("m1-12,f1-340"))
    assert shrink.drawn_before(FINDING_TEXT, "apply order") is None


def test_ddmin_finds_the_choices_that_matter():
    shrink = load_shrink()
    items = [f"f{i}" for i in range(1, 200)]
    needed = {"f17", "f150"}
    calls = []

    def shows(subset):
        calls.append(len(subset))
        return needed <= set(subset)

    result = shrink.ddmin(items, shows, 2, 10000, lambda _: None)
    assert set(result) == needed
    assert shrink.drop_kinds(["m1", "f2", "p1"], lambda s: "p1" in s, lambda _: None) == ["p1"]


def test_mutants_are_sampled_across_operators_and_equivalents_need_a_reason(tmp_path):
    ms = [{"id": f"{op}{i}", "operator": op, "start": i, "end": i + 1, "to": "x"} for op in ("a", "b") for i in range(50)]
    chosen = mutants.sample(ms, 10, 1)
    assert len(chosen) == 10 and {m["operator"] for m in chosen} == {"a", "b"}
    assert mutants.sample(ms, 10, 1) == chosen  # deterministic
    assert mutants.sample(ms, 0, 1) == ms
    assert mutants.apply(b"abcdef", {"start": 2, "end": 4, "to": "XY"}) == b"abXYef"
    good = tmp_path / "eq.txt"
    good.write_text("# comment\nmod::f: boolean: true -> false #1\tonly feeds a log line\n")
    assert mutants.load_equivalents(str(good)) == {"mod::f: boolean: true -> false #1": "only feeds a log line"}
    bad = tmp_path / "bad.txt"
    bad.write_text("mod::f: boolean: true -> false #1\n")
    with pytest.raises(mutants.MutationError, match="no reason"):
        mutants.load_equivalents(str(bad))


def test_only_reads_ids_from_a_list_or_an_equivalent_file(tmp_path):
    listed = tmp_path / "ids.txt"
    listed.write_text("# survivors\nmod::f: boolean: true -> false #1\n\nmod::g: statement: x; -> (nothing) #2\tbecause\n")
    assert mutants.load_ids(str(listed)) == {"mod::f: boolean: true -> false #1", "mod::g: statement: x; -> (nothing) #2"}
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(mutants.MutationError, match="lists no mutant id"):
        mutants.load_ids(str(empty))
    with pytest.raises(mutants.MutationError, match="is not a file"):
        mutants.load_ids(str(tmp_path / "missing.txt"))


def test_classified_survivors_need_a_known_kind_and_a_reason(tmp_path):
    good = tmp_path / "survivors.txt"
    good.write_text("# reviewed\nmod::f: boolean: true -> false #1\tprogress\tonly a sleep\n"
                    "mod::g: statement: x; -> (nothing) #1\tsafety\ttwo votes in a term\n")
    assert mutants.load_classified(str(good)) == {"mod::f: boolean: true -> false #1": ("progress", "only a sleep"),
                                                  "mod::g: statement: x; -> (nothing) #1": ("safety", "two votes in a term")}
    assert mutants.load_classified(str(tmp_path / "missing.txt")) == {}
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("mod::f: boolean: true -> false #1\tharmless\tbecause\n")
    with pytest.raises(mutants.MutationError, match="kind 'harmless' is none of progress, defended"):
        mutants.load_classified(str(unknown))
    no_reason = tmp_path / "no_reason.txt"
    no_reason.write_text("mod::f: boolean: true -> false #1\tteardown\n")
    with pytest.raises(mutants.MutationError, match="no reason"):
        mutants.load_classified(str(no_reason))


def test_the_report_groups_classified_survivors_and_scores_the_bugs():
    def mutant(name, outcome, unchanged=False):
        modes = {mode: {"outcome": outcome, "by": None if outcome == "survived" else "a failure"}
                 for mode in ("suite", "monitor", "explore")}
        return {"id": name, "line": 1, "status": "judged", "modes": modes, "unchanged": unchanged}
    results = [mutant("k1", "killed"), mutant("k2", "killed"), mutant("t1", "timeout"),
               mutant("p1", "survived"), mutant("s1", "survived"), mutant("n1", "survived", unchanged=True)]
    classified = {"p1": ("progress", "only a sleep"), "s1": ("safety", "two votes in a term")}
    text = mutation_report.table(results, "title", classified)
    assert "  progress (correct Raft" in text and "line 1: p1\n        only a sleep" in text
    assert "  safety (a bug" in text and "line 1: s1\n        two votes in a term" in text
    assert "  not classified in the survivors list: 1" in text and "never changed a run" in text
    # 6 judged, 1 survivor is no bug: 5 bugs, 3 of them killed or timed out.
    assert "of the 5 mutants that are bugs (the 6 judged, less the 1 survivors classified progress, defended, " \
           "teardown): 3 killed or timed out, 60.0%" in text
    # Its ceiling: the 5 bugs of 6 (83.3%); 95% of 6 leaves no survivor.
    assert "the most a grade that fails no correct Raft can score on this file, by this review: 5 of 6, 83.3% " \
           "(95% allows at most 0 survivors; the review found 1 that are no bug)" in text
    # The official score is unchanged by the classification: 3 of 6.
    assert re.search(r"^suite \+ monitor \+ exploration\s+2\s+3\s+1\s+50\.0%$", text, re.M)
    plain = mutation_report.table(results, "title")
    assert "mutants that are bugs" not in plain and "changed a run and passed every check" in plain


def test_rescore_takes_in_the_kills_of_a_later_run_and_refuses_a_stranger(tmp_path, capsys):
    import json

    def mutant(name, explore, monitor="survived"):
        modes = {"suite": {"outcome": "survived", "by": None},
                 "monitor": {"outcome": monitor, "by": None if monitor == "survived" else "a finding"},
                 "explore": {"outcome": explore, "by": None if explore == "survived" else "a failure"}}
        return {"id": name, "line": 1, "status": "judged", "modes": modes}
    first, later, other = tmp_path / "first", tmp_path / "later", tmp_path / "other"
    for folder in (first, later, other):
        folder.mkdir()
    (first / "results.json").write_text(json.dumps([mutant("a", "killed", "killed"), mutant("b", "survived"),
                                                    mutant("c", "survived")]))
    # The later run judged b and c again: it killed b (in explore only) and not c.
    (later / "results.json").write_text(json.dumps([mutant("b", "killed"), mutant("c", "survived")]))
    (other / "results.json").write_text(json.dumps([mutant("z", "killed")]))
    server = tmp_path / "server.rs"
    server.write_text("// a file\n")
    empty = tmp_path / "none.txt"
    empty.write_text("")
    common = [str(server), "--rescore", "--equivalent", str(empty), "--classified", str(empty), "--out", str(first)]
    # No report.txt yet (results.json written by hand): a title of its own, no traceback.
    assert mutation_cli.main(common) == 0
    before = capsys.readouterr().out
    assert re.search(r"^suite \+ monitor \+ exploration\s+1\s+2\s+0\s+33\.3%$", before, re.M)
    assert mutation_cli.main(common + ["--merge", str(later)]) == 0
    after = capsys.readouterr().out
    assert "kills of " + str(later) + " merged" in after.splitlines()[0]
    # results.json keeps the merged kills: a later --rescore still counts them, and says so.
    assert mutation_cli.main(common) == 0
    again = capsys.readouterr().out
    assert "kills of " + str(later) + " merged" in again.splitlines()[0]
    assert re.search(r"^suite \+ monitor \+ exploration\s+2\s+1\s+0\s+66\.7%$", again, re.M)
    assert re.search(r"^suite \+ monitor\s+1\s+2\s+0\s+33\.3%$", after, re.M)
    assert re.search(r"^suite \+ monitor \+ exploration\s+2\s+1\s+0\s+66\.7%$", after, re.M)
    # A run of another file is refused, and nothing is written.
    written = (first / "results.json").read_text()
    assert mutation_cli.main(common + ["--merge", str(other)]) == 2
    assert "are not in this run" in capsys.readouterr().err
    assert mutation_cli.main(common + ["--merge", str(tmp_path / "missing")]) == 2
    assert (first / "results.json").read_text() == written
    with pytest.raises(SystemExit):
        mutation_cli.main([str(server), "--merge", str(later)])


SEEDS = list(range(1, 21))


def passed(seed, h="aa"):
    return f"ALL TESTS PASSED\nvirtual run seed {seed}: trace hash {h:0>16} (passed, 136.0 s of virtual time)\n"


def failed(seed, message, test=3):
    return (f"TEST {test} Failed: {message}\nTESTS FAILED\n"
            f"virtual run seed {seed}: trace hash {'bb':0>16} (FAILED, 20.0 s of virtual time)\n")


class FakeLabtest:
    """labtest, one process per seed: `plain` and `explore` map a seed to
    that run's output (a pass when missing); every call is kept."""

    def __init__(self, monkeypatch):
        self.plain, self.explore, self.calls = {}, {}, []
        monkeypatch.setattr(judge.subprocess, "run", self.run)

    def run(self, argv, **kw):
        self.calls.append(argv)
        assert "-r" not in argv  # one seed per process, as the grade runs them
        seed = int(argv[argv.index("--seed") + 1])
        text = (self.explore if "--explore" in argv else self.plain).get(seed, passed(seed))

        class Done:
            stdout, stderr, returncode = text, "", 0 if "passed" in text else 1
        return Done()


def test_judge_reads_each_runs_verdict(monkeypatch):
    lab = FakeLabtest(monkeypatch)
    lab.plain[7] = failed(7, "too many RPCs (66) for 10 entries", test=9)
    result = judge.judge("labtest", "cfg", SEEDS, SEEDS, 60)[0]
    assert result["suite"] == {"outcome": "killed", "by": "too many RPCs (66) for 10 entries (seed 7)"}
    assert result["explore"]["outcome"] == "killed"
    assert len(lab.calls) == 7  # it stops at the first failing seed
    # A finding kills in the monitor's mode; the suite's needs every plain seed.
    lab.plain = {4: passed(4) + "labtest: finding: one vote per term: S1 granted ... (test 2, at 1.0 s; servers S1 and S2)\n"}
    lab.calls.clear()
    result = judge.judge("labtest", "cfg", SEEDS, SEEDS, 60)[0]
    assert result["suite"]["outcome"] == "survived" and result["monitor"]["outcome"] == "killed"
    assert result["monitor"]["by"] == "finding: one vote per term: S1 granted ... (seed 4)"
    assert len(lab.calls) == 20
    lab.plain = {3: "labtest --virtual: no progress for 5 s of wall time in test 3: virtual thread 'x' ...\n"}
    assert judge.judge("labtest", "cfg", SEEDS, SEEDS, 60)[0]["suite"]["outcome"] == "timeout"
    # Explored seeds run only for a mutant the plain ones leave alive.
    lab.plain, lab.explore = {}, {5: failed(5, "failed to reach agreement")}
    result = judge.judge("labtest", "cfg", SEEDS, SEEDS, 60)[0]
    assert result["monitor"]["outcome"] == "survived"
    assert result["explore"] == {"outcome": "killed", "by": "explored: failed to reach agreement (seed 5)"}
    lab.explore = {2: "standin: RaftTestConfig::Disconnect: server 3 is already disconnected (the real framework aborts here)\n"}
    assert judge.judge("labtest", "cfg", SEEDS, SEEDS, 60)[0]["explore"]["by"].startswith("explored: aborted: ")


def test_a_run_that_hits_the_suites_own_defect_kills_nothing(monkeypatch):
    lab = FakeLabtest(monkeypatch)
    lab.plain[3] = ("TEST 11: Figure 8\nlabtest: test 11's final reconnect hits the real suite's own defect (labtest.md, "
                    "defect 1): leader1 = 4, leader2 = 0; it reconnects server 1, which is connected\n"
                    "standin: RaftTestConfig::Reconnect: server 1 is not disconnected (the real framework aborts here)\n"
                    "virtual run seed 3: trace hash 00000000000000b3 (FAILED, 136.1 s of virtual time)\n")
    result = judge.judge("labtest", "cfg", SEEDS, SEEDS, 60)[0]
    assert [result[m]["outcome"] for m in ("suite", "monitor", "explore")] == ["survived"] * 3
    lab.plain[4] = failed(4, "failed to reach agreement")
    assert judge.judge("labtest", "cfg", SEEDS, SEEDS, 60)[0]["suite"] == {"outcome": "killed",
                                                                           "by": "failed to reach agreement (seed 4)"}


def test_the_seeds_a_file_itself_fails_are_left_out(monkeypatch):
    lab = FakeLabtest(monkeypatch)
    lab.plain = {3: passed(3, "a3"), 4: failed(4, "x"), 5: passed(5, "a5"),
                 6: passed(6, "a6") + "labtest: finding: heartbeat limit: ... (test 9, at 1.0 s; servers S1 and S2)\n"}
    hashes, passing = judge.baseline("labtest", "cfg", [3, 4, 5, 6], False, 60)
    assert passing == [3, 5]  # 4 failed, 6 raised a finding
    assert hashes == {3: "00000000000000a3", 4: "00000000000000bb", 5: "00000000000000a5", 6: "00000000000000a6"}
    assert [argv[argv.index("--seed") + 1] for argv in lab.calls] == ["3", "4", "5", "6"]


def test_a_survivor_that_never_changed_a_run_is_told_apart():
    original = {"plain": {1: "a", 2: "b"}, "explore": {1: "c", 2: "d"}}
    assert judge.unchanged({"plain": {1: "a", 2: "b"}, "explore": {1: "c", 2: "d"}}, original)
    assert not judge.unchanged({"plain": {1: "a", 2: "x"}, "explore": {1: "c", 2: "d"}}, original)
    assert not judge.unchanged({"plain": {1: "a", 2: "b"}, "explore": {}}, original)
    hashes = judge.HASH.findall("virtual run seed 4: trace hash 0123456789abcdef (passed, 1.0 s of virtual time)\n")
    assert hashes == [("4", "0123456789abcdef", "passed")]


def test_the_replay_check_also_tells_whether_the_monitor_changed_a_run():
    sub = Submission("s", "/x/server.rs")
    sub.built = True
    sub.runs = [a_run(1)]
    sub.determinism = {"seed": 1, "hashes": ["aa", "aa"], "same": True, "monitor_neutral": True}
    assert "twice gave the same trace hash (aa), with and without the safety monitor" in report.table([report.summarize(sub, 1)])
    sub.determinism = {"seed": 1, "hashes": ["aa", "bb", "aa"], "same": True, "monitor_neutral": False}
    assert "the safety monitor changes this submission's runs" in report.table([report.summarize(sub, 1)])
    sub.determinism = {"seed": 1, "hashes": ["aa", "bb", "cc"], "same": False, "monitor_neutral": None}
    assert "replays are NOT exact" in report.table([report.summarize(sub, 1)])
