"""Group commit: single changes queued for the drafts lock land together, in the order they
queued, and a change that must go alone gets a round of its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gitstore import ContentRepository, Store, content
from gitstore.entities import api as entities
from gitstore.entities import commit_queue
from gitstore.entities import rounds as entity_rounds
from gitstore.entities.api import IfMatch
from gitstore.entities.snapshots import draft_tip
from gitstore.entities.trailers import parse_repeated
from gitstore.errors import BasePathTaken, Busy, StaleVersion
from gitstore.publishing.api import PublishTarget
from gitstore.storage.api import GitRepository, LockBudget, RepoLock, init_bare
from tests.conftest import ADA, GRACE, fsck_strict, git, held_flock, settle


def page(title: str, base_path: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": "component.html", "title": title}
    if base_path is not None:
        doc["base_path"] = base_path
    return doc


class Writers:
    """Writer threads started one by one while the drafts lock is held elsewhere, each queued
    before the next starts, so the order of the queue is known."""

    def __init__(self, repo: ContentRepository) -> None:
        self.repo = repo
        self.threads: list[threading.Thread] = []
        self.outcomes: dict[str, Any] = {}

    def queue(self, name: str, write: Callable[[], Any]) -> None:
        def run() -> None:
            try:
                self.outcomes[name] = write()
            except Exception as exc:
                self.outcomes[name] = exc

        waiting = len(self.queued())
        thread = threading.Thread(target=run)
        thread.start()
        self.threads.append(thread)
        deadline = time.monotonic() + 10
        while len(self.queued()) == waiting:
            assert time.monotonic() < deadline, f"{name} never queued"
            time.sleep(0.001)

    def queued(self) -> list[commit_queue.Job]:
        return list(commit_queue._queues.get(str(self.repo.path), []))

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=30)
            assert not thread.is_alive()


def recorded_moves(monkeypatch: pytest.MonkeyPatch, module: Any, prefix: str = "") -> list[list[str]]:
    """The refs each durable move (`set_refs`, as `module` calls it) moved, in order, each
    without `prefix`."""
    moved: list[list[str]] = []
    real = module.set_refs

    def recording(git: Any, moves: Any) -> None:
        moved.append([ref.removeprefix(prefix) for ref, _, _ in moves])
        real(git, moves)

    monkeypatch.setattr(module, "set_refs", recording)
    return moved


@pytest.fixture
def rounds(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The refs each durable move of a round moved, in order."""
    return recorded_moves(monkeypatch, entity_rounds, "refs/drafts/")


def hold_drafts_lock(repo: ContentRepository) -> tuple[threading.Event, threading.Thread]:
    """Hold the drafts lock in another thread until the returned event is set."""
    return hold_lock(repo.storage.drafts_lock)


