"""Bundles from the shell: import one as drafts, export a view as one, save a sample's."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, BinaryIO, NoReturn

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from gitstore.bundles.api import NDJSON, TAR_GZ
from gitstore.cli.base import DataDir, Json, RepoOption, app
from gitstore.entities.api import Author
from gitstore.errors import InvalidDocument, StaleVersion
from gitstore.store import Store


@app.command("import")
def import_command(
    repo: Annotated[str, typer.Argument(help="the repository to import into")],
    path: Annotated[
        Path | None,
        typer.Argument(help="the bundle: .tar.gz or .tgz, .zip, .ndjson or .jsonl, or a directory of its files"),
    ] = None,
    repo_option: RepoOption = None,
    data: DataDir = Path("data"),
    publish: Annotated[bool, typer.Option("--publish", help="publish what it imports, in the same operation")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="write nothing: what would change, every problem")] = False,
    if_match: Annotated[
        str | None, typer.Option("--if-match", help="import only if refs/heads/draft is still this commit")
    ] = None,
    bundle_format: Annotated[
        str | None, typer.Option("--format", help="tar.gz, zip or ndjson (default: PATH's)")
    ] = None,
    author: Annotated[str, typer.Option(envvar="GITSTORE_AUTHOR_NAME", help="the git author")] = "gitstore cli",
    email: Annotated[
        str, typer.Option(envvar="GITSTORE_AUTHOR_EMAIL", help="the git author's email")
    ] = "cli@gitstore.invalid",
    json: Json = False,
) -> None:
    """Import a bundle as drafts: all of it in one commit on `draft`, or nothing."""
    from gitstore.bundles.api import import_bundle

    if repo_option is not None:
        _deprecated_repo(path)
        repo, path = repo_option, Path(repo)
    if path is None:
        _fail("say which bundle: gitstore import REPO PATH")
    content = Store(data).repository(repo)
    with _progress() as progress, contextlib.ExitStack() as held:
        if path.is_dir():  # a bundle kept unpacked, as sample_repos/<name>/bundle
            source: Path | _Reading = path
            media_type = TAR_GZ
        else:
            media_type = _bundle_type(bundle_format, path.name)
            source = _Reading(held.enter_context(path.open("rb")), progress, path.stat().st_size)
        try:
            report = import_bundle(
                content,
                source,  # type: ignore[arg-type]
                media_type,
                author=Author(author, email),
                expected_draft_head=if_match,
                publish=publish,
                dry_run=dry_run,
            )
        except InvalidDocument as exc:
            _refused(exc.extra["errors"], json)
        except StaleVersion as exc:
            typer.echo(f"error: {exc.detail}", err=True)
            raise typer.Exit(3) from None
    problems = [p.as_error() for p in report.problems]
    if json:
        body = {**dataclasses.asdict(report), "problems": problems, "warnings": [w.as_error() for w in report.warnings]}
        typer.echo(orjson.dumps(body, default=str).decode())
    else:
        verb = "would import" if dry_run else "imported"
        typer.echo(
            f"{repo}: {verb} {len(report.created) + len(report.changed) + len(report.unchanged)} entities: "
            f"{len(report.created)} new, {len(report.changed)} changed, {len(report.unchanged)} unchanged, "
            f"{report.pinned_versions} pinned versions added"
        )
        for warning in report.warnings:
            typer.echo(f"  warning: {_where(warning.as_error())}: {warning.msg}", err=True)
        if report.published is not None:
            typer.echo(f"published {len(report.published.items)} entities ({report.published.commit})")
        typer.echo(f"draft head: {report.draft_head}")
    if problems:
        _refused(problems, json, printed=json)


@app.command("export")
def export_command(
    repo: Annotated[str | None, typer.Argument(help="the repository to export", show_default=False)] = None,
    repo_option: RepoOption = None,
    data: DataDir = Path("data"),
    state: Annotated[str, typer.Option(help="draft (every current draft) or published (what is live)")] = "draft",
    as_of: Annotated[str | None, typer.Option("--as-of", help="an RFC 3339 time, or a commit of that branch")] = None,
    bundle_format: Annotated[
        str | None, typer.Option("--format", help="tar.gz, zip or ndjson (default: OUTPUT's, else tar.gz)")
    ] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="the file to write (default: stdout)")] = None,
    json: Json = False,
) -> None:
    """Export a view (draft or published, now or as of a moment) as a bundle."""
    from gitstore.bundles.api import as_of_from_text, export_bundle

    if repo_option is not None:
        _deprecated_repo(repo)
        repo = repo_option
    if repo is None:
        _fail("say which repository: gitstore export REPO")
    media_type = _bundle_type(bundle_format, output.name if output is not None else "", default=TAR_GZ)
    if output is None and media_type != NDJSON and sys.stdout.isatty():
        _fail("an archive is no sight for a terminal: give -o FILE, or pipe it")
    content = Store(data).repository(repo)
    moment = as_of_from_text(as_of) if as_of is not None else None
    exported = [0]
    with _progress() as progress:
        task = progress.add_task("exporting", total=None)

        def advance(done: int, total: int) -> None:
            exported[0] = done
            progress.update(task, completed=done, total=total)

        chunks = export_bundle(content, state=state, as_of=moment, media_type=media_type, progress=advance)
        size = _write_out(chunks, output)
    if output is not None:
        summary = {"repo": repo, "state": state, "entities": exported[0], "bytes": size, "output": str(output)}
        typer.echo(orjson.dumps(summary).decode() if json else f"{repo}: exported {exported[0]} entities to {output}")


@app.command("save-sample")
def save_sample(
    repo: str,
    data: DataDir = Path("data"),
    samples: Annotated[
        Path, typer.Option("--samples", envvar="GITSTORE_SAMPLES_DIR", help="the folder of sample repositories")
    ] = Path("sample_repos"),
    json: Json = False,
) -> None:
    """Write REPO's drafts over its sample's bundle, SAMPLES/REPO/bundle (an export, unpacked), so
    that content edited in the service is kept; tests/test_samples.py checks that the history
    still leads to it."""
    from gitstore.samples import BUNDLE, save_bundle

    target = samples / repo / BUNDLE
    count = save_bundle(Store(data).repository(repo), target)
    summary = {"repo": repo, "files": count, "bundle": str(target)}
    typer.echo(orjson.dumps(summary).decode() if json else f"{repo}: wrote {count} files to {target}")


def _fail(message: str) -> NoReturn:
    """Refuse: a one-line message on stderr, exit status 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _deprecated_repo(positional: object) -> None:
    """`--repo R`, how import and export once took their repository: still taken, with a warning."""
    if positional is not None:
        _fail("name the repository once: first, not also with --repo")
    typer.echo("warning: --repo is deprecated: name the repository first, as every command does", err=True)


