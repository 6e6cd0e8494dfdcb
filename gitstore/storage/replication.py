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
import threading
from collections.abc import Callable

__all__ = ["register", "registered", "ship", "unregister"]

Shipper = Callable[[bytes], None]

_shippers: dict[str, Shipper] = {}
_lock = threading.Lock()


def register(git_dir: str | os.PathLike[str], shipper: Shipper) -> None:
    """Call `shipper(record)` with each record the repository at `git_dir` appends, before the
    record's refs move (replacing any shipper it had)."""
    with _lock:
        _shippers[_key(git_dir)] = shipper


def unregister(git_dir: str | os.PathLike[str]) -> None:
    with _lock:
        _shippers.pop(_key(git_dir), None)


def registered() -> list[str]:
    with _lock:
        return sorted(_shippers)


def ship(git_dir: str, record: bytes) -> None:
    """Raise what the repository's shipper raises; nothing if it has none."""
    if not _shippers:
        return
    found = _shippers.get(git_dir) or _shippers.get(_key(git_dir))
    if found is not None:
        found(record)


def _key(git_dir: str | os.PathLike[str]) -> str:
    return os.path.normpath(os.path.realpath(os.fspath(git_dir)))
