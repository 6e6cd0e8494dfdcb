"""What a repository's owner hands the node it is moving to, besides git's objects: the list of
its refs and the service state git does not hold, taken together under the repository's locks.

    snapshot.json     {"refs": [[name, id], ...], "description": ..., "sealed": ...}
    index.sqlite3     the derived index, as it stood with those refs (it also holds the changes
                      that wait to be folded into `draft`, which no ref shows yet)
    relay.sqlite3     each sink's cursor and the webhook subscriptions (only in a sealed one:
                      nothing in git can rebuild them)

Taken holding the publish and drafts locks, the refs and the index agree: every writer moves its
refs and then records them in the index before it lets go. A **sealed** snapshot is taken once
the repository is fenced (its epoch bumped in the control plane), holding every lock in their
order: a write that passed its fencing check before the fence has moved its refs before the seal
gets its lock, and a write after the fence fails its check, so nothing changes after it.

It travels as one uncompressed tar (the index is most of it: 4.6 MB at 10,000 entities).
"""

from __future__ import annotations

import os
import sqlite3
import tarfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from gitstore.errors import MoveFailed
from gitstore.repository import ContentRepository
from gitstore.storage.api import LOCK_ORDER, RefList, in_order, ref_list

__all__ = ["INDEX", "RELAY", "Snapshot", "read_snapshot", "take_snapshot", "write_snapshot_tar"]

INDEX = "index.sqlite3"
RELAY = "relay.sqlite3"
_MANIFEST = "snapshot.json"
_SECRET_FILES = {RELAY}  # it holds webhook secrets in the clear: 0600, as the relay keeps it


@dataclass(frozen=True)
class Snapshot:
    """A repository's refs and service state at one moment, in `folder`."""

    refs: RefList
    description: str
    sealed: bool
    folder: Path

    def file(self, name: str) -> Path | None:
        """The copy of service file `name` (INDEX, RELAY), if the repository had one."""
        path = self.folder / name
        return path if path.is_file() else None


def take_snapshot(repo: ContentRepository, into: Path, *, seal: bool) -> Snapshot:
    """The repository's refs and its index (and, sealed, its relay state) into folder `into`.

    Sealed, it takes every lock of the repository in their order, which is what makes the fence
    hold (see the module's docstring); call it only once the repository is fenced. Raises Busy if
    a lock stays held past the store's budget: nothing is taken, the caller may ask again."""
    into.mkdir(parents=True, exist_ok=True)
    locks = LOCK_ORDER if seal else ("publish", "drafts")
    with in_order(repo.storage, *locks):
        refs = ref_list(repo.path)
        files = [INDEX, RELAY] if seal else [INDEX]
        for name in files:
            source = repo.storage.control_dir / name
            if source.is_file():
                _backup(source, into / name)
    snapshot = Snapshot(refs, repo.description, seal, into)
    (into / _MANIFEST).write_bytes(
        orjson.dumps({"refs": snapshot.refs, "description": snapshot.description, "sealed": seal})
    )
    return snapshot


def write_snapshot_tar(snapshot: Snapshot, out: IO[bytes]) -> None:
    """The snapshot as one tar: its manifest first, then each file it holds."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in (_MANIFEST, INDEX, RELAY):
            path = snapshot.folder / name
            if path.is_file():
                tar.add(path, arcname=name, recursive=False)


def read_snapshot(stream: IO[bytes], into: Path) -> Snapshot:
    """A snapshot received as a tar (`write_snapshot_tar`), unpacked into folder `into`. Only
    the files a snapshot holds are taken. Raises MoveFailed for anything else."""
    into.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in _expected(tar):
                extracted = tar.extractfile(member)
                assert extracted is not None
                _write_file(into / member.name, extracted, secret=member.name in _SECRET_FILES)
    except (tarfile.TarError, OSError) as exc:
        raise MoveFailed(f"the snapshot could not be read: {exc}") from None
    try:
        manifest = orjson.loads((into / _MANIFEST).read_bytes())
        refs = [(str(name), str(target)) for name, target in manifest["refs"]]
        return Snapshot(refs, str(manifest["description"]), bool(manifest["sealed"]), into)
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise MoveFailed("the snapshot has no readable manifest") from None


def _expected(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    for member in tar:
        if member.name not in (_MANIFEST, INDEX, RELAY) or not member.isfile():
            raise MoveFailed(f"the snapshot holds {member.name!r}, which no snapshot has")
        yield member


def _backup(source: Path, target: Path) -> None:
    """A consistent copy of SQLite database `source`, even while others write it (what the
    WAL holds included), with the owner-only mode it needs if it holds secrets."""
    target.unlink(missing_ok=True)
    if source.name in _SECRET_FILES:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with closing(sqlite3.connect(source, timeout=30)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def _write_file(path: Path, data: IO[bytes], *, secret: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as out:
        while chunk := data.read(1 << 20):
            out.write(chunk)
