"""Group publishing gives what one publish at a time gives: real publisher threads against one
repository, and the same publishes one after another against its twin (same drafts, written in
the same order), end with the same trees, the same versions live and, publish by publish, the
same answers; with the default durability and with the journal."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gitstore import ContentRepository, Store, content
from gitstore.entities import api as entities
from gitstore.entities.api import IfMatch
from gitstore.errors import (
    BasePathTaken,
    EntityNotFound,
    NotFastForward,
    StaleVersion,
    StorageFull,
    VersionNotFound,
)
from gitstore.publishing import landing, rounds
from gitstore.publishing.api import PublishRecord, PublishTarget, roll_forward
from gitstore.storage import durability, journal
from gitstore.storage.api import PACKED_THRESHOLD
from tests.conftest import ADA, GRACE, fsck_strict, git
from tests.entities.test_commit_queue import hold_lock, page, recorded_moves
from tests.publishing.test_publish_rounds import Publishers, main_log

Publish = Callable[[ContentRepository], PublishRecord]


@pytest.fixture(params=["default", "journal"])
def durable(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "journal":
        durability.use_method("journal")
    yield request.param
    durability.use_method(None)
    journal.forget_journals()


def twins(store: Store, write: Callable[[ContentRepository], None]) -> tuple[ContentRepository, ContentRepository]:
    """Two repositories holding the same drafts."""
    pair = store.create_repository("grouped"), store.create_repository("one-at-a-time")
    for repo in pair:
        write(repo)
    return pair


def publishing(keys: list[str], **target: Any) -> Publish:
    return lambda repo: content.publish(repo, [PublishTarget(key, **target) for key in keys], author=ADA)


def answer(outcome: PublishRecord | BaseException) -> object:
    """What a caller is told, without what differs between twins (commit ids, times)."""
    if isinstance(outcome, BaseException):
        return type(outcome)
    return [(item.key, item.version, item.deleted) for item in outcome.items], outcome.dependents


def one_at_a_time(repo: ContentRepository, publishes: list[tuple[str, Publish]]) -> dict[str, object]:
    answers: dict[str, object] = {}
    for name, publish in publishes:
        try:
            answers[name] = answer(publish(repo))
        except Exception as exc:
            answers[name] = answer(exc)
    return answers


def queued_together(repo: ContentRepository, publishes: list[tuple[str, Publish]]) -> dict[str, object]:
    """Each publish in a thread of its own, queued in order while the publish lock is held."""
    release, holder = hold_lock(repo.storage.publish_lock)
    publishers = Publishers(repo)
    try:
        for name, publish in publishes:
            publishers.queue(name, lambda publish=publish: publish(repo))
    finally:
        release.set()
        holder.join()
    publishers.join()
    return {name: answer(outcome) for name, outcome in publishers.outcomes.items()}


def started_together(repo: ContentRepository, publishes: list[tuple[str, Publish]]) -> dict[str, object]:
    """Each publish in a thread of its own, all let go at once: whatever rounds they fall into."""
    barrier = threading.Barrier(len(publishes))
    outcomes: dict[str, PublishRecord | BaseException] = {}

    def run(name: str, publish: Publish) -> None:
        barrier.wait(10)
        try:
            outcomes[name] = publish(repo)
        except Exception as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=run, args=pair) for pair in publishes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    return {name: answer(outcome) for name, outcome in outcomes.items()}


def live_state(repo: ContentRepository, keys: list[str]) -> dict[str, object]:
    """What is live, as twins can compare it: main's tree, and each entity's live version, its
    tree and where it is."""
    state: dict[str, object] = {"main": git(repo.path, "rev-parse", "main^{tree}").strip()}
    for key in keys:
        try:
            live = entities.get_entity(repo, key, state="published")
        except EntityNotFound:
            state[key] = None
            continue
        tree = git(repo.path, "rev-parse", f"{live.commit}^{{tree}}").strip()
        ref = git(repo.path, "rev-parse", f"refs/published/{key}").strip()
        state[key] = (live.version, live.title, live.base_path, tree, ref == live.commit)
    assert repo.index.meta("main_head") == git(repo.path, "rev-parse", "main").strip()
    return state


def assert_twins_agree(grouped: ContentRepository, alone: ContentRepository, keys: list[str]) -> None:
    assert live_state(grouped, keys) == live_state(alone, keys)
    fsck_strict(grouped.path)
    fsck_strict(alone.path)


DISJOINT = [f"d{n}" for n in range(8)]


def disjoint_drafts(repo: ContentRepository) -> None:
    for key in DISJOINT:
        content.put_draft(repo, key, page(f"{key} one", f"/{key}"), author=ADA)
        content.put_draft(repo, key, page(f"{key} two", f"/{key}"), author=GRACE)


@pytest.mark.parametrize("threads", [queued_together, started_together])
def test_disjoint_publishes_from_threads_go_live_as_one_at_a_time(
    store: Store, durable: str, threads: Callable[..., dict[str, object]]
) -> None:
    grouped, alone = twins(store, disjoint_drafts)
    publishes = [(key, publishing([key])) for key in DISJOINT]
    assert threads(grouped, publishes) == one_at_a_time(alone, publishes)
    assert_twins_agree(grouped, alone, DISJOINT)
    if threads is queued_together:  # in the order they queued, one commit each
        assert main_log(grouped) == main_log(alone)


OVERLAPPING = ["k", "j", "gone", "p", "q", "r"]


def overlapping_drafts(repo: ContentRepository) -> None:
    for version in (1, 2, 3):
        content.put_draft(repo, "k", page(f"k {version}", "/k"), author=ADA)
    content.put_draft(repo, "j", page("j", "/j"), author=ADA)
    content.put_draft(repo, "gone", page("gone", "/gone"), author=ADA)
    content.delete_entity(repo, "gone", author=ADA)  # deleted before it was ever live
    content.put_draft(repo, "p", page("p", "/shared"), author=ADA)
    publishing(["p"])(repo)
    content.put_draft(repo, "p", page("p moved", "/p"), author=ADA)
    content.put_draft(repo, "q", page("q", "/shared"), author=GRACE)  # the path p is live at
    content.put_draft(repo, "r", page("r", "/r"), author=ADA)


#: Publishes whose answers depend on the ones queued before them.
OVERLAPPING_PUBLISHES: list[tuple[str, Publish]] = [
    ("k at 1", publishing(["k"], version=1)),
    ("k at 3", publishing(["k"], version=3)),
    # k at 1 is live as the round starts (so planning skips it) but not once k at 3 is
    ("k at 1 and r", publishing(["k", "r"], version=1)),
    ("k at 2", publishing(["k"], version=2)),  # behind what is live by then
    ("k at 3 and j", publishing(["k", "j"], version=3)),  # j has no version 3
    ("k and j", publishing(["k", "j"])),  # k live already
    ("gone at 1", publishing(["gone"], version=1)),
    ("gone", publishing(["gone"])),  # never live before the round: a delete to publish after it
    ("q", publishing(["q"])),  # p is live there
    ("p", publishing(["p"])),
    ("q again", publishing(["q"])),  # the path p leaves in this round
    ("p again", publishing(["p"])),
    ("r", publishing(["r"])),
]


@pytest.mark.parametrize("threads", [queued_together, started_together])
def test_overlapping_publishes_from_threads_go_live_as_one_at_a_time(
    store: Store, durable: str, threads: Callable[..., dict[str, object]]
) -> None:
    grouped, alone = twins(store, overlapping_drafts)
    if threads is queued_together:  # the queue's order is known: each answer is the same
        expected = one_at_a_time(alone, OVERLAPPING_PUBLISHES)
        assert queued_together(grouped, OVERLAPPING_PUBLISHES) == expected
        assert expected["k at 2"] is NotFastForward and expected["k at 3 and j"] is VersionNotFound
        assert expected["k at 1 and r"] is NotFastForward and expected["q"] is BasePathTaken
        assert expected["q again"] == ([("q", 1, False)], ())
        assert expected["gone"] == ([("gone", 2, True)], ())
        assert main_log(grouped) == main_log(alone)
        assert_twins_agree(grouped, alone, OVERLAPPING)
        return
    # Started together, in any order: publishing every tip ends the same whatever the order.
    tips = [(key, publishing([key])) for key in ("k", "j", "p", "r")] + [("k and j", publishing(["k", "j"]))]
    started_together(grouped, tips)
    one_at_a_time(alone, tips)
    assert_twins_agree(grouped, alone, OVERLAPPING)


def test_an_invalid_publish_among_valid_ones_fails_alone(store: Store, durable: str) -> None:
    keys = ["a", "b", "c", "d"]

    def drafts(repo: ContentRepository) -> None:
        for key in keys:
            content.put_draft(repo, key, page(key, f"/{key}"), author=ADA)

    grouped, alone = twins(store, drafts)
    publishes: list[tuple[str, Publish]] = [
        ("stale first", publishing(["b"], expected=IfMatch("0" * 40))),
        ("a", publishing(["a"])),
        ("no such entity", publishing(["nobody"])),
        ("b", publishing(["b"])),
        ("no such version", publishing(["c"], version=7)),
        ("c", publishing(["c"])),
        ("d", publishing(["d"])),
    ]
    answers = queued_together(grouped, publishes)
    assert answers == one_at_a_time(alone, publishes)
    assert answers["stale first"] is StaleVersion
    assert answers["no such entity"] is EntityNotFound
    assert answers["no such version"] is VersionNotFound
    for key in keys:
        assert answers[key] == ([(key, 1, False)], ())
    assert main_log(grouped) == [f"Publish {key} version 1" for key in keys]
    assert_twins_agree(grouped, alone, keys)


def test_a_crash_after_a_rounds_move_is_rolled_forward_commit_by_commit(
    store: Store, durable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round lands as several commits on `main` in one durable move; a process killed right
    after it leaves the published refs of its earlier commits unrenamed (as a lost rename in a
    crash can) and the index behind by all of them: the next start applies each commit."""
    keys = ["c1", "c2", "c3"]
    repo = store.create_repository("crashed")
    for key in keys:
        content.put_draft(repo, key, page(key, f"/{key}"), author=ADA)

    def killed(*_: object) -> None:
        raise RuntimeError("killed after the round's durable move")

    monkeypatch.setattr(rounds, "apply_publish", killed)
    answers = queued_together(repo, [(key, publishing([key])) for key in keys])
    assert answers == {key: RuntimeError for key in keys}
    monkeypatch.undo()
    on_main = git(repo.path, "rev-list", "--reverse", "main").split()
    assert main_log(repo) == [f"Publish {key} version 1" for key in keys]
    for key in keys[:-1]:
        (repo.path / "refs" / "published" / key).unlink(missing_ok=True)

    journal.forget_journals()
    restarted = Store(store.data_dir).repository("crashed")
    roll_forward(restarted)
    for key, commit in zip(keys, on_main, strict=True):
        live = entities.get_entity(restarted, key, state="published")
        assert live.title == key and git(repo.path, "rev-parse", f"refs/published/{key}").strip() == live.commit
        assert f"Gitstore-Published: {key} {live.commit}" in git(repo.path, "log", "-1", "--format=%B", commit)
    assert [row.commit for _, row in restarted.index.publishes(limit=10)][::-1] == on_main
    assert restarted.index.meta("main_head") == on_main[-1]
    fsck_strict(repo.path)


