"""kill -9 during imports: after restart each import is all or nothing, pinned versions
included, and nothing acknowledged is lost."""

from __future__ import annotations

from gitstore import Store
from gitstore.entities import api as entities
from gitstore.upkeep.repair import repair
from tests.bundles.import_child import COMPONENTS
from tests.conftest import fsck_strict
from tests.reliability.children import refs_of, run_until_killed

RUNS = 10


def test_kill_9_never_leaves_half_an_import(store: Store) -> None:
    store.create_repository("demo")
    acknowledged, rolled = -1, 0
    for run in range(1, RUNS + 1):
        lines = run_until_killed("tests.bundles.import_child", store.data_dir, run)
        if lines:
            acknowledged = int(lines[-1].split()[1])

        repo = Store(store.data_dir).repository("demo")  # a restart
        rolled += repair(repo).rolled_forward_batch
        if repo.index.draft_commit_of("unit") is None:
            continue  # killed before the first import landed
        titles = {entities.get_entity(repo, k, state="draft").title for k in [*COMPONENTS, "unit"]}
        assert len(titles) == 1, f"run {run}: half an import: {sorted(titles)}"
        landed = int(titles.pop().removeprefix("round-"))
        assert landed >= acknowledged
        pinned = entities.get_entity(repo, "unit", state="draft").members[0]
        old = entities.get_entity(repo, pinned.key, commit=pinned.pin)
        assert old.title == f"pinned round-{landed}"  # the carried version landed with its batch
        refs = refs_of(repo.path)
        for key in [*COMPONENTS, "unit"]:
            tip = entities.get_entity(repo, key, state="draft").commit
            assert refs[f"refs/drafts/{key}"] == tip == repo.index.draft_commit_of(key)
        fsck_strict(repo.path)
    assert acknowledged >= 0, "no run acknowledged an import: the child fails before it is killed"
    print(f"kill -9 runs: {RUNS}, last acknowledged import: {acknowledged}, batches rolled forward: {rolled}")
