"""Packing (the service's housekeeping): pack objects and refs, and clear lock files abandoned
by dead writers.

libgit2 never packs anything: every commit leaves loose objects (12-32 KiB of disk each,
measured), each entity written alone leaves a loose ref (4 KiB), and the live-only copy gains
a few loose objects per publish (a pack for a larger sync). Nothing here stops a writer for
more than the microseconds of one ref's lock (bench.scale measures it):

- Objects: `git repack` (housekeeping, not the data path, so git itself) runs without
  gitstore's locks: git writes the new pack beside the old ones and only then removes what it
  replaced, and libgit2 re-reads the pack list on a miss. `gc` packs everything into one pack;
  the background `maintain` packs loose objects into packs kept in a geometric progression
  (`--geometric=2`), so each run costs what was written since the last.
- Refs: `pack_loose_refs` folds loose refs into packed-refs and removes each loose file under
  that ref's own lock, so single-ref writers carry on (storage.packed_refs).
- Lock files: a ref lock or packed-refs.lock older than `STALE_LOCK_AGE` was left by a process
  that died mid-write (gitstore holds them for microseconds); startup repair clears them at
  once, under every lock.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from gitstore.publishing.api import live_mirror_path
from gitstore.repository import ContentRepository
from gitstore.storage.api import (
    GitRepository,
    checkpoint_journal,
    in_order,
    in_order_if_free,
    pack_loose_refs,
    sweep_stale_locks,
)

__all__ = ["GcReport", "MaintainReport", "Policy", "Stats", "gc", "maintain", "stats"]

# Far longer than any live holder keeps a lock file, far shorter than anyone would wait.
STALE_LOCK_AGE = 600.0


@dataclass
class GcReport:
    seconds: float
    loose_objects_before: int
    loose_objects_after: int
    packs_after: int
    live_packs_after: int
    refs_packed: int = 0
    refs_left_loose: int = 0


def gc(repo: ContentRepository) -> GcReport:
    """Pack the repository and its live-only copy into one pack each, and pack their refs.
    Safe while the service runs."""
    start = time.monotonic()
    before = _count(repo.path, "count")
    live = _live(repo)
    # Writers never wait for this lock; another housekeeper (the service's background round)
    # does, so two repacks never race to delete each other's packs.
    with in_order(repo.storage, "housekeeping"):
        _git(repo.path, "repack", "-a", "-d", "-q")
        if live is not None:
            _git(live.path, "repack", "-a", "-d", "-q")
        packed = pack_loose_refs(repo.storage.git)
        if live is not None:
            pack_loose_refs(live.git)
    after = _object_counts(repo.path)
    return GcReport(
        seconds=round(time.monotonic() - start, 3),
        loose_objects_before=before,
        loose_objects_after=after["count"],
        packs_after=after["packs"],
        live_packs_after=_count(live.path, "packs") if live is not None else 0,
        refs_packed=packed.packed,
        refs_left_loose=packed.kept,
    )


@dataclass(frozen=True)
class Policy:
    """When the background task acts on a repository."""

    loose_refs: int = 1000  # pack refs once this many are loose (4 KiB of disk each)
    loose_objects: int = 5000  # repack once this many objects are loose ...
    packs: int = 16  # ... or there are this many packs (each import of over 32 entities adds one,
    # and every object lookup searches each pack: 91 packs made a write 1.6x dearer, bench.scale)
    stale_lock_age: float = STALE_LOCK_AGE


@dataclass
class MaintainReport:
    repository: str
    skipped: bool = False  # another process was doing it
    refs_packed: int = 0
    refs_left_loose: int = 0
    packed_refs_locked_ms: float = 0.0
    repacked: bool = False
    removed_locks: list[str] = field(default_factory=list)
    seconds: float = 0.0


def maintain(repo: ContentRepository, policy: Policy = Policy()) -> MaintainReport:
    """One round of background housekeeping: only what the policy says is due. If another
    process is doing housekeeping in this repository, skip it rather than wait."""
    start = time.monotonic()
    report = MaintainReport(repo.name)
    with in_order_if_free(repo.storage, "housekeeping") as free:
        if not free:
            report.skipped = True
            return report
        checkpoint_journal(str(repo.path))  # its copies too; idle journals empty between runs
        for storage in filter(None, (repo.storage, _live(repo))):
            report.removed_locks += sweep_stale_locks(
                storage.git, ["refs", "packed-refs.lock"], older_than=policy.stale_lock_age
            )
            if _loose_ref_count(storage.path) >= policy.loose_refs:
                packed = pack_loose_refs(storage.git)
                report.refs_packed += packed.packed
                report.refs_left_loose += packed.kept
                report.packed_refs_locked_ms = max(report.packed_refs_locked_ms, packed.locked_ms)
            objects = _object_counts(storage.path)
            if objects["count"] >= policy.loose_objects or objects["packs"] >= policy.packs:
                _git(storage.path, "repack", "-d", "-q", "--geometric=2", nice=True)
                report.repacked = True
    report.seconds = round(time.monotonic() - start, 3)
    return report


def _live(repo: ContentRepository) -> GitRepository | None:
    path = live_mirror_path(repo)
    return GitRepository(path) if (path / "HEAD").is_file() else None


def _loose_ref_count(path: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(path / "refs"))


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
        loose_refs=_loose_ref_count(repo.path),
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


def _git(path: Path, *args: str, nice: bool = False) -> None:
    subprocess.run(
        ["git", "--git-dir", str(path), "-c", "gc.auto=0", "-c", "core.fsync=committed,reference", *args],
        check=True,
        capture_output=True,
        # In the background, packing yields the CPU to requests.
        preexec_fn=(lambda: os.nice(10)) if nice else None,  # noqa: PLW1509 (no threads in the child before exec)
    )


def _count(path: Path, field: str) -> int:
    return _object_counts(path)[field]


def _object_counts(path: Path) -> dict[str, int]:
    """`git count-objects -v`: loose objects (count, size in KiB), packs, objects in packs..."""
    out = subprocess.run(
        ["git", "--git-dir", str(path), "count-objects", "-v"], check=True, capture_output=True, text=True
    ).stdout
    return {name: int(value) for name, value in (line.split(": ", 1) for line in out.splitlines())}