def test_a_round_of_several_publishes_moves_every_published_ref_it_makes(
    repo: ContentRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readers find what an earlier commit of a round moved by its published ref, so a round of
    several publishes is cut where its refs would no longer fit its one durable move."""
    moves = recorded_moves(monkeypatch, landing)
    keys = [f"m{n:02}" for n in range(PACKED_THRESHOLD + 3)]
    for key in keys:
        content.put_draft(repo, key, page(key), author=ADA)
    answers = queued_together(repo, [(key, publishing([key])) for key in keys])
    assert answers == {key: ([(key, 1, False)], ()) for key in keys}
    published = [[ref.removeprefix("refs/published/") for ref in m if ref.startswith("refs/published/")] for m in moves]
    assert [key for refs in published for key in refs] == keys
    assert [len(refs) for refs in published] == [PACKED_THRESHOLD, 3]
    fsck_strict(repo.path)


def test_a_publish_whose_fold_cannot_be_indexed_for_a_full_disk_is_still_answered_live(
    repo: ContentRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fold of `draft` moves in the publish's durable move; a full disk when the index
    records it comes after the publish is live, so it is logged, not raised to the caller."""
    content.put_draft(repo, "p", page("p"), author=ADA)
    content.put_draft(repo, "waiting", page("waiting"), author=GRACE)
    index = type(repo.index)
    real = index.record_fold
    refused: list[bool] = []

    def full_once(self: Any, *args: Any, **kwargs: Any) -> None:
        if not refused:
            refused.append(True)
            raise StorageFull("no space left on device")
        real(self, *args, **kwargs)

    monkeypatch.setattr(index, "record_fold", full_once)
    record = content.publish(repo, [PublishTarget("p")], author=ADA)
    assert refused and record.commit == git(repo.path, "rev-parse", "main").strip()
    assert entities.get_entity(repo, "p", state="published").title == "p"
    entities.folded_draft_head(repo)
    folded = git(repo.path, "ls-tree", "-r", "--name-only", "draft").splitlines()
    assert {"p", "waiting"} <= {part for path in folded for part in path.split("/")}
    fsck_strict(repo.path)
