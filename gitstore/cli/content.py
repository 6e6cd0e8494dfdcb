"""Commands on a repository's content: create it, name its clone URL, erase what must go."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer

from gitstore.cli.base import DataDir, Json, app
from gitstore.entities.api import Author
from gitstore.erasure import erase as erase_content
from gitstore.store import Store


@app.command()
def init(
    repo: str,
    data: DataDir = Path("data"),
    description: Annotated[str, typer.Option(help="one line about it")] = "",
    json: Json = False,
) -> None:
    """Create an empty content repository."""
    created = Store(data).create_repository(repo, description)
    typer.echo(orjson.dumps({"repo": repo, "path": str(created.path)}).decode() if json else f"created {created.path}")


@app.command("clone-url")
def clone_url(
    repo: str,
    data: DataDir = Path("data"),
    base_url: Annotated[
        str, typer.Option(envvar="GITSTORE_BASE_URL", help="where the service is reached")
    ] = "http://127.0.0.1:8000",
    live: Annotated[bool, typer.Option("--live", help="the public copy's URL (what is live, no drafts)")] = False,
    json: Json = False,
) -> None:
    """Print the URL that `git clone` takes for REPO: the full repository (drafts and history, for
    a token with the preview scope), or with --live the public copy anyone who may read can clone."""
    Store(data).repository(repo)
    url = f"{base_url.rstrip('/')}/git/{'live/' if live else ''}{repo}.git"
    typer.echo(orjson.dumps({"repo": repo, "url": url}).decode() if json else url)


@app.command()
def erase(
    repo: str,
    key: str,
    reason: Annotated[str, typer.Option("--reason", help="why (a legal takedown, a court order): kept in the record")],
    data: DataDir = Path("data"),
    version: Annotated[
        int | None, typer.Option("--version", help="erase only what this version wrote (default: every version)")
    ] = None,
    author: Annotated[str, typer.Option(envvar="GITSTORE_AUTHOR_NAME", help="who erases")] = "gitstore cli",
    email: Annotated[str, typer.Option(envvar="GITSTORE_AUTHOR_EMAIL", help="their email")] = "cli@gitstore.invalid",
    json: Json = False,
) -> None:
    """Erase KEY's content from every copy: history, the public copy, the index (ADR 0009)."""
    done = erase_content(
        Store(data).repository(repo), key, author=Author(author, email), reason=reason, version=version
    )
    if json:
        typer.echo(orjson.dumps({"id": done.id, "key": done.key, "version": done.version, "refs": done.refs}).decode())
        return
    what = f"version {done.version}" if done.version else "every version"
    typer.echo(f"{repo}: erased {what} of {key} (erasure {done.id}); {len(done.commits)} commits rewritten")
