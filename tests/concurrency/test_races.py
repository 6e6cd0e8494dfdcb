"""Racing writers: exactly one winner per expected version, no acknowledged write lost.

Real threads and real processes, released together by a barrier, each with its own handles.
"""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

from gitstore import ContentRepository, Store, content
from gitstore.entities import api as entities
from gitstore.entities.api import IfMatch
from gitstore.errors import BasePathTaken, StaleVersion
from gitstore.storage.api import entity_path
from tests.conftest import ADA, fsck_strict, git, settle

ROUNDS = 12


def first_parent_chain(path: Path, ref: str) -> list[str]:
    return git(path, "rev-list", "--first-parent", ref).split()


def test_sixteen_threads_racing_if_match_writes_have_one_winner_per_version(
    repo: ContentRepository,
) -> None:
    content.put_draft(repo, "hot", {"type": "page", "title": "start"}, author=ADA)
    barrier = threading.Barrier(16)
    acks: list[tuple[int, str]] = []
    losers: list[int] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        for rnd in range(ROUNDS):
            barrier.wait()
            tip = entities.get_entity(repo, "hot", state="draft").commit
            barrier.wait()  # everyone now holds the same expected commit
            try:
                done = content.patch_draft(repo, "hot", {"title": f"r{rnd}-w{n}"}, author=ADA, expected=IfMatch(tip))
                with lock:
                    acks.append((rnd, done.entity.commit))
            except StaleVersion:
                with lock:
                    losers.append(rnd)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r for r, _ in acks) == list(range(ROUNDS))  # exactly one winner per round
    assert len(losers) == ROUNDS * 15
    chain = first_parent_chain(repo.path, "refs/drafts/hot")
    assert chain[:-1] == [c for _, c in sorted(acks, reverse=True)]  # every ack, in order
    assert entities.get_entity(repo, "hot", state="draft").version == ROUNDS + 1
    fsck_strict(repo.path)


def _process_writer(data_dir: str, n: int, barrier, results) -> None:  # type: ignore[no-untyped-def]
    repo = Store(data_dir).repository("demo")
    for rnd in range(ROUNDS):
        barrier.wait()
        tip = entities.get_entity(repo, "hot", state="draft").commit
        barrier.wait()
        try:
            done = content.patch_draft(repo, "hot", {"title": f"r{rnd}-p{n}"}, author=ADA, expected=IfMatch(tip))
            results.put(("ack", rnd, done.entity.commit))
        except StaleVersion:
            results.put(("lost", rnd, ""))


def test_four_processes_racing_if_match_writes_have_one_winner_per_version(
    store: Store, repo: ContentRepository
) -> None:
    content.put_draft(repo, "hot", {"type": "page", "title": "start"}, author=ADA)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_process_writer, args=(str(store.data_dir), n, barrier, results)) for n in range(4)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in range(4 * ROUNDS)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    acks = sorted((rnd, commit) for kind, rnd, commit in outcomes if kind == "ack")
    assert [r for r, _ in acks] == list(range(ROUNDS))
    chain = first_parent_chain(repo.path, "refs/drafts/hot")
    assert chain[:-1] == [c for _, c in reversed(acks)]
    # the index and the aggregate draft branch agree with the entity's ref: once folded, `draft`
    # lists every acknowledged change, in order
    assert repo.index.draft_commit_of("hot") == chain[0]
    settle(repo.path)
    log = git(repo.path, "log", "--reverse", "--format=%B", "draft").splitlines()
    folded = [line.split()[2] for line in log if line.startswith("Gitstore-Folded: hot ")]
    assert folded == [*reversed(chain)]
    assert git(repo.path, "rev-parse", "draft:" + entity_path("hot")).strip() == str(repo.storage.git[chain[0]].tree_id)
    fsck_strict(repo.path)


def test_racing_creates_at_one_base_path_leave_exactly_one_holder(repo: ContentRepository) -> None:
    barrier = threading.Barrier(8)
    winners: list[str] = []
    clashes: list[str] = []

    def create(n: int) -> None:
        barrier.wait()
        try:
            content.put_draft(repo, f"page-{n}", {"type": "page", "title": "T", "base_path": "/same"}, author=ADA)
            winners.append(f"page-{n}")
        except BasePathTaken as exc:
            clashes.append(exc.extra["holder"])

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1 and set(clashes) == set(winners) and len(clashes) == 7


def test_concurrent_writes_and_publishes_keep_every_change(repo: ContentRepository) -> None:
    keys = [f"doc-{n}" for n in range(8)]
    for key in keys:
        content.put_draft(repo, key, {"type": "page", "title": "v1"}, author=ADA)
    errors: list[BaseException] = []

    def edit(key: str) -> None:
        try:
            for n in range(2, 12):
                content.patch_draft(repo, key, {"title": f"v{n}"}, author=ADA)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def publish_loop() -> None:
        try:
            for _ in range(10):
                content.publish_all_drafts(repo, author=ADA)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=edit, args=(k,)) for k in keys] + [threading.Thread(target=publish_loop)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    content.publish_all_drafts(repo, author=ADA)
    for key in keys:
        live = entities.get_entity(repo, key)
        assert (live.title, live.version, live.has_unpublished_changes) == ("v11", 11, False)
    fsck_strict(repo.path)
