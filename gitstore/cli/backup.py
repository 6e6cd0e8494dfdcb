"""`gitstore backup` and `gitstore restore` (gitstore.backup): a node's repositories, relay
state and credentials to a directory or S3-compatible storage, and back."""

from __future__ import annotations

import atexit
import dataclasses
import os
from pathlib import Path
from typing import Annotated

import orjson
import typer

from gitstore.backup.api import NodePart, list_backups, node_parts, open_target, restore, take_backup
from gitstore.cli.base import CredentialsFile, DataDir, Json, app
from gitstore.store import Store

BACKUP = "Backup and restore (gitstore.backup)"
Target = Annotated[
    str, typer.Argument(help="a directory, or s3://bucket/prefix (GITSTORE_S3_ENDPOINT, AWS_* variables)")
]


@app.command(rich_help_panel=BACKUP)
def backup(
    target: Target,
    data: DataDir = Path("data"),
    credentials: CredentialsFile = None,
    full: Annotated[bool, typer.Option("--full", help="a backup that needs no earlier one")] = False,
    json: Json = False,
) -> None:
    """Back up every repository (refs as one snapshot each, objects as git bundles incremental
    against the newest backup in TARGET), relay state and credentials, while the service runs;
    on a cluster node (GITSTORE_CLUSTER_DSN) the control plane too."""
    report = take_backup(Store(data), open_target(target), parts=_parts(data, credentials), full=full)
    if json:
        typer.echo(orjson.dumps(dataclasses.asdict(report)).decode())
        return
    kind = f"incremental on {report.parent}" if report.parent else "full"
    typer.echo(f"backup {report.id} ({kind}): {report.bytes_written:,} bytes in {report.seconds} s to {report.target}")
    for name, repo in report.repositories.items():
        typer.echo(
            f"  {name}: {repo.kind}, {repo.refs} refs ({repo.refs_changed} set, {repo.refs_deleted} deleted),"
            f" bundle {repo.bundle_bytes:,} bytes"
        )
    for part in report.parts:
        typer.echo(f"  {part}: kept")


@app.command(rich_help_panel=BACKUP, name="restore")
def restore_command(
    source: Target,
    data: DataDir = Path("data"),
    credentials: CredentialsFile = None,
    backup_id: Annotated[str | None, typer.Option("--backup", help="a backup id (default: the newest)")] = None,
    repos: Annotated[
        list[str] | None,
        typer.Argument(help="only these repositories (default: every one, and the credentials with them)"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="replace repositories and credentials that exist")] = False,
    list_only: Annotated[bool, typer.Option("--list", help="list the backups in SOURCE; restore nothing")] = False,
    json: Json = False,
) -> None:
    """Bring repositories (default: every one, with the credentials) back from a backup into the
    data directory. Everything is fetched and verified in a staging folder first; a damaged
    backup is refused naming the file, and nothing is half-restored. Stop the service first."""
    where = open_target(source)
    if list_only:
        found = list_backups(where)
        if json:
            typer.echo(orjson.dumps([dataclasses.asdict(b) for b in found]).decode())
            return
        for b in found:
            built_on = f"on {b.parent}" if b.parent else "full"
            typer.echo(b.damaged or f"{b.id}  {built_on:<32}  {b.repositories} repositories  {b.bytes:,} bytes")
        return
    report = restore(
        where, data, backup_id=backup_id, names=repos or None, parts=_parts(data, credentials), force=force
    )
    if json:
        typer.echo(orjson.dumps(dataclasses.asdict(report)).decode())
        return
    typer.echo(f"restored backup {report.id} into {report.data} in {report.seconds} s")
    for name, restored in report.repositories.items():
        replaced = ", replacing the one there" if restored.replaced else ""
        typer.echo(f"  {name}: {restored.refs} refs, {restored.entities} entities{replaced}")
    for part in report.parts:
        typer.echo(f"  {part}: restored")


def _parts(data: Path, credentials: Path | None) -> list[NodePart]:
    """The node's parts, and on a cluster node (GITSTORE_CLUSTER_DSN) its control plane."""
    parts = node_parts(data, credentials)
    dsn = os.environ.get("GITSTORE_CLUSTER_DSN")
    if dsn:
        from gitstore.cluster.api import ClusterPart, ControlPlane

        plane = ControlPlane(dsn)
        atexit.register(plane.close)
        parts.append(ClusterPart(plane))
    return parts
