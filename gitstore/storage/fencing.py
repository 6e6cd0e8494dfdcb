"""Fencing: a check that runs at every commit point of a guarded repository.

In cluster mode (gitstore.cluster) only the owner of a repository at its current epoch may
write it. The cluster layer guards each repository this node owns with a check that asks the
control plane; storage calls `check` with the repository's git dir just before a ref move
becomes visible (loose refs, packed-refs, deletions), with the ref lock files already taken.
A check that raises stops the move: the lock files are removed and nothing moved.

A repository with no guard costs one dict lookup (embedded mode has none at all, so only a test
for an empty dict). Guards are keyed by the git dir's real path, so a path spelt another way
(a trailing separator, a symlink) finds the same guard.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from gitstore.storage.per_repository import PerRepository

__all__ = ["check", "guard", "guarded", "refusing_when_fenced", "unguard"]

Check = Callable[[], None]

_guards: PerRepository[Check] = PerRepository()


def guard(git_dir: str | os.PathLike[str], check: Check) -> None:
    """Run `check` before every ref move in the repository at `git_dir` (replacing any guard it
    had). `check` raises to refuse the move."""
    _guards.set(git_dir, check)


def unguard(git_dir: str | os.PathLike[str]) -> None:
    """Stop checking moves in the repository at `git_dir`."""
    _guards.drop(git_dir)


def guarded() -> list[str]:
    """The git dirs that have a guard (real paths)."""
    return _guards.git_dirs()


def check(git_dir: str) -> None:
    """Raise what the repository's guard raises; nothing if it has none."""
    found = _guards.get(git_dir)
    if found is not None:
        found()


@contextmanager
def refusing_when_fenced(git_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Whatever fails inside, in a repository whose guard refuses now, raises the guard's
    refusal instead (chained to the failure). A repository taken from this node under a write
    (a move set its folder aside, a promotion fenced it) fails in whatever way its files went
    missing, a 500 or a 412; its caller must hear what is true: not here, retry where it lives
    now. Costs nothing unless something failed."""
    try:
        yield
    except Exception as failure:
        found = _guards.get(os.fspath(git_dir))
        if found is None:
            raise
        try:
            found()
        except Exception as refused:
            raise refused from failure
        raise
