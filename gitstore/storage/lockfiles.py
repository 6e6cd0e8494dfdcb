"""git's lock files: `<name>.lock`, created exclusively, renamed over `<name>` to commit.

A lock file is both the mutex and the new content. Whoever dies holding one leaves it behind,
so a lock older than a grace period is taken to be abandoned, unless a live process says
otherwise (`still_live`).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path

from gitstore.errors import Busy

__all__ = ["RETRY_BUDGET_SECONDS", "STALE_LOCK_SECONDS", "create_exclusively", "remove_if_older", "take"]

# git retries a held ref lock for 100 ms and packed-refs for 1 s; Gitaly raised both after lock
# storms. Writers in gitstore serialise on a RepoLock first, so a held ref lock here is almost
# always a stale one or an outside git process.
RETRY_BUDGET_SECONDS = 1.0
# A lock file older than this, found while holding the repository's write lock, was left by a
# process that died mid-write: gitstore holds a ref's lock for microseconds and packed-refs'
# for well under a second at 100,000 refs (bench.scale).
STALE_LOCK_SECONDS = 2.0


def create_exclusively(lock: str) -> int | None:
    """Create the lock file and return its descriptor, or None if someone holds it."""
    try:
        return os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return None


def take(lock: str, what: str, *, still_live: Callable[[], bool] = lambda: False) -> int:
    """Create the lock file, waiting up to the retry budget for its holder; then remove it if
    it is stale (and `still_live()` says no live holder has it), else raise Busy."""
    deadline = time.monotonic() + RETRY_BUDGET_SECONDS
    delay = 0.002
    while True:
        fd = create_exclusively(lock)
        if fd is not None:
            return fd
        if time.monotonic() > deadline:
            if not still_live() and remove_if_older(Path(lock), STALE_LOCK_SECONDS):
                deadline = time.monotonic() + RETRY_BUDGET_SECONDS
                continue
            raise Busy(f"{what} is locked by another writer")
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 0.1)


def remove_if_older(path: Path, seconds: float) -> bool:
    """Remove a lock file older than `seconds`; True if it is gone."""
    try:
        if time.time() - path.stat().st_mtime < seconds:
            return False
        path.unlink()
    except FileNotFoundError:
        pass
    return True
