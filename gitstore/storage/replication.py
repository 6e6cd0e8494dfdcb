"""Shipping a commit round to a repository's replicas before its refs move (issue 24, ADR 0016).

With the journal (ADR 0014) a round is one checksummed record: the objects written since the
last record and the round's checked ref moves, exactly what the primary produced. In cluster
mode the node registers a shipper for each repository it owns with replicas; the journal calls
it after its own append is durable and before any ref is renamed. The shipper returns once every
in-sync replica has the record durable, or once the replicas that did not answer left the
in-sync set; it raises to refuse the round, and then the journal takes the record back out of
its log, so a restart never replays a round that was refused.

A repository without a shipper costs one dict lookup (embedded mode has none at all).
"""

from __future__ import annotations

import os
from collections.abc import Callable

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
    """Raise what the repository's shipper raises; nothing if it has none."""
    found = _shippers.get(git_dir)
    if found is not None:
        found(record)
