"""Run: labtest against one submission, in virtual time (one process per
seed: a replay is exact) and in real time, with budgets for wall time, CPU,
memory and output; each run classified (pass, fail, the suite's own
defect, timeout, panic, crash, abort) with the hazards it reported."""
import os
import re
import resource
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .paths import CONFIG


class CappedLog:
    """Collects a child's output through a pipe, keeping the first and the
    last `cap / 2` bytes (a flood of logs must not fill the disk or the
    memory), and counts the rest."""

    def __init__(self, pipe, cap):
        self.head, self.tail, self.total, self.cap = bytearray(), bytearray(), 0, cap
        self.last_progress = time.monotonic()  # when the suite last printed a TEST line
        self.thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True)
        self.thread.start()

    def _drain(self, pipe):
        half = self.cap // 2
        while True:
            chunk = pipe.read(65536)
            if not chunk:
                break
            self.total += len(chunk)
            if b"TEST " in chunk:
                self.last_progress = time.monotonic()
            if len(self.head) < half:
                take = half - len(self.head)
                self.head += chunk[:take]
                chunk = chunk[take:]
            if chunk:
                self.tail += chunk
                if len(self.tail) > half:
                    del self.tail[:len(self.tail) - half]

    def text(self):
        self.thread.join()
        dropped = self.total - len(self.head) - len(self.tail)
        middle = f"\n[... grade: {dropped} bytes of output left out here (cap {self.cap} bytes per run) ...]\n".encode() \
            if dropped > 0 else b""
        return (bytes(self.head) + middle + bytes(self.tail)).decode(errors="replace"), self.total


def budgets(cpu_seconds, memory_bytes, sandbox):
    def apply():
        os.setsid()  # its own process group: a budget kill takes everything it started
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        sandbox.limit_processes()
    return apply


def run_labtest(argv, folder, sandbox, wall_budget, cpu_budget, memory, cap, freeze_ms=0, freeze_seed=0,
                progress_budget=None, wrap=None):
    """Runs labtest (in the sandbox) with its budgets (wall, CPU, memory,
    and optionally the longest time without a new TEST line); returns
    (output, bytes, exit code or -signal, wall seconds, cpu seconds, why it
    was killed or None, freezes). `wrap` prefixes the command inside the
    sandbox (strace)."""
    started = time.monotonic()
    inner = (wrap or []) + list(argv)
    command, env = sandbox.popen_args(inner, folder, extra_ro=[os.path.dirname(CONFIG)])
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            preexec_fn=budgets(cpu_budget, memory, sandbox), env=env)
    log = CappedLog(proc.stdout, cap)
    state = {"killed": None, "freezes": 0}
    done = threading.Event()

    def watch():
        import random
        rng = random.Random(freeze_seed)
        next_freeze = time.monotonic() + rng.uniform(10, 20)
        while not done.wait(0.2):
            now = time.monotonic()
            stalled = progress_budget is not None and now - log.last_progress > progress_budget
            if now - started > wall_budget or stalled:
                state["killed"] = f"no new test line for {progress_budget:.0f} s" if stalled and now - started <= wall_budget \
                    else f"wall budget {wall_budget:.0f} s"
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                return
            if freeze_ms and now >= next_freeze:
                try:
                    os.killpg(proc.pid, signal.SIGSTOP)
                    time.sleep(freeze_ms / 1000)
                    os.killpg(proc.pid, signal.SIGCONT)
                    log.last_progress += freeze_ms / 1000
                    state["freezes"] += 1
                except ProcessLookupError:
                    return
                next_freeze = time.monotonic() + rng.uniform(10, 20)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    watcher.join()
    text, total = log.text()
    code = os.waitstatus_to_exitcode(status)
    return text, total, code, time.monotonic() - started, usage.ru_utime + usage.ru_stime, state["killed"], state["freezes"]


HAZARD = re.compile(r"^labtest: hazard: (?P<call>.+?) from (?P<thread>.+?), (?P<count>\d+) times? (?P<tests>.+?), "
                    r"first in (?P<first>.+?) at (?P<at>[\d.]+) s(?: on server (?P<server>\d+))? \((?P<rule>.*)\)$", re.M)
