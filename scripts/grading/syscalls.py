"""Syscalls: one real-time run of each submission watched at the system-call
level (Debian's strace, -f, inside the sandbox), listing what the
submission's code did that the framework never does: files opened for
writing, sockets made, connects, binds, new processes and programs run.
Evidence beside the static rule findings (rules.py), not a verdict.

What labtest itself does is known and left out: it opens its config and a
few /proc and /sys files for reading, loads libraries, and starts threads
(clone with CLONE_THREAD); it opens nothing for writing, makes no socket and
runs no other program. So every write-open, socket, connect, bind, fork
(clone without CLONE_THREAD) and execve after the first is the crate's."""
import os
import re
import shutil

from .paths import GradeError

TRACED = ("open,openat,openat2,creat,socket,connect,bind,fork,vfork,clone,clone3,execve,execveat,"
          "unlink,unlinkat,rmdir,rename,renameat,renameat2,mkdir,mkdirat")
# Where the framework (labtest, its libraries, the lab's crates) reads.
FRAMEWORK_READS = ("/etc/", "/lib", "/usr/", "/proc/", "/sys/", "/dev/")
CALL = re.compile(r"^(?P<pid>\d+)\s+(?P<name>\w+)\((?P<args>.*)\)\s+=\s+(?P<result>-?\d+|\?)(?P<rest>.*)$")


def strace_prefix(trace_file):
    if shutil.which("strace") is None:
        raise GradeError("strace is not installed (apt-get install strace), or grade with --no-syscalls", 2)
    return ["strace", "-f", "-qq", "-e", f"trace={TRACED}", "-e", "signal=none", "-o", trace_file]


def _string_arg(args, index=0):
    found = re.findall(r'"((?:[^"\\]|\\.)*)"', args)
    return found[index] if len(found) > index else "?"


def evidence(trace_text):
    """What the traced run did beyond the framework's own: a list of lines,
    each with how many times."""
    counts = {}
    order = []
    execs = 0

    def note(text):
        if text not in counts:
            counts[text] = 0
            order.append(text)
        counts[text] += 1

    for line in trace_text.splitlines():
        m = CALL.match(line.strip())
        if not m:
            continue
        name, args, result, rest = m["name"], m["args"], m["result"], m["rest"]
        failed = result.startswith("-")
        outcome = f" (failed: {rest.strip()})" if failed and rest.strip() else (" (failed)" if failed else "")
        if name in ("open", "openat", "openat2", "creat"):
            flags = args
            path = _string_arg(args)
            writing = name == "creat" or any(f in flags for f in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"))
            if writing:
                note(f"opened {path} for writing{outcome}")
            elif "O_DIRECTORY" in flags:
                note(f"listed the folder {path}{outcome}")
            elif not path.startswith(FRAMEWORK_READS) and not path.endswith("raft_lab_test.yml"):
                note(f"read {path}{outcome}")
        elif name in ("unlink", "unlinkat", "rmdir"):
            note(f"deleted {_string_arg(args)}{outcome}")
        elif name in ("rename", "renameat", "renameat2"):
            note(f"renamed {_string_arg(args)}{outcome}")
        elif name in ("mkdir", "mkdirat"):
            note(f"made the folder {_string_arg(args)}{outcome}")
        elif name == "socket":
            family = args.split(",")[0].strip()
            note(f"made a socket ({family}){outcome}")
        elif name == "connect":
            address = re.search(r'sin_addr=inet_addr\("([^"]+)"\)', args)
            port = re.search(r"sin_port=htons\((\d+)\)", args)
            path = re.search(r'sun_path="([^"]*)"', args)
            where = (f"{address.group(1)}:{port.group(1) if port else '?'}" if address else
                     (path.group(1) if path else "?"))
            note(f"connected to {where}{outcome}")
        elif name == "bind":
            note(f"bound a socket{outcome}")
        elif name in ("fork", "vfork") or (name in ("clone", "clone3") and "CLONE_THREAD" not in args):
            note(f"started a process ({name}){outcome}")
        elif name in ("execve", "execveat"):
            execs += 1
            if execs > 1:
                note(f"ran the program {_string_arg(args)}{outcome}")
    return [f"{text} ({counts[text]} time{'s' if counts[text] != 1 else ''})" for text in order]


def summarize(trace_file, error=None):
    if error is not None:
        return {"error": error}
    try:
        with open(trace_file, errors="replace") as f:
            text = f.read()
    except OSError as e:
        return {"error": f"no trace ({e.strerror})"}
    return {"evidence": evidence(text), "trace": os.path.basename(trace_file)}
