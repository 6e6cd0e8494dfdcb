"""The `gitstore` command: look after a data directory from the shell.

gitstore init REPO [--description TEXT]
gitstore reindex REPO        rebuild the derived index from git
gitstore repair [REPO]       what the service does at startup
gitstore prune REPO          drop deleted, never-published, unreferenced entities and unreachable objects
gitstore serve               run the HTTP service (loopback only until a token exists)
gitstore import PATH --repo R    a bundle as drafts, all or nothing (--publish, --dry-run, --if-match)
gitstore export --repo R         a view as a bundle (--state, --as-of, --format, -o FILE)
gitstore save-sample REPO        write REPO's drafts back over sample_repos/REPO/bundle
gitstore stats REPO          entities, versions, refs, objects and disk use
gitstore token create|list|revoke|demo    bearer tokens with scopes per repository
gitstore client add|remove                OAuth clients (client credentials grant)
gitstore webhook add|list|remove          webhook subscriptions of a repository

Exit status: 0 done, 1 the check found problems (fsck) or the bundle did (import: every problem
listed, nothing written), 2 the request was refused (bad name, unknown repository, invalid scopes,
an unreadable or unsafe bundle, ...), 3 the import's --if-match is stale (drafts changed since),
with a one-line message on stderr.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import sys
from collections.abc import Iterator
from datetime import timedelta
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any, BinaryIO, NoReturn

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from gitstore.access.credentials import Credentials, default_path
from gitstore.bundles.format import NDJSON, TAR_GZ
from gitstore.entities.model import Author
from gitstore.erasure import erase as erase_content
from gitstore.erasure import finish_erasures
from gitstore.errors import GitstoreError, InvalidDocument, StaleVersion
from gitstore.relay import subscriptions as webhook_subscriptions
from gitstore.relay.webhooks import Allowlist
from gitstore.storage.files import write_atomically
from gitstore.store import Store
from gitstore.upkeep.repair import reindex as reindex_repo
from gitstore.upkeep.repair import repair as repair_repo

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


@app.command(rich_help_panel=UPKEEP)
def fsck(repo: str, data: DataDir = Path("data"), json: Json = False) -> None:
    """Find truncated, garbled and missing objects and dangling refs, in the repository and its
    live-only copy, naming the entities they belong to. Exit status 1 if anything is wrong."""
    from gitstore.upkeep.fsck import fsck as fsck_repo

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
    from gitstore.upkeep.packing import gc as gc_repo

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
    from gitstore.upkeep.pruning import prune as prune_repo

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


@app.command(rich_help_panel=UPKEEP)
def stats(repo: str, data: DataDir = Path("data"), json: Json = False) -> None:
    """Entities, drafts, live, versions and publishes; refs, objects and disk use."""
    from gitstore.upkeep.packing import stats as repo_stats

    found = dataclasses.asdict(repo_stats(Store(data).repository(repo)))
    if json:
        typer.echo(orjson.dumps(found).decode())
        return
    for name, value in found.items():
        typer.echo(f"{name.replace('_', ' '):<20} {value:>14,}")


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
    from gitstore.bundles.format import FORMATS, media_type_of

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

    if _credentials(data, credentials).is_open and not _is_loopback(host):
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


# -- webhooks ------------------------------------------------------------------------------------

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


# -- credentials ---------------------------------------------------------------------------------

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
    issued = _credentials(data, credentials).create_token(name, email, _scopes(scope), expires_in=lifetime)
    typer.echo(orjson.dumps({"id": issued.id, "token": issued.secret}).decode() if json else issued.secret)


@tokens.command("list")
def list_tokens(data: DataDir = Path("data"), credentials: CredentialsFile = None, json: Json = False) -> None:
    """Every token: id, person, scopes, expiry (never the secret)."""
    found = _credentials(data, credentials).tokens()
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
    _credentials(data, credentials).revoke_token(token_id)
    typer.echo(orjson.dumps({"revoked": token_id}).decode() if json else f"revoked {token_id}")


@tokens.command("demo")
def demo_token(data: DataDir = Path("data"), credentials: CredentialsFile = None, json: Json = False) -> None:
    """Print the demo token `make serve` uses (admin everywhere), making it on first use."""
    store = _credentials(data, credentials)
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
    issued = _credentials(data, credentials).add_client(client_id, name, email, _scopes(scope))
    typer.echo(
        orjson.dumps({"client_id": issued.id, "client_secret": issued.secret}).decode() if json else issued.secret
    )


@clients.command("remove")
def remove_client(
    client_id: str, data: DataDir = Path("data"), credentials: CredentialsFile = None, json: Json = False
) -> None:
    """Remove a client: its access tokens stop working at once."""
    _credentials(data, credentials).remove_client(client_id)
    typer.echo(orjson.dumps({"removed": client_id}).decode() if json else f"removed {client_id}")


def _credentials(data: Path, credentials: Path | None) -> Credentials:
    return Credentials(credentials or default_path(data))


def _scopes(items: list[str]) -> dict[str, list[str]]:
    grants: dict[str, list[str]] = {}
    for item in items:
        repo, _, scope = item.rpartition(":")
        grants.setdefault(repo or "*", []).append(scope)
    return grants


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def main() -> None:
    # Every command's domain errors end here: a one-line message and exit status 2, no traceback.
    try:
        app()
    except GitstoreError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        for problem in exc.extra.get("errors") or []:
            typer.echo(f"  {'.'.join(map(str, problem['loc']))}: {problem['msg']}", err=True)
        raise SystemExit(2) from None
    except OSError as exc:  # a file named on the command line that is missing or unreadable
        typer.echo(f"error: {exc.filename}: {exc.strerror}" if exc.filename else f"error: {exc}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