NOTE = re.compile(r"^labtest: note: (.*)$", re.M)
# The safety monitor's findings (monitor.h): beside the verdict, never instead of it.
FINDING = re.compile(r"^labtest: finding: (?P<property>[^:]+): (?P<detail>.+) \(test (?P<test>-?\d+), at (?P<at>[\d.]+) s; "
                     r"servers (?P<servers>[^)]*)\)$", re.M)
MORE_FINDINGS = re.compile(r"^labtest: finding: (\d+) more finding", re.M)
# A virtual run of a crate that starts OS threads (they run in real time
# beside the virtual world): not an exact replay.
FOREIGN_THREADS = re.compile(r"^labtest --virtual: note: the crate started \d+ OS thread", re.M)


def hazards_of(text):
    """The hazard lines a run printed, parsed."""
    found = []
    for m in HAZARD.finditer(text):
        found.append({"call": m["call"], "thread": m["thread"], "count": int(m["count"]), "tests": m["tests"],
                      "first": m["first"], "at_seconds": float(m["at"]),
                      "server": int(m["server"]) if m["server"] is not None else None, "rule": m["rule"],
                      "line": m.group(0)[len("labtest: hazard: "):]})
    return found


def findings_of(text):
    """The safety monitor's finding lines a run printed, parsed."""
    found = []
    for m in FINDING.finditer(text):
        found.append({"property": m["property"], "detail": m["detail"], "test": int(m["test"]),
                      "at_seconds": float(m["at"]), "servers": [int(x) for x in re.findall(r"S(\d+)", m["servers"])],
                      "line": m.group(0)[len("labtest: finding: "):]})
    more = MORE_FINDINGS.search(text)
    if more:
        found.append({"property": "more", "detail": f"{more.group(1)} more not listed", "test": 0, "at_seconds": 0,
                      "servers": [], "line": more.group(0)[len("labtest: finding: "):]})
    return found


def classify(text, code, killed, cpu_budget):
    """What became of one run: (kind, failed test or 0, message). Kinds:
    pass, fail, defect (the suite's own test-11 defect), timeout, panic,
    crash, abort."""
    headers = re.findall(r"^TEST (\d+): ", text, re.M)
    running = int(headers[-1]) if headers else 0
    failed = re.search(r"^TEST (\d+) Failed: (.*)$", text, re.M)
    if "ALL TESTS PASSED" in text and (code == 0 or not failed):
        # (A crash after the verdict, at shutdown, does not change it: the
        # real graders read the suite's output. It shows as a hazard.)
        return "pass", 0, ""
    if re.search(r"^labtest: test 11's final reconnect hits the real suite's own defect", text, re.M):
        return "defect", 11, "the real suite's own test-11 defect (labtest.md, defect 1): leader1 = 4, leader2 = 0"
    if failed:
        return "fail", int(failed.group(1)), failed.group(2).strip()
    watchdog = re.search(r"^labtest --virtual: no progress for (\d+) s of wall time in test (\d+): virtual thread '([^']*)'",
                         text, re.M)
    if watchdog:
        where = f"in test {watchdog.group(2)}" if watchdog.group(2) != "0" else "before the first test"
        return "timeout", int(watchdog.group(2)), (f"timed out {where}: no progress for "
                                                   f"{watchdog.group(1)} s, thread '{watchdog.group(3)}' blocked or spinning "
                                                   "outside the scheduler (a lock held across a wait, or a busy loop)")
    deadlock = re.search(r"^labtest --virtual: the deadlock came in test (\d+)", text, re.M)
    if deadlock:
        waits = re.findall(r"^  (\S+): waiting for (.*)$", text, re.M)
        return "timeout", int(deadlock.group(1)), ("deadlock in test " + deadlock.group(1) + ": every thread blocked ("
                                                   + ", ".join(f"{t} on {w}" for t, w in waits[:4]) + ")")
    if killed:
        where = f"in test {running}" if running else "before the first test (setup never finished)"
        return "timeout", running, f"timed out {where} ({killed})"
    if code in (-signal.SIGXCPU, -signal.SIGKILL) or code == 128 + signal.SIGXCPU:
        return "timeout", running, f"timed out in test {running} (CPU budget {cpu_budget} s)"
    panic = re.search(r"panicked at ([^\n]*?):\n(.*)", text)
    if panic:
        where = re.sub(r"^.*/", "", panic.group(1))
        return "panic", running, f"panic in test {running}: {panic.group(2).strip()} ({where})"
    # The stand-in stops where the real framework (or its harness) crashes
    # or aborts, saying what the real one does.
    harness = re.search(r"^standin: (.*)$", text, re.M)
    if harness:
        where = f"in test {running}" if running else "before the first test"
        return "abort", running, f"aborted {where}: {harness.group(1).strip()}"
    # glibc's own words when it finds its heap corrupted (then it aborts):
    # in this lab, a data race on the submission's unsynchronised state (a
    # Vec grown by start on a test thread while a fiber reads it), or a use
    # after free.
    heap = re.search(r"^(?:.*: )?((?:double free|free\(\)|malloc\(\)|malloc_consolidate\(\)|realloc\(\)|corrupted )[^\n]*)$",
                     text, re.M)
    if heap:
        return "crash", running, (f"heap corruption in test {running} (glibc: {heap.group(1).strip()}): a data race "
                                  "on unsynchronised state or a use after free")
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        return "crash", running, f"killed by {name} in test {running}"
    return "crash", running, f"exit status {code} in test {running}"


