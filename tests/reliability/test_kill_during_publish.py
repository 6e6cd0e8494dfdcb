"""kill -9 during multi-entity publishes: after restart, each publish is all or nothing."""

from __future__ import annotations

import os

import pytest

from gitstore import Store, content
from gitstore.entities import api as entities
from gitstore.storage import journal
from gitstore.storage.api import entity_path
from gitstore.upkeep.repair import repair
from tests.conftest import ADA, fsck_strict, git
from tests.reliability.children import run_until_killed
from tests.reliability.power_cut import lose_what_was_not_flushed
from tests.reliability.publish_child import KEYS
from tests.reliability.publishers_child import KEYS as THREADED_KEYS

RUNS = 10


def test_kill_9_during_publishes_never_leaves_half_a_publish(store: Store) -> None:
    repo = store.create_repository("demo")
    for key in KEYS:
        content.put_draft(repo, key, {"type": "page", "title": "round-0"}, author=ADA)
    content.publish_all_drafts(repo, author=ADA)
    acked = 0
    killed_mid_publish = 0
    for run in range(RUNS):
        lines = run_until_killed("tests.reliability.publish_child", store.data_dir, run)
        if lines:
            acked = int(lines[-1].split()[1])
        # "restart": a fresh process view of the store, repaired as the service does at startup
        repo = Store(store.data_dir).repository("demo")
        report = repair(repo)
        killed_mid_publish += report.rolled_forward_publish or bool(report.removed_locks)
        live = {key: entities.get_entity(repo, key) for key in KEYS}
        rounds = {e.title for e in live.values()}
        assert len(rounds) == 1, f"run {run}: a publish was half applied: {sorted(rounds)}"
        assert int(rounds.pop().removeprefix("round-")) >= acked  # nothing acknowledged was lost
        for key, entity in live.items():
            ref = git(repo.path, "rev-parse", f"refs/published/{key}").strip()
            assert (
                ref
                == entity.commit
                == repo.index._db().execute("SELECT published_commit FROM entities WHERE key=?", (key,)).fetchone()[0]
            )
            assert git(repo.path, "rev-parse", f"main:{entity_path(key)}") == git(
                repo.path, "rev-parse", f"{ref}^{{tree}}"
            )
        assert not list(repo.path.glob("refs/**/*.lock"))
        fsck_strict(repo.path)
    # after all that, the repository still takes writes and publishes
    content.patch_draft(repo, KEYS[0], {"title": "after"}, author=ADA)
    record = content.publish_all_drafts(repo, author=ADA)
    assert any(i.key == KEYS[0] for i in record.items)
    assert entities.get_entity(repo, KEYS[0]).title == "after"
    print(f"kill -9 runs: {RUNS}, acked rounds: {acked}, runs that needed repair: {killed_mid_publish}")


@pytest.mark.parametrize("method", ["default", "journal"])
def test_kill_9_during_group_publishes_loses_no_acknowledged_publish(store: Store, method: str) -> None:
    """Publisher threads whose publishes land in rounds of several commits in one durable move:
    after a kill (with the journal, then a power cut) and a restart, every acknowledged publish
    is live (or a later one), the published refs and the index agree with main, and the
    publish log holds every commit."""
    repo = store.create_repository("demo")
    keys = [key for thread in THREADED_KEYS for key in thread]
    for key in keys:
        content.put_draft(repo, key, {"type": "page", "title": "round-0"}, author=ADA)
    content.publish_all_drafts(repo, author=ADA)
    env = {**os.environ, "GITSTORE_FSYNC": "journal"} if method == "journal" else None
    acked: dict[str, int] = {}
    for run in range(RUNS):
        for line in run_until_killed("tests.reliability.publishers_child", store.data_dir, run, env):
            _, key, title = line.split()
            acked[key] = max(acked.get(key, 0), int(title))
        if method == "journal":
            lose_what_was_not_flushed(repo.path)
            journal.forget_journals()
        repo = Store(store.data_dir).repository("demo")  # a restart: any journal is replayed
        repair(repo)
        for key in keys:
            entity = entities.get_entity(repo, key)
            assert int(entity.title.removeprefix("round-")) >= acked.get(key, 0), f"run {run}: {key} lost a publish"
            ref = git(repo.path, "rev-parse", f"refs/published/{key}").strip()
            indexed = repo.index._db().execute("SELECT published_commit FROM entities WHERE key=?", (key,)).fetchone()
            assert ref == entity.commit == indexed[0]
            assert git(repo.path, "rev-parse", f"main:{entity_path(key)}") == git(
                repo.path, "rev-parse", f"{ref}^{{tree}}"
            )
        on_main = git(repo.path, "rev-list", "--first-parent", "main").split()
        logged = repo.index._db().execute("SELECT count(*) FROM publishes").fetchone()[0]
        assert logged == len(on_main), f"run {run}: the publish log misses commits of main"
        assert repo.index.meta("main_head") == on_main[0]
        assert not list(repo.path.glob("refs/**/*.lock"))
        fsck_strict(repo.path)
    journal.forget_journals()
    print(f"kill -9 runs ({method}): {RUNS}, publishes acknowledged: {sum(acked.values())}")
