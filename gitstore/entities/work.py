"""The unit of work: a repository's locks taken in their one order, each once however deeply
the operations that need it nest, and what a crash left half done rolled forward once per
holding.

The order is housekeeping, then publish, then drafts (`LOCK_ORDER`): a thread that holds a
lock later in it and asks for an earlier one would deadlock against a thread doing the
opposite, so that raises at once instead. Holding a lock the thread holds already (through
`holding` or not) takes nothing; the first `holding` of it that names a roll-forward runs it,
and the ones nested inside do not run it again.

Work to do once every lock of the repository is let go (telling listeners of a publish) is
queued with `after_release`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from gitstore.repository import ContentRepository
from gitstore.storage.api import RepoLock

__all__ = ["LOCK_ORDER", "after_release", "holding"]

LOCK_ORDER = ("housekeeping", "publish", "drafts")

#: What a roll-forward is given: the repository; what it returns is not used.
RollForward = Callable[[ContentRepository], object]


class _Thread(threading.local):
    def __init__(self) -> None:
        self.rolled: set[tuple[str, str]] = set()  # (repository, lock) rolled forward in this holding
        self.depth: dict[str, int] = {}  # repository -> `holding` blocks open
        self.pending: dict[str, list[Callable[[], None]]] = {}  # repository -> after_release work


_here = _Thread()


def _lock(repo: ContentRepository, name: str) -> RepoLock:
    lock: RepoLock = getattr(repo.storage, f"{name}_lock")
    return lock


@contextmanager
def holding(
    repo: ContentRepository, name: str, roll_forward: RollForward | None = None, *, patient: bool = False
) -> Iterator[None]:
    """Hold `repo`'s lock `name` (one of LOCK_ORDER) for the block, rolled forward with
    `roll_forward` once. `patient` waits as long as it takes (startup repair)."""
    lock = _lock(repo, name)
    where = str(repo.path)
    token = (where, name)
    _here.depth[where] = _here.depth.get(where, 0) + 1
    try:
        if lock.is_held_here():
            if roll_forward is None or token in _here.rolled:
                yield
                return
            with _rolled_forward(repo, token, roll_forward):
                yield
            return
        for later in LOCK_ORDER[LOCK_ORDER.index(name) + 1 :]:
            if _lock(repo, later).is_held_here():
                raise RuntimeError(f"the {name} lock is taken before the {later} lock, never while holding it")
        with lock.held(patient=patient):
            if roll_forward is None:
                yield
            else:
                with _rolled_forward(repo, token, roll_forward):
                    yield
    finally:
        _here.depth[where] -= 1
        if not _here.depth[where]:
            del _here.depth[where]
            _run_pending(where)


@contextmanager
def _rolled_forward(repo: ContentRepository, token: tuple[str, str], roll_forward: RollForward) -> Iterator[None]:
    roll_forward(repo)
    _here.rolled.add(token)
    try:
        yield
    finally:
        _here.rolled.discard(token)


def after_release(repo: ContentRepository, work: Callable[[], None]) -> None:
    """Run `work` once this thread holds no lock of `repo` through `holding`: now, if it holds
    none; otherwise when the outermost block lets go."""
    where = str(repo.path)
    if where not in _here.depth:
        work()
    else:
        _here.pending.setdefault(where, []).append(work)


def _run_pending(where: str) -> None:
    for work in _here.pending.pop(where, ()):
        work()
