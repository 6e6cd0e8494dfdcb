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

import contextlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from gitstore.storage.per_repository import PerRepository

__all__ = ["check", "guard", "guarded", "mark_past_commit_point", "refusing_when_fenced", "unguard"]

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


#: Set on an exception raised after its write's commit point (storage.space.after_commit_point):
#: that write is made, so its failure must never become a refusal that says nothing was.
_PAST_COMMIT_POINT = "_gitstore_past_commit_point"


def mark_past_commit_point(failure: BaseException) -> None:
    with contextlib.suppress(AttributeError, TypeError):  # an exception that takes no attribute stays unmarked
        setattr(failure, _PAST_COMMIT_POINT, True)


@contextmanager
def refusing_when_fenced(git_dir: str | os.PathLike[str]) -> Iterator[None]:
    """A failure inside, in a repository whose folder has gone from this node and whose guard
    refuses (a move set it aside under the write), raises the guard's refusal instead, chained
    to the failure: the caller must hear what is true, not here, retry where it lives now, not
    the symptoms of files going away (a 500, a 412). Only before the commit point: a failure
    after it is raised as it is. Costs nothing unless something failed."""
    try:
        yield
    except Exception as failure:
        path = os.fspath(git_dir)
        found = _guards.get(path)
        if found is None or getattr(failure, _PAST_COMMIT_POINT, False) or os.path.isdir(path):
            raise
        try:
            found()
        except Exception as refused:
            raise refused from failure
        raise
