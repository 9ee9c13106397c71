"""Sandbox: every build and every run of a submission's code inside
bubblewrap (Debian's bwrap), as an unprivileged user of its own.

What the code inside sees: the system's /usr, /lib*, /bin, /etc read-only;
the Rust toolchain and cargo's registry read-only (at their own paths); its
own submission folder writable; a private /tmp; no network (its own network
namespace, loopback only); its own PID namespace, so it sees and can signal
nothing outside; nothing else of the machine (not the grader's home, not
the other submissions, not the grade's output). It runs as uid/gid
SANDBOX_UID_BASE + k (k per submission), with no capabilities, so even
the files it can see read-only are only those any user may read
(/etc/shadow is not). The CPU, memory, core and output budgets of the run
apply inside, and a process-count limit (RLIMIT_NPROC for that uid) stops a
fork bomb. --die-with-parent: when the grade kills a run, everything it
started dies with it.

Where bwrap cannot start (no bubblewrap, no namespaces: some containers),
the grade refuses with one line unless --no-sandbox is given; then the
same commands run directly, as the grader."""
import os
import shutil
import subprocess
import threading

from .paths import GradeError

SANDBOX_UID_BASE = 62000
SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/proc", "/dev")


def ancestors(path):
    """/a/b/c -> ["/a", "/a/b"]."""
    parts = os.path.abspath(path).split("/")[1:-1]
    return ["/" + "/".join(parts[:k]) for k in range(1, len(parts) + 1)]
DEFAULT_PROCESSES = 512  # threads count too: labtest has ~20, cargo's rustc jobs a few hundred at most


def toolchain():
    """The Rust toolchain's sysroot and cargo's home (registry), outside."""
    cargo = shutil.which("cargo") or os.path.expanduser("~/.cargo/bin/cargo")
    try:
        sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True,
                                 check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise GradeError("no Rust toolchain found (rustc --print sysroot failed)", 1)
    cargo_home = os.environ.get("CARGO_HOME") or os.path.join(os.path.expanduser("~"), ".cargo")
    if not os.path.isfile(os.path.join(sysroot, "bin", "cargo")):
        raise GradeError(f"the toolchain at {sysroot} has no cargo (found {cargo})", 1)
    return sysroot, cargo_home


