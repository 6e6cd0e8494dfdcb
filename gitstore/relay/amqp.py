"""The RabbitMQ sink (AMQP 0-9-1): every repository's live events on one topic exchange.

As GOV.UK's publishing API feeds its content store and search (exchange `published_documents`):
a durable topic exchange, persistent messages, and publisher confirms, so a message counts as
handed over only once the broker has taken responsibility for it. Routing key
`<repo>.<document_type>.<event>`, e.g. `gov-pages.guide.published` (a dotted type such as
`component.html` keeps its dots, so `demo-course.component.#` binds every component); the
headers carry `document_type` and `update_type` (the event kind) for GOV.UK-style bindings.

One connection and one channel per process serve every repository's lane: a channel keeps
each publisher's order, and confirms are awaited per batch, not per message. A lost connection
fails the batch; the lane backs off and hands the unconfirmed part over again after the
reconnect, from its stored cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

from gitstore.events import Event
from gitstore.relay.relay import Outgoing

__all__ = ["AmqpSink", "redact_url"]

log = logging.getLogger("gitstore.relay")


def redact_url(url: str) -> str:
    """The URL without its password, for logs and /health."""
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{tail}"


class AmqpSink:
    name = "amqp"
    kind = "amqp"
    preview = False  # what a live reader may see: the content store's view
    start_latest = False  # a new consumer is sent every repository's history first
    max_tries = None  # the broker comes back: keep trying, and catch up

    def __init__(self, url: str, exchange: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self.exchange_name = exchange
        self.timeout = timeout
        self.status = "connecting"  # up | down | connecting
        self.error: str | None = None
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._guard: asyncio.Lock | None = None

    def wants(self, event: Event) -> bool:
        return event.view == "live"

    async def _ready(self) -> AbstractExchange:
        if self._guard is None:
            self._guard = asyncio.Lock()
        async with self._guard:  # one reconnect for every lane waiting on it
            if self._exchange is not None and self._channel is not None and not self._channel.is_closed:
                return self._exchange
            await self.close()
            try:
                self._connection = await aio_pika.connect(self.url, timeout=self.timeout)
                self._channel = await self._connection.channel(publisher_confirms=True)
                self._exchange = await self._channel.declare_exchange(
                    self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
                )
            except Exception as exc:
                await self.close()
                self._down(exc)
                raise
            if self.status != "up":
                log.info("RabbitMQ sink connected to %s", redact_url(self.url))
            self.status, self.error = "up", None
            return self._exchange

    async def deliver(self, repo: str, items: list[Outgoing], attempt: int) -> int:
        exchange = await self._ready()
        sends = [
            exchange.publish(self._message(repo, item), self.routing_key(repo, item), mandatory=False) for item in items
        ]
        try:
            results: list[Any] = await asyncio.wait_for(
                asyncio.gather(*sends, return_exceptions=True), self.timeout + len(items) * 0.05
            )
        except TimeoutError as exc:
            results = [exc]
        confirmed = 0
        for result in results:
            if isinstance(result, BaseException):
                # Nothing after an unconfirmed message counts: order is the promise.
                self._exchange = None
                self._down(result)
                break
            confirmed += 1
        return confirmed

    async def give_up(self, repo: str, item: Outgoing) -> None:  # never: max_tries is None
        raise NotImplementedError

    def routing_key(self, repo: str, item: Outgoing) -> str:
        return f"{repo}.{item.document_type or 'none'}.{item.event.kind}"

    def _message(self, repo: str, item: Outgoing) -> aio_pika.Message:
        event = item.event
        return aio_pika.Message(
            item.body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=event.id,
            type=event.kind,
            app_id="gitstore",
            timestamp=event.at,
            headers={
                "repository": repo,
                "key": event.key,
                "event_id": event.id,
                "document_type": item.document_type,
                "update_type": event.kind,
            },
        )

    def _down(self, exc: BaseException) -> None:
        if self.status != "down":
            log.warning("RabbitMQ sink at %s is down: %s", redact_url(self.url), exc)
        text = f"{type(exc).__name__}: {exc}".replace(self.url, redact_url(self.url))
        self.status, self.error = "down", text[:300]

    async def close(self) -> None:
        connection, self._connection, self._channel, self._exchange = self._connection, None, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 5)
