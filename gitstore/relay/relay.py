"""The relay: each repository's event feed, handed to each sink in order, at least once.

A *lane* is one repository and one sink. It reads the feed (gitstore.events) from the sink's
stored cursor, renders each event, hands a batch to the sink, and stores the cursor of the
last event the sink confirmed, only then. A crash at any point therefore repeats, and never
skips: what was handed over but not confirmed is handed over again, in the same order, with
the same id (the event id is the feed cursor), so a consumer drops what it has seen.

One process relays a lane at a time: it holds the lane's flock (`<repo>.git/gitstore/
relay-<sink>.lock`) for as long as it relays it, and a lane whose lock another process holds
waits its turn, so with several server workers each lane has one owner and a killed owner's
lanes are taken over by the next round of another. (In a cluster the same role would be an
advisory lock in the control plane's database; the lock is one function here.)

The relay runs on an event loop of its own, in its own thread (`RelayThread`): waiting is
free there, and git reads and webhook posts run in small thread pools, so a slow receiver
never holds up a request, a git read or another lane.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from gitstore.events import Event, EventPage, heads, read_events
from gitstore.relay.state import RelayState
from gitstore.repository import ContentRepository
from gitstore.storage.api import try_flock

__all__ = ["LaneStats", "Outgoing", "Relay", "RelayThread", "Render", "Sink", "relay_state"]

log = logging.getLogger("gitstore.relay")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event as a sink sends it: the JSON a consumer gets, and what routes it."""

    event: Event
    body: bytes
    document_type: str  # the entity's type ("" when there is none to read)


# (repository, event, preview) -> what that audience may be told of the event
Render = Callable[[ContentRepository, Event, bool], Outgoing]


class Sink(Protocol):
    # Read-only to the relay: a sink may answer with a class constant, an attribute or a property.
    @property
    def name(self) -> str:
        """The cursor's name: unique per repository ("amqp", "webhook:<id>")."""

    @property
    def kind(self) -> str:
        """Either "amqp" or "webhook", for metrics."""

    @property
    def preview(self) -> bool:
        """Draft events and what the preview right sees; otherwise a live reader's view."""

    @property
    def start_latest(self) -> bool:
        """A new cursor starts at the feed's end (else at its beginning)."""

    @property
    def max_tries(self) -> int | None:
        """Tries of one event before `give_up`; None: forever."""

    def wants(self, event: Event) -> bool: ...

    async def deliver(self, repo: str, items: list[Outgoing], attempt: int) -> int:
        """Hand `items` over in order; return how many were confirmed (a prefix). `attempt`
        is the try number of the first item (the others are on their first)."""
        ...

    async def give_up(self, repo: str, item: Outgoing) -> None: ...


@dataclass(slots=True)
class LaneStats:
    repo: str
    sink: str
    kind: str
    state: str = "starting"  # relaying | standby (another process has it) | retrying | failed
    delivered: int = 0
    failures: int = 0
    lag_events: int = 0  # events read and not yet confirmed (at most one batch)
    lag_seconds: float = 0.0  # age of the oldest of them
    cursor: str | None = None


def relay_state(repo: ContentRepository) -> RelayState:
    return RelayState(repo.storage.control_dir)


@dataclass
class _Lane:
    repo: ContentRepository
    sink: Sink
    task: asyncio.Task[None]
    stats: LaneStats


