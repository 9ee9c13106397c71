"""State: what a grade (or one shard of it) found per submission, saved as
NAME/state.json beside its summary, so that `scripts/grade merge` can put
shards together into exactly what one process would have reported: the
summaries are computed from the same runs by the same code.

A shard folder also holds shard.json: which part it was, what it was to
grade, and, once it is done, that it completed."""
import json
import os

from .collect import Submission

FIELDS = ["name", "server_rs", "folder", "flags", "origin", "no_submission", "built", "build_error", "build_seconds",
          "warnings", "labtest", "runs", "determinism", "timeline", "stopped_early", "rules", "syscalls", "rule1", "index"]


def save(sub, out):
    folder = os.path.join(out, sub.name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "state.json"), "w") as f:
        json.dump({field: getattr(sub, field) for field in FIELDS}, f)


def load(path):
    with open(path) as f:
        data = json.load(f)
    sub = Submission(data["name"], data["server_rs"], data.get("folder"))
    for field in FIELDS:
        if field in data:
            setattr(sub, field, data[field])
    return sub


def write_shard(out, shard, total, planned, args_line, complete):
    """shard.json: part `shard` of `total`, the submission names (and seeds)
    it was to grade, and whether it finished."""
    with open(os.path.join(out, "shard.json"), "w") as f:
        json.dump({"shard": shard, "of": total, "planned": planned, "args": args_line, "complete": complete}, f, indent=2)


def read_shard(folder):
    path = os.path.join(folder, "shard.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)
