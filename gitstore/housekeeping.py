"""Housekeeping: pack objects and refs, in the repository and its live-only copy.

libgit2 never packs anything: every commit leaves loose objects (12-32 KiB of disk each,
measured), per-entity refs stay loose (4 KiB each), and the live-only copy gains one small pack
per publish. Clones then pay for delta search on every request. git's own `repack` and
`pack-refs` do this well, so gitstore runs them (housekeeping, not the data path):

- `git repack -a -d` runs without gitstore's locks: git writes the new pack beside the old ones
  and only then removes what it replaced, so writers and readers carry on (libgit2 re-reads the
  pack list on a miss).
- `git pack-refs` runs under the publish and drafts locks, because gitstore's own bulk ref
  writer rewrites packed-refs too; it takes milliseconds once refs are packed.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from gitstore.publishing.mirror import live_mirror_path
from gitstore.repository import ContentRepository

__all__ = ["GcReport", "gc"]


@dataclass
class GcReport:
    seconds: float
    loose_objects_before: int
    loose_objects_after: int
    packs_after: int
    live_packs_after: int


def gc(repo: ContentRepository) -> GcReport:
    """Pack the repository and its live-only copy. Safe while the service runs."""
    start = time.monotonic()
    before = _count(repo.path, "count")
    _git(repo.path, "repack", "-a", "-d", "-q")
    live = live_mirror_path(repo)
    if (live / "HEAD").is_file():
        _git(live, "repack", "-a", "-d", "-q")
    with repo.storage.publish_lock.held(), repo.storage.drafts_lock.held():
        _git(repo.path, "pack-refs", "--all", "--prune")
        if (live / "HEAD").is_file():
            _git(live, "pack-refs", "--all", "--prune")
    return GcReport(
        seconds=round(time.monotonic() - start, 3),
        loose_objects_before=before,
        loose_objects_after=_count(repo.path, "count"),
        packs_after=_count(repo.path, "packs"),
        live_packs_after=_count(live, "packs") if (live / "HEAD").is_file() else 0,
    )


def _git(path: Path, *args: str) -> None:
    subprocess.run(
        ["git", "--git-dir", str(path), "-c", "gc.auto=0", "-c", "core.fsync=committed,reference", *args],
        check=True,
        capture_output=True,
    )


def _count(path: Path, field: str) -> int:
    out = subprocess.run(
        ["git", "--git-dir", str(path), "count-objects", "-v"], check=True, capture_output=True, text=True
    ).stdout
    values = dict(line.split(": ", 1) for line in out.splitlines())
    return int(values[field])
