"""Per-repository mutexes that hold across threads and processes.

A `RepoLock` is a `threading.Lock` (threads of one process) plus an `fcntl.flock` on a file
inside the repository (other processes, such as uvicorn workers). The kernel drops a flock when
its holder dies, so a killed worker can never leave one of these held, which is what lets the
holder treat any git `.lock` file it finds on a ref it owns as stale.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Held by whoever does housekeeping in a repository (relative to the repository's folder);
#: lock files it holds longer than a writer would are not taken to be abandoned while it is.
HOUSEKEEPING_LOCK = "gitstore/housekeeping.lock"

_process_locks: dict[str, threading.RLock] = {}
_process_locks_guard = threading.Lock()


class RepoLock:
    """A named mutex for one repository. Re-entrant within a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with _process_locks_guard:
            self._thread_lock = _process_locks.setdefault(str(path), threading.RLock())
        self._local = threading.local()

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._thread_lock:
            depth = getattr(self._local, "depth", 0)
            if depth == 0:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                self._local.fd = fd
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth -= 1
                if self._local.depth == 0:
                    fd = self._local.fd
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)

    def is_held_here(self) -> bool:
        """Whether this thread holds the lock (so taking it again would not wait)."""
        return getattr(self._local, "depth", 0) > 0

    @contextmanager
    def held_if_free(self) -> Iterator[bool]:
        """Take the lock only if no one holds it; yields whether it was taken."""
        if not self._thread_lock.acquire(blocking=False):
            yield False
            return
        try:
            if getattr(self._local, "depth", 0):
                yield False  # this thread holds it already: not free for a second job
                return
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        finally:
            self._thread_lock.release()


def is_held(path: Path) -> bool:
    """Whether some process (this one included) holds the RepoLock whose file is `path`."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock this call took
    return False
