"""The moving node's side of a move: a copy of the repository built aside in its data directory,
`.moving-<repo>-<tag>/repo.git`, caught up with the owner round by round while writes go on.

Each round asks the owner for a snapshot (its refs and its index, taken together under its
locks: gitstore.cluster.snapshots), then brings the objects with git's protocol from the owner's
node-only remote: the first round clones every ref; later ones ask, in one request, for the ids
of the refs that moved since the last round, offering their old values as haves
(gitstore.storage.pack_fetch). The copy's refs are then set to exactly the snapshot's. The copy
is then a state the owner really was in, refs and index agreeing, so its public copy (ADR 0009)
is brought up to it there and then, one publish at a time, as the owner would: the last round
has little left to do.

The last round comes after the fence, with a sealed snapshot: nothing changes on the owner after
it. Every object the sealed refs name must have come, and the two sorted ref lists are compared;
any difference fails the move. Then the relay state is taken too, and the copy is renamed into
place. (That the owner's refs really stayed the sealed ones is its word when it gives the
repository up: gitstore.cluster.moves compares the two digests.)
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

from gitstore.cluster.snapshots import INDEX, RELAY, Snapshot
from gitstore.errors import MoveFailed
from gitstore.publishing.api import sync_live_mirror
from gitstore.repository import DRAFT, MAIN, ContentRepository
from gitstore.storage.api import (
    RefList,
    clone_refs,
    fetch_objects,
    fetch_refs,
    fsync_dir,
    pin_refs,
    ref_list,
    refs_differing,
    sync_file_system,
)

__all__ = ["CopyRound", "Source", "StagingCopy", "staging_folders"]

_PREFIX = ".moving-"
#: A catch-up names the refs it fetches up to this many; past it, fetching every ref is cheaper.
_MOST_NAMED = 2000


class Source(Protocol):
    """The node a repository moves from, as the moving node reaches it."""

    def fetch_url(self) -> str:
        """The URL git fetches the whole repository from."""
        ...

    def fetch_password(self) -> tuple[str, str] | None:
        """(user, password) for that fetch, made fresh on each call (None: it needs none)."""
        ...

    def snapshot(self, into: Path, *, seal: bool) -> Snapshot:
        """A snapshot of the repository, unpacked into folder `into`."""
        ...


@dataclass(frozen=True)
class CopyRound:
    """One round of catching up: how many refs had moved since the copy's last round (all of
    them in the first), how many the copy then set back or removed to agree with the snapshot,
    whether it did agree, and where the time went."""

    sealed: bool
    refs_moved: int
    refs_set_back: int
    consistent: bool
    seconds: float
    snapshot_seconds: float
    fetch_seconds: float
    install_seconds: float


class StagingCopy:
    """A repository's copy being built in `data_dir` for a move."""

    def __init__(self, data_dir: Path, name: str, tag: str, *, stall_seconds: float = 30.0) -> None:
        self.name = name
        self.stall_seconds = stall_seconds
        self.folder = data_dir / f"{_PREFIX}{name}-{tag}"
        self.path = self.folder / "repo.git"
        #: The refs of the sealed snapshot, once the last round found the copy equal to them.
        self.sealed: RefList | None = None
        #: Where the copy was placed, once it was.
        self.placed: Path | None = None

    def catch_up(self, source: Source, *, seal: bool = False) -> CopyRound:
        """One round: snapshot, fetch, then agree with the snapshot. Sealed, the copy must come
        out equal to it, or MoveFailed."""
        started = time.monotonic()
        shutil.rmtree(self.folder / "snapshot", ignore_errors=True)
        snapshot = source.snapshot(self.folder / "snapshot", seal=seal)
        snapshot_seconds = time.monotonic() - started
        fetch_started = time.monotonic()
        moved = self._fetch(source, snapshot)
        fetch_seconds = time.monotonic() - fetch_started
        install_started = time.monotonic()
        changed = pin_refs(self.path, snapshot.refs) if not seal else self._verify(snapshot)
        if changed is not None:
            self._install(snapshot)
        done = time.monotonic()
        return CopyRound(
            seal,
            moved,
            changed or 0,
            changed is not None,
            done - started,
            snapshot_seconds,
            fetch_seconds,
            done - install_started,
        )

    def flush(self) -> None:
        """Make what the rounds fetched durable now, so that the flush in `place` (inside the
        write pause) has little left to do."""
        sync_file_system(self.path)

    def place(self, final: Path) -> None:
        """Make the copy durable (fetches flush nothing: one flush of the file system here does
        it for every object and ref) and rename it to `final`, which must not exist."""
        if final.exists():
            raise MoveFailed(f"{final} is there already: the repository cannot be placed", name=self.name)
        sync_file_system(self.path)
        os.rename(self.path, final)
        self.placed = final
        fsync_dir(final.parent)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _fetch(self, source: Source, snapshot: Snapshot) -> int:
        """A clone the first time. Then the objects of the refs the snapshot shows moved since
        the copy's last round, asked for by id with their old values as haves, in one request
        (gitstore.storage.pack_fetch); or, if most refs moved, a fetch of every ref. How many
        refs had moved."""
        url, password = source.fetch_url(), source.fetch_password()
        if not self.path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            clone_refs(
                self.path, url, description=snapshot.description, password=password, stall_seconds=self.stall_seconds
            )
            return len(snapshot.refs)
        mine = dict(ref_list(self.path))
        moved = [(name, target) for name, target in snapshot.refs if mine.get(name) != target]
        if len(moved) > _MOST_NAMED:
            fetch_refs(self.path, url, password=password, stall_seconds=self.stall_seconds)
        elif moved:
            # Their old values, and `draft` and `main` as the copy has them: commits the other
            # side's refs descend from, so its pack holds only what is new.
            having = [mine[name] for name, _ in moved if name in mine] + [mine[r] for r in (DRAFT, MAIN) if r in mine]
            wants = [target for _, target in moved if not target.startswith("ref: ")]
            haves = [oid for oid in having if not oid.startswith("ref: ")]
            fetch_objects(self.path, url, wants, haves, password=password, timeout=self.stall_seconds)
        return len(moved)

    def _verify(self, snapshot: Snapshot) -> int:
        """After the seal: the copy takes the sealed refs (every object they name must be here
        now), and must then hold exactly those."""
        changed = pin_refs(self.path, snapshot.refs)
        if changed is None:
            raise MoveFailed(f"the last fetch of {self.name} did not bring every object the seal names", name=self.name)
        differing = refs_differing(ref_list(self.path), snapshot.refs)
        if differing:
            shown = ", ".join(differing[:5]) + (f" and {len(differing) - 5} more" if len(differing) > 5 else "")
            raise MoveFailed(
                f"the copy of {self.name} differs from its source after the seal, in {shown}", name=self.name
            )
        self.sealed = snapshot.refs
        return changed

    def _install(self, snapshot: Snapshot) -> None:
        """Take the snapshot's index (and, sealed, its relay state) as the copy's own, then bring
        the public copy up to the copy's `main`."""
        control = self.path / "gitstore"
        names = [INDEX, RELAY] if snapshot.sealed else [INDEX]
        for name in names:
            received = snapshot.file(name)
            if received is None:
                continue
            for leftover in (f"{name}-wal", f"{name}-shm"):
                (control / leftover).unlink(missing_ok=True)
            with open(received, "rb") as f:
                os.fsync(f.fileno())
            os.replace(received, control / name)
        fsync_dir(control)
        _in_a_thread_of_its_own(partial(_sync_public_copy, self.name, self.path))


def staging_folders(data_dir: Path) -> list[Path]:
    """Copies of moves that never finished (a node killed during one), to be removed."""
    return sorted(p for p in data_dir.glob(f"{_PREFIX}*") if p.is_dir())


def _sync_public_copy(name: str, path: Path) -> None:
    repo = ContentRepository(name, path)  # on this thread: its index connection is this thread's
    # Closed here, not when collected: the next round replaces the index file, and the move
    # renames the whole copy; SQLite must not find a connection of this thread under the old
    # name then (a move failed with "disk I/O error" opening the placed copy's index).
    try:
        sync_live_mirror(repo)
    finally:
        repo.close()


def _in_a_thread_of_its_own(work: Callable[[], object]) -> None:
    """Run `work` on a thread that ends with it: the git handles and index connection a
    repository opens are the thread's own, never shared with the move's later rounds. The
    index connection must still be closed by `work` (see _sync_public_copy): a thread's end
    leaves it to the garbage collector."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="move: public copy")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
