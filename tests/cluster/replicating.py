"""What the replica tests share: a cluster of real nodes with a replicated repository, waiting
for its in-sync set in PostgreSQL, and the checks of the acknowledged writes on git."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2 as httpx
import psycopg

from tests.cluster.moving import Writers, fsck, git, is_ancestor, owner_of
from tests.cluster.nodes import Node


def in_sync(dsn: str, repo: str) -> set[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "select node from repository_replicas where repository = %s and in_sync", (repo,)
        ).fetchall()
    return {name for (name,) in rows}


def replicas(dsn: str, repo: str) -> dict[str, bool]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("select node, in_sync from repository_replicas where repository = %s", (repo,)).fetchall()
    return {name: bool(flag) for name, flag in rows}


def wait_in_sync(dsn: str, repo: str, count: int = 1, *, timeout: float = 60.0) -> set[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = in_sync(dsn, repo)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{repo} never had {count} in-sync replica(s): {replicas(dsn, repo)}")


def wait_owner(url: str, repo: str, not_: str, *, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            owner = owner_of(url, repo)
        except (httpx.TransportError, StopIteration):
            owner = not_
        if owner != not_:
            return owner
        time.sleep(0.05)
    raise AssertionError(f"{repo} still lives on {not_}")


def by_name(made: list[Node], name: str) -> Node:
    return next(n for n in made if n.name == name)


def copy_path(node: Node, repo: str) -> Path:
    """The node's copy of `repo`: the one it serves, else its replica."""
    served = node.data / f"{repo}.git"
    return served if served.exists() else node.data / ".replicas" / f"{repo}.git"


def check_acknowledged(writers: Writers, path: Path) -> None:
    """Every acknowledged write's ETag is an ancestor of its entity's final head at `path`, each
    key's acknowledged ETags in order form one line (no fork), and git fsck --strict is clean."""
    by_key: dict[str, list[str]] = {}
    for write in sorted(writers.acknowledged, key=lambda w: w.answered):
        assert write.etag and is_ancestor(path, write.etag, f"refs/drafts/{write.key}"), (write, path)
        by_key.setdefault(write.key, []).append(write.etag)
    for key, etags in by_key.items():
        for older, newer in zip(etags, etags[1:], strict=False):
            assert is_ancestor(path, older, newer), (key, older, newer)
    fsck(path)


def head(path: Path, ref: str) -> str:
    return git(path, "rev-parse", ref).stdout.strip()
