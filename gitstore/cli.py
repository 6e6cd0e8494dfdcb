"""The `gitstore` command: look after a data directory from the shell.

gitstore init REPO [--description TEXT]
gitstore reindex REPO        rebuild the derived index from git
gitstore repair [REPO]       what the service does at startup
gitstore prune REPO          drop deleted, never-published, unreferenced entities and unreachable objects
gitstore serve               run the HTTP service
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path
from typing import Annotated

import orjson
import typer

from gitstore.errors import GitstoreError
from gitstore.maintenance import reindex as reindex_repo
from gitstore.maintenance import repair as repair_repo
from gitstore.store import Store

app = typer.Typer(help="A Git-backed content repository.", no_args_is_help=True, add_completion=False)

DataDir = Annotated[
    Path,
    typer.Option("--data", envvar="GITSTORE_DATA", help="data directory holding <name>.git repositories"),
]
Json = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]


@app.command()
def init(
    repo: str,
    data: DataDir = Path("data"),
    description: Annotated[str, typer.Option(help="one line about it")] = "",
) -> None:
    """Create an empty content repository."""
    created = Store(data).create_repository(repo, description)
    typer.echo(f"created {created.path}")


@app.command()
def reindex(repo: str, data: DataDir = Path("data"), json: Json = False) -> None:
    """Throw the derived index away and rebuild it from refs."""
    count = reindex_repo(Store(data).repository(repo))
    typer.echo(
        orjson.dumps({"repo": repo, "entities": count}).decode() if json else f"reindexed {count} entities in {repo}"
    )


@app.command()
def repair(
    repo: Annotated[str | None, typer.Argument()] = None,
    data: DataDir = Path("data"),
    json: Json = False,
) -> None:
    """Clear stale locks, finish a half-applied publish, catch the index up (as at startup)."""
    store = Store(data)
    repos = [store.repository(repo)] if repo else store.repositories()
    reports = {r.name: dataclasses.asdict(repair_repo(r)) for r in repos}
    if json:
        typer.echo(orjson.dumps(reports, option=orjson.OPT_INDENT_2).decode())
        return
    for name, report in reports.items():
        typer.echo(f"{name}: {report}")


@app.command("clone-url")
def clone_url(
    repo: str,
    data: DataDir = Path("data"),
    base_url: Annotated[
        str, typer.Option(envvar="GITSTORE_BASE_URL", help="where the service is reached")
    ] = "http://127.0.0.1:8000",
) -> None:
    """Print the URL that `git clone` takes for REPO."""
    Store(data).repository(repo)
    typer.echo(f"{base_url.rstrip('/')}/git/{repo}.git")


@app.command()
def fsck(repo: str, data: DataDir = Path("data"), json: Json = False) -> None:
    """Check every object with `git fsck --strict`, in the repository and its live-only copy."""
    from gitstore.publishing.mirror import live_mirror_path

    content = Store(data).repository(repo)
    results = {}
    for label, path in (("repository", content.path), ("live", live_mirror_path(content))):
        if not (path / "HEAD").is_file():
            continue
        done = subprocess.run(
            ["git", "--git-dir", str(path), "fsck", "--strict", "--no-dangling"], capture_output=True, text=True
        )
        results[label] = {"ok": done.returncode == 0, "output": (done.stdout + done.stderr).strip()}
    if json:
        typer.echo(orjson.dumps(results).decode())
    else:
        for label, result in results.items():
            typer.echo(
                f"{label}: {'ok' if result['ok'] else 'PROBLEMS'}"
                + (f"\n{result['output']}" if result["output"] else "")
            )
    if not all(r["ok"] for r in results.values()):
        raise typer.Exit(1)


@app.command()
def gc(repo: str, data: DataDir = Path("data"), json: Json = False) -> None:
    """Pack objects and refs in the repository and its live-only copy."""
    from gitstore.housekeeping import gc as gc_repo

    report = dataclasses.asdict(gc_repo(Store(data).repository(repo)))
    typer.echo(orjson.dumps(report).decode() if json else f"{repo}: {report}")


@app.command()
def prune(
    repo: str,
    data: DataDir = Path("data"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report what would go; change nothing")] = False,
    grace: Annotated[int, typer.Option(help="keep unreachable objects younger than this many seconds")] = 3600,
    json: Json = False,
) -> None:
    """Prune what seed 004 allows: never anything pinned, published or latest."""
    from gitstore.pruning import prune as prune_repo

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


@app.command()
def serve(
    data: DataDir = Path("data"),
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Run the HTTP service on the data directory."""
    import uvicorn

    os.environ["GITSTORE_DATA"] = str(data)
    uvicorn.run("api.main:app", host=host, port=port, workers=workers)


def main() -> None:
    # Every command's domain errors end here: a one-line message and exit status 2, no traceback.
    try:
        app()
    except GitstoreError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
