"""A repository's journal: a round of writes is durable once its record is (ADR 0014).

With `GITSTORE_FSYNC=journal`, a ref move costs one append and one `fdatasync` of a file in the
repository, `journal/log`: the record holds the ref moves of the round and every loose object
written since the previous record (its content, checksummed with the rest). Only then are the
lock files renamed over the refs, and neither the objects, the refs nor their folders are
flushed: until a checkpoint, the journal is what a crash recovers them from.

- Appends are serialised across processes by a flock on `journal/mutex`, held from the append
  until the round's refs are renamed. So whoever holds it knows that every record before the
  end of the log is applied, or was left by a writer that died before renaming (and so never
  acknowledged anything).
- A checkpoint (in a background thread, off the request path: once the log passes
  `CHECKPOINT_BYTES`, every `CHECKPOINT_SECONDS`, by housekeeping, at exit) renames the log to
  `log.old` under the mutex, flushes the file system once without it, and removes `log.old`:
  what its records wrote is on the disk by then.
- Replay happens when a process opens the journal and no other process has it open (a flock
  held shared on `journal/users` for as long as a process uses it): after a restart, before
  anything is read. It writes back every object of `log.old` and `log` that is missing or
  damaged, then each ref move in order: a checked move only where the ref still holds its
  expected value (the moves of one ref form a chain, so replaying all of them in order ends on
  the last one, whatever prefix reached the disk), then flushes and empties the journal.
  While another process uses the journal nothing is replayed: any record it has not applied
  yet is one its own writer is about to apply.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import glob
import logging
import os
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pygit2

from gitstore.environment import seconds, whole_number
from gitstore.errors import CorruptObject, ReplicaOutOfSync
from gitstore.storage import replication
from gitstore.storage.files import fsync_dir, sync_file_system, write_atomically
from gitstore.storage.records import CONTENT, KIND_NAMES, LOOSE, Move, decode_record, encode, read_records
from gitstore.storage.records import RecordObject as _Object

__all__ = [
    "CHECKPOINT_BYTES",
    "CHECKPOINT_SECONDS",
    "Move",
    "checkpoint",
    "has_journal",
    "journal_for",
    "note_object",
    "open_journal",
    "read_records",
    "objects_held",
    "receive_record",
    "release_journal",
]

log = logging.getLogger("gitstore.storage")

#: A log past this size is checkpointed in the background (replay reads it whole).
CHECKPOINT_BYTES = whole_number("GITSTORE_JOURNAL_BYTES", 8 << 20, minimum=1)
#: ... and any log with records is checkpointed this long after its first.
CHECKPOINT_SECONDS = seconds("GITSTORE_JOURNAL_SECONDS", 30)

# Objects written and not yet in a record, by objects folder. A record takes all of its
# repository's: an object one thread wrote may be named by a ref another thread moves first.
_pending: dict[str, dict[str, _Object]] = {}
_pending_guard = threading.Lock()
_folders: dict[str, str] = {}


def _folder(path: str) -> str:
    found = _folders.get(path)
    if found is None:
        found = _folders[path] = os.path.normpath(path)
    return found


def note_object(objects_dir: str, name: str, *, body: bytes | None, kind: int, content: bytes) -> None:
    """An object was written without a flush (`body`: its loose file) or found on disk (its
    `kind` and `content`; another process may have written it and not journaled it yet): the
    repository's next record carries it."""
    entry = _Object(name, LOOSE, 0, body) if body is not None else _Object(name, CONTENT, kind, content)
    with _pending_guard:
        _pending.setdefault(_folder(objects_dir), {})[name] = entry


def _take_pending(objects_dir: str) -> dict[str, _Object]:
    with _pending_guard:
        return _pending.pop(objects_dir, {})


def _put_back(objects_dir: str, objects: dict[str, _Object]) -> None:
    with _pending_guard:
        _pending.setdefault(objects_dir, {}).update(objects)


