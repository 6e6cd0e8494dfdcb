"""Group publishing: publishes queued for the publish lock land together, one commit each on
`main` in the order they queued, and what one at a time would give; a publish that must go
alone gets a round of its own."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from gitstore import ContentRepository, Store, content
from gitstore.entities import api as entities
from gitstore.entities import commit_queue
from gitstore.entities.api import IfMatch
from gitstore.entities.snapshots import draft_tip
from gitstore.errors import Busy, StaleVersion
from gitstore.publishing import landing
from gitstore.publishing.api import PublishRecord, PublishTarget
from gitstore.storage.api import LockBudget
from tests.conftest import ADA, GRACE, fsck_strict, git, held_flock
from tests.entities.test_commit_queue import Writers, hold_lock, page, recorded_moves, until


class Publishers(Writers):
    """Publisher threads started one by one while the publish lock is held elsewhere."""

    def queued(self) -> list[commit_queue.Job]:
        return list(commit_queue._queues.get(f"{self.repo.path}#publish", []))


@pytest.fixture
def moves(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The refs each durable move of a round moved, in order."""
    return recorded_moves(monkeypatch, landing)


def publish(repo: ContentRepository, key: str, **target: Any) -> PublishRecord:
    return content.publish(repo, [PublishTarget(key, **target)], author=ADA)


def main_log(repo: ContentRepository) -> list[str]:
    return git(repo.path, "log", "--reverse", "--format=%s", "main").splitlines()


def test_publishes_queued_together_land_in_one_round(repo: ContentRepository, moves: list[list[str]]) -> None:
    keys = ["p1", "p2", "p3", "p4", "p5"]
    for key in keys:
        content.put_draft(repo, key, page(key, f"/{key}"), author=ADA)
    content.put_draft(repo, "waiting", page("waiting"), author=GRACE)  # a change to fold
    release, holder = hold_lock(repo.storage.publish_lock)
    publishers = Publishers(repo)
    for key in keys:
        publishers.queue(key, lambda key=key: publish(repo, key))
    release.set()
    holder.join()
    publishers.join()

    # one durable move: the fold, main, then each published ref
    assert moves == [["refs/heads/draft", "refs/heads/main", *(f"refs/published/{key}" for key in keys)]]
    assert main_log(repo) == [f"Publish {key} version 1" for key in keys]  # one commit each, as queued
    drafts = set()
    for key, record in publishers.outcomes.items():
        assert [item.key for item in record.items] == [key]
        message = git(repo.path, "log", "-1", "--format=%B", record.commit)
        assert f"Gitstore-Published: {key} {draft_tip(repo, key)}" in message
        drafts |= {line for line in message.splitlines() if line.startswith("Gitstore-Drafts: ")}
        assert entities.get_entity(repo, key, state="published").title == key
    # all went live in one instant, after the change that waited was folded into `draft`
    assert drafts == {f"Gitstore-Drafts: {git(repo.path, 'rev-parse', 'draft').strip()}"}
    assert "waiting" in git(repo.path, "ls-tree", "-r", "--name-only", "draft")
    assert repo.index.meta("main_head") == git(repo.path, "rev-parse", "main").strip()
    assert [row.commit for _, row in repo.index.publishes(limit=10)][::-1] == [
        publishers.outcomes[key].commit for key in keys
    ]
    fsck_strict(repo.path)


def test_a_publish_that_must_go_alone_gets_its_own_round(repo: ContentRepository, moves: list[list[str]]) -> None:
    content.put_draft(repo, "x", page("x", "/x"), author=ADA)
    publish(repo, "x")
    content.put_draft(repo, "x", page("x moved", "/y"), author=ADA)
    content.put_draft(repo, "z", page("z", "/x"), author=ADA)  # takes the path x leaves
    for key in ("a", "b", "c", "d", "member"):
        content.put_draft(repo, key, page(key), author=ADA)
    content.put_draft(repo, "box", {"type": "container", "title": "Box", "members": [{"key": "member"}]}, author=ADA)
    moves.clear()
    release, holder = hold_lock(repo.storage.publish_lock)
    publishers = Publishers(repo)
    publishers.queue("a", lambda: publish(repo, "a"))
    publishers.queue("a again", lambda: publish(repo, "a"))  # its key is a's: after a has landed
    publishers.queue("x", lambda: publish(repo, "x"))
    publishers.queue("z", lambda: publish(repo, "z"))  # the path x leaves: after x has landed
    publishers.queue("stale", lambda: publish(repo, "b", expected=IfMatch("0" * 40)))  # fails alone
    publishers.queue("box", lambda: publish(repo, "box"))  # brings its member: alone
    publishers.queue("c", lambda: publish(repo, "c"))
    publishers.queue("all", lambda: content.publish_all_drafts(repo, author=ADA))  # alone
    publishers.queue("d", lambda: publish(repo, "d"))
    release.set()
    holder.join()
    publishers.join()

    out = publishers.outcomes
    assert isinstance(out["stale"], StaleVersion)
    assert out["a again"].commit is None and out["d"].commit is None  # nothing left to publish
    assert [item.key for item in out["box"].items] == ["box", "member"]
    assert [item.key for item in out["all"].items] == ["b", "d"]
    landed = [
        [ref.removeprefix("refs/published/") for ref in refs if ref.startswith("refs/published/")] for refs in moves
    ]
    assert landed == [["a"], ["x"], ["z"], ["box", "member"], ["c"], ["b", "d"]]
    assert entities.get_entity(repo, "z", state="published").base_path == "/x"
    assert entities.get_entity(repo, "x", state="published").base_path == "/y"
    fsck_strict(repo.path)