def _bundle_type(given: str | None, file_name: str, *, default: str | None = None) -> str:
    from gitstore.bundles.api import FORMATS, media_type_of

    media_type = FORMATS.get(given) if given is not None else media_type_of(file_name) or default
    if media_type is None:
        names = ", ".join(FORMATS)
        raise typer.BadParameter(f"say --format ({names}), or name the file for one", param_hint="--format")
    return media_type


def _refused(problems: list[dict[str, Any]], json: bool, *, printed: bool = False) -> NoReturn:
    """Every problem of a refused bundle, then exit status 1."""
    if json and not printed:
        typer.echo(orjson.dumps({"problems": problems}).decode())
    if not json:
        typer.echo(f"error: the bundle has {len(problems)} problem(s); nothing was imported", err=True)
        for problem in problems:
            typer.echo(f"  {_where(problem)}: {problem['msg']}", err=True)
    raise typer.Exit(1)


def _where(problem: dict[str, Any]) -> str:
    entry, *loc = problem["loc"]
    key = f" [{problem['key']}]" if problem.get("key") else ""
    return f"{entry}{key}" + (f" {'.'.join(map(str, loc))}" if loc else "")


def _progress() -> Progress:
    """A progress bar on stderr, only when someone is watching it."""
    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


class _Reading:
    """A bundle file that moves a progress bar as it is read, then shows the work after reading."""

    def __init__(self, raw: BinaryIO, progress: Progress, size: int) -> None:
        self._raw, self._progress = raw, progress
        self._task = progress.add_task("reading", total=size)

    def read(self, size: int = -1) -> bytes:
        return self._moved(self._raw.read(size))

    def readline(self, size: int = -1) -> bytes:
        return self._moved(self._raw.readline(size))

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def seekable(self) -> bool:
        return True

    def _moved(self, data: bytes) -> bytes:
        self._progress.update(self._task, completed=self._raw.tell())
        if not data:
            self._progress.update(self._task, description="checking and writing", total=None)
        return data


def _write_out(chunks: Iterator[bytes], output: Path | None) -> int:
    """Write a bundle to `output` (whole or not at all: it is renamed into place) or stdout."""
    size = 0
    if output is None:
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
            size += len(chunk)
        sys.stdout.buffer.flush()
        return size
    partial = output.with_name(f".{output.name}.partial")
    try:
        with partial.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
                size += len(chunk)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return size