class Journal:
    """One repository's journal, as one process uses it."""

    def __init__(self, git_dir: str) -> None:
        self.git_dir = os.path.normpath(git_dir)
        self.objects_dir = f"{self.git_dir}/objects"
        self.dir = f"{self.git_dir}/journal"
        self.log = f"{self.dir}/log"
        self.old = f"{self.dir}/log.old"
        self._guard = threading.Lock()  # this process's appenders, in turn
        self._checkpointing = threading.Lock()
        self._log_fd = -1
        self._log_ino = -1
        self.dirty_since: float | None = None  # when this process appended first since a checkpoint
        if not os.path.isdir(self.dir):
            with contextlib.suppress(FileExistsError):
                os.mkdir(self.dir)  # inside a repository that is there: never make one again
            fsync_dir(self.git_dir)
        self.dir_ino = os.stat(self.dir).st_ino
        self._mutex = os.open(f"{self.dir}/mutex", os.O_RDWR | os.O_CREAT, 0o644)
        self._users = os.open(f"{self.dir}/users", os.O_RDWR | os.O_CREAT, 0o644)
        with self._held():
            try:
                fcntl.flock(self._users, fcntl.LOCK_EX | fcntl.LOCK_NB)
                alone = True
            except BlockingIOError:
                alone = False
            if alone:
                self._replay()
            fcntl.flock(self._users, fcntl.LOCK_SH)

    @contextmanager
    def _held(self) -> Iterator[None]:
        fcntl.flock(self._mutex, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._mutex, fcntl.LOCK_UN)

    @contextmanager
    def appended(self, moves: Sequence[Move]) -> Iterator[None]:
        """Append a record of `moves` and of every object written in the repository since the
        last record, make it durable, and hold the journal while the caller applies the moves
        (renames its lock files), so no checkpoint or replay sees the record unapplied."""
        with self._guard:
            objects = _take_pending(self.objects_dir)
            record = encode(list(objects.values()), moves)
            with self._held():
                try:
                    fd = self._current_log()
                    before = os.fstat(fd).st_size
                    _append(fd, record)
                except BaseException:
                    _put_back(self.objects_dir, objects)
                    raise
                try:
                    replication.ship(self.git_dir, record)
                except BaseException:
                    # Refused (a replica neither acked nor left the in-sync set): the record
                    # leaves the log, so no replay ever applies a round nobody acknowledged.
                    os.ftruncate(fd, before)
                    os.fdatasync(fd)
                    _put_back(self.objects_dir, objects)
                    raise
                yield
            size = os.lseek(fd, 0, os.SEEK_CUR)
        if self.dirty_since is None:
            self.dirty_since = time.monotonic()
        _checkpointer.wake(self, urgent=size >= CHECKPOINT_BYTES)

    def received(self, record: bytes) -> int:
        """A replica's side of a round: check that `record` (a primary's, whole) applies here,
        append it durably, then apply it (its objects written, its moves made). Raises
        ReplicaOutOfSync, changing nothing, if it is damaged or a checked move finds its ref
        holding something else than expected (this copy diverged). How many refs moved."""
        objects, moves = decode_record(record)
        with self._guard, self._held():
            packed = _PackedRefs(self.git_dir)
            values: dict[str, str | None] = {}
            for move in moves:
                current = values[move.ref] if move.ref in values else _current(self.git_dir, move.ref, packed)
                expected = str(move.expected) if move.expected is not None else None
                if move.checked and current != expected:
                    raise ReplicaOutOfSync(f"{move.ref} holds {current}, the record expects {expected}", ref=move.ref)
                values[move.ref] = str(move.new) if move.new is not None else None
            _append(self._current_log(), record)
            for obj in objects:
                _restore_object(self.objects_dir, obj)
            moved = sum(_replay_move(self.git_dir, move, packed) for move in moves)
        if self.dirty_since is None:
            self.dirty_since = time.monotonic()
        _checkpointer.wake(self, urgent=False)
        return moved

    def objects_held(self) -> bytes:
        """One record, without moves, of every object in this journal's logs and of those written
        and not in a record yet. A replica joining under a seal takes it besides the objects its
        refs reach: a round may name an object that an earlier round's record carried (a record
        takes every object written since the last, whoever wrote it)."""
        with self._held():
            objects = {obj.name: obj for path in (self.old, self.log) for objs, _ in read_records(path) for obj in objs}
        with _pending_guard:
            objects.update(_pending.get(self.objects_dir, {}))
        return encode(list(objects.values()), [])

    def _current_log(self) -> int:
        """The descriptor of `log`, opened again if a checkpoint renamed it; under the mutex."""
        try:
            ino = os.stat(self.log).st_ino
        except FileNotFoundError:
            ino = -2
        if ino != self._log_ino:
            if self._log_fd != -1:
                os.close(self._log_fd)
                self._log_fd = -1
            self._log_fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._log_ino = os.fstat(self._log_fd).st_ino
            if ino == -2:
                fsync_dir(self.dir)  # a new log: its name must outlive a crash like its records
        return self._log_fd

    def checkpoint(self) -> bool:
        """Make what the journal's records wrote durable by other means, and drop them. Writers
        wait only for a rename (and a folder fsync when the new log is made), never for the
        flush. Returns whether there was anything to drop."""
        with self._checkpointing:
            self.dirty_since = None
            with self._held():
                try:
                    old = os.stat(self.old).st_ino
                except FileNotFoundError:
                    old = -1
                if old == -1:  # else a checkpoint that died after the rename: finish it
                    try:
                        if os.stat(self.log).st_size == 0:
                            return False
                    except FileNotFoundError:
                        return False
                    os.rename(self.log, self.old)
                    old = os.stat(self.old).st_ino
                    self._current_log()
            # Every record in log.old is applied (its writer held the mutex until it was) or
            # was never acknowledged: one flush makes the first kind durable.
            sync_file_system(self.git_dir)
            with self._held():
                with contextlib.suppress(FileNotFoundError):
                    if os.stat(self.old).st_ino == old:
                        os.unlink(self.old)
                        fsync_dir(self.dir)
            return True

    def _replay(self) -> None:
        """Under the mutex, with no other process using the journal: apply what a crash may
        have lost, make it durable, empty the journal."""
        records = [*read_records(self.old), *read_records(self.log)]
        if records:
            repaired = sum(_restore_object(self.objects_dir, obj) for objects, _ in records for obj in objects)
            packed = _PackedRefs(self.git_dir)
            moved = sum(_replay_move(self.git_dir, move, packed) for _, moves in records for move in moves)
            sync_file_system(self.git_dir)
            log.warning(
                "journal of %s replayed: %d records, %d objects and %d refs written back",
                self.git_dir,
                len(records),
                repaired,
                moved,
            )
        for path in (self.old, self.log):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        fsync_dir(self.dir)

    def close(self) -> None:
        for fd in (self._log_fd, self._users, self._mutex):
            if fd != -1:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._log_fd = self._users = self._mutex = -1


