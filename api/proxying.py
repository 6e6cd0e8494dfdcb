"""Streaming one request to another node and its answer back (api.forwarding decides when).

Nothing is buffered whole: the request body goes to the owner as the client sends it, and the
answer comes back as the owner sends it, each side paced by the other (uvicorn's `send` waits
while the client's socket is full, and httpx2 reads the owner's socket only as fast as that).
So a clone of a 100 MB repository through a node that does not own it costs that node a few
socket buffers, not 100 MB. The one copy kept is of a request body up to `max_body_bytes` (what
every route here accepts at most, apart from a bundle import), so that a request the owner
refused as misdirected (421: the route was stale) can be sent again, once, to the right node.

One pooled `httpx2.AsyncClient` per worker process, HTTP/1.1 with keep-alive: a forwarded live
GET costs one loopback round trip on a warm connection, not a connection setup.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
import httpx2
from starlette.types import Message, Receive, Scope, Send

# Hop-by-hop headers (RFC 9110 section 7.6.1) belong to one connection, not to the message;
# `expect` too: the client's 100-continue was answered by this node's server already. `date` and
# `server` of an answer are the owner's server's: this node's server adds its own.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"expect",
    }
)
_NOT_RELAYED_BACK = _HOP_BY_HOP | {b"date", b"server"}


class ClientGone(Exception):
    """The client disconnected before its request body was complete: nobody to answer."""


class OwnerBroke(Exception):
    """The owner's answer stopped half way (it died, or its connection broke)."""


class Body:
    """The request body, read from the client while it is sent on, with a copy of up to `keep`
    bytes so that the request can be sent a second time (`replayable`)."""

    def __init__(self, receive: Receive, keep: int, declared: int | None) -> None:
        self._receive = receive
        self._keep = keep
        self._kept: list[bytes] = []
        self._size = 0
        self._done = False
        # A body known to be too large to keep is not copied at all.
        self._keeping = declared is None or declared <= keep

    @property
    def replayable(self) -> bool:
        return self._keeping

    async def chunks(self) -> AsyncIterator[bytes]:
        """What was kept, then the rest as the client sends it."""
        for chunk in list(self._kept):
            yield chunk
        while not self._done:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            self._done = not message.get("more_body", False)
            self._remember(chunk)
            if chunk:
                yield chunk

    def replay(self) -> Receive:
        """An ASGI `receive` that gives what was kept, then what the client still sends: the
        body for this node's own app, after a retry found that the repository lives here."""
        pending = list(self._kept)
        first = True

        async def receive() -> Message:
            nonlocal first
            if pending:
                chunk = pending.pop(0)
                first = False
                return {"type": "http.request", "body": chunk, "more_body": bool(pending) or not self._done}
            if first and self._done:
                first = False
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await self._receive()
            if message["type"] == "http.request":
                self._done = not message.get("more_body", False)
            return message

        return receive

    def _remember(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if not self._keeping:
            return
        if self._size > self._keep:
            self._keeping = False
            self._kept.clear()
        elif chunk:
            self._kept.append(chunk)


def new_transport() -> httpx2.AsyncHTTPTransport:
    """httpx2's connection pool, used as it is: a client's layers over it (redirects, auth, a
    cookie jar that would collect every caller's cookies) are what a proxy must not apply.
    No bound on connections: each event stream holds one for its whole life, and a thousand
    subscribers through one node are a thousand connections to the owners."""
    return httpx2.AsyncHTTPTransport(
        limits=httpx2.Limits(max_connections=None, max_keepalive_connections=64, keepalive_expiry=30.0),
        retries=0,
    )


def timeouts(read: float) -> dict[str, float]:
    """Connect quickly or report the owner down; then wait as long as the owner may take."""
    return httpx2.Timeout(connect=3.0, read=read, write=read, pool=read).as_dict()  # type: ignore[return-value]


def declared_length(scope: Scope) -> int | None:
    value = header(scope, b"content-length")
    return int(value) if value is not None and value.isdigit() else None


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


def request_to(base: httpx2.URL, scope: Scope, body: Body, timeout: dict[str, float]) -> tuple[httpx2.Request, bytes]:
    """The request to send on to `base` (the owner's URL), and the raw path it names: the exact
    bytes on the wire, which is what the forwarding signature covers."""
    raw = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    url = base.copy_with(raw_path=raw + b"?" + query if query else raw)
    headers = [(k, v) for k, v in scope["headers"] if k not in _HOP_BY_HOP]
    has_body = header(scope, b"transfer-encoding") is not None or declared_length(scope) not in (None, 0)
    content = body.chunks() if has_body else None
    request = httpx2.Request(scope["method"], url, headers=headers, content=content, extensions={"timeout": timeout})
    return request, url.raw_path.partition(b"?")[0]


async def relay(answer: httpx2.Response, method: str, receive: Receive, send: Send) -> None:
    """Send the owner's answer on as it arrives, untouched (its bytes as sent: a gzip body stays
    gzip). An answer of unknown length (an event stream, a clone's pack) is copied while
    watching the client: one that goes away stops the copy and closes the owner's stream with
    it, so an event stream through this node ends on the owner too."""
    headers = [(k.lower(), v) for k, v in answer.headers.raw if k.lower() not in _NOT_RELAYED_BACK]
    await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
    length = _body_length(answer, method)
    try:
        if length is None:
            await _copy_watching(answer, receive, send)
        else:
            await _copy(answer, send, length)
    except httpx2.HTTPError as exc:
        # Half an answer is out: the only honest end is to break the connection, so that the
        # client sees a truncated answer rather than a complete-looking short one.
        raise OwnerBroke(f"the owner's answer broke off: {exc!r}") from exc


def _body_length(answer: httpx2.Response, method: str) -> int | None:
    if method == "HEAD" or answer.status_code in (204, 304):
        return 0
    value = answer.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


async def _copy(answer: httpx2.Response, send: Send, length: int) -> None:
    """A body of known length (every REST answer): its last chunk ends the answer, and there is
    no need to watch the client, since the copy ends by itself."""
    sent = 0
    async for chunk in answer.aiter_raw():
        sent += len(chunk)
        await send({"type": "http.response.body", "body": chunk, "more_body": sent < length})
    if sent < length:
        raise OwnerBroke(f"the owner's answer ended after {sent} of {length} bytes")
    if length == 0:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _copy_watching(answer: httpx2.Response, receive: Receive, send: Send) -> None:
    broke: httpx2.HTTPError | None = None
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            await _disconnected(receive)
            group.cancel_scope.cancel()

        group.start_soon(watch)
        try:
            async for chunk in answer.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except httpx2.HTTPError as exc:
            broke = exc  # raised outside the group, which would wrap it in an ExceptionGroup
        finally:
            group.cancel_scope.cancel()
    if broke is not None:
        raise broke


async def _disconnected(receive: Receive) -> None:
    # What is left of a body the owner did not read is dropped: the answer is all that matters now.
    while (await receive())["type"] != "http.disconnect":
        pass


async def close_quietly(answer: httpx2.Response) -> None:
    with contextlib.suppress(httpx2.HTTPError):
        await answer.aclose()
