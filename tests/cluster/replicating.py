"""What the replica tests share: a cluster of real nodes with a replicated repository, waiting
for its in-sync set in PostgreSQL, and the checks of the acknowledged writes on git."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import psycopg

from tests.cluster.moving import RETRY_SECONDS, Write, Writers, document, fsck, git, is_ancestor, owner_of
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

    def _one(self, client: httpx.Client, url: str, key: str, title: str) -> None:
        first = time.time()
        deadline = first + self.retry_for
        start = self.urls.index(url)
        for attempt in range(1, 100_000):
            via = self.urls[(start + attempt - 1) % len(self.urls)]
            sent = time.time()
            try:
                answer = client.put(f"{via}/repos/{self.repo}/entities/{key}", json=document(title), timeout=15)
                status, etag = answer.status_code, answer.headers.get("etag")
            except httpx.TransportError:
                status, etag = 0, None
            write = Write(key, sent, time.time(), status, etag.strip('"') if etag else None, via, attempt, first)
            with self._guard:
                self.log.append(write)
            if 200 <= status < 300 or status not in (0, 421, 502, 503, 504) or time.time() > deadline:
                if not 200 <= status < 300:
                    self.gave_up.append(write)
                return
            time.sleep(RETRY_SECONDS)


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
