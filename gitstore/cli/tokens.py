"""`gitstore token` and `gitstore client`: bearer tokens and OAuth clients with their scopes."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import orjson
import typer

from gitstore.cli.base import CredentialsFile, DataDir, Json, ScopeOption, app, open_credentials
from gitstore.storage.api import write_atomically

tokens = typer.Typer(help="Bearer tokens: each names a person (the git author) and their scopes.", no_args_is_help=True)
clients = typer.Typer(help="OAuth clients, which trade id and secret for short-lived tokens.", no_args_is_help=True)
app.add_typer(tokens, name="token")
app.add_typer(clients, name="client")

DEMO_TOKEN_FILE = "demo-token"


@tokens.command("create")
def create_token(
    name: str,
    email: Annotated[str, typer.Option(help="the git author email of this token's commits")],
    scope: ScopeOption,
    expires_in: Annotated[int | None, typer.Option(help="seconds until it stops working")] = None,
    data: DataDir = Path("data"),
    credentials: CredentialsFile = None,
    json: Json = False,
) -> None:
    """Issue a token and print it (the only time it is shown)."""
    lifetime = timedelta(seconds=expires_in) if expires_in else None
    issued = open_credentials(data, credentials).create_token(name, email, _scopes(scope), expires_in=lifetime)
    typer.echo(orjson.dumps({"id": issued.id, "token": issued.secret}).decode() if json else issued.secret)


@tokens.command("list")
def list_tokens(data: DataDir = Path("data"), credentials: CredentialsFile = None, json: Json = False) -> None:
    """Every token: id, person, scopes, expiry (never the secret)."""
    found = open_credentials(data, credentials).tokens()
    if json:
        typer.echo(orjson.dumps([dataclasses.asdict(t) for t in found]).decode())
        return
    for t in found:
        scopes = " ".join(f"{repo}:{','.join(s)}" for repo, s in t.scopes.items())
        typer.echo(f"{t.id}  {t.name} <{t.email}>  {scopes}" + (f"  expires {t.expires_at}" if t.expires_at else ""))


@tokens.command("revoke")
def revoke_token(
    token_id: str, data: DataDir = Path("data"), credentials: CredentialsFile = None, json: Json = False
) -> None:
    """Revoke a token; every server process stops accepting it on its next request."""
    open_credentials(data, credentials).revoke_token(token_id)
    typer.echo(orjson.dumps({"revoked": token_id}).decode() if json else f"revoked {token_id}")


@tokens.command("demo")
def demo_token(data: DataDir = Path("data"), credentials: CredentialsFile = None, json: Json = False) -> None:
    """Print the demo token `make serve` uses (admin everywhere), making it on first use."""
    store = open_credentials(data, credentials)
    saved = Path(data) / DEMO_TOKEN_FILE
    secret = saved.read_text().strip() if saved.is_file() else ""
    if not secret or store.authenticate_token(secret) is None:
        secret = store.create_token("Demo Editor", "demo@gitstore.invalid", {"*": ["admin"]}).secret
        Path(data).mkdir(parents=True, exist_ok=True)
        write_atomically(saved, secret.encode() + b"\n", mode=0o600)
    typer.echo(orjson.dumps({"token": secret, "file": str(saved)}).decode() if json else secret)


@clients.command("add")
def add_client(
    client_id: str,
    name: Annotated[str, typer.Option(help="the git author name of its commits")],
    email: Annotated[str, typer.Option(help="the git author email of its commits")],
    scope: ScopeOption,
    data: DataDir = Path("data"),
    credentials: CredentialsFile = None,
    json: Json = False,
) -> None:
    """Register an OAuth client and print its secret (the only time it is shown)."""
    issued = open_credentials(data, credentials).add_client(client_id, name, email, _scopes(scope))
    typer.echo(
        orjson.dumps({"client_id": issued.id, "client_secret": issued.secret}).decode() if json else issued.secret
    )


@clients.command("remove")
def remove_client(
    client_id: str, data: DataDir = Path("data"), credentials: CredentialsFile = None, json: Json = False
) -> None:
    """Remove a client: its access tokens stop working at once."""
    open_credentials(data, credentials).remove_client(client_id)
    typer.echo(orjson.dumps({"removed": client_id}).decode() if json else f"removed {client_id}")


def _scopes(items: list[str]) -> dict[str, list[str]]:
    grants: dict[str, list[str]] = {}
    for item in items:
        repo, _, scope = item.rpartition(":")
        grants.setdefault(repo or "*", []).append(scope)
    return grants
