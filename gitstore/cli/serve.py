"""`gitstore serve`: the HTTP service, refused beyond loopback until a credential exists."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated

import typer

from gitstore.cli.base import CredentialsFile, DataDir, app, open_credentials


@app.command()
def serve(
    data: DataDir = Path("data"),
    credentials: CredentialsFile = None,
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
    trusted_proxies: Annotated[
        str,
        typer.Option(
            envvar="GITSTORE_TRUSTED_PROXIES",
            help="comma-separated addresses of proxies whose X-Forwarded-For/-Proto are believed (default: none)",
        ),
    ] = "",
) -> None:
    """Run the HTTP service on the data directory."""
    import uvicorn

    if workers > 1 and os.environ.get("GITSTORE_CLUSTER_DSN"):
        # Each worker would join as the same node name, a second live incarnation of it.
        typer.echo("error: a cluster node runs one worker (--workers 1); run more nodes instead", err=True)
        raise typer.Exit(2)
    if open_credentials(data, credentials).is_open and not _is_loopback(host):
        typer.echo(
            f"error: no credentials are configured, so gitstore serves loopback only (not {host}).\n"
            "Create a token first: gitstore token create NAME --email E --scope REPO:SCOPE",
            err=True,
        )
        raise typer.Exit(2)
    os.environ["GITSTORE_DATA"] = str(data)
    if credentials:
        os.environ["GITSTORE_CREDENTIALS"] = str(credentials)
    # uvicorn believes forwarding headers from 127.0.0.1 unless told otherwise: a client that
    # reaches a local proxy could then name any address as its own.
    proxies = [address.strip() for address in trusted_proxies.split(",") if address.strip()]
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
