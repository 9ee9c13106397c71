"""The grading stages' own logic, without building or running anything:
classification of runs, hazard lines, the report's grouping and verdicts,
the system-call evidence, the sandbox's command line."""
import os

from grading import report, run, syscalls
from grading.collect import Submission
from grading.sandbox import Sandbox, ancestors


def test_a_run_is_classified_by_what_labtest_printed():
    passed = "TEST 1: Initial election\nTEST 1 Passed\nALL TESTS PASSED\nTotal RPC count: 50\n"
    assert run.classify(passed, 0, None, 60) == ("pass", 0, "")
    # A crash after the verdict was printed keeps it.
    assert run.classify(passed, -6, None, 60)[0] == "pass"
    failed = "TEST 1: Initial election\nTEST 1 Failed: waited too long for leader election\nTESTS FAILED\n"
    assert run.classify(failed, 1, None, 60) == ("fail", 1, "waited too long for leader election")
    aborted = "TEST 7: Concurrently started agreements\nstandin: 1 fiber(s) made on a helper thread of test 7 ...\n"
    assert run.classify(aborted, -6, None, 60) == ("abort", 7, "aborted in test 7: 1 fiber(s) made on a helper thread of test 7 ...")
    assert run.classify("standin: x\n", -6, None, 60)[2] == "aborted before the first test: x"
    assert run.classify("", -9, "wall budget 60 s", 60) == ("timeout", 0, "timed out before the first test (setup never finished) (wall budget 60 s)")
    # glibc's heap check names the crash.
    heap = "TEST 10: Unreliable agreement (takes a few minutes)\ndouble free or corruption (!prev)\n"
    assert run.classify(heap, 134, None, 60) == (
        "crash", 10, "heap corruption in test 10 (glibc: double free or corruption (!prev)): a data race on "
        "unsynchronised state or a use after free")
    assert run.classify("TEST 2: x\nsomething else\n", 134, None, 60) == ("crash", 2, "exit status 134 in test 2")


def test_hazard_lines_are_parsed():
    text = ("labtest: hazard: raft_commo_save_rpc_proxies from the test thread, 14 times in tests 2-8, first in test 2 "
            "at 8.812 s on server 0 (a data race in the real framework, which has no lock there: abi.md \"Threads\")\n"
            "labtest: hazard: raft_coroutine_sleep inside the RPC handler rust_raft_server_on_request_vote from "
            "server-1's reactor, 1 time before the tests, first in the start-up at 0.017 s on server 1 (late)\n")
    found = run.hazards_of(text)
    assert [h["call"] for h in found] == ["raft_commo_save_rpc_proxies",
                                          "raft_coroutine_sleep inside the RPC handler rust_raft_server_on_request_vote"]
    assert found[0]["count"] == 14 and found[0]["tests"] == "in tests 2-8" and found[0]["server"] == 0
    assert found[1]["thread"] == "server-1's reactor" and found[1]["first"] == "the start-up"


def fake_sub(name, runs, built=True):
    sub = Submission(name, f"/x/{name}.rs")
    sub.built = built
    sub.runs = runs
    return sub


def a_run(seed, kind="pass", test=0, mode="virtual", hazards=(), message=""):
    return {"mode": mode, "seed": seed, "kind": kind, "test": test, "message": message, "exit": 0, "wall": 0.1,
            "cpu": 0.1, "rpcs": 3000, "trace": "ab", "log_bytes": 10, "freezes": 0, "hazards": list(hazards),
            "notes": [], "foreign_threads": False, "log": f"{seed}.log"}


def hazard(thread, count=1):
    return {"call": "raft_commo_save_rpc_proxies", "thread": thread, "count": count, "tests": "in test 2",
            "first": "test 2", "at_seconds": 1.0, "server": 0, "rule": "a data race", "line": f"... from {thread} ..."}


def test_hazards_are_grouped_per_call_with_their_threads_and_runs():
    runs = [a_run(1, hazards=[hazard("the test thread", 3), hazard("the unreliable-network thread")]),
            a_run(2, hazards=[hazard("the test thread", 2)]), a_run(3)]
    s = report.summarize(fake_sub("p", runs), 1 << 20)
    assert len(s["hazards"]) == 1
    h = s["hazards"][0]
    assert h["runs"] == 2 and h["count"] == 6 and h["threads"] == ["the test thread", "the unreliable-network thread"]
    assert s["passed_all"]  # a hazard never fails a run
    table = report.table([s])
    assert "  hazard: ... from the test thread ... [in 2 of 3 runs; first virtual seed 1; also from 1 other thread(s)" in table


