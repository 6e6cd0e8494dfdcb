"""The relay's public surface: the service a server runs, and webhook subscriptions' rules and
operations (`subscriptions.create`, `subscriptions.listed`, ... as the CLI and the API call
them), and the relay file's copies a cluster keeps on replicas (`snapshot`, `install_snapshot`)."""

from __future__ import annotations

from gitstore.relay import subscriptions
from gitstore.relay.relay import Outgoing, Render
from gitstore.relay.service import RelayConfig, RelayService
from gitstore.relay.state import (
    Delivery,
    Subscription,
    copy_state,
    install_snapshot,
    install_state,
    register_shipper,
    signature,
    snapshot,
    unregister_shipper,
)
from gitstore.relay.webhooks import EVENT_KINDS, MAX_SECRET, MIN_SECRET, Allowlist

__all__ = [
    "EVENT_KINDS",
    "MAX_SECRET",
    "MIN_SECRET",
    "Allowlist",
    "Delivery",
    "Outgoing",
    "RelayConfig",
    "RelayService",
    "Render",
    "Subscription",
    "copy_state",
    "install_snapshot",
    "install_state",
    "register_shipper",
    "signature",
    "snapshot",
    "subscriptions",
    "unregister_shipper",
]
