"""A webhook subscription as a relay sink: one signed POST per event, in order, each attempt
in the delivery log; after `max_tries` the subscription is marked failed and stops at that
event (its cursor stays before it), so nothing is skipped: reactivating it resumes there."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from gitstore.events import Event
from gitstore.relay.relay import Outgoing
from gitstore.relay.state import Delivery, RelayState, Subscription
from gitstore.relay.webhooks import SIGNATURE_HEADER, Allowlist, Attempt, post, sign

__all__ = ["WebhookSink", "delivery_id", "redeliver"]

_NAMESPACE = uuid.UUID("5b0f4d1e-8f6a-4a57-9d2b-3f1f0c6a7e21")


def delivery_id(subscription: str, event_id: str) -> str:
    """The same for every try of one event to one subscription, with no state to keep."""
    return str(uuid.uuid5(_NAMESPACE, f"{subscription} {event_id}"))


class WebhookSink:
    kind = "webhook"
    start_latest = True  # a new subscription hears what happens from now on

    def __init__(
        self,
        state: RelayState,
        subscription: Subscription,
        allow: Allowlist,
        pool: ThreadPoolExecutor,
        *,
        max_tries: int = 8,
        timeout: float = 10.0,
        observe: Callable[[Attempt], None] | None = None,
    ) -> None:
        self.state = state
        self.subscription = subscription  # the relay refreshes it each round: edits apply at once
        self.allow = allow
        self.max_tries = max_tries
        self.timeout = timeout
        self._pool = pool
        self._observe = observe

    @property
    def name(self) -> str:
        return self.subscription.sink

    @property
    def preview(self) -> bool:
        return self.subscription.drafts

    def wants(self, event: Event) -> bool:
        return self.subscription.wants(event.kind)

    async def deliver(self, repo: str, items: list[Outgoing], attempt: int) -> int:
        loop = asyncio.get_running_loop()
        for done, item in enumerate(items):
            tried = attempt if done == 0 else 1
            last = tried >= self.max_tries
            result = await loop.run_in_executor(
                self._pool,
                _attempt,
                self.state,
                self.subscription,
                repo,
                item.event.id,
                item.event.kind,
                item.body,
                tried,
                last,
                self.allow,
                self.timeout,
            )
            if self._observe is not None:
                self._observe(result)
            if not result.ok:
                return done
        return len(items)

    async def give_up(self, repo: str, item: Outgoing) -> None:
        sub = self.subscription
        await asyncio.get_running_loop().run_in_executor(
            self._pool, lambda: self.state.update_subscription(replace(sub, failed=True))
        )


def _attempt(
    state: RelayState,
    sub: Subscription,
    repo: str,
    event_id: str,
    kind: str,
    body: bytes,
    tried: int,
    final: bool,
    allow: Allowlist,
    timeout: float,
    *,
    redelivery: bool = False,
) -> Attempt:
    did = delivery_id(sub.id, event_id)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "gitstore-webhooks",
        SIGNATURE_HEADER: sign(sub.secret, body),
        "X-Gitstore-Delivery": did,
        "X-Gitstore-Event": kind,
        "X-Gitstore-Event-Id": event_id,
        "X-Gitstore-Repository": repo,
        "X-Gitstore-Attempt": str(tried),
    }
    result = post(sub.url, body, headers, allow, timeout=timeout)
    status = "delivered" if result.ok else "failed" if final else "retrying"
    state.log(
        Delivery(
            did,
            sub.id,
            event_id,
            kind,
            tried,
            status,
            result.response_code,
            result.duration_ms,
            result.error,
            time.time(),
            redelivery,
            body,
        )
    )
    return result


def redeliver(state: RelayState, sub: Subscription, repo: str, delivery: Delivery, allow: Allowlist) -> Delivery:
    """Send a logged delivery again, once, now (signed with the subscription's current secret),
    and log the attempt. The subscription's cursor does not move: this is a copy for a receiver
    that lost one, not the stream (a failed subscription resumes by being reactivated)."""
    tried = max(d.attempt for d in state.deliveries(sub.id, delivery_id=delivery.id)) + 1
    _attempt(
        state,
        sub,
        repo,
        delivery.event_id,
        delivery.event_kind,
        delivery.body,
        tried,
        True,
        allow,
        10.0,
        redelivery=True,
    )
    return state.deliveries(sub.id, limit=1, delivery_id=delivery.id)[0]
