"""`gitstore webhook`: a repository's webhook subscriptions (ADR 0012)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import orjson
import typer

from gitstore.cli.base import DataDir, Json, app
from gitstore.relay.api import Allowlist
from gitstore.relay.api import subscriptions as webhook_subscriptions
from gitstore.store import Store

hooks = typer.Typer(
    help="Webhook subscriptions: signed POSTs of a repository's events (ADR 0012).", no_args_is_help=True
)
app.add_typer(hooks, name="webhook")


@hooks.command("add")
def add_webhook(
    repo: str,
    url: str,
    secret: Annotated[str, typer.Option(envvar="GITSTORE_WEBHOOK_SECRET", help="16-256 characters; signs deliveries")],
    event: Annotated[list[str], typer.Option("--event", help="an event kind, repeatable (default: every kind)")] = [],  # noqa: B006
    drafts: Annotated[bool, typer.Option("--drafts", help="draft events too, as the preview right sees them")] = False,
    data: DataDir = Path("data"),
    json: Json = False,
) -> None:
    """Subscribe URL to REPO's events from now on (GITSTORE_WEBHOOK_ALLOW applies as in the server)."""
    sub = webhook_subscriptions.create(
        Store(data).repository(repo),
        url=url,
        secret=secret,
        events=event or ["*"],
        drafts=drafts,
        active=True,
        created_by="gitstore webhook add",
        allow=Allowlist.parse(os.environ.get("GITSTORE_WEBHOOK_ALLOW", "")),
    )
    typer.echo(orjson.dumps({"id": sub.id, "url": sub.url}).decode() if json else f"added webhook {sub.id}")


@hooks.command("list")
def list_webhooks(repo: str, data: DataDir = Path("data"), json: Json = False) -> None:
    """REPO's subscriptions (never their secrets)."""
    subs = webhook_subscriptions.listed(Store(data).repository(repo))
    if json:
        rows = [
            {"id": s.id, "url": s.url, "events": list(s.events), "active": s.active, "failed": s.failed} for s in subs
        ]
        typer.echo(orjson.dumps(rows).decode())
        return
    for sub in subs:
        state = "failed" if sub.failed else "active" if sub.active else "inactive"
        typer.echo(f"{sub.id}  {state:8}  {','.join(sub.events)}  {sub.url}")


@hooks.command("remove")
def remove_webhook(repo: str, hook_id: str, data: DataDir = Path("data"), json: Json = False) -> None:
    """Unsubscribe; its cursor and delivery log go too."""
    webhook_subscriptions.remove(Store(data).repository(repo), hook_id)
    typer.echo(orjson.dumps({"removed": hook_id}).decode() if json else f"removed webhook {hook_id}")
