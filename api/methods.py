"""HEAD, OPTIONS and conditional GET for every route, as RFC 9110 has them, in one ASGI layer.

FastAPI routes answer only the methods they name, so HEAD was 405 everywhere. Here HEAD is the
GET route's answer with its body left out (same status, ETag, Content-Type and Content-Length):
it runs only GET handlers, so it never writes. A GET or HEAD whose `If-None-Match` names the
ETag the answer carries is 304 with that answer's validators and no body. OPTIONS, and every
405, list the methods of every route at the path, not the first route the router tried.

A plain GET without `If-None-Match` (the hot path: every live read) goes straight through:
one scan of the request's few headers, no copy of anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from fastapi.routing import iter_route_contexts
from starlette.applications import Starlette
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# What a 304 keeps of the 200 it stands for (RFC 9110 section 15.4.5).
_VALIDATORS = frozenset({b"etag", b"cache-control", b"vary", b"last-modified", b"content-location", b"expires"})


class Methods:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method = scope["method"]
        if method == "GET":
            tags = _header(scope, b"if-none-match")
            return await self.app(scope, receive, send if tags is None else _Answer(send, tags, head=False))
        if method == "HEAD":
            # A copy: the server keeps its own scope saying HEAD, and sends no body either.
            get = dict(scope, method="GET")
            return await self.app(get, receive, _Answer(send, _header(scope, b"if-none-match"), head=True))
        if method == "OPTIONS" and _header(scope, b"access-control-request-method") is None:
            allowed = allowed_methods(scope["app"], scope["path"])
            if allowed:
                headers = [(b"allow", ", ".join(allowed).encode()), (b"content-length", b"0")]
                await send({"type": "http.response.start", "status": 204, "headers": headers})
                return await send({"type": "http.response.body", "body": b""})
        return await self.app(scope, receive, send)


def allowed_methods(app: Starlette, path: str) -> list[str]:
    """Every method some route at this path answers, HEAD with GET, and OPTIONS; [] if none."""
    found = {m for pattern, methods in _routes(app) if pattern.match(path) for m in methods}
    if not found:
        return []
    if "GET" in found:
        found.add("HEAD")
    return sorted(found | {"OPTIONS"})


def _routes(app: Starlette) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    # Built on first use, once every route is in: only OPTIONS and 405 answers need it.
    table = getattr(app.state, "route_methods", None)
    if table is None:
        table = [
            (compile_path(context.path)[0], frozenset(context.methods))
            for context in iter_route_contexts(app.router.routes)
            if context.path and context.methods
        ]
        app.state.route_methods = table
    return table


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


class _Answer:
    """The `send` of a GET that stands for a HEAD, or carries `If-None-Match`: what goes out is
    the answer's head, or a 304, and the rest of what the route sends is dropped."""

    def __init__(self, send: Send, tags: bytes | None, *, head: bool) -> None:
        self.send, self.tags, self.head = send, tags, head
        self.done = False

    async def __call__(self, message: Message) -> None:
        if self.done:
            return  # the body of an answer already complete; the server reports a disconnect next
        if message["type"] != "http.response.start":
            if not self.head:
                return await self.send(message)
            self.done = not message.get("more_body", False)
            return await self.send({"type": "http.response.body", "body": b"", "more_body": not self.done})
        headers = message.get("headers", [])
        if self.tags is not None and message["status"] == 200 and _matches(self.tags, _etag(headers)):
            kept = [(k, v) for k, v in headers if k.lower() in _VALIDATORS]
            await self.send({"type": "http.response.start", "status": 304, "headers": kept})
            await self.send({"type": "http.response.body", "body": b""})
            self.done = True
            return
        await self.send(message)
        if self.head:
            # Complete now: a streamed answer (an export, an event stream) would otherwise make
            # the client wait for a body it will never get.
            await self.send({"type": "http.response.body", "body": b""})
            self.done = True


def _etag(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    for key, value in headers:
        if key.lower() == b"etag":
            return value
    return None


def _matches(tags: bytes, etag: bytes | None) -> bool:
    """If-None-Match's weak comparison (RFC 9110 section 13.1.2): `*`, or any tag whose opaque
    part is the answer's."""
    if tags.strip() == b"*":
        return True
    if etag is None:
        return False
    mine = etag.removeprefix(b"W/")
    return any(tag.strip().removeprefix(b"W/") == mine for tag in tags.split(b","))
