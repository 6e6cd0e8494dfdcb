"""A move's copy between two stores on this machine, without nodes: snapshots, git fetch rounds
while writes go on, the seal and the comparison of the two ref lists, the index and relay state
taken along, the public copy brought up to date, the copy placed into the other store."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitstore import Author, ContentRepository, Store, content
from gitstore.cluster.moves import digest_of
from gitstore.cluster.snapshots import Snapshot, read_snapshot, take_snapshot, write_snapshot_tar
from gitstore.cluster.staging import StagingCopy, staging_folders
from gitstore.entities.api import DraftChange, fold_drafts, list_entities, parse_document
from gitstore.errors import MoveFailed
from gitstore.index.api import ListFilter
from gitstore.publishing.api import PublishTarget, live_mirror_path, sync_live_mirror
from gitstore.relay.state import RelayState, Subscription
from gitstore.storage.api import open_bare as open_plain
from gitstore.storage.api import read_ref, ref_list
from tests.cluster.smart_http import serving

ADA = Author("Ada Lovelace", "ada@example.org")
GRACE = Author("Grace Hopper", "grace@example.org")


class LocalSource:
    """The source side of a move as another node would answer it: its snapshot through the
    same tar, its objects from git upload-pack over smart HTTP (tests/cluster/smart_http.py)."""

    def __init__(self, repo: ContentRepository, scratch: Path, url: str) -> None:
        self.repo, self.scratch, self.url = repo, scratch, url
        self.after_snapshot: list[object] = []
        self.tamper: dict[str, str] = {}

    def fetch_url(self) -> str:
        return f"{self.url}/{self.repo.path.name}"

    def fetch_password(self) -> None:
        return None

    def snapshot(self, into: Path, *, seal: bool) -> Snapshot:
        taken = take_snapshot(self.repo, self.scratch / f"taken-{time.monotonic_ns()}", seal=seal)
        buffer = io.BytesIO()
        write_snapshot_tar(taken, buffer)
        buffer.seek(0)
        for hook in self.after_snapshot:
            hook()  # type: ignore[operator]
        received = read_snapshot(buffer, into)
        refs = [(name, self.tamper.get(name, target)) for name, target in received.refs]
        return dataclasses.replace(received, refs=refs)


def _doc(title: str, html: str = "<p>x</p>\n") -> dict[str, object]:
    return {"type": "component.html", "title": title, "fields": {"html": html}}


def _seed(repo: ContentRepository, count: int) -> None:
    changes = [
        DraftChange(f"e{i:04d}", (lambda d: lambda _c: (d, False))(parse_document(_doc(f"E {i}"))), action="create")
        for i in range(count)
    ]
    content.write_drafts(repo, changes, author=ADA, summary="seed")
    content.publish(repo, [PublishTarget(f"e{i:04d}") for i in range(0, count, 2)], author=ADA)


def _listing(repo: ContentRepository, state: str) -> list[tuple[str, str]]:
    found, cursor = [], None
    for _ in range(1000):
        page = list_entities(repo, ListFilter(state=state), cursor=cursor, limit=200)
        found += [(e.key, e.commit) for e in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return found
    raise AssertionError("listing did not end")


def _fsck(path: Path) -> None:
    subprocess.run(["git", "--git-dir", str(path), "fsck", "--strict", "--no-progress"], check=True)


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    yield Store(tmp_path / "source"), Store(tmp_path / "target")


@pytest.fixture
def url(stores: tuple[Store, Store]) -> Iterator[str]:
    """The first store's repositories over smart HTTP."""
    with serving(stores[0].data_dir) as served:
        yield served


def _course(stores: tuple[Store, Store], entities: int) -> tuple[ContentRepository, Store]:
    """Repository `course` in the first store with `entities` entities, and the second store."""
    origin, target = stores
    repo = origin.create_repository("course")
    _seed(repo, entities)
    return repo, target


