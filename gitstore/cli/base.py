"""The root `gitstore` command, its --version, and the options every command shares."""

from __future__ import annotations

import atexit
import os
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated

import typer

from gitstore.access.api import Credentials, CredentialStore, default_path

_HELP = {"help_option_names": ["-h", "--help"]}
UPKEEP = "Upkeep (gitstore.upkeep: repair, packing, fsck, pruning)"
app = typer.Typer(
    help="A Git-backed content repository.", no_args_is_help=True, add_completion=False, context_settings=_HELP
)

DataDir = Annotated[
    Path,
    typer.Option("--data", envvar="GITSTORE_DATA", help="data directory holding <name>.git repositories"),
]
Json = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
CredentialsFile = Annotated[
    Path | None,
    typer.Option("--credentials", envvar="GITSTORE_CREDENTIALS", help="default: <data>/credentials.json"),
]
RepoOption = Annotated[
    str | None,
    typer.Option("--repo", hidden=True, help="deprecated: name the repository first, as every command does"),
]
ScopeOption = Annotated[
    list[str],
    typer.Option("--scope", help="REPO:SCOPE (REPO may be *; SCOPE one of read, preview, write, publish, admin)"),
]


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"gitstore {package_version('gitstore')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """A Git-backed content repository. Every command names its repository first (REPO)."""


def open_credentials(data: Path, credentials: Path | None) -> CredentialStore:
    """In cluster mode (GITSTORE_CLUSTER_DSN set) the cluster's credentials in PostgreSQL, which
    every node reads; else the credentials file named, else the data directory's."""
    dsn = os.environ.get("GITSTORE_CLUSTER_DSN")
    if dsn:
        from gitstore.cluster.api import ClusterCredentials, ControlPlane

        plane = ControlPlane(dsn)
        atexit.register(plane.close)
        return ClusterCredentials(plane)
    return Credentials(credentials or default_path(data))
