"""Shipping a commit round to a repository's replicas before its refs move (issue 24, ADR 0016).

With the journal (ADR 0014) a round is one checksummed record: the objects written since the
last record and the round's checked ref moves, exactly what the primary produced. In cluster
mode the node registers a shipper for each repository it owns with replicas; the journal calls
it after its own append is durable and before any ref is renamed. The shipper returns once every
in-sync replica has the record durable, or once the replicas that did not answer left the
in-sync set; it raises to refuse the round, and then the journal takes the record back out of
its log, so a restart never replays a round that was refused.

A repository without a shipper costs two dict lookups (embedded mode has none at all).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from gitstore.storage import fencing
from gitstore.storage.per_repository import PerRepository

__all__ = ["register", "registered", "ship", "unregister"]

Shipper = Callable[[bytes], None]

_shippers: PerRepository[Shipper] = PerRepository()


def register(git_dir: str | os.PathLike[str], shipper: Shipper) -> None:
    """Call `shipper(record)` with each record the repository at `git_dir` appends, before the
    record's refs move (replacing any shipper it had)."""
    _shippers.set(git_dir, shipper)


def unregister(git_dir: str | os.PathLike[str]) -> None:
    _shippers.drop(git_dir)


def registered() -> list[str]:
    return _shippers.git_dirs()


def ship(git_dir: str, record: bytes) -> None:
    """Raise what the repository's shipper raises. A repository with none is asked its fence
    again (nothing if it has no guard either: embedded, or a copy nobody writes)."""
    found = _shippers.get(git_dir)
    if found is not None:
        found(record)
        return
    # A node that loses a repository to a promotion drops its shipper and keeps its guard. A
    # round that passed its fence just before the promotion would otherwise be acknowledged
    # here without reaching the replica that now owns the repository: lost at the takeover.
    fencing.check(git_dir)
