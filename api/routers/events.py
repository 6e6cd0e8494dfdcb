"""The event feed: `GET /repos/{repo}/events?after=<cursor>&wait=<seconds>` answers a page of
events as JSON (long-polling up to `wait` seconds for the first one), or, with
`Accept: text/event-stream`, streams them as Server-Sent Events for up to `wait` seconds
(`Last-Event-ID` resumes; EventSource reconnects by itself).

Waiting happens on the event loop, not in a worker thread: a thousand idle subscribers cost
a thousand sleeping coroutines, and each one checks two refs a few times a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import RepoDep
from api.readers import Audience, AudienceDep
from api.schemas import AuthorOut, EventOut, EventPageOut
from gitstore import ContentRepository
from gitstore.events import Cursor, Event, EventPage, heads, read_events

router = APIRouter(prefix="/repos/{repo}", tags=["events"])

_POLL_SECONDS = 0.2
_HEARTBEAT_SECONDS = 15.0


@router.get(
    "/events",
    response_model=EventPageOut,
    summary="What happened, in order, from a cursor: JSON (long-poll with ?wait=) or Server-Sent Events",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(
    repo: RepoDep,
    audience: AudienceDep,
    request: Request,
    after: Annotated[
        str | None, Query(max_length=64, description="an event id; 'latest' for only what happens next")
    ] = None,
    wait: Annotated[float, Query(ge=0, le=300, description="seconds to wait for events (SSE: to stream)")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> object:
    drafts = audience.preview  # readers see only what happened to the live site
    if "text/event-stream" in request.headers.get("accept", ""):
        start = last_event_id or after
        if start not in (None, "latest"):
            Cursor.parse(start)  # a bad cursor is a 422 now, not a broken stream later
        return StreamingResponse(
            _stream(repo, request, start, wait or 60, limit, audience),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
    page = await _read(repo, after, limit, drafts)
    deadline = time.monotonic() + wait
    while not page.items and time.monotonic() < deadline:
        page = await _next(repo, page.cursor, limit, drafts, deadline)
    return EventPageOut(items=[_out(e, audience) for e in page.items], cursor=page.cursor)


async def _read(repo: ContentRepository, after: str | None, limit: int, drafts: bool) -> EventPage:
    return await run_in_threadpool(read_events, repo, after=after, limit=limit, drafts=drafts)


async def _next(repo: ContentRepository, cursor: str, limit: int, drafts: bool, deadline: float) -> EventPage:
    """Sleep until a branch moves (or the deadline), then read from `cursor`."""
    seen = heads(repo)
    while heads(repo) == seen and time.monotonic() < deadline:
        await asyncio.sleep(_POLL_SECONDS)
    return await _read(repo, cursor, limit, drafts)


async def _stream(
    repo: ContentRepository, request: Request, after: str | None, seconds: float, limit: int, audience: Audience
) -> AsyncIterator[bytes]:
    drafts = audience.preview
    deadline = time.monotonic() + seconds
    beat = time.monotonic() + _HEARTBEAT_SECONDS
    page = await _read(repo, after, limit, drafts)
    yield b"retry: 1000\n\n"
    while True:
        for event in page.items:
            data = orjson.dumps(_out(event, audience).model_dump(mode="json"))
            yield f"id: {event.id}\nevent: {event.kind}\n".encode() + b"data: " + data + b"\n\n"
        if time.monotonic() >= deadline or await request.is_disconnected():
            return
        if time.monotonic() >= beat:
            beat = time.monotonic() + _HEARTBEAT_SECONDS
            yield b": keep-alive\n\n"
        if page.items:  # a backlog: keep draining it before waiting for news
            page = await _read(repo, page.cursor, limit, drafts)
        else:
            page = await _next(repo, page.cursor, limit, drafts, min(deadline, beat))


def _out(event: Event, audience: Audience) -> EventOut:
    return EventOut(
        id=event.id,
        kind=event.kind,  # type: ignore[arg-type]
        view=event.view,  # type: ignore[arg-type]
        key=event.key,
        commit=event.commit,
        action=event.action,
        author=audience.author(AuthorOut(name=event.author_name, email=event.author_email)),
        at=event.at,
        dependents=event.dependents,
        update_type=event.update_type,
        change_note=event.change_note,
    )