def _move(source: LocalSource, target: Store, name: str, *, rounds: int = 2) -> StagingCopy:
    copy = StagingCopy(target.data_dir, name, "7")
    for _ in range(rounds):
        copy.catch_up(source)
    copy.catch_up(source, seal=True)
    copy.place(target.data_dir / f"{name}.git")
    copy.remove()
    return copy


def test_a_sealed_copy_equals_its_source_refs_index_public_copy_and_relay_state(
    stores: tuple[Store, Store], tmp_path: Path, url: str
) -> None:
    origin, target = stores
    repo = origin.create_repository("course", "a course")
    _seed(repo, 60)
    for i in range(5):  # single changes wait in the index to be folded into `draft`
        content.put_draft(repo, f"e{i:04d}", _doc(f"E {i} again"), author=GRACE)
    RelayState(repo.storage.control_dir).add_subscription(
        Subscription("s1", "https://example.org/hook", "x" * 32, ("*",), True, False, False, "ada", 1.0), "start"
    )
    assert repo.index.unfolded()

    _move(LocalSource(repo, tmp_path / "scratch", url), target, "course")

    moved = target.repository("course")
    assert ref_list(moved.path) == ref_list(repo.path)
    assert moved.description == "a course"
    assert _listing(moved, "draft") == _listing(repo, "draft")
    assert _listing(moved, "published") == _listing(repo, "published")
    assert moved.index.unfolded() == repo.index.unfolded()
    assert [s.id for s in RelayState(moved.storage.control_dir).subscriptions()] == ["s1"]
    sync_live_mirror(repo)
    assert read_ref(open_plain(live_mirror_path(moved)), "refs/heads/main") == read_ref(
        open_plain(live_mirror_path(repo)), "refs/heads/main"
    )
    # The changes that waited fold into the very same commit on either side.
    assert fold_drafts(moved) and fold_drafts(repo)
    assert read_ref(moved.storage.git, "refs/heads/draft") == read_ref(repo.storage.git, "refs/heads/draft")
    assert not staging_folders(target.data_dir)
    _fsck(moved.path)
    _fsck(live_mirror_path(moved))


def _open_under(folder: Path) -> list[str]:
    names = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            names.append(os.readlink(f"/proc/self/fd/{fd}"))
    return [name for name in names if name.startswith(str(folder / "gitstore"))]


def test_a_copy_keeps_no_file_open_under_the_name_it_is_renamed_from(
    stores: tuple[Store, Store], tmp_path: Path, url: str
) -> None:
    repo, target = _course(stores, 20)
    content.publish(repo, [PublishTarget("e0000")], author=GRACE)
    copy = StagingCopy(target.data_dir, "course", "5")
    source = LocalSource(repo, tmp_path / "scratch", url)
    copy.catch_up(source)  # each round opens the copy's index to bring its public copy up
    content.put_draft(repo, "e0001", _doc("changed"), author=GRACE)
    content.publish(repo, [PublishTarget("e0001")], author=GRACE)
    copy.catch_up(source, seal=True)
    # SQLite must not keep a connection (or its -wal, -shm) under the name the copy leaves
    # (git's open packs may stay: they never change):
    # a placed copy's index once failed to open with "disk I/O error".
    assert _open_under(copy.path) == []
    copy.place(target.data_dir / "course.git")
    assert _listing(target.repository("course"), "published") == _listing(repo, "published")


