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

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from gitstore.publishing.mirror import live_mirror_path
from gitstore.repository import ContentRepository

__all__ = ["GcReport", "Stats", "gc", "stats"]


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


@dataclass
class Stats:
    """What a repository holds and what it takes on disk; each figure is cheap to get."""

    entities: int  # every key the index knows, deleted ones too
    drafts: int  # not deleted in draft
    live: int
    versions: int  # commits on every draft branch
    publishes: int
    loose_refs: int
    packed_refs: int
    loose_objects: int
    loose_objects_bytes: int
    packs: int
    packed_objects: int
    packs_bytes: int
    disk_bytes: int  # the whole repository directory: objects, refs, index, locks


def stats(repo: ContentRepository) -> Stats:
    """Counts from the index, git's own object counts, and the directory's size on disk."""
    objects = _object_counts(repo.path)
    packed = repo.path / "packed-refs"
    lines = packed.read_text().splitlines() if packed.is_file() else []
    return Stats(
        **repo.index.counts(),
        loose_refs=sum(len(files) for _, _, files in os.walk(repo.path / "refs")),
        packed_refs=sum(1 for line in lines if line[:1] not in ("#", "^")),
        loose_objects=objects["count"],
        loose_objects_bytes=objects["size"] * 1024,
        packs=objects["packs"],
        packed_objects=objects["in-pack"],
        packs_bytes=objects["size-pack"] * 1024,
        disk_bytes=_disk_bytes(repo.path),
    )


def _disk_bytes(root: Path) -> int:
    total = 0
    for path, _, files in os.walk(root):
        for name in files:
            try:
                total += os.stat(os.path.join(path, name)).st_blocks * 512
            except FileNotFoundError:
                pass  # a lock or temporary file that came and went
    return total


def _git(path: Path, *args: str) -> None:
    subprocess.run(
        ["git", "--git-dir", str(path), "-c", "gc.auto=0", "-c", "core.fsync=committed,reference", *args],
        check=True,
        capture_output=True,
    )


def _count(path: Path, field: str) -> int:
    return _object_counts(path)[field]


def _object_counts(path: Path) -> dict[str, int]:
    """`git count-objects -v`: loose objects (count, size in KiB), packs, objects in packs..."""
    out = subprocess.run(
        ["git", "--git-dir", str(path), "count-objects", "-v"], check=True, capture_output=True, text=True
    ).stdout
    return {name: int(value) for name, value in (line.split(": ", 1) for line in out.splitlines())}
