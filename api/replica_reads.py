"""Live reads and clones of the public copy answered by an in-sync replica (issue 24, ADR 0016),
with read-your-writes.

A live read of one entity (`GET /repos/<repo>/entities/<key>`, the published view: no `state`,
`version`, `commit` or `as_of`) that reaches a node holding an in-sync replica of the repository
is answered there, from the replica, instead of being forwarded to the owner. An in-sync replica
has every acknowledged round (the owner ships each before acknowledging), though a round being
acknowledged right now may not have reached it yet.

A clone or fetch of the public copy (`/git/live/<repo>.git`) that reaches such a node is
answered there too: the replica brings its own public copy up to its `main` first, as the owner
does (the projection is deterministic, so both copies hold the same commits), and the pack is
streamed as the owner would stream it.

A client that must not read older data than it saw sends the commit it last saw of that entity
(the ETag of a write's or a read's answer) in `Gitstore-Seen`. The replica answers only if its
answer's ETag is that commit or descends from it; else it waits for the round to arrive (up to
WAIT_SECONDS), then forwards the read to the owner, which always has it. An answer a replica
gave carries `Gitstore-Replica: <node>`.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["REPLICA", "SEEN_HEADER", "WAIT_SECONDS", "answered_by_replica", "cloned_from_replica"]

SEEN_HEADER = "Gitstore-Seen"
#: On an answer a replica gave: the node that gave it.
REPLICA_HEADER = b"gitstore-replica"
#: The scope key that makes the repository dependency open this node's replica (api.deps).
REPLICA = "gitstore.replica"
WAIT_SECONDS = 1.0
_LIVE_ENTITY = re.compile(r"/repos/([^/]+)/entities/([^/]+)$")
_PUBLIC_COPY = re.compile(r"/git/live/([^/]+)\.git/(?:info/refs|git-upload-pack)$")
_NOT_LIVE = {"state", "version", "commit", "as_of"}


async def answered_by_replica(app: ASGIApp, cluster: Any, repo: str, scope: Scope, send: Send) -> bool:
    """Answer `scope` (a request for `repo`, owned by another node) from this node's replica if
    it is a live read this replica may answer; False (nothing sent) if the owner must."""
    replication = getattr(cluster, "replication", None)
    if replication is None or not _live_read(scope) or not replication.reads_served(repo):
        return False
    seen = _header(scope, SEEN_HEADER.lower().encode())
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        messages: list[Message] = []
        await app({**scope, REPLICA: repo}, _no_body, _kept_in(messages))
        if not messages or messages[0]["type"] != "http.response.start":
            return False
        etag = _header(messages[0], b"etag")
        answered = etag.strip('"') if etag else None
        if seen is None or await run_in_threadpool(replication.holds_after, repo, seen.strip('"'), answered):
            start = messages[0]
            messages[0] = {**start, "headers": [*start["headers"], (REPLICA_HEADER, cluster.name.encode())]}
            for message in messages:
                await send(message)
            return True
        if time.monotonic() >= deadline or not replication.reads_served(repo):
            return False
        await anyio.sleep(0.05)


async def cloned_from_replica(
    app: ASGIApp, cluster: Any, repo: str, scope: Scope, receive: Receive, send: Send
) -> bool:
    """Answer `scope` from this node's replica if it asks for the public copy of `repo` (a ref
    advertisement or a fetch) and the replica is in sync; False (nothing sent) if the owner must."""
    replication = getattr(cluster, "replication", None)
    if replication is None or scope["method"] not in ("GET", "POST") or not _PUBLIC_COPY.match(scope["path"]):
        return False
    if not replication.reads_served(repo):
        return False

    async def marked(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message["headers"], (REPLICA_HEADER, cluster.name.encode())]}
        await send(message)

    await app({**scope, REPLICA: repo}, receive, marked)
    return True


def _kept_in(messages: list[Message]) -> Send:
    async def keep(message: Message) -> None:
        messages.append(message)

    return keep


def _live_read(scope: Scope) -> bool:
    if scope["method"] not in ("GET", "HEAD") or not _LIVE_ENTITY.match(scope["path"]):
        return False
    query = parse_qs(scope.get("query_string", b"").decode(errors="replace"))
    return not (_NOT_LIVE & query.keys()) or query.get("state") == ["published"] and len(query) == 1


def _header(holder: Scope | Message, name: bytes) -> str | None:
    for key, value in holder.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode(errors="replace")
    return None


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}
