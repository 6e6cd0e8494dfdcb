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
gitstore backup TARGET       repositories, relay state and credentials to a directory or s3:// (--full)
gitstore restore SOURCE [REPO...]  a backup back into the data directory (--backup, --force, --list)
gitstore cluster status|nodes|move|drain  a cluster's nodes, and moving repositories between them

Exit status: 0 done, 1 the check found problems (fsck) or the bundle did (import: every problem
listed, nothing written), 2 the request was refused (bad name, unknown repository, invalid scopes,
an unreadable or unsafe bundle, ...), 3 the import's --if-match is stale (drafts changed since),
with a one-line message on stderr.
"""

from __future__ import annotations

import typer

from gitstore.cli.base import app
from gitstore.errors import GitstoreError

# Each module adds its commands to `app` as it is imported: this order is the order of --help.
# isort: off
from gitstore.cli import content, upkeep, bundles, backup, serve, webhooks, tokens, cluster  # noqa: F401
# isort: on

__all__ = ["app", "main"]


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
