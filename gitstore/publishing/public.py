"""What a reader without the draft right may see of one published version of an entity.

The same rule serves the public git copy (gitstore.publishing.mirror) and a reader's export
(gitstore.bundles): an entity unpublished as gone or redirect is its notice alone, a vanished
or deleted one is nothing, and links and manifest rows that name a key never live by then are
left out, since the key itself is news of a draft.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson

from gitstore.entities.api import (
    ENTITY_FILE,
    MEMBERS_FILE,
    TAKEN_DOWN,
    UNPUBLISHING_FILE,
    Content,
    members_from_bytes,
    members_to_bytes,
)

__all__ = ["LiveKeys", "hidden_keys", "public_files", "shows_nothing"]

#: Which of some keys a reader may be told of (were live by the moment in question).
LiveKeys = Callable[[Sequence[str]], set[str]]


def shows_nothing(doc: Content, deleted: bool) -> bool:
    """A deleted or vanished entity leaves no trace for readers."""
    return deleted or (doc.unpublishing is not None and doc.unpublishing.type == "vanish")


def hidden_keys(doc: Content, live: LiveKeys) -> set[str]:
    """The keys `doc` links to or holds that readers may not be told of."""
    named = {key for keys in doc.links.values() for key in keys} | {m.key for m in doc.members or ()}
    return named - live(sorted(named)) if named else set()


def public_files(files: dict[str, bytes], doc: Content, deleted: bool, hidden: set[str]) -> dict[str, bytes] | None:
    """`files` (one version's, as stored) as a reader may see them; None for nothing at all."""
    if shows_nothing(doc, deleted):
        return None
    if doc.unpublishing is not None and doc.unpublishing.type in TAKEN_DOWN:
        # REST answers 410 or 301 with the notice and nothing of the content: so do the others.
        return {UNPUBLISHING_FILE: files[UNPUBLISHING_FILE]}
    if not hidden:
        return files
    shown = dict(files)
    body = orjson.loads(files[ENTITY_FILE])
    links = {kind: [k for k in keys if k not in hidden] for kind, keys in body["links"].items()}
    body["links"] = {kind: keys for kind, keys in links.items() if keys}
    shown[ENTITY_FILE] = orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    if MEMBERS_FILE in files:
        members = members_from_bytes(files[MEMBERS_FILE])
        shown[MEMBERS_FILE] = members_to_bytes(tuple(m for m in members if m.key not in hidden))
    return shown