def test_many_publisher_threads_lose_nothing(repo: ContentRepository) -> None:
    """Real threads, no lock held: whatever rounds they fall into, every publish acknowledged is
    on main, and each entity is live at the last version its thread published."""
    acknowledged: dict[str, list[str]] = {}

    def publisher(n: int) -> None:
        key = f"w{n}"
        for i in range(8):
            written = content.put_draft(repo, key, page(f"{key} {i}"), author=ADA).entity.commit
            record = publish(repo, key)
            assert record.commit is not None and [(item.key, item.commit) for item in record.items] == [(key, written)]
            acknowledged.setdefault(key, []).append(record.commit)

    threads = [threading.Thread(target=publisher, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive()
    on_main = git(repo.path, "rev-list", "main").split()
    for key, commits in acknowledged.items():
        assert len(commits) == 8 and set(commits) <= set(on_main)
        assert [on_main.index(c) for c in commits] == sorted((on_main.index(c) for c in commits), reverse=True)
        assert entities.get_entity(repo, key, state="published").title == f"{key} 7"
    assert repo.index.meta("main_head") == on_main[0]
    fsck_strict(repo.path)


def test_a_publish_refused_for_a_held_lock_is_never_committed(tmp_path: Path) -> None:
    """Busy means nothing was published: the refused publish leaves the queue with its caller."""
    repo = Store(tmp_path / "data", lock_budget=LockBudget(0.3)).create_repository("demo")
    content.put_draft(repo, "late", page("late"), author=ADA)
    publishers = Publishers(repo)
    with held_flock(repo.storage.publish_lock.path):  # as another process would
        publishers.queue("late", lambda: publish(repo, "late"))
        publishers.join()
    assert isinstance(publishers.outcomes["late"], Busy)
    assert publishers.queued() == []
    assert "refs/heads/main" not in repo.storage.git.references
    assert publish(repo, "late").commit is not None
    fsck_strict(repo.path)


@pytest.mark.parametrize(
    "who, folds",
    [
        (GRACE, ["Ada Lovelace|2 changes to p, other", "Grace Hopper|Update p: title"]),
        (ADA, ["Ada Lovelace|3 changes to p, other"]),  # one author's run is one commit, as ever
    ],
)
def test_a_round_planned_before_the_drafts_lock_is_planned_again_if_a_tip_moved(
    repo: ContentRepository, who: Any, folds: list[str]
) -> None:
    """A round is planned, and the changes waiting folded, before the drafts lock is taken; a
    change landing before it is (here by the lock's holder) is what goes live, as one at a time."""
    content.put_draft(repo, "p", page("one"), author=ADA)
    content.put_draft(repo, "other", page("other"), author=ADA)  # waits to be folded
    taken, go = threading.Event(), threading.Event()

    def change_while_the_publish_waits() -> None:
        with repo.storage.drafts_lock.held():
            taken.set()
            go.wait(30)
            content.put_draft(repo, "p", page("two"), author=who)

    holder = threading.Thread(target=change_while_the_publish_waits)
    holder.start()
    assert taken.wait(10)
    outcome: list[PublishRecord] = []
    publisher = threading.Thread(target=lambda: outcome.append(publish(repo, "p")))
    publisher.start()
    until(lambda: repo.storage.drafts_lock.budget.waiting == 1)  # planned, folded ahead, waiting
    go.set()
    holder.join()
    publisher.join(timeout=30)

    assert [(item.key, item.version) for item in outcome[0].items] == [("p", 2)]
    assert entities.get_entity(repo, "p", state="published").title == "two"
    message = git(repo.path, "log", "-1", "--format=%B", "main")
    assert f"Gitstore-Drafts: {git(repo.path, 'rev-parse', 'draft').strip()}" in message
    # folded: the changes made before the lock was taken, then the one made after it
    log = git(repo.path, "log", "--reverse", "--format=%an|%s", "draft").splitlines()
    assert log == folds
    fsck_strict(repo.path)
