"""What the replica tests share: a cluster of real nodes with a replicated repository, waiting
for its in-sync set in PostgreSQL, and the checks of the acknowledged writes on git."""

from __future__ import annotations

import time
from dataclasses import dataclass
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


@dataclass
class Spread(Writers):
    """Writers whose retries go to the next node each time: a write sent to a node that was just
    killed is sent again through another one (the one it reaches forwards it to the owner)."""

    retryable: tuple[int, ...] = (0, 421, 502, 503, 504)
    put_timeout: float = 15.0

    def via(self, url: str, attempt: int) -> str:
        return self.urls[(self.urls.index(url) + attempt - 1) % len(self.urls)]


def first_acknowledged_after(writers: Writers, moment: float) -> float:
    """Seconds from `moment` to the first write sent and acknowledged after it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with writers._guard:
            after = [w.answered for w in writers.acknowledged if w.sent > moment]
        if after:
            return min(after) - moment
        time.sleep(0.05)
    raise AssertionError("no write was acknowledged within 30 s")


def same_refs(left: Path, right: Path, *, timeout: float = 30.0) -> None:
    """Both copies end up with the same refs (a replica applies each round as it takes it)."""
    deadline = time.monotonic() + timeout
    while True:
        a, b = git(left, "show-ref").stdout, git(right, "show-ref").stdout
        if a == b:
            return
        assert time.monotonic() < deadline, f"{left} and {right} differ"
        time.sleep(0.1)


def owner_now(made: list[Node], repo: str) -> Node:
    """The owner of `repo`, asked of the first node that answers."""
    for node in made:
        if node.proc is None:
            continue
        try:
            return by_name(made, owner_of(node.url, repo))
        except httpx.TransportError:
            continue
    raise AssertionError("no node answers")


def replicated(made: list[Node], dsn: str, repo: str) -> tuple[Node, Node]:
    """Create `repo` (replication factor 2) and wait until its replica is in sync: (replica, owner)."""
    assert httpx.post(f"{made[0].url}/repos", json={"name": repo}).status_code == 201
    (name,) = wait_in_sync(dsn, repo)
    return by_name(made, name), owner_now(made, repo)
