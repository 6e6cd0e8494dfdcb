"""The unit of work: a repository's locks taken in their one order, each once however deeply
the operations that need it nest, and what a crash left half done rolled forward once per
holding.

The order, and what asking for a lock out of it does, is gitstore.storage.lock_order's (this
builds on `in_order`). Holding a lock the thread holds already (through `holding` or not)
takes nothing; the first `holding` of it that names a roll-forward runs it, and the ones nested
inside do not run it again.

Work to do once every lock of the repository is let go (telling listeners of a publish) is
queued with `after_release`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from gitstore.repository import ContentRepository
from gitstore.storage.api import LockName, in_order

__all__ = ["after_release", "holding"]

#: What a roll-forward is given: the repository; what it returns is not used.
RollForward = Callable[[ContentRepository], object]


class _Thread(threading.local):
    def __init__(self) -> None:
        self.rolled: set[tuple[str, str]] = set()  # (repository, lock) rolled forward in this holding
        self.depth: dict[str, int] = {}  # repository -> `holding` blocks open
        self.pending: dict[str, list[Callable[[], None]]] = {}  # repository -> after_release work


_here = _Thread()


@contextmanager
def holding(
    repo: ContentRepository, name: LockName, roll_forward: RollForward | None = None, *, patient: bool = False
) -> Iterator[None]:
    """Hold `repo`'s lock `name` (one of LOCK_ORDER) for the block, rolled forward with
    `roll_forward` once. `patient` waits as long as it takes (startup repair)."""
    where = str(repo.path)
    token = (where, name)
    _here.depth[where] = _here.depth.get(where, 0) + 1
    try:
        with in_order(repo.storage, name, patient=patient):
            if roll_forward is None or token in _here.rolled:
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
