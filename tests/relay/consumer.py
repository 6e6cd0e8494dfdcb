"""A RabbitMQ consumer for the tests: a durable queue bound to the relay's exchange with `#`,
read on a thread of its own, acknowledging each message once it is recorded. It reconnects by
itself (aio-pika's robust connection), as a real consumer must across a broker restart."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import aio_pika
import orjson


class Consumer:
    def __init__(self, url: str, *, exchange: str = "published_documents", queue: str = "test-consumer") -> None:
        self.url, self.exchange, self.queue = url, exchange, queue
        self.received: list[tuple[str, dict[str, Any], dict[str, Any], float]] = []  # key, body, headers, when
        self._guard = threading.Lock()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._error: BaseException | None = None

    def start(self, timeout: float = 30.0) -> Consumer:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the consumer did not connect: {self._error!r}")
        return self

    def _main(self) -> None:
        try:
            self._loop.run_until_complete(self._consume())
        except BaseException as exc:  # seen by start() and stop()
            self._error = exc
        finally:
            self._loop.close()

    async def _consume(self) -> None:
        self._stop = asyncio.Event()
        connection = await aio_pika.connect_robust(self.url, timeout=10, reconnect_interval=0.5)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=500)
            exchange = await channel.declare_exchange(self.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
            queue = await channel.declare_queue(self.queue, durable=True)
            await queue.bind(exchange, "#")

            async def record(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                with self._guard:
                    self.received.append(
                        (message.routing_key or "", orjson.loads(message.body), dict(message.headers), time.time())
                    )
                await message.ack()

            await queue.consume(record)
            self._ready.set()
            await self._stop.wait()

    def snapshot(self) -> list[tuple[str, dict[str, Any], dict[str, Any], float]]:
        with self._guard:
            return list(self.received)

    def wait_for(self, done: Callable[[list[Any]], bool], timeout: float) -> list[Any]:
        """Poll until `done(received)`, for at most `timeout` seconds; the messages either way."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done(self.snapshot()):
            time.sleep(0.1)
        return self.snapshot()

    def stop(self) -> None:
        if self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
