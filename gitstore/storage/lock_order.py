"""A repository's locks, taken in their one order: housekeeping, then publish, then drafts.

A thread that holds a lock later in the order and waits for an earlier one would deadlock
against a thread doing the opposite. Kept by each caller, the order is one slip away from that;
kept here, a wrong order raises at once, the first time the code runs, whether the caller would
wait with its budget, wait patiently or only try. Every lock of a repository is taken through
this module (tests/test_architecture.py checks it); gitstore.entities.work builds the unit of
work, which also rolls forward what a crash left half done, on it.

A lock this thread holds already is lent, not taken again: nesting costs nothing and is never
out of order.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Literal

from gitstore.storage.git import GitRepository
from gitstore.storage.locks import RepoLock

__all__ = ["LOCK_ORDER", "LockName", "in_order", "in_order_if_free", "repo_lock"]

LockName = Literal["housekeeping", "publish", "drafts"]
LOCK_ORDER: tuple[LockName, ...] = ("housekeeping", "publish", "drafts")


def repo_lock(storage: GitRepository, name: LockName) -> RepoLock:
    """The repository's lock `name`, to ask whether this thread holds it; take it with
    `in_order`."""
    locks = {"housekeeping": storage.housekeeping_lock, "publish": storage.publish_lock, "drafts": storage.drafts_lock}
    return locks[name]


@contextmanager
def in_order(storage: GitRepository, *names: LockName, patient: bool = False) -> Iterator[None]:
    """Hold `storage`'s locks `names`, named in LOCK_ORDER's order, for the block. Raises Busy
    when a lock's budget runs out first (having let go of those it took), unless `patient`:
    that waits as long as it takes, for what must run before anything else can (startup
    repair, finishing an erasure)."""
    ranks = [LOCK_ORDER.index(name) for name in names]
    if ranks != sorted(set(ranks)):
        raise RuntimeError(f"locks are taken once each in the order {', '.join(LOCK_ORDER)}, not {', '.join(names)}")
    with ExitStack() as held:
        for name in names:
            lock = repo_lock(storage, name)
            if lock.is_held_here():
                continue
            _refuse_out_of_order(storage, name)
            held.enter_context(lock.held(patient=patient))
        yield


@contextmanager
def in_order_if_free(storage: GitRepository, name: LockName) -> Iterator[bool]:
    """Take `storage`'s lock `name` only if no one holds it (this thread included: it is not
    free for a second job); yields whether it was taken."""
    lock = repo_lock(storage, name)
    if not lock.is_held_here():
        _refuse_out_of_order(storage, name)
    with lock.held_if_free() as free:
        yield free


def _refuse_out_of_order(storage: GitRepository, name: LockName) -> None:
    for later in LOCK_ORDER[LOCK_ORDER.index(name) + 1 :]:
        if repo_lock(storage, later).is_held_here():
            raise RuntimeError(f"the {name} lock is taken before the {later} lock, never while holding it")