def _append(fd: int, record: bytes) -> None:
    view = memoryview(record)
    while view:
        view = view[os.write(fd, view) :]
    os.fdatasync(fd)


def _restore_object(objects_dir: str, obj: _Object) -> bool:
    """Write an object back if its loose file is missing or damaged (a power cut can leave a
    renamed file empty); True if it had to."""
    from gitstore.storage.loose import read_loose  # loose imports durability, which imports us

    path = f"{objects_dir}/{obj.name[:2]}/{obj.name[2:]}"
    try:
        read_loose(path, obj.name)
        return False
    except (FileNotFoundError, CorruptObject):
        pass
    if obj.form == LOOSE:
        body = obj.data
    else:
        body = zlib.compress(KIND_NAMES[obj.kind] + b" %d\0" % len(obj.data) + obj.data, 1)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, 0o644)  # a damaged copy: git made it read-only
    write_atomically(path, body, mode=0o444, staging_prefix="tmp_obj_", durable=False)
    return True


class _PackedRefs:
    """packed-refs, read once for a replay."""

    def __init__(self, git_dir: str) -> None:
        from pathlib import Path

        from gitstore.storage.packed_refs import read_packed_refs

        self.git_dir = git_dir
        self.values = {name: sha for name, (sha, _) in read_packed_refs(Path(git_dir, "packed-refs")).items()}

    def drop(self, ref: str) -> None:
        if self.values.pop(ref, None) is not None:
            pygit2.Repository(self.git_dir).references.delete(ref)


def _replay_move(git_dir: str, move: Move, packed: _PackedRefs) -> bool:
    """Apply one move again if the ref is where the move found it; True if it moved."""
    path = f"{git_dir}/{move.ref}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(f"{path}.lock")  # its writer is gone: no other process uses the journal
    try:
        current = _current(git_dir, move.ref, packed, repair=True)
    except IsADirectoryError:
        return False
    if move.checked and current != (str(move.expected) if move.expected is not None else None):
        return False
    if move.new is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        packed.drop(move.ref)
        return current is not None
    if current == str(move.new):
        return False
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomically(path, f"{move.new}\n".encode(), durable=False)
    return True


def _current(git_dir: str, ref: str, packed: _PackedRefs, *, repair: bool = False) -> str | None:
    """The id `ref` holds: its loose file, else packed-refs. `repair`: a damaged loose file is
    removed (what packed-refs or the chain of moves says instead)."""
    path = f"{git_dir}/{ref}"
    current: str | None
    try:
        with open(path, "rb") as f:
            text = f.read().strip()
        current = text.decode() if len(text) == 40 else None
        if current is None and repair:
            os.unlink(path)
    except FileNotFoundError:
        current = None
    return current if current is not None else packed.values.get(ref)