def hold_lock(lock: RepoLock) -> tuple[threading.Event, threading.Thread]:
    """Hold `lock` in another thread until the returned event is set."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock.held():
            taken.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(10)
    return release, holder


def test_changes_queued_together_land_in_one_round(repo: ContentRepository, rounds: list[list[str]]) -> None:
    release, holder = hold_drafts_lock(repo)
    writers = Writers(repo)
    for key in ["p1", "p2", "p3", "p4", "p5", "p6"]:
        who = ADA if key in ("p1", "p2", "p3") else GRACE
        writers.queue(key, lambda key=key, who=who: content.put_draft(repo, key, page(key), author=who))
    release.set()
    holder.join()
    writers.join()

    assert rounds == [["p1", "p2", "p3", "p4", "p5", "p6"]]  # one syncfs, one folder fsync
    for key, result in writers.outcomes.items():
        assert result.created and result.entity.commit == str(draft_tip(repo, key))
        assert repo.index.draft_commits()[key] == result.entity.commit
    settle(repo.path)
    # Folded in the order they queued, each under its own author: blame still names people.
    log = git(
        repo.path, "log", "--reverse", "--format=%an|%(trailers:key=Gitstore-Folded,valueonly,separator=%x2C)", "draft"
    )
    runs = [line.split("|") for line in log.splitlines() if line]
    assert [(who, [entry.split()[0] for entry in keys.split(",")]) for who, keys in runs] == [
        ("Ada Lovelace", ["p1", "p2", "p3"]),
        ("Grace Hopper", ["p4", "p5", "p6"]),
    ]
    fsck_strict(repo.path)


def test_a_change_that_must_go_alone_gets_its_own_round(repo: ContentRepository, rounds: list[list[str]]) -> None:
    content.put_draft(repo, "old", page("old"), author=ADA)
    before = draft_tip(repo, "old")
    rounds.clear()
    release, holder = hold_drafts_lock(repo)
    writers = Writers(repo)
    writers.queue("a", lambda: content.put_draft(repo, "a", page("a", "/shared"), author=ADA))
    # Takes the path `a` takes in the same round: checked after `a` has landed, it is refused.
    writers.queue("b", lambda: content.put_draft(repo, "b", page("b", "/shared"), author=ADA))
    writers.queue("c", lambda: content.put_draft(repo, "c", page("c"), author=ADA))
    # Two writers of one entity on the same tip: the second finds it moved.
    writers.queue("old1", lambda: content.put_draft(repo, "old", page("1"), author=ADA, expected=IfMatch(str(before))))
    writers.queue("old2", lambda: content.put_draft(repo, "old", page("2"), author=ADA, expected=IfMatch(str(before))))
    # A container reads its members' drafts: it goes after `c` has landed, and alone.
    unit = {"type": "unit", "title": "u", "members": [{"key": "c", "pin": None}]}
    writers.queue("u", lambda: content.put_draft(repo, "u", unit, author=ADA))
    writers.queue("d", lambda: content.put_draft(repo, "d", page("d"), author=ADA))
    release.set()
    holder.join()
    writers.join()

    out = writers.outcomes
    assert isinstance(out["b"], BasePathTaken)
    assert isinstance(out["old2"], StaleVersion)
    assert out["old1"].entity.title == "1" and out["old1"].entity.commit == str(draft_tip(repo, "old"))
    assert rounds == [["a"], ["c", "old"], ["u"], ["d"]]
    # The unit's first version pins its member as it was once `c` had landed.
    message = repo.storage.git[draft_tip(repo, "u")].message
    assert parse_repeated(message, "Initial") == [f"c {out['c'].entity.commit}"]
    for key in ["a", "c", "old", "u", "d"]:
        assert repo.index.draft_commits()[key] == str(draft_tip(repo, key))
    assert "b" not in repo.index.draft_commits()
    fsck_strict(repo.path)


def test_a_change_planned_before_a_publish_counts_its_edition_from_that_publish(repo: ContentRepository) -> None:
    """A writer plans before it queues, but the edition in its commit counts from the live
    version as it is when the change lands: a publish may come while the writer waits."""
    content.put_draft(repo, "p", page("one"), author=ADA)
    content.publish(repo, [PublishTarget("p")], author=ADA)
    assert content.put_draft(repo, "p", page("two"), author=ADA).entity.edition == 2
    taken, go = threading.Event(), threading.Event()

    def publish_while_the_writer_waits() -> None:
        with repo.storage.publish_lock.held(), repo.storage.drafts_lock.held():
            taken.set()
            go.wait(30)
            content.publish(repo, [PublishTarget("p")], author=ADA)  # "two" live, edition 2

    holder = threading.Thread(target=publish_while_the_writer_waits)
    holder.start()
    assert taken.wait(10)
    writers = Writers(repo)
    writers.queue("three", lambda: content.put_draft(repo, "p", page("three"), author=GRACE))
    go.set()
    holder.join()
    writers.join()

    written = writers.outcomes["three"]
    assert written.entity.edition == 3
    message = repo.storage.git[draft_tip(repo, "p")].message
    assert parse_repeated(message, "Edition") == ["3"]
    assert entities.get_entity(repo, "p", state="published").edition == 2
    fsck_strict(repo.path)


def test_many_writer_threads_lose_nothing(repo: ContentRepository) -> None:
    """Real threads, no lock held: whatever rounds they fall into, every change acknowledged is
    on its entity's branch, in order, and the index agrees."""
    acknowledged: dict[str, list[str]] = {}

    def writer(n: int) -> None:
        key = f"w{n}"
        commits = acknowledged.setdefault(key, [])
        for i in range(15):
            commits.append(content.put_draft(repo, key, page(f"{key} {i}"), author=ADA).entity.commit)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for key, commits in acknowledged.items():
        history = [v.commit for v in entities.list_versions(repo, key, limit=100).items]
        assert history == commits[::-1]
        assert repo.index.draft_commits()[key] == commits[-1]
    settle(repo.path)
    fsck_strict(repo.path)