class Relay:
    """Relays every repository of `store` to the sinks `sinks_for(repo)` names (called every
    `discover_every` seconds: a new repository or subscription gets a lane, a removed one loses
    it). Run `run()` on an event loop of its own; see RelayThread."""

    def __init__(
        self,
        repositories: Callable[[], list[ContentRepository]],
        sinks_for: Callable[[ContentRepository], Iterable[Sink]],
        render: Render,
        *,
        batch: int = 100,
        poll_seconds: float = 0.1,
        discover_every: float = 1.0,
        retry_base: float = 1.0,
        retry_max: float = 60.0,
    ) -> None:
        self._repositories = repositories
        self._sinks_for = sinks_for
        self._render = render
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.discover_every = discover_every
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.lanes: dict[tuple[str, str], _Lane] = {}
        self._git = ThreadPoolExecutor(max_workers=2, thread_name_prefix="relay-git")
        self._heads: dict[str, tuple[float, object]] = {}
        self._renders: OrderedDict[tuple[str, str, bool], Outgoing] = OrderedDict()
        self._guard = threading.Lock()

    def stats(self) -> list[LaneStats]:
        return [lane.stats for lane in list(self.lanes.values())]

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self._discover()
                except Exception:  # a bad round must not end relaying; the next one tries again
                    log.exception("the relay could not list its lanes")
                await asyncio.sleep(self.discover_every)
        finally:
            for lane in self.lanes.values():
                lane.task.cancel()
            for lane in self.lanes.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await lane.task
            self._git.shutdown(wait=False, cancel_futures=True)

    async def _discover(self) -> None:
        wanted: dict[tuple[str, str], tuple[ContentRepository, Sink]] = {}
        for repo in await self._in_thread(self._repositories):
            for sink in await self._in_thread(lambda r=repo: list(self._sinks_for(r))):
                wanted[(repo.name, sink.name)] = (repo, sink)
        for key, lane in list(self.lanes.items()):
            if key not in wanted or lane.task.done():
                lane.task.cancel()
                del self.lanes[key]
        for key, (repo, sink) in wanted.items():
            if key not in self.lanes:
                stats = LaneStats(repo.name, sink.name, sink.kind)
                task = asyncio.create_task(self._lane(repo, sink, stats), name=f"relay {key}")
                self.lanes[key] = _Lane(repo, sink, task, stats)

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._git, fn, *args)

    # -- one lane --------------------------------------------------------------------------------

    async def _lane(self, repo: ContentRepository, sink: Sink, stats: LaneStats) -> None:
        lock = await self._in_thread(lambda: _claim(repo, sink.name))
        while lock is None:
            stats.state = "standby"
            await asyncio.sleep(self.discover_every)
            lock = await self._in_thread(lambda: _claim(repo, sink.name))
        try:
            await self._relay(repo, sink, stats)
        finally:
            os.close(lock)  # and with it the flock

    async def _relay(self, repo: ContentRepository, sink: Sink, stats: LaneStats) -> None:
        state = relay_state(repo)
        cursor = await self._in_thread(lambda: state.cursor(sink.name))
        if cursor is None:
            start = read_events(repo, after="latest", drafts=sink.preview).cursor if sink.start_latest else None
            if start is not None:
                await self._in_thread(lambda: state.store_cursor(sink.name, start))
            cursor = start
        stats.cursor, stats.state = cursor, "relaying"
        attempt = 0
        while True:
            seen = await self._heads_of(repo, fresh=True)
            try:
                page, outgoing = await self._in_thread(self._next_batch, repo, sink, cursor)
            except Exception:
                log.exception("relaying %s of %s: reading the feed failed", sink.name, repo.name)
                stats.failures += 1
                await asyncio.sleep(self._backoff(attempt := attempt + 1))
                continue
            stats.lag_events = len(outgoing)
            stats.lag_seconds = time.time() - outgoing[0].event.at.timestamp() if outgoing else 0.0
            if not page.items:
                await self._until_changed(repo, seen)
                continue
            if not outgoing:  # nothing this sink wants: move past it
                cursor = await self._advance(state, sink, stats, page.cursor)
                continue
            attempt += 1
            try:
                confirmed = await sink.deliver(repo.name, outgoing, attempt)
            except Exception as exc:
                log.warning("relaying %s of %s: %s", sink.name, repo.name, exc)
                confirmed = 0
            if confirmed:
                last = page.cursor if confirmed == len(outgoing) else outgoing[confirmed - 1].event.id
                cursor = await self._advance(state, sink, stats, last)
                stats.delivered += confirmed
                attempt = 0 if confirmed == len(outgoing) else 1
            if confirmed < len(outgoing):
                stats.failures += 1
                stats.state = "retrying"
                if sink.max_tries is not None and attempt >= sink.max_tries:
                    await sink.give_up(repo.name, outgoing[confirmed])
                    stats.state = "failed"
                    return
                await asyncio.sleep(self._backoff(attempt))
            else:
                stats.state = "relaying"
                stats.lag_events, stats.lag_seconds = 0, 0.0

    def _next_batch(self, repo: ContentRepository, sink: Sink, cursor: str | None) -> tuple[EventPage, list[Outgoing]]:
        page = read_events(repo, after=cursor, limit=self.batch, drafts=sink.preview)
        return page, [self._rendered(repo, e, sink.preview) for e in page.items if sink.wants(e)]

    def _rendered(self, repo: ContentRepository, event: Event, preview: bool) -> Outgoing:
        """Rendering reads the entity and its links: lanes of one repository that see the same
        view (RabbitMQ and each live-only webhook) share one rendering of each event."""
        key = (repo.name, event.id, preview)
        with self._guard:
            done = self._renders.get(key)
        if done is None:
            done = self._render(repo, event, preview)
            with self._guard:
                self._renders[key] = done
                while len(self._renders) > 4 * self.batch:
                    self._renders.popitem(last=False)
        return done

    async def _advance(self, state: RelayState, sink: Sink, stats: LaneStats, cursor: str) -> str:
        await self._in_thread(lambda: state.store_cursor(sink.name, cursor))
        stats.cursor = cursor
        return cursor

    def _backoff(self, attempt: int) -> float:
        """Exponential, with jitter so that lanes that failed together do not retry together."""
        # The exponent is capped: a lane retries for as long as its sink is down, and past
        # about 1,024 attempts (hours of a broker outage) 2**n no longer fits in a float.
        doubling = 2.0 ** min(max(0, attempt - 1), 62)
        return min(self.retry_max, self.retry_base * doubling) * random.uniform(0.5, 1.0)

    async def _heads_of(self, repo: ContentRepository, *, fresh: bool = False) -> object:
        """The repository's heads, read at most once per poll by all its lanes together."""
        now = time.monotonic()
        kept = self._heads.get(repo.name)
        if fresh or kept is None or now - kept[0] >= self.poll_seconds:
            kept = (now, await self._in_thread(lambda: heads(repo)))
            self._heads[repo.name] = kept
        return kept[1]

    async def _until_changed(self, repo: ContentRepository, seen: object) -> None:
        deadline = time.monotonic() + 5.0  # and look again anyway: a lane's sink may have changed
        while time.monotonic() < deadline:
            await asyncio.sleep(self.poll_seconds)
            if await self._heads_of(repo) != seen:
                return


def _claim(repo: ContentRepository, sink: str) -> int | None:
    """The lane's lock, if no other process holds it: an open descriptor holding the flock."""
    return try_flock(repo.storage.control_dir / f"relay-{sink.replace(':', '-')}.lock")


class RelayThread:
    """A Relay on its own event loop in a daemon thread: `start()`, `stop()`."""

    def __init__(self, relay: Relay, *, closing: Callable[[], Any] | None = None) -> None:
        self.relay = relay
        self._closing = closing  # a coroutine function run on the relay's loop at stop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="gitstore-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def _main(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            self._task = loop.create_task(self.relay.run())
            self._ready.set()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(self._task)
            if self._closing is not None:
                loop.run_until_complete(self._closing())
        finally:
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._task is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout)
