"""A full disk around commit points: refuse before one, never fail after one.

Every write moves one ref (its commit point) and then brings derived state along: the `draft`
branch, the published refs, the index. A full disk before the commit point is a clean 507:
nothing names the objects already written. After it, the change is made and readers see it,
so answering 507 would tell the client "not written" about a write that was (measured: with
the disk filling at the right moment, 507 with the entity's ref moved). Hence:

- `ensure_room` before each commit point: refuse (StorageFull) unless there is room for what
  must follow it, so the steps after it practically never meet a full disk;
- `after_commit_point` around those steps: if the disk fills anyway (another process took the
  room), the request still succeeds and the derived state is caught up later, exactly as after
  a crash at the same moment (ADR 0001: before the next publish or batch, and at startup).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gitstore.errors import Busy, StorageFull
from gitstore.storage.fencing import mark_past_commit_point
from gitstore.storage.refs import disk_errors

log = logging.getLogger("gitstore.storage")

# What the steps after a commit point write, at most, besides rewriting packed-refs: a few ref
# files and the index's write-ahead log for one change (a 2,000-entity publish measured ~1 MiB
# of WAL; that rare case is what `after_commit_point` is for).
ROOM_AFTER_COMMIT_POINT = 256 * 1024


def ensure_room(git_dir: Path) -> None:
    """Raise StorageFull unless the disk holding `git_dir` has room for what follows a commit
    point: a rewrite of packed-refs (which can hold every ref) and ROOM_AFTER_COMMIT_POINT."""
    try:
        packed = (git_dir / "packed-refs").stat().st_size
    except FileNotFoundError:
        packed = 0
    disk = os.statvfs(git_dir)
    if disk.f_bavail * disk.f_frsize < packed + ROOM_AFTER_COMMIT_POINT:
        raise StorageFull("no space left on the device")


@contextmanager
def after_commit_point(what: str) -> Iterator[None]:
    """Around the derived steps that follow a commit point: a full disk, or a derived ref another
    writer holds locked past the lock budget, is logged, not raised, because the change itself
    is already made (roll-forward catches the derived state up)."""
    try:
        with disk_errors():
            yield
    except StorageFull:
        log.warning("%s is committed, but the disk filled before its derived state followed; caught up later", what)
    except Busy:
        log.warning("%s is committed, but a derived ref stayed locked; caught up later", what)
    except BaseException as failure:
        mark_past_commit_point(failure)
        raise