def labtest_argv(sub, args, mode, seed):
    argv = [sub.labtest, "-f", CONFIG]
    if mode in ("virtual", "explore"):
        argv += ["--virtual", "--seed", str(seed), "--watchdog", str(args.watchdog)]
        if mode == "explore":
            argv.append("--explore")  # after --watchdog: replays repeat what follows it
        if args.freeze:
            argv += ["--freeze", str(args.freeze)]
    else:
        argv += ["--seed", str(seed)]
    argv += framework_flags(args)
    return argv


def framework_flags(args):
    """The labtest options a replay must repeat besides the seed."""
    flags = []
    if args.correct_test11:
        flags.append("--correct-test11")
    if getattr(args, "older_framework", False):
        flags.append("--older-framework")
    if getattr(args, "no_monitor", False):
        flags.append("--no-monitor")
    return flags


def one_run(sub, args, out, mode, seed, sandbox, extra=()):
    virtual = mode in ("virtual", "explore")
    argv = labtest_argv(sub, args, mode, seed) + list(extra)
    wall = args.virtual_wall if virtual else args.real_wall
    cpu = args.virtual_cpu if virtual else args.real_cpu
    text, total, code, seconds, cpu_seconds, killed, freezes = run_labtest(
        argv, os.path.dirname(sub.labtest), sandbox, wall, cpu, args.memory << 20, args.log_cap << 10,
        freeze_ms=0 if virtual else args.freeze, freeze_seed=seed, progress_budget=None if virtual else args.real_stall)
    kind, test, message = classify(text, code, killed, cpu)
    rpcs = re.search(r"^Total RPC count: (\d+)$", text, re.M)
    trace = re.search(r"trace hash ([0-9a-f]{16})", text)
    run = {"mode": mode, "seed": seed, "kind": kind, "test": test, "message": message, "exit": code,
           "wall": round(seconds, 3), "cpu": round(cpu_seconds, 3), "rpcs": int(rpcs.group(1)) if rpcs else None,
           "trace": trace.group(1) if trace else None, "log_bytes": total, "freezes": freezes,
           "hazards": hazards_of(text), "findings": [f for f in findings_of(text) if f["property"] != "more"],
           "notes": NOTE.findall(text),
           "foreign_threads": bool(FOREIGN_THREADS.search(text))}
    if kind == "pass" and code != 0:
        run["notes"].append(f"the process ended with {'signal ' + str(-code) if code < 0 else 'exit status ' + str(code)} "
                            "after the suite had printed ALL TESTS PASSED (the verdict stands)")
    if kind != "pass" or run["hazards"] or run["findings"]:
        path = os.path.join(out, sub.name, "runs", f"{mode}-seed{seed}.log")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(" ".join(argv) + "\n\n" + text)
        run["log"] = os.path.relpath(path, out)
    if virtual:
        def replay(last_test):
            return " ".join([sub.labtest, "-f", CONFIG, "--virtual", "--seed", str(seed), "-t", f"1-{max(last_test, 1)}"] +
                            argv[argv.index("--watchdog") + 2:])
        if kind != "pass":
            run["replay"] = replay(test)
            if mode == "explore" and kind in ("fail", "abort"):
                run["shrink"] = shrink_command(sub, seed, test)
        for finding in run["findings"]:
            finding["replay"] = replay(finding["test"])
            if mode == "explore":
                finding["shrink"] = shrink_command(sub, seed, finding["test"], finding["property"])
    return run


