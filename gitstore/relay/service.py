"""The relay as a server runs it: the RabbitMQ sink if one is configured, and each repository's
active webhook subscriptions, on the relay's own thread (gitstore.relay.relay.RelayThread)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from gitstore.relay.amqp import AmqpSink
from gitstore.relay.relay import LaneStats, Relay, RelayThread, Render, Sink, relay_state
from gitstore.relay.webhook_sink import WebhookSink
from gitstore.relay.webhooks import Allowlist, Attempt
from gitstore.repository import ContentRepository

__all__ = ["RelayConfig", "RelayService"]


@dataclass(frozen=True, slots=True)
class RelayConfig:
    amqp_url: str | None = None  # None: no RabbitMQ sink
    amqp_exchange: str = "published_documents"
    allow: Allowlist = Allowlist()
    webhook_tries: int = 8
    webhook_timeout: float = 10.0
    retry_base: float = 1.0  # seconds before the first retry; doubling, with jitter
    retry_max: float = 60.0
    poll_seconds: float = 0.1


class RelayService:
    def __init__(
        self,
        repositories: Callable[[], list[ContentRepository]],
        render: Render,
        config: RelayConfig,
        *,
        observe: Callable[[Attempt], None] | None = None,
    ) -> None:
        self.config = config
        self.amqp = AmqpSink(config.amqp_url, config.amqp_exchange) if config.amqp_url else None
        self._posts = ThreadPoolExecutor(max_workers=8, thread_name_prefix="relay-webhook")
        self._hooks: dict[tuple[str, str], WebhookSink] = {}
        self._observe = observe
        self.relay = Relay(
            repositories,
            self._sinks_for,
            render,
            poll_seconds=config.poll_seconds,
            retry_base=config.retry_base,
            retry_max=config.retry_max,
        )
        self._thread = RelayThread(self.relay, closing=self._close)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()
        self._posts.shutdown(wait=False, cancel_futures=True)

    def sinks(self) -> dict[str, str]:
        """Each configured sink's state, for /health: RabbitMQ up or down, webhooks by lane."""
        if self.amqp is None:
            return {}
        relaying = any(lane.kind == "amqp" and lane.state not in ("standby", "starting") for lane in self.stats())
        # A worker whose lanes another worker relays never connects: it stands by.
        return {"amqp": self.amqp.status if relaying or self.amqp.status != "connecting" else "standby"}

    def stats(self) -> list[LaneStats]:
        return self.relay.stats()

    def _sinks_for(self, repo: ContentRepository) -> Iterable[Sink]:
        if self.amqp is not None:
            yield self.amqp
        state = relay_state(repo)
        if not state.exists():  # no subscription was ever made here: nothing to open
            return
        for sub in state.subscriptions():
            key = (repo.name, sub.id)
            if not sub.active or sub.failed:
                self._hooks.pop(key, None)
                continue
            hook = self._hooks.get(key)
            if hook is None:
                hook = self._hooks[key] = WebhookSink(
                    state,
                    sub,
                    self.config.allow,
                    self._posts,
                    max_tries=self.config.webhook_tries,
                    timeout=self.config.webhook_timeout,
                    observe=self._observe,
                )
            hook.subscription = sub
            yield hook

    async def _close(self) -> None:
        if self.amqp is not None:
            await self.amqp.close()