def test_a_write_refused_for_a_held_lock_is_never_committed(tmp_path: Path) -> None:
    """Busy means nothing was written: the refused change leaves the queue with its caller,
    and the next round does not commit it."""
    repo = Store(tmp_path / "data", lock_budget=LockBudget(0.3)).create_repository("demo")
    writers = Writers(repo)
    with held_flock(repo.storage.drafts_lock.path):  # as another process would
        writers.queue("late", lambda: content.put_draft(repo, "late", page("late"), author=ADA))
        writers.join()
    assert isinstance(writers.outcomes["late"], Busy)
    assert writers.queued() == []
    content.put_draft(repo, "next", page("next"), author=ADA)
    assert sorted(repo.index.draft_commits()) == ["next"]
    assert "refs/drafts/late" not in repo.storage.git.references
    settle(repo.path)
    fsck_strict(repo.path)


def test_a_writer_whose_change_a_leader_took_waits_for_the_round_not_busy(tmp_path: Path) -> None:
    """A writer whose wait runs out while a leader is committing its change gets the change's
    result: Busy then would tell it nothing was written when it was."""
    place = init_bare(tmp_path / "q.git", "").path
    leader, hasty = GitRepository(place, LockBudget()), GitRepository(place, LockBudget(2))
    path, leader_lock, hasty_lock = leader.drafts_lock.path, leader.drafts_lock, hasty.drafts_lock
    rounds: list[list[str]] = []

    def commit(jobs: Any) -> list[commit_queue.Job]:
        rounds.append([job.work for job in jobs])
        until(lambda: hasty_lock.budget.waiting == 0)  # the hasty writer has given up waiting
        for job in jobs:
            job.finish(f"{job.work} done")
        return []

    results: dict[str, Any] = {}

    def run(storage: GitRepository, name: str) -> None:
        try:
            results[name] = commit_queue.run_queued("q", storage, commit_queue.Job(name), commit)
        except Exception as exc:
            results[name] = exc

    threads = [
        threading.Thread(target=run, args=(storage, name)) for storage, name in ((leader, "leader"), (hasty, "hasty"))
    ]
    with held_flock(path):
        threads[0].start()
        until(lambda: leader_lock.budget.waiting == 1)  # holds the thread lock, waits for the flock
        threads[1].start()
        until(lambda: hasty_lock.budget.waiting == 1)
    for thread in threads:
        thread.join(10)
    assert rounds == [["leader", "hasty"]]
    assert results == {"leader": "leader done", "hasty": "hasty done"}
    assert commit_queue._queues["q"] == []


def until(condition: Callable[[], bool]) -> None:
    give_up = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < give_up, "never happened"
        time.sleep(0.005)


def test_a_change_made_is_not_reported_busy_when_its_fold_finds_the_lock_held(
    repo: ContentRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fold a writer does once many changes wait comes after its commit point: Busy there
    would tell the caller nothing was written when it was."""

    def busy_fold(_: ContentRepository) -> bool:
        raise Busy("the drafts lock of demo stayed held")

    monkeypatch.setattr(entity_rounds, "FOLD_AT", 1)
    monkeypatch.setattr(entity_rounds, "fold_drafts", busy_fold)
    written = content.put_draft(repo, "p", page("p"), author=ADA)
    assert written.created and repo.index.draft_commits()["p"] == written.entity.commit
