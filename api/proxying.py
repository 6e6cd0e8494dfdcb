"""Streaming one request to another node and its answer back (api.forwarding decides when).

Nothing is buffered whole: a large request body goes to the owner as the client sends it, and
the answer comes back as the owner sends it, each side paced by the other (uvicorn's `send`
waits while the client's socket is full, and aiohttp reads the owner's socket only as fast as
that). So a clone of a 100 MB repository through a node that does not own it costs that node a
few socket buffers, not 100 MB. The one copy kept is of a request body up to `max_body_bytes`
(what every route here accepts at most, apart from a bundle import), so that a request the owner
refused as misdirected (421: the route was stale) can be sent again, once, to the right node. A
body that small is read whole before it is sent: one write to the owner's socket, not two.

One pooled `aiohttp.ClientSession` per worker process, HTTP/1.1 with keep-alive: a forwarded
request costs one loopback round trip on a warm connection, not a connection setup. aiohttp, not
httpx: its C parser and lean request path cost the forwarding node about 230 us of CPU a request
where httpx2 cost about 550 us (`make cluster-bench`, ADR 0015), and that CPU is the forwarding
overhead on a busy node.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import anyio
from multidict import CIMultiDict
from starlette.types import Message, Receive, Scope, Send
from yarl import URL

from api.logs import relaying

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
        #: The client went away before its body was complete.
        self.gone = False
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
                self.gone = True
                raise ClientGone
            chunk = message.get("body", b"")
            self._done = not message.get("more_body", False)
            self._remember(chunk)
            if chunk:
                yield chunk

    async def whole(self) -> bytes:
        """All of a body small enough to keep (`replayable`); raises ClientGone."""
        return b"".join([chunk async for chunk in self.chunks()])

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


def new_session(read_timeout: float) -> aiohttp.ClientSession:
    """aiohttp's connection pool with none of a client's conveniences: a proxy must not follow
    redirects, keep cookies, decompress, or add headers of its own. No bound on connections:
    each event stream holds one for its whole life, and a thousand subscribers through one node
    are a thousand connections to the owners. Idle connections are dropped after 4 s, before the
    owner's uvicorn drops them (5 s): a connection reused as its owner closes it would fail a
    write that never reached the owner."""
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=4.0, ttl_dns_cache=None)
    session = aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        # Connect quickly or report the owner down; then wait as long as the owner may take.
        timeout=aiohttp.ClientTimeout(total=None, connect=3.0, sock_connect=3.0, sock_read=read_timeout),
    )
    # aiohttp sends a PUT or DELETE again, unasked, when the connection breaks before the answer
    # (RFC 9112 allows it for idempotent methods), and it has no public switch for that. Here a
    # PUT is a new version each time, and the owner may have committed the first before the
    # connection broke: forwarded once, answered once (a 503 the client may retry knowingly).
    session._retry_connection = False
    return session


#: What aiohttp raises when the owner cannot be reached or stops answering (a read timeout too).
SendFailed = (aiohttp.ClientError, asyncio.TimeoutError)


def never_reached(exc: BaseException) -> bool:
    """Whether the request surely never reached the owner (it refused or did not take the connection)."""
    return isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)


def timed_out(exc: BaseException) -> bool:
    return isinstance(exc, asyncio.TimeoutError)


def declared_length(scope: Scope) -> int | None:
    value = header(scope, b"content-length")
    return int(value) if value is not None and value.isdigit() else None


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


def raw_target(scope: Scope) -> tuple[bytes, bytes]:
    """The request's path and query exactly as the client sent them: what is sent on, and what
    the forwarding signature covers."""
    return scope.get("raw_path") or scope["path"].encode(), scope.get("query_string", b"")


async def forward_to(
    session: aiohttp.ClientSession, base: URL, scope: Scope, body: Body, signature: tuple[str, str]
) -> aiohttp.ClientResponse:
    """Send the request in `scope` on to `base` (the owner's URL) with the `signature` header;
    the owner's answer once its head has arrived. Raises ClientGone, or one of `SendFailed`."""
    raw, query = raw_target(scope)
    url = URL.build(
        scheme=base.scheme,
        host=base.raw_host or "",
        port=base.explicit_port,
        path=raw.decode("latin-1"),
        query_string=query.decode("latin-1"),
        encoded=True,  # as the client sent them: not normalised, not encoded again
    )
    headers = CIMultiDict(
        (k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"] if k not in _HOP_BY_HOP
    )
    headers[signature[0]] = signature[1]
    content: bytes | AsyncIterator[bytes] | None = None
    length = declared_length(scope)
    if header(scope, b"transfer-encoding") is not None or length not in (None, 0):
        if body.replayable:
            content = await body.whole()  # small: read whole, so it leaves in one write
            headers.popall("content-length", None)  # aiohttp sets it from the bytes
        else:
            content = body.chunks()
    try:
        return await session.request(
            scope["method"], url, headers=headers, data=content, allow_redirects=False, compress=None
        )
    except SendFailed:
        if body.gone:
            raise ClientGone from None
        raise


async def relay(answer: aiohttp.ClientResponse, method: str, receive: Receive, send: Send) -> None:
    """Send the owner's answer on as it arrives, untouched (its bytes as sent: a gzip body stays
    gzip). An answer of unknown length (an event stream, a clone's pack) is copied while
    watching the client: one that goes away stops the copy and closes the owner's stream with
    it, so an event stream through this node ends on the owner too."""
    headers = [(k.lower(), v) for k, v in answer.raw_headers if k.lower() not in _NOT_RELAYED_BACK]
    logged_by_owner = relaying.set(True)  # api.logs: the owner's access log has this request
    try:
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    finally:
        relaying.reset(logged_by_owner)
    length = _body_length(answer, method)
    try:
        if length is None:
            await _copy_watching(answer, receive, send)
        else:
            await _copy(answer, send, length)
    except SendFailed as exc:
        # Half an answer is out: the only honest end is to break the connection, so that the
        # client sees a truncated answer rather than a complete-looking short one.
        raise OwnerBroke(f"the owner's answer broke off: {exc!r}") from exc


def _body_length(answer: aiohttp.ClientResponse, method: str) -> int | None:
    if method == "HEAD" or answer.status in (204, 304):
        return 0
    value = answer.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


async def _copy(answer: aiohttp.ClientResponse, send: Send, length: int) -> None:
    """A body of known length (every REST answer): its last chunk ends the answer, and there is
    no need to watch the client, since the copy ends by itself."""
    sent = 0
    if length:
        async for chunk in answer.content.iter_any():
            sent += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": sent < length})
    if sent < length:
        raise OwnerBroke(f"the owner's answer ended after {sent} of {length} bytes")
    if length == 0:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _copy_watching(answer: aiohttp.ClientResponse, receive: Receive, send: Send) -> None:
    broke: BaseException | None = None
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            await _disconnected(receive)
            group.cancel_scope.cancel()

        group.start_soon(watch)
        try:
            async for chunk in answer.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except SendFailed as exc:
            broke = exc  # raised outside the group, which would wrap it in an ExceptionGroup
        finally:
            group.cancel_scope.cancel()
    if broke is not None:
        raise broke


async def _disconnected(receive: Receive) -> None:
    # What is left of a body the owner did not read is dropped: the answer is all that matters now.
    while (await receive())["type"] != "http.disconnect":
        pass


def close_quietly(answer: aiohttp.ClientResponse) -> None:
    """Give the connection back to the pool if the answer was read to its end; else close it."""
    with contextlib.suppress(*SendFailed):
        answer.release()
