"""kill -9 during journal appends and during checkpoints (`GITSTORE_FSYNC=journal`), each
followed by a simulated power cut (every file the last checkpoint did not flush is lost,
some objects left empty) and a restart: the replay brings back every acknowledged write,
and `git fsck --strict` is clean. `GITSTORE_KILL_RUNS` (`make crash`) runs more rounds."""

from __future__ import annotations

import os

import pytest

from gitstore import Store, content
from gitstore.storage import journal
from gitstore.upkeep.repair import repair
from tests.conftest import ADA, fsck_strict, git
from tests.reliability.children import refs_of, run_until_killed
from tests.reliability.journal_child import KEYS
from tests.reliability.power_cut import lose_what_was_not_flushed

RUNS = int(os.environ.get("GITSTORE_KILL_RUNS", "4"))


@pytest.mark.timeout(60 + 15 * RUNS)
@pytest.mark.parametrize(
    "where",
    [
        pytest.param({"JOURNAL_CHILD_CHECKPOINTS": "0", "GITSTORE_JOURNAL_BYTES": str(1 << 30)}, id="appends"),
        pytest.param({"JOURNAL_CHILD_CHECKPOINTS": "1", "GITSTORE_JOURNAL_BYTES": "4000"}, id="checkpoints"),
    ],
)
def test_kill_9_then_a_power_cut_loses_no_acknowledged_write(store: Store, where: dict[str, str]) -> None:
    repo = store.create_repository("demo")
    for key in KEYS:
        content.put_draft(repo, key, {"type": "page", "title": key}, author=ADA)
    env = {**os.environ, "GITSTORE_FSYNC": "journal", **where}
    acked: dict[str, str] = {}  # commit -> key
    lost = 0
    for run in range(RUNS):
        for line in run_until_killed("tests.reliability.journal_child", store.data_dir, run, env):
            _, key, commit = line.split()
            acked[commit] = key
        lost += len(lose_what_was_not_flushed(repo.path).objects)
        journal.forget_journals()
        repo = Store(store.data_dir).repository("demo")  # a restart: the journal is replayed
        repair(repo)
        refs = refs_of(repo.path)
        for commit, key in acked.items():
            assert git(repo.path, "merge-base", "--is-ancestor", commit, f"refs/drafts/{key}") == "", (run, key)
        for key in set(acked.values()):
            assert repo.index.draft_commit_of(key) == refs[f"refs/drafts/{key}"]
        assert not list(repo.path.glob("refs/**/*.lock"))
        fsck_strict(repo.path)
    journal.forget_journals()
    assert len(acked) >= RUNS and lost > 0  # the cuts took objects only the journal still had
    print(f"journal kill -9 runs: {RUNS}, acked writes: {len(acked)}, objects lost and replayed: {lost}")
