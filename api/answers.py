"""Hot read answers, encoded with orjson straight from the library's records.

The library has validated what it hands back (gitstore.entities.model), so building a pydantic
model of it and having FastAPI validate that model again as the route's response_model costs a
live read more than the read itself. The routes that serve these declare their pydantic model
for the OpenAPI document only (`responses={200: {"model": ...}}`, response_model None) and
return a `JSONAnswer`: the bytes the model would have serialised, key for key
(tests/properties/test_answers.py holds the two to the same bytes).

A record the fast encoding does not cover (an unpublishing notice, whose time pydantic parses
and writes anew) goes through the schema model instead, so the answer never differs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any

import orjson
from fastapi.responses import Response

from api.schemas import EntityOut
from gitstore.entities.api import Entity, VersionInfo

__all__ = ["JSONAnswer", "VersionPages", "encode", "entity_document", "version_documents"]


class JSONAnswer(Response):
    """A JSON answer whose body is already encoded."""

    media_type = "application/json"


def encode(document: Any) -> bytes:
    # Naive datetimes never come from the library; aware ones are written as pydantic writes
    # them (UTC as "Z").
    return orjson.dumps(document, option=orjson.OPT_UTC_Z)


def entity_document(entity: Entity) -> dict[str, Any]:
    """`entity` as EntityOut serialises it (with the preview right; api.readers takes out what
    readers are not shown)."""
    if entity.unpublishing is not None:
        return EntityOut.model_validate(entity).model_dump(mode="json")
    author = entity.author
    return {
        "key": entity.key,
        "type": entity.type,
        "title": entity.title,
        "locale": entity.locale,
        "content_id": entity.content_id,
        "base_path": entity.base_path,
        "fields": entity.fields,
        "links": entity.links,
        "members": None if entity.members is None else [{"key": m.key, "pin": m.pin} for m in entity.members],
        "version": entity.version,
        "edition": entity.edition,
        "commit": entity.commit,
        "state": entity.state,
        "published_commit": entity.published_commit,
        "has_unpublished_changes": entity.has_unpublished_changes,
        "deleted": entity.deleted,
        "author": {"name": author.name, "email": author.email},
        "updated_at": entity.updated_at,
        "unpublishing": None,
        "withdrawn_at": None,
    }


def version_documents(items: Sequence[VersionInfo]) -> list[dict[str, Any]]:
    """Each of `items` as VersionOut serialises it."""
    return [
        {
            "version": v.version,
            "edition": v.edition,
            "commit": v.commit,
            "action": v.action,
            "message": v.message,
            "author": {"name": v.author.name, "email": v.author.email},
            "committed_at": v.committed_at,
            "live": v.live,
            "published_at": v.published_at,
        }
        for v in items
    ]


class VersionPages:
    """Encoded pages of entities' versions, kept by everything a page is made of.

    A page lists commits down from the draft tip (or from the version `cursor` names below it):
    commits never change once written, so the tip, the cursor and the limit fix which commits
    and what each says. What they do not fix is which one is live and when each went live:
    the live commit and those times are in the key too. Any write moves the tip, any publish
    the rest (an erasure rewrites the commits, so their ids), and a key that moved finds
    nothing: nothing is ever invalidated. Reading the key is two ref reads and one index query
    instead of reading and parsing every commit of the page (~0.3 ms for 50 here)."""

    def __init__(self, budget_bytes: int = 8 << 20) -> None:
        self._pages: OrderedDict[Hashable, tuple[bytes, str | None]] = OrderedDict()
        self._bytes = 0
        self._budget = budget_bytes

    def get(self, page_key: Hashable) -> tuple[bytes, str | None] | None:
        found = self._pages.get(page_key)
        if found is not None:
            self._pages.move_to_end(page_key)
        return found

    def put(self, page_key: Hashable, body: bytes, next_cursor: str | None) -> None:
        if page_key in self._pages or len(body) > self._budget:
            return
        self._pages[page_key] = (body, next_cursor)
        self._bytes += len(body)
        while self._bytes > self._budget:
            _, (old, _) = self._pages.popitem(last=False)
            self._bytes -= len(old)