# One journal object per repository and process (a forked child opens its own: flocks taken
# through a descriptor it shares with its parent would not exclude the parent).
_journals: dict[str, Journal] = {}
_journals_pid = os.getpid()
_journals_guard = threading.Lock()


def journal_for(git_dir: str) -> Journal:
    """This process's journal of the repository at `git_dir`, opened (and replayed, if no
    other process has it open) on first use."""
    global _journals_pid
    key = _folder(git_dir)
    found = _journals.get(key)
    if found is not None and _journals_pid == os.getpid() and _still_there(found):
        return found
    with _journals_guard:
        if _journals_pid != os.getpid():
            for inherited in _journals.values():
                inherited.close()
            _journals.clear()
            _journals_pid = os.getpid()
        found = _journals.get(key)
        if found is not None and not _still_there(found):
            found.close()  # the repository was removed or renamed (a copy rebuilt aside)
            found = None
        if found is None:
            found = _journals[key] = Journal(key)
        return found


def _still_there(journal: Journal) -> bool:
    try:
        return os.stat(journal.dir).st_ino == journal.dir_ino
    except FileNotFoundError:
        return False


def has_journal(git_dir: str) -> bool:
    return os.path.isdir(f"{git_dir}/journal")


def open_journal(git_dir: str) -> None:
    """Before reading a repository: replay its journal if it has one and no other process
    uses it. Costs one `stat` for a repository without a journal."""
    if has_journal(git_dir):
        journal_for(git_dir)


def checkpoint(git_dir: str) -> bool:
    """Checkpoint the journals of the repository and of the copies gitstore keeps in its
    control folder (housekeeping; before erasing, so that no record keeps a copy of what is
    erased). Whether any had records."""
    dropped = False
    for path in (git_dir, *glob.glob(f"{glob.escape(str(git_dir))}/gitstore/*.git")):
        if has_journal(path):
            dropped |= journal_for(path).checkpoint()
    return dropped


def receive_record(git_dir: str, record: bytes) -> int:
    """A replica's copy at `git_dir` takes a primary's record (Journal.received)."""
    return journal_for(git_dir).received(record)


def objects_held(git_dir: str) -> bytes:
    return journal_for(git_dir).objects_held()


def release_journal(git_dir: str) -> None:
    """Checkpoint and close this process's journal of `git_dir`, whose folder is about to be
    renamed (a replica promoted into place): its new name opens a journal of its own."""
    with _journals_guard:
        found = _journals.pop(_folder(git_dir), None)
    if found is not None:
        with contextlib.suppress(FileNotFoundError):
            found.checkpoint()
        found.close()


def forget_journals() -> None:
    """Close this process's journals, as an exit would, without checkpointing them (tests:
    a "restart" in-process)."""
    with _journals_guard:
        for journal in _journals.values():
            journal.close()
        _journals.clear()


class _Checkpointer:
    """A daemon thread per process that checkpoints journals this process appended to."""

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._pid = -1
        self._urgent: set[Journal] = set()
        self._guard = threading.Lock()

    def wake(self, journal: Journal, *, urgent: bool) -> None:
        if self._pid != os.getpid():
            with self._guard:
                if self._pid != os.getpid():
                    self._pid = os.getpid()
                    self._urgent = set()
                    threading.Thread(target=self._run, name="gitstore-journal", daemon=True).start()
        if urgent:
            self._urgent.add(journal)
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(timeout=min(CHECKPOINT_SECONDS, 5.0))
            self._wake.clear()
            now = time.monotonic()
            due = {
                j
                for j in list(_journals.values())
                if j.dirty_since is not None and now - j.dirty_since >= CHECKPOINT_SECONDS
            }
            due |= self._urgent
            self._urgent = set()
            for journal in due:
                try:
                    journal.checkpoint()
                except Exception:  # a removed repository, a full disk: the next round tries again
                    log.exception("checkpoint of %s failed", journal.git_dir)


_checkpointer = _Checkpointer()


@atexit.register
def _checkpoint_at_exit() -> None:
    """A clean exit leaves empty journals: the next start has nothing to replay."""
    if _journals_pid != os.getpid():
        return
    for journal in list(_journals.values()):
        if journal.dirty_since is not None:
            with contextlib.suppress(Exception):
                journal.checkpoint()