def test_verdicts_breaches_and_rows_without_a_submission():
    s = report.summarize(fake_sub("p", [a_run(1)]), 1 << 20)
    s["rules"] = {"breaches": [{"rule": 3, "class": "breach", "line": 9, "what": "uses std::fs::write", "rule_text": "t"}],
                  "reviews": []}
    assert report.verdict(s) == "PASS"  # a breach never changes the test verdict ...
    assert report.verdict(s, breach_fails=True) == "FAIL"  # ... unless asked to
    assert "  rule 3 breach: server.rs:9: uses std::fs::write (t)" in report.table([s])
    none = fake_sub("q", [], built=False)
    none.no_submission = "no branch lab-raft-solution"
    ns = report.summarize(none, 1 << 20)
    assert report.verdict(ns) == "NONE"
    assert "q           -       no submission: no branch lab-raft-solution" in report.table([ns])
    # Rule 1 names files, not lines; a row without a commit says so, not an empty commit.
    s["rules"]["breaches"].insert(0, {"rule": 1, "class": "breach", "line": 0, "what": "wrappers.rs: changed",
                                      "rule_text": "u"})
    assert "  rule 1 breach: wrappers.rs: changed (u)" in report.table([s])
    ns["origin"] = {"repo": "/r/q", "branch": "lab-raft-solution", "commit": "", "date": "", "message": ""}
    assert "  not graded: nothing submitted in /r/q" in report.table([ns])
    assert "graded: commit " not in report.table([ns])


def test_virtual_runs_of_a_crate_with_os_threads_do_not_decide():
    runs = [dict(a_run(1, kind="fail", test=1, message="m"), foreign_threads=True), a_run(2, mode="real")]
    s = report.summarize(fake_sub("t", runs), 1 << 20)
    assert s["virtual_runs_inexact"] and s["passed_all"]
    assert "the verdict is the real-time runs' alone" in report.table([s])


def test_system_call_evidence_leaves_the_frameworks_own_calls_out():
    trace = """\
5 execve("/g/labtest", ["/g/labtest"], 0x1 /* 8 vars */) = 0
5 openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3
5 openat(AT_FDCWD, "/g/config/raft_lab_test.yml", O_RDONLY) = 3
7 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, child_tid=0x1}, 88) = 8
8 openat(AT_FDCWD, "/tmp/debug.log", O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC, 0666) = 9
8 openat(AT_FDCWD, "/tmp/debug.log", O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC, 0666) = 9
8 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 10
8 connect(10, {sa_family=AF_INET, sin_port=htons(47123), sin_addr=inet_addr("127.0.0.1")}, 16) = -1 ECONNREFUSED (Connection refused)
8 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x1) = 12
12 execve("/bin/sh", ["sh", "-c", "id"], 0x1 /* 8 vars */) = 0
"""
    assert syscalls.evidence(trace) == [
        "opened /tmp/debug.log for writing (2 times)",
        "made a socket (AF_INET) (1 time)",
        "connected to 127.0.0.1:47123 (failed: ECONNREFUSED (Connection refused)) (1 time)",
        "started a process (clone) (1 time)",
        "ran the program /bin/sh (1 time)",
    ]


def test_the_sandbox_binds_only_what_it_must(tmp_path):
    box = Sandbox(enabled=False)
    box.enabled = True  # the command line only: nothing is started
    folder = str(tmp_path / "out" / "alice")
    cmd = box.command(["labtest"], [folder + "/scratch"], 62000, extra_ro=[folder], cwd=folder)
    text = " ".join(cmd)
    assert cmd[0] == "bwrap" and "--unshare-net" in cmd and "--unshare-pid" in cmd and "--die-with-parent" in cmd
    assert f"--ro-bind {folder} {folder}" in text and f"--bind {folder}/scratch {folder}/scratch" in text
    assert "--bind / " not in text and "--ro-bind / /" not in text
    home = os.path.expanduser("~")
    assert f"--bind {home} " not in text and f"--ro-bind {home} " not in text  # only the toolchain under it
    assert "setpriv --reuid=62000" in text or os.geteuid() != 0
    assert ancestors("/a/b/c") == ["/a", "/a/b"]
