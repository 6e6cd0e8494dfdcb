"""The record of pruned entities: their activity, and the keys they leave retired.

Pruning (gitstore.upkeep.pruning) removes a branch and, after the grace period, its commits, but the
activity log is an audit trail and must outlive them, reindexes included. So each prune first
commits, on `refs/meta/pruned`, every change of each entity it removes (the rows `/activity`
showed) with when it went. A pruned key is never an entity again: links that other pages
still hold to it would silently reach the newcomer, and its old activity would read as the
newcomer's. Creating it again is refused (KeyRetired); the key's history stays readable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gitstore.errors import KeyRetired
from gitstore.index.api import ChangeRow
from gitstore.storage.api import GitHandle, Signature, read_settings, write_settings

__all__ = ["PRUNED_FILE", "PRUNED_REF", "pruned_changes", "record_pruned", "refuse_retired"]

PRUNED_REF = "refs/meta/pruned"
PRUNED_FILE = "pruned.json"


def refuse_retired(git: GitHandle, key: str) -> None:
    """Raises KeyRetired if `key` was pruned."""
    entry = read_settings(git, PRUNED_REF, PRUNED_FILE).get(key)
    if entry is not None:
        raise KeyRetired(
            f"{key!r} was pruned at {entry['pruned_at']}; its history stays on record under that key, so "
            "a new entity needs another key",
            key=key,
        )


def record_pruned(git: GitHandle, changes: Mapping[str, Sequence[ChangeRow]], *, at: str, author: Signature) -> None:
    """Add the pruned keys and their activity to the record, in one commit (the caller holds
    the drafts lock, and moves no ref of theirs before this returns)."""
    entries = dict(read_settings(git, PRUNED_REF, PRUNED_FILE))
    for key, rows in changes.items():
        entries[key] = {
            "pruned_at": at,
            "changes": [[c.version, c.commit, c.action, c.author_name, c.author_email, c.at] for c in rows],
        }
    keys = sorted(changes)
    shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
    write_settings(git, PRUNED_REF, PRUNED_FILE, entries, author=author, message=f"Prune {shown}\n")


def pruned_changes(git: GitHandle) -> list[ChangeRow]:
    """Every change of every pruned entity, as the activity log showed it."""
    return [
        ChangeRow(key, *row)
        for key, entry in sorted(read_settings(git, PRUNED_REF, PRUNED_FILE).items())
        for row in entry["changes"]
    ]