def test_rounds_catch_up_while_writes_go_on_and_the_seal_brings_every_one(
    stores: tuple[Store, Store], tmp_path: Path, url: str
) -> None:
    repo, target = _course(stores, 200)
    written: list[tuple[str, str]] = []
    stop = threading.Event()

    def writer() -> None:
        for n in range(2000):
            if stop.is_set():
                return
            key = f"e{n % 50:04d}"
            result = content.put_draft(repo, key, _doc(f"v{n}"), author=GRACE)
            written.append((key, result.entity.commit))
            if n % 25 == 0:
                content.publish(repo, [PublishTarget(key)], author=GRACE)

    thread = threading.Thread(target=writer)
    thread.start()
    copy = StagingCopy(target.data_dir, "course", "3")
    source = LocalSource(repo, tmp_path / "scratch", url)
    try:
        rounds = [copy.catch_up(source) for _ in range(3)]
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert rounds[0].refs_moved >= 300 and all(r.consistent for r in rounds)
    sealed = copy.catch_up(source, seal=True)
    assert sealed.sealed and sealed.consistent
    copy.place(target.data_dir / "course.git")
    moved = target.repository("course")
    assert len(written) > 10
    for key, commit in written:  # every acknowledged write is on the copy's history of its entity
        subprocess.run(
            ["git", "--git-dir", str(moved.path), "merge-base", "--is-ancestor", commit, f"refs/drafts/{key}"],
            check=True,
        )
    assert _listing(moved, "draft") == _listing(repo, "draft")
    assert _listing(moved, "published") == _listing(repo, "published")
    _fsck(moved.path)


def test_the_last_round_copies_exactly_the_sealed_state(stores: tuple[Store, Store], tmp_path: Path, url: str) -> None:
    repo, target = _course(stores, 10)
    source = LocalSource(repo, tmp_path / "scratch", url)
    copy = StagingCopy(target.data_dir, "course", "1")
    copy.catch_up(source)
    content.put_draft(repo, "e0001", _doc("sealed"), author=ADA)
    # What a fence makes impossible, done by hand: a write between the seal and the last fetch.
    source.after_snapshot.append(lambda: content.put_draft(repo, "e0001", _doc("late"), author=ADA))
    copy.catch_up(source, seal=True)
    assert ref_list(copy.path) == copy.sealed
    # The owner's refs differ from the sealed ones: what a move reports (source_unchanged).
    assert digest_of(ref_list(repo.path)) != digest_of(copy.sealed or [])
    copy.remove()


def test_a_seal_naming_objects_the_owner_does_not_send_fails_and_leaves_nothing(
    stores: tuple[Store, Store], tmp_path: Path, url: str
) -> None:
    repo, target = _course(stores, 10)
    source = LocalSource(repo, tmp_path / "scratch", url)
    copy = StagingCopy(target.data_dir, "course", "1")
    copy.catch_up(source)
    content.put_draft(repo, "e0001", _doc("sealed"), author=ADA)
    source.tamper["refs/drafts/e0001"] = "1" * 40
    with pytest.raises(MoveFailed, match="fetching objects from"):
        copy.catch_up(source, seal=True)
    copy.remove()
    assert not staging_folders(target.data_dir)
    assert not (target.data_dir / "course.git").exists()


def test_a_source_that_does_not_answer_fails_the_fetch(stores: tuple[Store, Store], tmp_path: Path, url: str) -> None:
    repo, target = _course(stores, 3)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nobody listens there

    class Unreachable(LocalSource):
        def fetch_url(self) -> str:
            return f"http://127.0.0.1:{port}/course.git"

    copy = StagingCopy(target.data_dir, "course", "1")
    with pytest.raises(MoveFailed, match="fetching from http://127.0.0.1"):
        copy.catch_up(Unreachable(repo, tmp_path / "scratch", url))
    copy.remove()


def test_a_copy_cannot_be_placed_over_a_repository_already_there(
    stores: tuple[Store, Store], tmp_path: Path, url: str
) -> None:
    repo, target = _course(stores, 3)
    target.create_repository("course")
    copy = StagingCopy(target.data_dir, "course", "1")
    copy.catch_up(LocalSource(repo, tmp_path / "scratch", url), seal=True)
    with pytest.raises(MoveFailed, match="is there already"):
        copy.place(target.data_dir / "course.git")
    copy.remove()


def test_a_snapshot_holds_only_what_snapshots_hold(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("../../etc/evil")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    buffer.seek(0)
    with pytest.raises(MoveFailed, match="which no snapshot has"):
        read_snapshot(buffer, tmp_path / "in")
    assert not (tmp_path / "etc").exists()
