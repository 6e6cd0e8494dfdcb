"""packed-refs: many refs in one sorted file, rewritten whole.

Two kinds of writer rewrite it, both holding `packed-refs.lock` while they do: a bulk move of
many refs (a publish of hundreds of entities, an import), which also holds the RepoLock of the
refs it moves, and housekeeping, which folds loose refs into it and holds only the
repository's housekeeping lock. A writer of a single ref never touches packed-refs: a loose
file shadows the packed value. libgit2 binary-searches the file (it is written sorted), so a
lookup stays ~5 us at 200,000 refs (shared/research/pygit2-notes.md section 2).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pygit2

from gitstore.storage import durability, fencing
from gitstore.storage.files import fsync_dir
from gitstore.storage.lockfiles import create_exclusively, take
from gitstore.storage.locks import HOUSEKEEPING_LOCK, is_held

__all__ = ["LoosePacked", "pack_loose_refs", "read_packed_refs", "update_refs_packed"]

_HEADER = "# pack-refs with: peeled fully-peeled sorted \n"
_HEX_LENGTH = 40


def update_refs_packed(repo: pygit2.Repository, updates: Mapping[str, pygit2.Oid]) -> None:
    """Set many refs at once by rewriting `packed-refs`: one file and one fsync instead of one
    locked, fsynced file per ref (2,000 loose ref writes measured 0.55 s here).

    The caller must hold the RepoLock that guards these refs. Loose files of the same refs are
    removed afterwards because a loose ref shadows its packed value. Not crash-atomic on its own:
    callers make another ref the commit point and re-apply this after a crash (it is idempotent).
    """
    if not updates:
        return
    root = repo.path
    fd = _take_packed_refs_lock(root)
    with _released_on_error(fd, root):
        entries = read_packed_refs(Path(root, "packed-refs"))
        for name, oid in updates.items():
            entries[name] = (str(oid), None)
        _write_entries(fd, entries)
        fencing.check(root)  # in cluster mode, only the owner at its epoch moves refs
        # The objects these refs name first; with the journal, its record is the commit point
        # and replays these moves (unchecked: they are set whatever they held).
        moves = [(name, None, oid, False) for name, oid in updates.items()]
        with durability.refs_moving(root, [fd], moves):
            _commit(fd, root, durable=durability.sync_folders())
    for name in updates:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{root}{name}")  # plain strings: pathlib costs 10 us a ref here


@dataclass
class LoosePacked:
    """What one `pack_loose_refs` did."""

    packed: int  # loose refs whose value went into packed-refs
    pruned: int  # loose files removed because packed-refs now holds the same value
    kept: int  # loose files left: moved again meanwhile, or locked by a writer at that moment
    locked_ms: float  # how long packed-refs.lock was held (bulk writers wait for it)


def pack_loose_refs(repo: pygit2.Repository) -> LoosePacked:
    """Fold every loose ref into packed-refs, then remove the loose files that still hold what
    was packed: git's `pack-refs --all --prune`, without stopping writers.

    Call it holding the repository's housekeeping lock. A writer of one ref is never blocked
    beyond its own ref's lock, held here for the few microseconds of one compare and unlink; a
    bulk writer waits for packed-refs.lock (`locked_ms`)."""
    root = repo.path
    started = time.monotonic()
    fd = _take_packed_refs_lock(root)
    with _released_on_error(fd, root):
        # Read under the lock: a bulk writer may have moved one of these refs in packed-refs
        # and removed its loose file since any earlier look.
        loose = _loose_refs(root)
        if not loose:
            os.close(fd)
            os.unlink(f"{root}packed-refs.lock")
            return LoosePacked(0, 0, 0, round((time.monotonic() - started) * 1000, 2))
        entries = read_packed_refs(Path(root, "packed-refs"))
        for name, sha in loose.items():
            entries[name] = (sha, None)
        _write_entries(fd, entries)
        os.fsync(fd)  # loose refs name only durable objects already
    _commit(fd, root)
    locked_ms = round((time.monotonic() - started) * 1000, 2)
    pruned = 0
    folders = set()
    for name, sha in loose.items():
        if _prune(f"{root}{name}", sha):
            pruned += 1
            folders.add(os.path.dirname(f"{root}{name}"))
    for folder in folders:
        fsync_dir(Path(folder))
    return LoosePacked(len(loose), pruned, len(loose) - pruned, locked_ms)


def _prune(path: str, packed_sha: str) -> bool:
    """Remove the loose file of a ref if it still holds `packed_sha`, under the ref's own lock."""
    lock = f"{path}.lock"
    fd = create_exclusively(lock)
    if fd is None:
        return False  # a writer is moving it right now: it stays loose until next time
    try:
        same = _commit_id_in(path) == packed_sha
        if same:
            os.unlink(path)
        return same
    finally:
        os.close(fd)
        os.unlink(lock)


def _loose_refs(root: str) -> dict[str, str]:
    """Every loose ref under refs/ that holds a commit id (not symbolic refs, not locks)."""
    found = {}
    for folder, _, files in os.walk(f"{root}refs"):
        for name in files:
            if name.endswith(".lock"):
                continue
            path = f"{folder}/{name}"
            value = _commit_id_in(path)
            if value is not None:
                found[path[len(root) :]] = value
    return found


def _commit_id_in(path: str) -> str | None:
    """The commit id a loose ref file holds; None if it is gone or holds something else."""
    try:
        with open(path, "rb") as f:
            value = f.read().strip()
    except FileNotFoundError:
        return None
    return value.decode() if len(value) == _HEX_LENGTH else None


def read_packed_refs(path: Path) -> dict[str, tuple[str, str | None]]:
    """name -> (commit id, peeled id or None) for every ref in a packed-refs file."""
    entries: dict[str, tuple[str, str | None]] = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return entries
    last = None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("^") and last is not None:
            entries[last] = (entries[last][0], line[1:])
            continue
        sha, name = line.split(" ", 1)
        entries[name] = (sha, None)
        last = name
    return entries


def _take_packed_refs_lock(root: str) -> int:
    # A packed-refs.lock older than the stale age is abandoned, unless housekeeping (which holds
    # it longest, and under no RepoLock a bulk writer holds) is still running. A repository's
    # live-only copy sits in its control folder, beside the housekeeping lock that covers both.
    housekeepers = (Path(root, HOUSEKEEPING_LOCK), Path(root).parent / Path(HOUSEKEEPING_LOCK).name)
    return take(
        f"{root}packed-refs.lock", "packed-refs", still_live=lambda: any(is_held(lock) for lock in housekeepers)
    )


def _write_entries(fd: int, entries: dict[str, tuple[str, str | None]]) -> None:
    lines = [_HEADER]
    for name in sorted(entries, key=lambda n: n.encode()):
        sha, peeled = entries[name]
        lines.append(f"{sha} {name}\n")
        if peeled:
            lines.append(f"^{peeled}\n")
    view = memoryview("".join(lines).encode())
    while view:
        view = view[os.write(fd, view) :]


def _commit(fd: int, root: str, *, durable: bool = True) -> None:
    os.close(fd)
    os.replace(f"{root}packed-refs.lock", f"{root}packed-refs")
    if durable:
        fsync_dir(Path(root))


@contextlib.contextmanager
def _released_on_error(fd: int, root: str) -> Iterator[None]:
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{root}packed-refs.lock")
        raise
