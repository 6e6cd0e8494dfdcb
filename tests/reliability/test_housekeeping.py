"""gitstore gc packs everything while writers keep writing, and loses nothing."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pygit2
import pytest

from gitstore import ContentRepository, content
from gitstore.entities import api as entities
from gitstore.entities.document import parse_document
from gitstore.errors import Busy
from gitstore.publishing import api as publishing
from gitstore.publishing.mirror import sync_live_mirror
from gitstore.storage.api import pack_loose_refs, update_refs_packed
from gitstore.upkeep.packing import Policy, gc, maintain
from tests.conftest import ADA, fsck_strict, git


def test_gc_packs_objects_and_refs_while_writers_write(repo: ContentRepository) -> None:
    for n in range(50):
        content.put_draft(repo, f"page-{n}", {"type": "page", "title": f"P{n}"}, author=ADA)
    content.publish_all_drafts(repo, author=ADA)
    for n in range(5):
        content.patch_draft(repo, f"page-{n}", {"title": "again"}, author=ADA)
        content.publish(repo, [publishing.PublishTarget(f"page-{n}")], author=ADA)
        sync_live_mirror(repo)
    acked: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        n = 0
        try:
            while not stop.is_set():
                result = content.patch_draft(repo, "page-9", {"fields": {"n": n}}, author=ADA)
                acked.append(result.entity.commit)
                n += 1
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    report = gc(repo)
    stop.set()
    thread.join()
    assert errors == [] and acked
    assert report.loose_objects_before > 0 and report.packs_after >= 1 and report.live_packs_after == 1
    chain = git(repo.path, "rev-list", "--first-parent", "refs/drafts/page-9").split()
    assert set(acked) <= set(chain)  # every write made during gc is on its branch
    assert entities.get_entity(repo, "page-3").title == "again"
    assert len(git(repo.path, "for-each-ref", "refs/drafts").splitlines()) == 50
    # all packed (no 4 KiB loose ref files left) but the one the writer moved again after gc
    assert [p.name for p in repo.path.glob("refs/drafts/*")] in ([], ["page-9"])
    content.patch_draft(repo, "page-1", {"title": "after gc"}, author=ADA)  # a loose ref over a packed one
    content.publish(repo, [publishing.PublishTarget("page-1")], author=ADA)
    assert entities.get_entity(repo, "page-1").title == "after gc"
    fsck_strict(repo.path)


def test_packing_refs_while_single_and_bulk_writers_move_them_loses_no_move(repo: ContentRepository) -> None:
    """Housekeeping folds loose refs into packed-refs under no RepoLock, while one thread moves
    single refs (loose files) and another publishes 40 entities at a time (a packed-refs rewrite
    that removes their loose files): every ref ends where its last acknowledged move put it."""
    keys = [f"page-{n}" for n in range(80)]
    for k in keys:
        content.put_draft(repo, k, {"type": "page", "title": k}, author=ADA)
    drafted: dict[str, str] = {}
    published: dict[str, str] = {}
    errors: list[BaseException] = []
    stop = threading.Event()

    def single_writer() -> None:
        n = 0
        try:
            while not stop.is_set():
                key = keys[n % 40]
                drafted[key] = content.patch_draft(repo, key, {"fields": {"n": n}}, author=ADA).entity.commit
                n += 1
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    def bulk_publisher() -> None:
        n = 0
        try:
            while not stop.is_set():
                # A few published refs move as loose files, then all of them through packed-refs.
                for some in (keys[40:45], keys[40:]):
                    for k in some:
                        drafted[k] = content.patch_draft(repo, k, {"title": f"{k} {n}"}, author=ADA).entity.commit
                    record = content.publish(repo, [publishing.PublishTarget(k) for k in some], author=ADA)
                    published.update((item.key, item.commit) for item in record.items)
                    n += 1
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=single_writer), threading.Thread(target=bulk_publisher)]
    for t in threads:
        t.start()
    rounds = []
    try:
        while len(rounds) < 15:
            with repo.storage.housekeeping_lock.held():
                rounds.append(pack_loose_refs(repo.storage.git))
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert sum(r.pruned for r in rounds) > 0 and published
    listed = git(repo.path, "for-each-ref", "--format=%(refname) %(objectname)").splitlines()
    refs = dict(line.split(" ", 1) for line in listed)
    for key, commit in drafted.items():
        assert refs[f"refs/drafts/{key}"] == commit, key
    for key, commit in published.items():
        assert refs[f"refs/published/{key}"] == commit, key
    fsck_strict(repo.path)


def test_maintain_does_what_is_due_and_clears_abandoned_locks(repo: ContentRepository) -> None:
    for n in range(12):
        content.put_draft(repo, f"page-{n}", {"type": "page", "title": f"P{n}"}, author=ADA)
    abandoned = repo.path / "refs/drafts/page-1.lock"
    abandoned.write_text("0" * 40 + "\n")
    os.utime(abandoned, (time.time() - 3600, time.time() - 3600))
    live = repo.path / "refs/drafts/page-2.lock"  # a writer's, this very moment
    live.write_text("0" * 40 + "\n")
    try:
        quiet = maintain(repo, Policy(loose_refs=1000, loose_objects=100_000))
        assert quiet.refs_packed == 0 and not quiet.repacked
        assert quiet.removed_locks == ["refs/drafts/page-1.lock"] and live.exists()
        due = maintain(repo, Policy(loose_refs=10, loose_objects=10))
    finally:
        live.unlink()
    assert due.refs_packed >= 12 and due.repacked
    assert git(repo.path, "count-objects", "-v").splitlines()[0] == "count: 0"
    assert "refs/drafts/page-3" in (repo.path / "packed-refs").read_text()
    assert not (repo.path / "refs/drafts/page-3").exists()
    assert entities.get_entity(repo, "page-3", state="draft").title == "P3"
    fsck_strict(repo.path)


def test_maintain_merges_packs_once_imports_have_left_many(repo: ContentRepository) -> None:
    for batch in range(3):  # a batch of over 32 changes is written as one pack
        changes = [page_change(f"page-{batch}-{n}", f"P{n}") for n in range(40)]
        content.write_drafts(repo, changes, author=ADA, summary=f"import {batch}")
    packs = int(git(repo.path, "count-objects", "-v").split("packs: ")[1].split()[0])
    assert packs >= 3
    assert not maintain(repo, Policy(packs=packs + 1)).repacked
    assert maintain(repo, Policy(packs=packs)).repacked
    assert int(git(repo.path, "count-objects", "-v").split("packs: ")[1].split()[0]) < packs
    assert entities.get_entity(repo, "page-1-7", state="draft").title == "P7"
    fsck_strict(repo.path)


def test_maintain_skips_a_repository_another_housekeeper_is_in(repo: ContentRepository) -> None:
    content.put_draft(repo, "intro", {"type": "page", "title": "One"}, author=ADA)
    with another_housekeeper(repo):
        assert maintain(repo, Policy(loose_refs=1, loose_objects=1)).skipped
    assert not maintain(repo, Policy(loose_refs=1, loose_objects=1)).skipped


def test_a_bulk_writer_never_takes_packed_refs_from_a_live_housekeeper(repo: ContentRepository) -> None:
    """An old packed-refs.lock is abandoned only if no housekeeper holds the repository."""
    commit = content.put_draft(repo, "intro", {"type": "page", "title": "One"}, author=ADA).entity.commit
    lock = repo.path / "packed-refs.lock"
    lock.write_text("")
    os.utime(lock, (time.time() - 60, time.time() - 60))
    moves = {f"refs/notes-{n}": pygit2.Oid(hex=commit) for n in range(3)}
    with another_housekeeper(repo):
        with pytest.raises(Busy):
            update_refs_packed(repo.storage.git, moves)
        assert lock.exists()
    update_refs_packed(repo.storage.git, moves)  # no housekeeper: the old lock was abandoned
    assert git(repo.path, "rev-parse", "refs/notes-2").strip() == commit


@contextmanager
def another_housekeeper(repo: ContentRepository) -> Iterator[None]:
    """Another thread holds the repository's housekeeping lock for the block's duration."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with repo.storage.housekeeping_lock.held():
            holding.set()
            release.wait()

    other = threading.Thread(target=hold)
    other.start()
    holding.wait()
    try:
        yield
    finally:
        release.set()
        other.join()


def page_change(key: str, title: str) -> entities.DraftChange:
    document = parse_document({"type": "page", "title": title})
    return entities.DraftChange(key, lambda _current: (document, False))
