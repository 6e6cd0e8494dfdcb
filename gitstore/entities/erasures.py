"""Where a commit an erasure rewrote lives now.

An erasure (gitstore.erasure) rewrites the erased entity's branch, so its commits get new ids.
A container elsewhere may still pin an old one in its manifest or name it in a trailer: that is
the container's own committed content, and rewriting it would change the container's ids too.
So the erasure record on `refs/meta/erasures` maps each old id to its new one, and pins are
read through that map.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from gitstore.storage.api import CommitId, GitHandle, commit_id, read_ref, read_settings

__all__ = ["ERASURES_FILE", "ERASURES_REF", "erased_commits", "pin_resolver"]

ERASURES_REF = "refs/meta/erasures"
ERASURES_FILE = "erasures.json"

_merged: dict[str, tuple[CommitId, dict[str, str]]] = {}
_merged_guard = threading.Lock()


def erased_commits(git: GitHandle) -> dict[str, str]:
    """Every rewritten commit id -> the id it has now (after every later erasure too)."""
    head = read_ref(git, ERASURES_REF)
    if head is None:
        return {}
    cached = _merged.get(git.path)
    if cached is not None and cached[0] == head:
        return cached[1]
    moved: dict[str, str] = {}
    for _, record in sorted(read_settings(git, ERASURES_REF, ERASURES_FILE).items()):
        moved.update(record["commits"])
    for old in moved:  # an erasure of a version an earlier erasure rewrote: follow the chain
        new, steps = moved[old], 0
        while new in moved and steps < len(moved):
            new, steps = moved[new], steps + 1
        moved[old] = new
    with _merged_guard:
        _merged[git.path] = (head, moved)
    return moved


def pin_resolver(git: GitHandle) -> Callable[[str], CommitId]:
    """A pin's commit as it is now: read the record once, then look pins up for free (one
    resolver per operation, so a tree walk of thousands of pins reads one ref)."""
    moved = erased_commits(git)
    if not moved:
        return commit_id
    return lambda pin: commit_id(moved.get(pin, pin))
