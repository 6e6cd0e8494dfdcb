"""Per-repository mutexes that hold across threads and processes.

A `RepoLock` is a `threading.Lock` (threads of one process) plus an `fcntl.flock` on a file
inside the repository (other processes, such as uvicorn workers). The kernel drops a flock when
its holder dies, so a killed worker can never leave one of these held, which is what lets the
holder treat any git `.lock` file it finds on a ref it owns as stale.

A lock can stay held for long (an import of 100k entities) or for good (a stuck process), and
each thread waiting for it is a thread the service cannot use for anything else. So a wait has
a `LockBudget`: how long it may last and how many threads may be waiting at once; past either,
`Busy`, and the caller has written nothing.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gitstore.errors import Busy

#: Held by whoever does housekeeping in a repository (relative to the repository's folder);
#: lock files it holds longer than a writer would are not taken to be abandoned while it is.
HOUSEKEEPING_LOCK = "gitstore/housekeeping.lock"

_process_locks: dict[str, threading.RLock] = {}
_process_locks_guard = threading.Lock()
# A flock wait its caller gave up on, by lock file, for the next waiter to take over; read and
# written only by the thread holding that path's thread lock.
_abandoned: dict[str, _FlockWait] = {}


class LockBudget:
    """How long a thread waits for a RepoLock held by someone else (`seconds`, None: as long as
    it takes), and how many threads may be waiting at once for the locks that share this budget
    (`waiters`, None: any number; the rest are refused at once). Taking a free lock is not
    waiting and is never refused."""

    def __init__(self, seconds: float | None = None, waiters: int | None = None) -> None:
        self.seconds, self.waiters = seconds, waiters
        self._waiting = 0
        self._guard = threading.Lock()

    @property
    def waiting(self) -> int:
        """How many threads are waiting now."""
        return self._waiting

    @contextmanager
    def wait(self, what: str) -> Iterator[float | None]:
        """Count one waiter for the time of the block; yields its deadline (monotonic)."""
        with self._guard:
            if self.waiters is not None and self._waiting >= self.waiters:
                raise Busy(f"{self._waiting} threads are waiting for locks already, so not for {what}; try again")
            self._waiting += 1
        try:
            yield None if self.seconds is None else time.monotonic() + self.seconds
        finally:
            with self._guard:
                self._waiting -= 1


#: Waits as long as it takes, as many as come.
PATIENT = LockBudget()


class RepoLock:
    """A named mutex for one repository. Re-entrant within a thread."""

    def __init__(self, path: Path, budget: LockBudget = PATIENT) -> None:
        self.path = path
        self.budget = budget
        with _process_locks_guard:
            self._thread_lock = _process_locks.setdefault(str(path), threading.RLock())
        self._local = threading.local()

    @contextmanager
    def held(self, *, patient: bool = False) -> Iterator[None]:
        """Hold the lock for the block. Raises Busy when the budget runs out first, unless
        `patient` (for what must run before anything else can, such as startup repair)."""
        if self.is_held_here():
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        self._local.fd = self._acquire(PATIENT if patient else self.budget)
        self._local.depth = 1
        try:
            yield
        finally:
            self._local.depth = 0
            fcntl.flock(self._local.fd, fcntl.LOCK_UN)
            os.close(self._local.fd)
            self._thread_lock.release()

    def _acquire(self, budget: LockBudget) -> int:
        """Take the thread lock and the flock; the descriptor that holds the flock."""
        has_thread_lock = self._thread_lock.acquire(blocking=False)
        if has_thread_lock:
            try:
                fd = try_flock(self.path)
            except BaseException:
                self._thread_lock.release()
                raise
            if fd is not None:
                return fd
        try:
            with budget.wait(self._name()) as deadline:
                if not has_thread_lock:
                    left = _left(deadline)
                    has_thread_lock = self._thread_lock.acquire(timeout=-1 if left is None else left)
                    if not has_thread_lock:
                        raise self._busy(budget)
                fd = self._flock_by(deadline)
                if fd is None:
                    raise self._busy(budget)
                return fd
        except BaseException:
            if has_thread_lock:
                self._thread_lock.release()
            raise

    def _flock_by(self, deadline: float | None) -> int | None:
        """The flock, taken before `deadline` (holding the thread lock), or None."""
        waiting = _abandoned.pop(str(self.path), None)
        if waiting is None or not waiting.take_over():
            fd = try_flock(self.path)
            if fd is not None:
                return fd
            waiting = _FlockWait(self.path)
        if waiting.wait(_left(deadline)):
            return waiting.fd
        _abandoned[str(self.path)] = waiting
        return None

    def _name(self) -> str:
        return f"the {self.path.stem} lock of {self.path.parent.parent.name.removesuffix('.git')}"

    def _busy(self, budget: LockBudget) -> Busy:
        return Busy(f"{self._name()} stayed held for {budget.seconds:g} s; nothing was written, try again")

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
            fd = try_flock(self.path)
            if fd is None:
                yield False
                return
            # Held like any other hold: taking it again inside re-enters rather than waiting
            # for a flock this thread holds through another descriptor.
            self._local.depth = 1
            try:
                yield True
            finally:
                self._local.depth = 0
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        finally:
            self._thread_lock.release()


class _FlockWait:
    """A blocking flock in a thread of its own, so that its caller can stop waiting. A caller
    that stops leaves it for the next one to take over, so however long the lock stays held,
    one thread a lock file waits for it, not one a caller that gave up."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self.pid = os.getpid()
        self._ended = threading.Event()
        self._error: OSError | None = None
        self._wanted = True
        self._guard = threading.Lock()
        threading.Thread(target=self._run, name=f"flock {path}", daemon=True).start()

    def _run(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError as exc:
            self._error = exc
        with self._guard:
            self._ended.set()
            if self._wanted and self._error is None:
                return
        os.close(self.fd)  # no one waits for it any more (or it failed): let the next taker have it

    def wait(self, timeout: float | None) -> bool:
        """Whether the flock was taken within `timeout`: the caller then owns `fd`."""
        self._ended.wait(timeout)
        with self._guard:
            if not self._ended.is_set():
                self._wanted = False
                return False
        if self._error is not None:
            raise self._error
        return True

    def take_over(self) -> bool:
        """Wait on where a caller gave up; False if the wait has ended (the flock is let go)."""
        if self.pid != os.getpid():
            os.close(self.fd)  # inherited across a fork, without the thread that waited
            return False
        with self._guard:
            if self._ended.is_set():
                return False
            self._wanted = True
            return True


def try_flock(path: Path) -> int | None:
    """A descriptor holding the flock on `path` if no one holds it, else None."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _left(deadline: float | None) -> float | None:
    """Seconds to a deadline (None: no deadline)."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


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
