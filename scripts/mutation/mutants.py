"""Mutants: what raft-mutate makes of a server.rs, a deterministic sample
of them, and the list of mutants a person marked equivalent (they cannot
change behaviour), with the reason."""
import json
import os
import random
import subprocess


class MutationError(Exception):
    pass


def listed(tool, server_rs, modules):
    """Every mutant of server_rs, as raft-mutate lists them."""
    argv = [tool, server_rs] + (["--modules", ",".join(modules)] if modules else [])
    run = subprocess.run(argv, capture_output=True, text=True)
    if run.returncode != 0:
        raise MutationError(f"raft-mutate failed on {server_rs}: {run.stderr.strip()}")
    return json.loads(run.stdout)


def sample(mutants, count, seed):
    """`count` of them (all if count is 0 or more than there are), chosen
    by `seed` evenly across operators, in source order."""
    if not count or count >= len(mutants):
        return list(mutants)
    rng = random.Random(seed)
    by_operator = {}
    for m in mutants:
        by_operator.setdefault(m["operator"], []).append(m)
    chosen = []
    # Each operator its share (at least one), the rest by lot.
    for group in by_operator.values():
        share = max(1, round(count * len(group) / len(mutants)))
        chosen += rng.sample(group, min(share, len(group)))
    if len(chosen) > count:
        chosen = rng.sample(chosen, count)
    return sorted(chosen, key=lambda m: (m["start"], m["end"], m["to"]))


def apply(source_bytes, mutant):
    """The file's bytes with the mutant applied (offsets are byte offsets)."""
    return source_bytes[:mutant["start"]] + mutant["to"].encode() + source_bytes[mutant["end"]:]


def _listed_lines(path):
    """(line number, mutant id, the rest after a tab) for each line of a
    list of mutants; blank lines and lines starting with '#' are skipped."""
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            mutant_id, _, rest = line.partition("\t")
            yield number, mutant_id.strip(), rest.strip()


def load_equivalents(path):
    """{mutant id: reason} from a checked-in list: one mutant per line,
    'ID<TAB>REASON'; '#' starts a comment line. A line without a reason is
    refused: a person must say why the mutant cannot change behaviour."""
    if not path or not os.path.isfile(path):
        return {}
    marked = {}
    for number, mutant_id, reason in _listed_lines(path):
        if not reason:
            raise MutationError(f"{path}:{number}: no reason given (expected 'ID<TAB>REASON')")
        marked[mutant_id] = reason
    return marked


# What a person found a surviving mutant to be (tests/mutation/survivors.txt).
# The first three are not bugs a sound grade could fail; the last three are.
KINDS = {
    "progress": "correct Raft: only when or how often it sends, sleeps, campaigns or commits changes",
    "defended": "another guard (named) decides the same in every lab schedule",
    "teardown": "only the teardown after the suite's verdict changes",
    "liveness": "a bug: safe, but in some schedule progress stops",
    "safety": "a bug: in some schedule a Figure 2 guarantee breaks",
    "unused": "a bug in code the lab suite never calls",
}
NOT_BUGS = ("progress", "defended", "teardown")


def load_classified(path):
    """{mutant id: (kind, reason)} from a checked-in list of survivors a
    person reviewed: 'ID<TAB>KIND<TAB>REASON' per line, KIND one of KINDS.
    A line without a known kind or a reason is refused."""
    if not path or not os.path.isfile(path):
        return {}
    classified = {}
    for number, mutant_id, rest in _listed_lines(path):
        kind, _, reason = rest.partition("\t")
        kind, reason = kind.strip(), reason.strip()
        if kind not in KINDS:
            raise MutationError(f"{path}:{number}: kind '{kind}' is none of {', '.join(KINDS)} "
                                f"(expected 'ID<TAB>KIND<TAB>REASON')")
        if not reason:
            raise MutationError(f"{path}:{number}: no reason given (expected 'ID<TAB>KIND<TAB>REASON')")
        classified[mutant_id] = (kind, reason)
    return classified


def load_ids(path):
    """The set of mutant ids a file lists, one per line ('#' starts a
    comment line; anything after a tab is ignored, so an equivalent list
    or a report's ids can be given as they are)."""
    if not os.path.isfile(path):
        raise MutationError(f"--only: '{path}' is not a file")
    ids = {mutant_id for _, mutant_id, _ in _listed_lines(path) if mutant_id}
    if not ids:
        raise MutationError(f"--only: '{path}' lists no mutant id")
    return ids