class Sandbox:
    """Runs commands of one grade, sandboxed (or not, with --no-sandbox)."""

    def __init__(self, enabled=True, processes=DEFAULT_PROCESSES):
        self.enabled = enabled
        self.processes = processes
        self.sysroot, self.cargo_home = toolchain()
        self._uids = {}
        self._lock = threading.Lock()
        if enabled:
            self._probe()

    # ----- setting up ------------------------------------------------------------

    def _probe(self):
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise GradeError("cannot sandbox student code: bubblewrap (bwrap) is not installed "
                             "(apt-get install bubblewrap), or grade with --no-sandbox", 2)
        if os.geteuid() != 0 and not shutil.which("setpriv"):
            raise GradeError("cannot sandbox student code: setpriv is missing", 2)
        probe = subprocess.run(self.command(["true"], writable=[], uid=None), capture_output=True, text=True)
        if probe.returncode != 0:
            why = (probe.stderr.strip().splitlines() or ["no message"])[-1]
            raise GradeError(f"cannot sandbox student code: bwrap does not start here ({why}); "
                             "grade with --no-sandbox to run submissions unsandboxed", 2)

    def uid_for(self, folder):
        """The sandbox user of one submission (its folder)."""
        with self._lock:
            if folder not in self._uids:
                self._uids[folder] = SANDBOX_UID_BASE + len(self._uids)
            return self._uids[folder]

    def prepare_folder(self, folder):
        """Gives the submission's folder to its sandbox user."""
        if not self.enabled or os.geteuid() != 0:
            return
        uid = self.uid_for(folder)
        for root, dirs, files in os.walk(folder):
            os.lchown(root, uid, uid)
            for name in dirs + files:
                os.lchown(os.path.join(root, name), uid, uid)

    # ----- commands --------------------------------------------------------------

    def environment(self, folder, extra=None):
        """A clean environment for code inside: the toolchain, a home in /tmp."""
        env = {
            "PATH": f"{self.sysroot}/bin:/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "RUSTUP_TOOLCHAIN": os.path.basename(self.sysroot),
        }
        env["CARGO_HOME"] = self.cargo_home
        env["TMPDIR"] = "/tmp"
        for key in ("RUST_LOG", "RUST_BACKTRACE"):
            if key in os.environ:
                env[key] = os.environ[key]
        env.update(extra or {})
        return env

    def command(self, argv, writable, uid, extra_ro=(), cwd="/tmp"):
        """The full command line: bwrap and the drop to `uid`, then argv,
        started in `cwd` (a path visible inside)."""
        if not self.enabled:
            return list(argv)
        cmd = ["bwrap", "--die-with-parent", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
               "--hostname", "sandbox", "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
        for path in ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/lib32"):
            cmd += ["--ro-bind-try", path, path]
        binds = [("--ro-bind", self.sysroot)]
        # Cargo's home at its own path (build fingerprints hold the registry's
        # path), writable for cargo's locks, with the registry read-only.
        cmd += ["--perms", "1777", "--tmpfs", self.cargo_home]
        registry = os.path.join(self.cargo_home, "registry")
        if os.path.isdir(registry):
            binds.append(("--ro-bind", registry))
        binds += [("--ro-bind", path) for path in extra_ro] + [("--bind", path) for path in writable]
        made = set()
        bound = [path for _, path in binds]
        for how, path in binds:
            # Its parents inside, searchable by the sandbox user (bwrap would
            # copy the modes of the real ones, /root's 0700 say); not those
            # that are (inside) another bind.
            for parent in ancestors(path):
                inside_bind = any(parent == b or parent.startswith(b + "/") for b in bound)
                if parent not in made and not parent.startswith(SYSTEM_DIRS) and not inside_bind:
                    made.add(parent)
                    cmd += ["--perms", "0755", "--dir", parent]
            cmd += [how, path, path]
        cmd += ["--chdir", cwd]
        if uid is not None and os.geteuid() == 0:
            cmd += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                    "--bounding-set=-all", "--"]
        return cmd + list(argv)

    def run(self, argv, cwd, writable, env=None, timeout=None, purpose="run"):
        """Runs to completion (a build); returns the CompletedProcess."""
        folder = writable[0] if writable else None
        uid = self.uid_for(folder) if folder else None
        cmd = self.command(argv, writable, uid, cwd=cwd)
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env=self.environment(folder, env) if self.enabled else dict(os.environ, **(env or {})),
                              preexec_fn=self.limit_processes)

    def scratch(self, folder):
        """The one folder a run may write (a page, a trace): folder/scratch."""
        path = os.path.join(folder, "scratch")
        os.makedirs(path, exist_ok=True)
        if self.enabled and os.geteuid() == 0:
            uid = self.uid_for(folder)
            os.chown(path, uid, uid)
        return path

    def popen_args(self, argv, folder, extra_env=None, extra_ro=()):
        """(command, environment) for a run the caller supervises: it sees
        its submission's folder read-only (its labtest), and may write only
        that folder's scratch/."""
        if not self.enabled:
            return list(argv), dict(os.environ, **(extra_env or {}))
        uid = self.uid_for(folder)
        scratch = self.scratch(folder)
        return (self.command(argv, [scratch], uid, extra_ro=[folder, *extra_ro], cwd=scratch),
                self.environment(folder, extra_env))

    def limit_processes(self):
        """For preexec: the process-count limit of the sandbox user."""
        if self.enabled:
            import resource
            resource.setrlimit(resource.RLIMIT_NPROC, (self.processes, self.processes))
