"""Refs are written by gitstore itself, with git's lock-file protocol, and git agrees with
every value written."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest

from gitstore import ContentRepository
from gitstore.errors import StaleVersion
from gitstore.storage import durability
from gitstore.storage.refs import commit_on_ref, read_ref, set_ref, update_refs
from tests.conftest import fsck_strict, git

SIG = pygit2.Signature("Ada Lovelace", "ada@example.org")


def new_commit(git_repo: pygit2.Repository, text: str, parent: pygit2.Oid | None = None) -> pygit2.Oid:
    tree = git_repo.TreeBuilder()
    tree.insert("note.txt", git_repo.create_blob(text.encode()), pygit2.enums.FileMode.BLOB)
    return git_repo.create_commit(None, SIG, SIG, text, tree.write(), [parent] if parent else [])


@pytest.fixture
def handle(repo: ContentRepository) -> pygit2.Repository:
    return repo.storage.git


@pytest.fixture(params=durability.METHODS)
def method(request: pytest.FixtureRequest) -> Iterator[str]:
    durability.use_method(request.param)
    yield request.param
    durability.use_method(None)


def test_git_reads_what_gitstore_writes(repo: ContentRepository, handle: pygit2.Repository, method: str) -> None:
    first = new_commit(handle, "one")
    set_ref(handle, "refs/drafts/intro", expected=None, new=first)
    second = new_commit(handle, "two", first)
    set_ref(handle, "refs/drafts/intro", expected=first, new=second)
    assert git(repo.path, "rev-parse", "refs/drafts/intro").strip() == str(second)
    assert not list(Path(repo.path).rglob("*.lock"))
    fsck_strict(repo.path)


def test_a_packed_ref_is_moved_by_a_loose_file_that_shadows_it(
    repo: ContentRepository, handle: pygit2.Repository
) -> None:
    first = new_commit(handle, "one")
    set_ref(handle, "refs/drafts/intro", expected=None, new=first)
    git(repo.path, "pack-refs", "--all", "--prune")
    assert not (repo.path / "refs/drafts/intro").exists()
    second = new_commit(handle, "two", first)
    set_ref(handle, "refs/drafts/intro", expected=first, new=second)
    assert (repo.path / "refs/drafts/intro").read_text() == f"{second}\n"
    assert git(repo.path, "rev-parse", "refs/drafts/intro").strip() == str(second)


def test_a_lost_compare_and_swap_changes_nothing(repo: ContentRepository, handle: pygit2.Repository) -> None:
    first = new_commit(handle, "one")
    set_ref(handle, "refs/drafts/intro", expected=None, new=first)
    other = new_commit(handle, "other")
    with pytest.raises(StaleVersion):
        set_ref(handle, "refs/drafts/intro", expected=other, new=new_commit(handle, "lost", other))
    with pytest.raises(StaleVersion):
        set_ref(handle, "refs/drafts/intro", expected=None, new=other)
    with pytest.raises(StaleVersion):
        set_ref(handle, "refs/drafts/missing", expected=first, new=other)
    assert read_ref(handle, "refs/drafts/intro") == first
    assert read_ref(handle, "refs/drafts/missing") is None
    assert not list(Path(repo.path).rglob("*.lock"))


def test_a_symbolic_ref_is_never_overwritten_by_a_compare_and_swap(
    repo: ContentRepository, handle: pygit2.Repository
) -> None:
    commit = new_commit(handle, "one")
    head = (repo.path / "HEAD").read_text()
    with pytest.raises(StaleVersion):
        set_ref(handle, "HEAD", expected=None, new=commit)
    assert (repo.path / "HEAD").read_text() == head


def test_commit_on_ref_refuses_a_ref_that_moved(repo: ContentRepository, handle: pygit2.Repository) -> None:
    tree = handle[new_commit(handle, "one")].tree_id
    first = commit_on_ref(handle, "refs/heads/notes", expected=None, author=SIG, message="one", tree=tree)
    with pytest.raises(StaleVersion):
        commit_on_ref(handle, "refs/heads/notes", expected=None, author=SIG, message="again", tree=tree)
    second = commit_on_ref(handle, "refs/heads/notes", expected=first, author=SIG, message="two", tree=tree)
    assert git(repo.path, "log", "--format=%s", "refs/heads/notes").split() == ["two", "one"]
    assert handle[second].parent_ids == [first]


def test_of_many_threads_racing_from_one_value_exactly_one_wins(repo: ContentRepository) -> None:
    base = new_commit(repo.storage.git, "base")
    set_ref(repo.storage.git, "refs/drafts/intro", expected=None, new=base)
    start = threading.Barrier(16)
    won: list[pygit2.Oid] = []
    lost: list[str] = []

    def racer(n: int) -> None:
        handle = repo.storage.git  # each thread its own handle
        mine = new_commit(handle, f"racer {n}", base)
        start.wait()
        try:
            set_ref(handle, "refs/drafts/intro", expected=base, new=mine)
            won.append(mine)
        except StaleVersion:
            lost.append(str(n))

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 15
    assert read_ref(repo.storage.git, "refs/drafts/intro") == won[0]


class CountingSyncfs:
    def __init__(self) -> None:
        self.calls = 0
        self.real = durability._syncfs

    def __call__(self, path: str) -> None:
        self.calls += 1
        self.real(path)


@pytest.mark.skipif(durability._libc is None, reason="syncfs(2) is Linux's")
def test_with_syncfs_objects_are_made_durable_once_before_the_ref_that_names_them(
    repo: ContentRepository, handle: pygit2.Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    durability.use_method("syncfs")
    try:
        spy = CountingSyncfs()
        monkeypatch.setattr(durability, "_syncfs", spy)
        objects = repo.path / "objects"
        first = new_commit(handle, "one")
        # the object is on disk, written without an fsync of its own ...
        assert (objects / str(first)[:2] / str(first)[2:]).is_file() and spy.calls == 0
        set_ref(handle, "refs/drafts/intro", expected=None, new=first)
        assert spy.calls == 1  # ... and synced, with everything before it, before the ref moved
        set_ref(handle, "refs/drafts/copy", expected=None, new=first)
        assert spy.calls == 1  # nothing new to make durable: the ref's own fsync is enough
        set_ref(handle, "refs/drafts/intro", expected=first, new=new_commit(handle, "two", first))
        assert spy.calls == 2
    finally:
        durability.use_method(None)


def test_with_fsync_each_object_is_synced_as_it_is_written(
    handle: pygit2.Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    durability.use_method("fsync")
    try:
        spy = CountingSyncfs()
        monkeypatch.setattr(durability, "_syncfs", spy)
        synced: list[int] = []
        real_fsync = durability.os.fsync
        monkeypatch.setattr(durability.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
        first = new_commit(handle, "one")
        before = len(synced)
        assert before >= 3  # blob, tree and commit, each with its own fsync
        set_ref(handle, "refs/drafts/intro", expected=None, new=first)
        assert spy.calls == 0
    finally:
        durability.use_method(None)


def test_an_unknown_method_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITSTORE_FSYNC", "sometimes")
    durability.use_method(None)
    with pytest.raises(ValueError, match="GITSTORE_FSYNC"):
        durability.method()
    monkeypatch.delenv("GITSTORE_FSYNC")
    durability.use_method(None)
    assert durability.method() in durability.METHODS


def test_many_moves_rewrite_a_small_packed_refs_but_go_loose_beside_a_big_one(
    repo: ContentRepository, handle: pygit2.Repository
) -> None:
    commit = new_commit(handle, "one")
    moves = {f"refs/drafts/page-{n:03}": commit for n in range(50)}
    update_refs(handle, moves)
    assert not (repo.path / "refs/drafts/page-000").exists()  # 50 > 32: one packed-refs rewrite
    packed = repo.path / "packed-refs"
    lines = [f"{commit} refs/drafts/other-{n:05}\n" for n in range(20_000)] + [f"{commit} {name}\n" for name in moves]
    packed.write_text("# pack-refs with: peeled fully-peeled sorted \n" + "".join(sorted(lines)))
    before = packed.stat()
    later = new_commit(handle, "two", commit)
    update_refs(handle, dict.fromkeys(moves, later))
    # rewriting 1.3 MB of packed-refs would cost more than 50 loose files: housekeeping packs them later
    assert packed.stat().st_ino == before.st_ino and packed.stat().st_mtime_ns == before.st_mtime_ns
    assert (repo.path / "refs/drafts/page-000").read_text() == f"{later}\n"
    assert git(repo.path, "rev-parse", "refs/drafts/page-049").strip() == str(later)
