"""Small settings kept in git: a JSON object on a ref of its own, one line per entry, so that
every change has an author, a time and a one-line diff (`git log -p refs/meta/types`).

    refs/meta/<name> -> commit -> <file>     {"entry": {...}, ...}
"""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pygit2

from gitstore.storage.refs import commit_on_ref, read_ref
from gitstore.storage.trees import write_files

_cache: dict[tuple[str, str], tuple[pygit2.Oid, dict[str, Any]]] = {}
_cache_guard = threading.Lock()


def read_settings(git: pygit2.Repository, ref: str, file: str) -> dict[str, Any]:
    """The entries on `ref` (empty if it was never written). Read once per commit."""
    head = read_ref(git, ref)
    if head is None:
        return {}
    slot = (git.path, ref)
    cached = _cache.get(slot)
    if cached is not None and cached[0] == head:
        return cached[1]
    found = orjson.loads(git[head].tree[file].data)  # type: ignore[union-attr]
    with _cache_guard:
        _cache[slot] = (head, found)
    return found  # type: ignore[no-any-return]


def write_settings(
    git: pygit2.Repository, ref: str, file: str, entries: dict[str, Any], *, author: pygit2.Signature, message: str
) -> None:
    """Replace the entries on `ref` with one commit. The caller holds the lock that orders
    the writes these settings govern."""
    head = read_ref(git, ref)
    rows = [b"  " + orjson.dumps(name) + b": " + orjson.dumps(value) for name, value in sorted(entries.items())]
    tree = write_files(git, {file: b"{\n" + b",\n".join(rows) + b"\n}\n"})
    commit_on_ref(git, ref, expected=head, author=author, message=message, tree=tree)
