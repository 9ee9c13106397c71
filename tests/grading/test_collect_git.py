"""Submissions from git, as the handout says students submit: the last
commit on lab-raft-solution whose message starts with "submit" (lower
case), not after the deadline; the files it changes besides server.rs
against the lab's base are breaches of rule 1. The repositories are made
here with git: several students, late commits, "Submit" with a capital, a
commit touching wrappers.rs, an empty repository, a bare one."""
import os
import subprocess

import pytest

from grading import collect
from grading.paths import GradeError

SERVER = "src/protocol/rust_raft/server.rs"


def git(repo, *args, date=None):
    env = dict(os.environ, GIT_AUTHOR_NAME="s", GIT_AUTHOR_EMAIL="s@x", GIT_COMMITTER_NAME="s",
               GIT_COMMITTER_EMAIL="s@x")
    if date:
        env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True, env=env).stdout


def commit(repo, files, message, date):
    for path, text in files.items():
        full = os.path.join(repo, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
        git(repo, "add", path)
    git(repo, "commit", "-q", "-m", message, date=date)
    return git(repo, "rev-parse", "HEAD").strip()


def lab(repo):
    """The lab as handed out: the skeleton and the glue, on main."""
    os.makedirs(repo)
    git(repo, "init", "-q", "-b", "main")
    return commit(repo, {SERVER: "// skeleton\n", "src/protocol/rust_raft/wrappers.rs": "// DO NOT MODIFY\n",
                         "README": "lab\n"}, "lab handed out", "2026-11-01T10:00:00+00:00")


@pytest.fixture
def class_of_students(tmp_path):
    repos = {}
    # alice: two submit commits, a later plain commit: the later submit counts.
    alice = str(tmp_path / "alice")
    lab(alice)
    git(alice, "checkout", "-q", "-b", "lab-raft-solution")
    commit(alice, {SERVER: "// alice 1\n"}, "submit first try", "2026-11-20T10:00:00+00:00")
    commit(alice, {SERVER: "// alice 2\n"}, "submit: final", "2026-11-25T10:00:00+00:00")
    commit(alice, {SERVER: "// alice wip\n"}, "wip after submitting", "2026-11-26T10:00:00+00:00")
    repos["alice"] = alice
    # bob: his last submit commit is after the deadline; the one before is not.
    bob = str(tmp_path / "bob")
    lab(bob)
    git(bob, "checkout", "-q", "-b", "lab-raft-solution")
    commit(bob, {SERVER: "// bob on time\n"}, "submit", "2026-11-30T23:00:00-05:00")
    commit(bob, {SERVER: "// bob late\n"}, "submit fix", "2026-12-02T09:00:00-05:00")
    repos["bob"] = bob
    # carol: "Submit" with a capital only: no submission.
    carol = str(tmp_path / "carol")
    lab(carol)
    git(carol, "checkout", "-q", "-b", "lab-raft-solution")
    commit(carol, {SERVER: "// carol\n"}, "Submit the lab", "2026-11-28T10:00:00+00:00")
    repos["carol"] = carol
    # dave: his submit commit also changes wrappers.rs and adds a file.
    dave = str(tmp_path / "dave")
    lab(dave)
    git(dave, "checkout", "-q", "-b", "lab-raft-solution")
    commit(dave, {SERVER: "// dave\n", "src/protocol/rust_raft/wrappers.rs": "// changed\n",
                  "src/protocol/rust_raft/helper.rs": "// added\n"}, "submit with helpers", "2026-11-29T10:00:00+00:00")
    repos["dave"] = dave
    # erin: an empty repository.
    erin = str(tmp_path / "erin")
    os.makedirs(erin)
    git(erin, "init", "-q")
    repos["erin"] = erin
    # frank: a bare repository pushed to.
    frank_work = str(tmp_path / "frank-work")
    lab(frank_work)
    git(frank_work, "checkout", "-q", "-b", "lab-raft-solution")
    commit(frank_work, {SERVER: "// frank\n"}, "submit", "2026-11-27T10:00:00+00:00")
    frank = str(tmp_path / "frank.git")
    subprocess.run(["git", "clone", "-q", "--bare", frank_work, frank], check=True)
    repos["frank"] = frank
    return repos


def by_name(subs):
    return {s.name: s for s in subs}


def test_each_students_chosen_commit(class_of_students, tmp_path):
    repos = class_of_students
    subs = by_name(collect.from_git([repos[n] for n in ("alice", "bob", "carol", "dave", "erin", "frank")], None,
                                    "2026-12-01 23:59 -0500", None, str(tmp_path / "out")))
    assert open(subs["alice"].server_rs).read() == "// alice 2\n"
    assert subs["alice"].origin["message"] == "submit: final"
    assert subs["alice"].origin["date"].startswith("2026-11-25T10:00:00")
    assert open(subs["bob"].server_rs).read() == "// bob on time\n"  # the late one is past the deadline
    assert subs["carol"].no_submission == "no commit on lab-raft-solution whose message starts with 'submit' before " \
                                         "2026-12-01 23:59 -0500"
    assert subs["erin"].no_submission == "no branch lab-raft-solution"
    assert open(subs["frank"].server_rs).read() == "// frank\n"  # bare repositories too
    assert subs["frank"].name == "frank"  # named without .git
    assert subs["alice"].rule1 == [] and subs["frank"].rule1 == []
    assert subs["dave"].rule1 == [
        "src/protocol/rust_raft/helper.rs: created (only src/protocol/rust_raft/server.rs may change)",
        "src/protocol/rust_raft/wrappers.rs: changed (only src/protocol/rust_raft/server.rs may change)"]


def test_without_a_deadline_the_last_submit_counts(class_of_students, tmp_path):
    subs = by_name(collect.from_git([class_of_students["bob"]], None, None, None, str(tmp_path / "out")))
    assert open(subs["bob"].server_rs).read() == "// bob late\n"


def test_a_list_names_the_repositories(class_of_students, tmp_path):
    listing = tmp_path / "class.txt"
    listing.write_text(f"# the class\nstudent-1 {class_of_students['alice']}\n\nstudent-2 {class_of_students['dave']}\n")
    subs = collect.from_git([], str(listing), None, None, str(tmp_path / "out"))
    assert [s.name for s in subs] == ["student-1", "student-2"]


def test_the_base_is_the_merge_base_with_the_labs_branch_when_there_is_one(class_of_students, tmp_path):
    # A clone whose origin has raft-lab-26 moved on after the student forked:
    # files the lab changed later are not the student's changes.
    upstream = str(tmp_path / "upstream")
    lab(upstream)
    git(upstream, "branch", "raft-lab-26")
    student = str(tmp_path / "grace")
    subprocess.run(["git", "clone", "-q", upstream, student], check=True)
    git(upstream, "checkout", "-q", "raft-lab-26")
    commit(upstream, {"README": "lab, updated\n"}, "lab: fix the handout", "2026-11-15T10:00:00+00:00")
    git(student, "checkout", "-q", "-b", "lab-raft-solution")
    commit(student, {SERVER: "// grace\n"}, "submit", "2026-11-20T10:00:00+00:00")
    git(student, "fetch", "-q", "origin")
    subs = by_name(collect.from_git([student], None, None, None, str(tmp_path / "out")))
    assert subs["grace"].rule1 == []
    assert "merge-base with origin/raft-lab-26" in subs["grace"].origin["base"]


def test_bad_input_is_a_clear_error(class_of_students, tmp_path):
    with pytest.raises(GradeError, match="no such repository"):
        collect.from_git([str(tmp_path / "nobody")], None, None, None, str(tmp_path / "out"))
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(GradeError, match="is not a git repository"):
        collect.from_git([str(plain)], None, None, None, str(tmp_path / "out"))
    with pytest.raises(GradeError, match="expected a date with its time zone"):
        collect.from_git([class_of_students["alice"]], None, "next friday", None, str(tmp_path / "out"))
    bad_list = tmp_path / "bad.txt"
    bad_list.write_text("only-a-name\n")
    with pytest.raises(GradeError, match="bad.txt:1: expected 'NAME PATH'"):
        collect.from_git([], str(bad_list), None, None, str(tmp_path / "out"))
    with pytest.raises(GradeError, match="--base 'nope' is not a commit"):
        collect.from_git([class_of_students["alice"]], None, None, "nope", str(tmp_path / "out"))


def test_the_collected_server_rs_survives_clearing_the_folder_for_a_build(class_of_students, tmp_path):
    # A build clears the submission's folder of an earlier grade's files;
    # the server.rs taken from the commit lives there and must stay.
    from grading import build
    out = tmp_path / "out"
    subs = by_name(collect.from_git([class_of_students["alice"]], None, None, None, str(out), set()))
    folder = out / "alice"
    (folder / "build.log").write_text("an earlier grade's\n")
    (folder / "target").mkdir()
    build.clear_folder(str(folder))
    assert sorted(os.listdir(folder)) == ["submitted"]
    assert open(subs["alice"].server_rs).read() == "// alice 2\n"
