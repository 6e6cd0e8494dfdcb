"""kill -9 during draft batches and container-tree publishes: after restart, each batch and
each publish of the 4-level tree is all or nothing, and nothing acknowledged is lost."""

from __future__ import annotations

from gitstore import Store
from gitstore.containers import api as containers
from gitstore.containers.api import View
from gitstore.entities import api as entities
from gitstore.upkeep.repair import repair
from tests.conftest import ADA, fsck_strict
from tests.reliability.children import refs_of, run_until_killed
from tests.reliability.container_child import COMPONENTS, build

RUNS = 8


def _last(lines: list[str], word: str) -> int:
    found = [int(line.split()[1]) for line in lines if line.startswith(word)]
    return found[-1] if found else 0


def test_kill_9_never_leaves_half_a_batch_or_half_a_tree_publish(store: Store) -> None:
    build(store.create_repository("demo"), ADA)
    drafted = published = rolled = 0
    for run in range(RUNS):
        lines = run_until_killed("tests.reliability.container_child", store.data_dir, run)
        drafted = max(drafted, _last(lines, "drafted"))
        published = max(published, _last(lines, "published"))

        repo = Store(store.data_dir).repository("demo")  # a restart
        rolled += repair(repo).rolled_forward_batch
        drafts = {entities.get_entity(repo, k, state="draft").title for k in COMPONENTS}
        assert len(drafts) == 1, f"run {run}: half a batch: {sorted(drafts)}"
        assert int(drafts.pop().removeprefix("round-")) >= drafted
        tree = containers.resolve_tree(repo, "course", View("published"))
        live = set(_leaf_titles(tree))
        assert len(live) == 1, f"run {run}: half a tree publish: {sorted(live)}"
        assert int(live.pop().removeprefix("round-")) >= published
        refs = refs_of(repo.path)
        for key in COMPONENTS:  # the batch's own refs caught up with its commit point
            tip = str(entities.get_entity(repo, key, state="draft").commit)
            assert refs[f"refs/drafts/{key}"] == tip == repo.index.draft_commit_of(key)
        fsck_strict(repo.path)
    print(f"kill -9 runs: {RUNS}, acked batches: {drafted}, tree publishes: {published}, batches rolled: {rolled}")


def _leaf_titles(node: containers.TreeNode) -> list[str]:
    if node.members is None:
        return [node.title]
    return [t for m in node.members for t in _leaf_titles(m)]
