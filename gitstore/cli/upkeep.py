"""Upkeep commands (gitstore.upkeep): the index, repair, fsck, packing, pruning and stats."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import orjson
import typer

from gitstore.cli.base import UPKEEP, DataDir, Json, app
from gitstore.erasure import finish_erasures
from gitstore.store import Store
from gitstore.upkeep.api import reindex as reindex_repo
from gitstore.upkeep.api import repair as repair_repo


@app.command(rich_help_panel=UPKEEP)
def reindex(repo: str, data: DataDir = Path("data"), json: Json = False) -> None:
    """Throw the derived index away and rebuild it from refs."""
    count = reindex_repo(Store(data).repository(repo))
    typer.echo(
        orjson.dumps({"repo": repo, "entities": count}).decode() if json else f"reindexed {count} entities in {repo}"
    )


@app.command(rich_help_panel=UPKEEP)
def repair(
    repo: Annotated[str | None, typer.Argument()] = None,
    data: DataDir = Path("data"),
    json: Json = False,
) -> None:
    """Clear stale locks, finish a half-applied publish, catch the index up (as at startup)."""
    store = Store(data)
    repos = [store.repository(repo)] if repo else store.repositories()
    for r in repos:
        finish_erasures(r)
    reports = {r.name: dataclasses.asdict(repair_repo(r)) for r in repos}
    if json:
        typer.echo(orjson.dumps(reports, option=orjson.OPT_INDENT_2).decode())
        return
    for name, report in reports.items():
        typer.echo(f"{name}: {report}")


@app.command(rich_help_panel=UPKEEP)
def fsck(repo: str, data: DataDir = Path("data"), json: Json = False) -> None:
    """Find truncated, garbled and missing objects and dangling refs, in the repository and its
    live-only copy, naming the entities they belong to. Exit status 1 if anything is wrong."""
    from gitstore.upkeep.api import fsck as fsck_repo

    reports = fsck_repo(Store(data).repository(repo))
    if json:
        found = {label: {"ok": r.ok, **dataclasses.asdict(r)} for label, r in reports.items()}
        typer.echo(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())
    else:
        for label, report in reports.items():
            typer.echo(f"{label}: {'ok' if report.ok else 'PROBLEMS'} ({report.loose_objects} loose objects read)")
            for damaged in report.damaged:
                where = ", ".join(damaged.used_by) or "nothing (unreachable)"
                typer.echo(f"  {damaged.problem} object {damaged.oid}, used by {where}")
            for ref in report.dangling_refs:
                typer.echo(f"  dangling ref {ref.ref} -> {ref.target} (no such object)")
            for line in report.other:
                typer.echo(f"  {line}")
    if not all(r.ok for r in reports.values()):
        raise typer.Exit(1)


@app.command(rich_help_panel=UPKEEP)
def gc(repo: str, data: DataDir = Path("data"), json: Json = False) -> None:
    """Pack objects and refs in the repository and its live-only copy."""
    from gitstore.upkeep.api import gc as gc_repo

    report = dataclasses.asdict(gc_repo(Store(data).repository(repo)))
    typer.echo(orjson.dumps(report).decode() if json else f"{repo}: {report}")


@app.command(rich_help_panel=UPKEEP)
def prune(
    repo: str,
    data: DataDir = Path("data"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report what would go; change nothing")] = False,
    grace: Annotated[int, typer.Option(help="keep unreachable objects younger than this many seconds")] = 3600,
    json: Json = False,
) -> None:
    """Prune what seed 004 allows: never anything pinned, published or latest."""
    from gitstore.upkeep.api import prune as prune_repo

    report = prune_repo(Store(data).repository(repo), dry_run=dry_run, grace_seconds=grace)
    if json:
        typer.echo(orjson.dumps(dataclasses.asdict(report)).decode())
        return
    verb = "would prune" if dry_run else "pruned"
    typer.echo(f"{repo}: {verb} {len(report.pruned_entities)} entities, {report.unreachable_objects} objects")
    for key in report.pruned_entities:
        typer.echo(f"  {verb} {key}")
    for key, why in report.kept.items():
        typer.echo(f"  kept {key}: {why}")


@app.command(rich_help_panel=UPKEEP)
def stats(repo: str, data: DataDir = Path("data"), json: Json = False) -> None:
    """Entities, drafts, live, versions and publishes; refs, objects and disk use."""
    from gitstore.upkeep.api import stats as repo_stats

    found = dataclasses.asdict(repo_stats(Store(data).repository(repo)))
    if json:
        typer.echo(orjson.dumps(found).decode())
        return
    for name, value in found.items():
        typer.echo(f"{name.replace('_', ' '):<20} {value:>14,}")