def shrink_command(sub, seed, test, finding=None):
    """The command that narrows an explored run's choices down to the few
    that still show its failure or finding (scripts/shrink)."""
    command = f"scripts/shrink --labtest {sub.labtest} --seed {seed} -t 1-{max(test, 1)}"
    return command + (f" --finding '{finding}'" if finding else "")


def run_all(subs, args, out, sandbox, progress):
    virtual_pool = ThreadPoolExecutor(max_workers=args.jobs)
    real_pool = ThreadPoolExecutor(max_workers=args.real_jobs)
    futures = []

    def virtual_job(sub, seed):
        with sub.lock:
            if sub.stopped_early:
                return None
        run = one_run(sub, args, out, "virtual", seed, sandbox)
        with sub.lock:
            sub.runs.append(run)
            hung = [r for r in sub.runs if r["mode"] == "virtual" and r["kind"] in ("timeout", "crash", "panic")]
            if len(hung) >= 3 and not sub.stopped_early:
                sub.stopped_early = f"virtual runs stopped after {len(hung)} that hung or crashed"
        return run

    def explore_job(sub, seed):
        with sub.lock:
            if sub.stopped_early or sub.explore_stopped:
                return None
        run = one_run(sub, args, out, "explore", seed, sandbox)
        with sub.lock:
            sub.runs.append(run)
            hung = [r for r in sub.runs if r["mode"] == "explore" and r["kind"] in ("timeout", "crash", "panic")]
            if len(hung) >= 3:
                sub.explore_stopped = True
        return run

    def real_job(sub, seed):
        run = one_run(sub, args, out, "real", seed, sandbox)
        with sub.lock:
            sub.runs.append(run)
        return run

    for sub, seeds in real_seeds(subs, args):
        for seed in seeds:
            futures.append(real_pool.submit(real_job, sub, seed))
    for seed, sub in virtual_order(subs, args):
        futures.append(virtual_pool.submit(virtual_job, sub, seed))
    for seed, sub in explore_order(subs, args):
        futures.append(virtual_pool.submit(explore_job, sub, seed))
    done = 0
    for future in futures:
        future.result()
        done += 1
        if done % 50 == 0 or done == len(futures):
            progress(f"{done} of {len(futures)} runs done")
    virtual_pool.shutdown()
    real_pool.shutdown()


def seed_range(args, count):
    """The seeds of this grade: all, or this shard's part (--shard K/N with
    one submission splits seeds)."""
    return list(range(args.first_seed, args.first_seed + count))


def virtual_order(subs, args):
    seeds = getattr(args, "virtual_seeds", None) or seed_range(args, args.virtual_runs)
    for seed in seeds:
        for sub in subs:
            if sub.built:
                yield seed, sub


def explore_order(subs, args):
    seeds = getattr(args, "explore_seeds", None)
    if seeds is None:
        seeds = seed_range(args, getattr(args, "explore_runs", 0))
    for seed in seeds:
        for sub in subs:
            if sub.built:
                yield seed, sub


