"""Guards for the repositories this node owns: each write asks PostgreSQL, at its commit point,
whether this node still owns the repository at the epoch it took it at.

The check is PostgreSQL's answer, never a cache: a process paused for a minute (SIGSTOP, a long
GC, a VM migration) wakes up knowing an ownership that may have moved meanwhile, and a write it
finishes then must fail (NotOwner, 503) instead of being acknowledged. gitstore.storage calls
the check with the ref lock files taken; a move fences in PostgreSQL and then takes every lock
of the repository (the seal), so a write either passed its check before the fence and is in the
move's final fetch, or fails its check.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from gitstore.errors import NotOwner
from gitstore.storage.api import guard_repository, unguard_repository

if TYPE_CHECKING:
    from gitstore.cluster.control import Checked, ControlPlane
    from gitstore.repository import ContentRepository

__all__ = ["Fences"]


class Fences:
    """The guards node `node` has installed, by repository name, with the epoch of each."""

    def __init__(self, plane: ControlPlane, node: str) -> None:
        self._plane = plane
        self._node = node
        self._epochs: dict[str, int] = {}
        self._paths: dict[str, str] = {}
        self._lock = threading.Lock()
        # What this thread's last check of each repository answered: its in-sync replicas, which
        # the round that passed the check ships its record to (read in the same query).
        self._checked = threading.local()

    def guard(self, repo: ContentRepository, epoch: int) -> None:
        """From now on `repo` moves a ref only while PostgreSQL says this node (this process's
        incarnation) owns it at `epoch`."""
        plane, node, name, incarnation = self._plane, self._node, repo.name, self._plane.incarnation

        checked = self._checked

        def check() -> None:
            checked.__dict__[name] = plane.check_owner(name, node, epoch, incarnation=incarnation)

        with self._lock:
            guard_repository(repo.path, check)
            self._epochs[name] = epoch
            self._paths[name] = str(repo.path)

    def in_sync_checked(self, name: str) -> Checked | None:
        """The in-sync replicas and factor this thread's last passed check of `name` read; None
        if it has not checked that repository."""
        found: Checked | None = self._checked.__dict__.pop(name, None)
        return found

    def moved_away(self, name: str) -> None:
        """`name` is no longer served from its path here (a move took it to another node, a
        promotion went elsewhere): from now on that path refuses every ref move (NotOwner), for
        good. A write that was already in flight when the folder went meets this refusal, or is
        answered with it (gitstore.content), instead of the symptoms of a folder gone from
        under it; a move or promotion back here guards it anew."""
        node = self._node

        def refuse() -> None:
            raise NotOwner(f"repository {name!r} moved away from node {node}; try again", name=name)

        with self._lock:
            self._epochs.pop(name, None)
            path = self._paths.get(name)
            if path is not None:
                guard_repository(path, refuse)

    def unguard(self, name: str) -> None:
        with self._lock:
            path = self._paths.pop(name, None)
            self._epochs.pop(name, None)
            if path is not None:
                unguard_repository(path)

    def epoch(self, name: str) -> int | None:
        """The epoch `name` is guarded at; None if this node does not guard it."""
        return self._epochs.get(name)

    def guarded(self) -> dict[str, int]:
        with self._lock:
            return dict(self._epochs)

    def unguard_all(self) -> None:
        """Every guard goes, those of repositories moved away with the rest."""
        with self._lock:
            names = list(self._paths)
        for name in names:
            self.unguard(name)
