"""What caches and conditional requests are told: validators and Cache-Control.

An entity's ETag is its commit (the lock version If-Match takes, set in each route). A list's
is weak, from the repository's heads (`draft`, `main`, and the newest change not yet folded
into `draft`: `gitstore.events.heads`): every change an entity list, the activity log or the
publish log can show moves one of them, and reading them is two ref reads and one index query,
not a hash of the body. It is read before the list, so a change racing the read can only
make the tag older than the body (the next request gets a 200), never newer. Callers with and
without the preview right see different lists, so that is in the tag too.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.utils import format_datetime

from fastapi import Response

from api.readers import Audience
from gitstore import ContentRepository
from gitstore.events import heads


def list_etag(repo: ContentRepository, audience: Audience) -> str:
    """The weak ETag of a list answered now: read it before reading the list."""
    seen = repr((heads(repo), audience.preview)).encode()
    return f'W/"{hashlib.blake2b(seen, digest_size=16).hexdigest()}"'


def live(response: Response, updated_at: datetime | None) -> None:
    """Live content changes whenever someone publishes: caches may keep it, but must ask again
    (with the ETag) before each use. Readers and editors see different answers at one URL."""
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Vary"] = "Authorization"
    if updated_at is not None:
        response.headers["Last-Modified"] = format_datetime(updated_at.astimezone(UTC), usegmt=True)