def real_seeds(subs, args):
    seeds = getattr(args, "real_seed_list", None) or seed_range(args, args.real_runs)
    for sub in subs:
        if sub.built:
            yield sub, seeds


def check_determinism(sub, args, out, sandbox):
    """The first seed run again without the safety monitor: the same trace
    hash (or, for a run that ends without one, a crash say, the same
    outcome) shows both that replays are exact and that the monitor's
    sampling changed nothing. When they differ, a third run with the
    monitor tells which: the same as the first (the monitor changes this
    submission's runs: its get_state has side effects) or not (replays are
    not exact)."""
    def fingerprint(run):
        return run["trace"] or f"no hash: {run['kind']} in test {run['test']}: {run['message']}"

    seeds = [r["seed"] for r in sub.runs if r["mode"] == "virtual"]
    if not seeds:
        return
    seed = min(seeds)
    first = next(r for r in sub.runs if r["mode"] == "virtual" and r["seed"] == seed)
    seen = [fingerprint(first), fingerprint(one_run(sub, args, out, "virtual", seed, sandbox, extra=["--no-monitor"]))]
    sub.determinism = {"seed": seed, "hashes": seen, "same": seen[0] == seen[1], "monitor_neutral": seen[0] == seen[1]}
    if getattr(args, "no_monitor", False):
        sub.determinism["monitor_neutral"] = None  # no monitor in this grade
    elif seen[0] != seen[1]:
        third = fingerprint(one_run(sub, args, out, "virtual", seed, sandbox))
        # The same as the first: exact replays, and the monitor made the
        # difference. Not the same: replays are not exact (no telling).
        sub.determinism.update(hashes=seen + [third], same=third == seen[0],
                               monitor_neutral=False if third == seen[0] else None)


def timeline_of_first_failure(sub, args, out, sandbox):
    failing = sorted((r for r in sub.runs if r["mode"] == "virtual" and r["kind"] not in ("pass", "defect")),
                     key=lambda r: r["seed"])
    if not failing:
        return
    first = failing[0]
    folder = os.path.dirname(sub.labtest)
    name = f"timeline-seed{first['seed']}.html"
    drawn = os.path.join(sandbox.scratch(folder), name)  # the run may write only there
    argv = [sub.labtest, "-f", CONFIG, "--virtual", "--seed", str(first["seed"]), "-t", f"1-{max(first['test'], 1)}",
            "--watchdog", str(args.watchdog), "--timeline", drawn] + framework_flags(args)
    run_labtest(argv, folder, sandbox, args.virtual_wall, args.virtual_cpu, args.memory << 20, 1 << 20)
    if os.path.isfile(drawn):
        page = os.path.join(out, sub.name, name)
        os.replace(drawn, page)
        sub.timeline = os.path.relpath(page, out)


def watch_syscalls(sub, args, out, sandbox):
    """One real-time run of tests args.syscall_tests under strace (inside the
    sandbox); sets sub.syscalls."""
    from . import syscalls
    folder = os.path.dirname(sub.labtest)
    trace = os.path.join(sandbox.scratch(folder), "syscalls.trace")
    argv = [sub.labtest, "-f", CONFIG, "--seed", str(args.first_seed), "-t", args.syscall_tests] + framework_flags(args)
    text, _, code, _, _, killed, _ = run_labtest(argv, folder, sandbox, args.real_wall, args.real_cpu, args.memory << 20,
                                                 args.log_cap << 10, progress_budget=args.real_stall,
                                                 wrap=syscalls.strace_prefix(trace))
    kept = os.path.join(out, sub.name, "syscalls.trace")
    if os.path.isfile(trace):
        os.replace(trace, kept)
    with open(os.path.join(out, sub.name, "syscalls.log"), "w") as f:
        f.write(" ".join(argv) + "\n\n" + text)
    sub.syscalls = syscalls.summarize(kept)
    sub.syscalls["tests"] = args.syscall_tests
    if killed:
        sub.syscalls["note"] = f"the watched run was stopped ({killed})"
