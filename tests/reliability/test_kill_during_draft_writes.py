"""kill -9 during plain draft writes, single and batched: after the restart's repair, every
acknowledged write is on its branch, in the index and in `draft`; a batch is all or nothing;
no lock is left; `git fsck --strict` is clean."""

from __future__ import annotations

import pytest

from gitstore import Store, content
from gitstore.entities import api as entities
from gitstore.storage.api import entity_path
from gitstore.upkeep.repair import repair
from tests.conftest import ADA, fsck_strict, git
from tests.reliability.children import refs_of, run_until_killed
from tests.reliability.draft_child import BATCHED, SINGLES

RUNS = 10


@pytest.mark.timeout(60)
def test_kill_9_during_draft_writes_loses_no_acknowledged_write(store: Store) -> None:
    repo = store.create_repository("demo")
    for key in SINGLES:
        content.put_draft(repo, key, {"type": "page", "title": key}, author=ADA)
    for key in BATCHED:
        content.put_draft(repo, key, {"type": "page", "title": "batch-0"}, author=ADA)
    acked: dict[str, str] = {}  # commit -> key, every single write acknowledged so far
    batched = repaired = 0
    for run in range(RUNS):
        for line in run_until_killed("tests.reliability.draft_child", store.data_dir, run):
            kind, *rest = line.split()
            if kind == "single":
                acked[rest[1]] = rest[0]
            else:
                batched = int(rest[0])

        repo = Store(store.data_dir).repository("demo")  # a restart
        report = repair(repo)
        repaired += bool(report.reindexed_drafts or report.removed_locks or report.rolled_forward_batch)
        titles = {entities.get_entity(repo, key, state="draft").title for key in BATCHED}
        assert len(titles) == 1, f"run {run}: half a batch: {sorted(titles)}"
        assert int(titles.pop().removeprefix("batch-")) >= batched
        refs = refs_of(repo.path)
        logged = {row[0] for row in repo.index._db().execute("SELECT commit_id FROM changes")}
        for commit, key in acked.items():
            assert git(repo.path, "merge-base", "--is-ancestor", commit, f"refs/drafts/{key}") == ""
            assert commit in logged, f"run {run}: {key} {commit} missing from the activity log"
        for key in SINGLES + BATCHED:  # the index and the `draft` branch caught up with each ref
            tip = refs[f"refs/drafts/{key}"]
            assert repo.index.draft_commit_of(key) == tip
            assert git(repo.path, "rev-parse", f"refs/heads/draft:{entity_path(key)}") == git(
                repo.path, "rev-parse", f"{tip}^{{tree}}"
            )
        folded = [line for line in git(repo.path, "log", "--format=%B", "draft").splitlines() if "-Folded: " in line]
        assert len(folded) == len(set(folded)), f"run {run}: a change folded into `draft` twice"
        assert not list(repo.path.glob("refs/**/*.lock")) and not (repo.path / "packed-refs.lock").exists()
        fsck_strict(repo.path)
    assert len(acked) >= RUNS and batched > 0
    print(f"kill -9 runs: {RUNS}, acked single writes: {len(acked)}, batches: {batched}, needed repair: {repaired}")
