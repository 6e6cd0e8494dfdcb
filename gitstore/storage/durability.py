"""When what gitstore writes reaches the disk.

git's rule, and gitstore's: an object is durable before any ref names it, and a ref is durable
before the write that moved it is acknowledged. There are two ways to keep it, chosen per
process with `GITSTORE_FSYNC` (git calls the same choice `core.fsyncMethod`):

- `syncfs` (the default on Linux): a loose object is written and renamed into place without an
  fsync of its own; before a ref moves, one `syncfs(2)` of the repository's file system makes
  every object written so far durable, directory entries included. A draft write makes about
  eight objects and moves two refs: 18 fsyncs became two syncfs and two directory fsyncs
  (ADR 0006 has the measurements). The cost: syncfs also waits for whatever else is dirty on
  that file system, so a data directory that shares its disk with heavy unrelated writers
  should use `fsync`.
- `fsync`: every object file and its directory are fsynced as they are written (git's
  `core.fsyncMethod=fsync`); a ref needs nothing more than its own fsync.
- `journal`: one append and one `fdatasync` of the repository's journal per round, holding
  the round's ref moves and the objects written since the last record; objects, refs and
  folders are not flushed until a checkpoint in the background (storage.journal, ADR 0014).

Either way a crash before the ref moves leaves only unreferenced objects, which `git prune`
clears, and a crash after it leaves everything the ref names on disk.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pygit2

from gitstore.storage import files, journal

__all__ = ["METHODS", "before_refs_move", "method", "object_written", "refs_moving", "sync_folders", "use_method"]

METHODS = ("syncfs", "fsync", "journal")

_libc = files._libc
_method: str | None = None
# Every object write counts, a write of an object already on disk too: another process may
# have written it and not yet synced it, and this process is about to depend on it. A count is
# taken after its write completes, so a syncfs started once the count reached n covers the
# first n writes.
_written = 0
_synced = 0
_count_guard = threading.Lock()
_sync_guard = threading.Lock()


def method() -> str:
    """The method this process uses: `GITSTORE_FSYNC`, else syncfs where the kernel has it."""
    global _method
    if _method is None:
        wanted = os.environ.get("GITSTORE_FSYNC", "")
        if wanted and wanted not in METHODS:
            raise ValueError(f"GITSTORE_FSYNC must be one of {', '.join(METHODS)}, not {wanted!r}")
        _method = wanted or ("syncfs" if files.can_sync_file_system() else "fsync")
    return _method


def use_method(name: str | None) -> None:
    """Choose the method for this process (None: back to the environment's). For tests and tools."""
    global _method
    if name is not None and name not in METHODS:
        raise ValueError(f"unknown durability method {name!r}")
    _method = name


def fsync_each_object() -> bool:
    """Whether a loose object is fsynced as it is written."""
    return method() == "fsync"


def sync_folders() -> bool:
    """Whether a rename into a folder (a ref's, a new fan-out folder) is made durable by an
    fsync of that folder; not with the journal, whose replay makes them again."""
    return method() != "journal"


def object_written(
    objects_dir: str = "", name: str = "", *, body: bytes | None = None, kind: int = 0, content: bytes = b""
) -> None:
    """Note that an object was written (its loose file's `body`) or found on disk (its `kind`
    and `content`) without being made durable: the next ref move covers it."""
    global _written
    if name and method() == "journal":
        journal.note_object(objects_dir, name, body=body, kind=kind, content=content)
        return
    with _count_guard:
        _written += 1


@contextmanager
def refs_moving(
    repository: str, ref_fds: Sequence[int], moves: Sequence[tuple[str, pygit2.Oid | None, pygit2.Oid | None, bool]]
) -> Iterator[None]:
    """Around renaming the lock files in `ref_fds` (written, not closed) over their refs:
    make them and every object written before them durable first. Each move is
    `(ref, expected, new, checked)` (storage.journal.Move)."""
    if method() == "journal":
        with journal.journal_for(repository).appended([journal.Move(*move) for move in moves]):
            yield
        return
    before_refs_move(repository, ref_fds)
    yield


def before_refs_move(repository: str, ref_fds: Sequence[int]) -> None:
    """Make the objects written so far durable, and the new content of each ref lock file in
    `ref_fds` (already written). Call it just before renaming the lock files over their refs.
    With syncfs one call covers them all, where an fsync each would cost a disk write each."""
    if method() == "fsync" or (len(ref_fds) == 1 and _synced >= _written):
        for fd in ref_fds:
            os.fsync(fd)
        return
    for _ in ref_fds:
        object_written()  # the lock files are writes that the syncfs must cover too
    _syncfs(repository)


def _syncfs(path: str) -> None:
    global _synced
    target = _written
    with _sync_guard:  # threads that arrive while one syncs wait for it, then often need nothing
        if _synced >= target:
            return
        files.sync_file_system(path)
        _synced = max(_synced, target)
