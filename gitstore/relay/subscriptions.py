"""Webhook subscriptions of a repository: made, changed and removed here by the API and the CLI
alike, each checked whole before anything is written. In cluster mode a change is answered only
once the repository's in-sync replicas hold it (a failover keeps every acknowledged one)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import replace

from gitstore.errors import InvalidInput, NotFound
from gitstore.events import read_events
from gitstore.relay.relay import relay_state
from gitstore.relay.state import Delivery, Subscription, ship_changed
from gitstore.relay.webhook_sink import redeliver
from gitstore.relay.webhooks import Allowlist, check_subscription
from gitstore.repository import ContentRepository

__all__ = ["create", "deliveries", "get", "listed", "remove", "resend", "update"]


def create(
    repo: ContentRepository,
    *,
    url: str,
    secret: str,
    events: Sequence[str],
    drafts: bool,
    active: bool,
    created_by: str,
    allow: Allowlist,
) -> Subscription:
    """A new subscription, hearing what happens from now on (its cursor is the feed's end)."""
    _refuse(check_subscription(url, secret, events, allow, drafts=drafts))
    sub = Subscription(secrets.token_hex(8), url, secret, tuple(events), active, False, drafts, created_by, time.time())
    start = read_events(repo, after="latest", drafts=drafts).cursor
    state = relay_state(repo)
    state.add_subscription(sub, start)
    ship_changed(state)
    return sub


def listed(repo: ContentRepository) -> list[Subscription]:
    return relay_state(repo).subscriptions()


def get(repo: ContentRepository, sub_id: str) -> Subscription:
    sub = relay_state(repo).subscription(sub_id) if _plausible(sub_id) else None
    if sub is None:
        raise NotFound(f"no webhook {sub_id!r} in {repo.name!r}")
    return sub


def update(
    repo: ContentRepository,
    sub_id: str,
    allow: Allowlist,
    *,
    url: str | None = None,
    secret: str | None = None,
    events: Sequence[str] | None = None,
    active: bool | None = None,
) -> Subscription:
    """Change what is given; `active=True` also clears the failed state, so the subscription
    resumes at the event it gave up on."""
    sub = get(repo, sub_id)
    changed = replace(
        sub,
        url=sub.url if url is None else url,
        secret=sub.secret if secret is None else secret,
        events=sub.events if events is None else tuple(events),
        active=sub.active if active is None else active,
        failed=sub.failed and not active,
    )
    _refuse(check_subscription(changed.url, secret, changed.events, allow, drafts=changed.drafts))
    state = relay_state(repo)
    state.update_subscription(changed)
    ship_changed(state)
    return changed


def remove(repo: ContentRepository, sub_id: str) -> None:
    get(repo, sub_id)
    state = relay_state(repo)
    state.remove_subscription(sub_id)
    ship_changed(state)


def deliveries(repo: ContentRepository, sub_id: str, *, limit: int = 50) -> list[Delivery]:
    get(repo, sub_id)
    return relay_state(repo).deliveries(sub_id, limit=limit)


def resend(repo: ContentRepository, sub_id: str, delivery_id: str, allow: Allowlist) -> Delivery:
    """Send a logged delivery once more, now (see webhook_sink.redeliver)."""
    sub = get(repo, sub_id)
    state = relay_state(repo)
    logged = state.deliveries(sub_id, limit=1, delivery_id=delivery_id) if _plausible(delivery_id, 36) else []
    if not logged:
        raise NotFound(f"no delivery {delivery_id!r} of webhook {sub_id!r}")
    return redeliver(state, sub, repo.name, logged[0], allow)


def _plausible(text: str, longest: int = 16) -> bool:
    return 0 < len(text) <= longest and text.isascii()


def _refuse(problems: list[dict[str, object]]) -> None:
    if problems:
        raise InvalidInput("; ".join(f"{p['loc'][-1]}: {p['msg']}" for p in problems), errors=problems)  # type: ignore[index]
