"""kill -9 during multi-entity publishes: after restart, each publish is all or nothing."""

from __future__ import annotations

from gitstore import Store, content
from gitstore.entities import api as entities
from gitstore.storage.api import entity_path
from gitstore.upkeep.repair import repair
from tests.conftest import ADA, fsck_strict, git
from tests.reliability.children import run_until_killed
from tests.reliability.publish_child import KEYS

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
