"""Loose objects, read by gitstore itself so that a damaged one fails instead of hanging.

libgit2 1.9.7 spins forever at 100% CPU, holding the GIL, when it inflates a truncated loose
object (libgit2 #7342; measured: no other thread of the process ever ran again). A
watchdog cannot stop a thread that holds the GIL, and a restarted worker hangs again on the
next read of the same object. So libgit2 never inflates a loose object here: each repository
handle gets an object database whose loose backend is `LooseObjects`, which reads the file
with Python's zlib, checks that the stream is complete, the header states the right size and
the content hashes to its name, and raises CorruptObject otherwise. Every read goes through
it, libgit2's own (diff, blame, revwalk, packing) included. See
docs/decisions/0005-corrupt-objects.md for the alternatives and the measured cost.

Packs are still read by libgit2, which fails fast on damaged ones (measured; see the ADR).
Loose objects are written here too, as git does (deflate, write aside, rename; made durable
as storage.durability says): libgit2's writer holds the GIL through its fsyncs, so every other
thread of the worker, the event loop included, stopped for each one (measured with py-spy
--gil); `os.fsync` and syncfs let them run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import pygit2

from gitstore.errors import CorruptObject, GitstoreError
from gitstore.storage import durability
from gitstore.storage.files import fsync_dir, write_atomically

log = logging.getLogger("gitstore.storage")

_KINDS = {b"commit": 1, b"tree": 2, b"blob": 3, b"tag": 4}
_HEX_LENGTH = 40
# libgit2's own default for loose objects: zlib's fastest level (git repack recompresses).
_COMPRESSION = 1
_NAMES = {kind: name for name, kind in _KINDS.items()}
# libgit2 retries a failed write within microseconds; a later write of the same object is new.
_RETRY_WINDOW = 1.0


def guarded_odb(objects_dir: str) -> pygit2.Odb:
    """An object database for `objects_dir` in which libgit2 never inflates a loose object.

    libgit2's loose backend is left out altogether rather than ranked below ours: for full-id
    lookups through a tree entry libgit2 asks every backend (to detect ambiguity, measured),
    so it would still inflate each object after us."""
    odb = pygit2.Odb()
    odb.add_backend(pygit2.OdbBackendPack(objects_dir), 2)  # asked first, as libgit2 does
    odb.add_backend(LooseObjects(objects_dir), 1)
    return odb


def read_loose(path: str, oid: str) -> tuple[int, bytes]:
    """The (type, content) of the loose object file at `path`, named `oid`. FileNotFoundError
    if there is no such file, CorruptObject if it cannot be read whole and exactly."""
    fd = os.open(path, os.O_RDONLY)  # not open(): its buffered file object costs 5 us a read
    try:
        raw = os.read(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(raw)
    except zlib.error:
        raise _damaged(oid, path, "not-zlib", "is not a zlib stream") from None
    if not inflater.eof:
        raise _damaged(oid, path, "truncated", "is truncated")
    header, nul, content = data.partition(b"\0")
    kind, _, size = header.partition(b" ")
    if not nul or kind not in _KINDS or not size.isdigit() or int(size) != len(content):
        raise _damaged(oid, path, "bad-header", "has a damaged header")
    if hashlib.sha1(data).hexdigest() != oid:
        raise _damaged(oid, path, "hash-mismatch", "does not hash to its name")
    return _KINDS[kind], content


def _damaged(oid: str, path: str, problem: str, why: str) -> CorruptObject:
    # The detail reaches callers, so it names no object; the log and `extra` do.
    return CorruptObject(
        f"stored content is damaged: a git object this request needs {why}; `gitstore fsck` lists every damaged object",
        oid=oid,
        path=path,
        problem=problem,
    )


@contextmanager
def callback_errors() -> Iterator[None]:
    """Around pygit2 calls made through cffi (blame, merge_file_from_index, PackBuilder): an
    exception raised in our backend reaches Python there as a SystemError ("returned a result
    with an exception set") whose context is the real error. Raise the real one."""
    try:
        yield
    except SystemError as exc:
        if isinstance(exc.__context__, GitstoreError):
            raise exc.__context__ from None
        raise


class LooseObjects(pygit2.OdbBackend):
    """The loose objects of one repository, as libgit2 sees them.

    Raising KeyError tells libgit2 "not here, ask the next backend"; ValueError "ambiguous";
    any other exception aborts the lookup and reaches the caller as itself."""

    def __init__(self, objects_dir: str) -> None:
        super().__init__()
        self._dir = objects_dir
        self._failed = threading.local()  # this thread's last failed write, for libgit2's retry

    def _path(self, oid: str) -> str:
        return f"{self._dir}/{oid[:2]}/{oid[2:]}"

    def read_cb(self, oid: pygit2.Oid) -> tuple[int, bytes]:
        name = str(oid)
        try:
            return read_loose(self._path(name), name)
        except FileNotFoundError:
            raise KeyError(name) from None
        except CorruptObject as exc:
            log.error("damaged loose object %s (%s) at %s", name, exc.extra["problem"], exc.extra["path"])
            raise

    def read_header_cb(self, oid: pygit2.Oid) -> tuple[int, int]:
        kind, content = self.read_cb(oid)
        return kind, len(content)

    def read_prefix_cb(self, prefix: str) -> tuple[int, bytes, pygit2.Oid]:
        oid = self.exists_prefix_cb(prefix)
        kind, content = self.read_cb(oid)
        return kind, content, oid

    def exists_cb(self, oid: pygit2.Oid) -> bool:
        # libgit2 also asks this before writing an object that may already exist, in place of
        # the freshen call pygit2 cannot offer.
        return _freshen(self._path(str(oid)))

    def exists_prefix_cb(self, prefix: str) -> pygit2.Oid:
        if len(prefix) == _HEX_LENGTH:
            if not os.path.exists(self._path(prefix)):
                raise KeyError(prefix)
            return pygit2.Oid(hex=prefix)
        try:
            names = [n for n in os.listdir(f"{self._dir}/{prefix[:2]}") if n.startswith(prefix[2:])]
        except FileNotFoundError:
            names = []
        if not names:
            raise KeyError(prefix)
        if len(names) > 1:
            raise ValueError(f"{prefix} is ambiguous")
        return pygit2.Oid(hex=prefix[:2] + names[0])

    def refresh_cb(self) -> None:
        """Loose files are looked up afresh on every read: nothing to refresh."""

    def write_cb(self, oid: pygit2.Oid, data: bytes, kind: int) -> None:
        # Failures here need care (each measured). A write can fail for a moment: `git repack`
        # removes an emptied fan-out directory between libgit2 creating it and renaming the new
        # object into it. libgit2 covers that by writing again through another path, but our
        # exception is still pending then, so its success would reach the caller as a
        # SystemError: so the second try happens here, and if it fails too, libgit2's retry fails
        # the same way. The failure must reach the caller: `git_commit_create` ignores a failed
        # object write and returns the id of a commit it never wrote, so for a commit only the
        # pending exception tells, as a SystemError whose context it is (storage.refs.disk_errors
        # unwraps it). A KeyError would be cleared, and the caller handed that unwritten commit.
        name, failed = str(oid), self._failed.__dict__.pop("write", None)
        if failed is not None and failed[0] == name and time.monotonic() - failed[1] < _RETRY_WINDOW:
            raise failed[2]
        try:
            write_loose(self._dir, name, kind, data, absent=True)
        except OSError as exc:
            self._failed.write = (name, time.monotonic(), exc)
            raise


def _freshen(path: str) -> bool:
    """Whether the loose object file at `path` exists; touch it if so, as git does, so that
    `git prune`'s grace period counts from this new use."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except PermissionError:
        pass  # another owner's file: it is there, it just keeps its age
    return True


def add_loose(objects_dir: str, kind: int, data: bytes) -> pygit2.Oid:
    """Write one object gitstore made itself (an entity's blobs, trees and commit) as a loose
    object, without libgit2; its id. libgit2 would look for it in every pack first, rescanning
    the pack folder when it is not there, and read back each tree entry and a commit's tree and
    parents to check their types (our own `read_cb`: inflate and hash): about 30% of a single
    draft write's CPU (a loop of writes, measured before and after). A loose copy of an object
    already packed is harmless: git keeps one, and gc drops the other."""
    oid = pygit2.Oid(raw=hashlib.sha1(b"%s %d\0%s" % (_NAMES[kind], len(data), data)).digest())
    write_loose(objects_dir, str(oid), kind, data)
    return oid


def write_loose(objects_dir: str, name: str, kind: int, content: bytes, *, absent: bool = False) -> None:
    """Write one loose object, durably or for the next `durability.before_refs_move` to make
    durable. An object already there is left as it is: its name is its content. `absent`: the
    caller has just looked and it was not there (libgit2 asks `exists_cb` before every write),
    so it is not looked for again; a writer racing us to it renames the same bytes over it."""
    folder = f"{objects_dir}/{name[:2]}"
    path = f"{folder}/{name[2:]}"
    durable = durability.fsync_each_object()
    if not absent and _freshen(path):
        if not durable:  # its writer may not have made it durable yet
            durability.object_written(objects_dir, name, kind=kind, content=content)
        return
    body = zlib.compress(_NAMES[kind] + b" %d\0" % len(content) + content, _COMPRESSION)
    created = False
    # The fan-out folder may be missing: new, or emptied and removed by `git repack`, even
    # between our mkdir and our rename. So write first, and create it only when that fails.
    for attempt in range(3):
        try:
            # git's own prefix for objects being written: git gc knows to clear leftovers.
            write_atomically(path, body, mode=0o444, staging_prefix="tmp_obj_", durable=durable)
        except FileNotFoundError:
            if attempt == 2:
                raise
            # The fan-out folder only: a repository whose folder went (a move set it aside
            # under this write) must not be made again, half, where it was.
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder)
            created = True
            continue
        if not durable:
            durability.object_written(objects_dir, name, body=body)
        elif created:
            fsync_dir(objects_dir)
        return
