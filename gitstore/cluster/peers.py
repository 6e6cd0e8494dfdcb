"""Another node, as this one calls it: signed internal requests and its git remote.

Every request carries the inter-node signature (gitstore.cluster.signing) over its method and
path; the receiving node's forwarding layer checks it, and its internal routes
(`/internal/cluster/...`) answer only requests that carry a good one. A git fetch cannot add a
header, so it authenticates with the same signature made into a Basic password, good for the one
repository it reads. Plain urllib: a handful of small calls per move, and one streamed snapshot.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from gitstore.cluster.signing import HEADER, forwarded_header, git_password
from gitstore.cluster.snapshots import Snapshot, read_snapshot
from gitstore.errors import GitstoreError, MoveFailed, NodeDown, ReplicaOutOfSync, UnknownNode

if TYPE_CHECKING:
    from gitstore.cluster.node import ClusterNode

__all__ = ["Answer", "Peer", "PeerSource", "peer_of", "send_to_each"]

#: Seconds a node waits for another's answer to one internal call (a seal waits for the
#: repository's locks, within the owner's lock budget).
CALL_SECONDS = 60.0


@dataclass(frozen=True)
class Answer:
    """An internal call's answer: its status and its JSON body (a problem's, when it failed)."""

    status: int
    body: Any


class Peer:
    """Node `name` at `url`, called by node `me`."""

    def __init__(self, me: str, secret: bytes, name: str, url: str, *, client: str = "") -> None:
        self.me, self.name, self.url = me, name, url.rstrip("/")
        self._secret = secret
        self._client = client or me  # whose request this is, as the other node's logs see it

    # -- internal calls ----------------------------------------------------------------------------

    def call(self, method: str, path: str, body: object | None = None, *, timeout: float = CALL_SECONDS) -> Answer:
        """A signed JSON call. Raises MoveFailed if the node cannot be reached or does not answer
        in time; any answer it gives, error or not, is returned."""
        data = json.dumps(body).encode() if body is not None else None
        try:
            with self._open(method, path, data, timeout) as answer:
                return Answer(answer.status, _json(answer.read()))
        except urllib.error.HTTPError as exc:
            with contextlib.closing(exc):
                return Answer(exc.code, _json(exc.read()))
        except OSError as exc:  # the answer stopped coming (timed out, connection dropped)
            raise MoveFailed(f"node {self.name} stopped answering: {exc}", node=self.name) from None

    def send(
        self, path: str, data: bytes, headers: dict[str, str], *, timeout: float = CALL_SECONDS
    ) -> tuple[int, bytes]:
        """A signed POST of raw bytes (a replicated round); its status and body. Raises MoveFailed
        if the node cannot be reached or does not answer in time."""
        try:
            with self._open("POST", path, data, timeout, headers) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            with contextlib.closing(exc):
                return exc.code, exc.read()
        except OSError as exc:
            raise MoveFailed(f"node {self.name} stopped answering: {exc}", node=self.name) from None

    def snapshot(self, repo: str, into: Path, *, seal: bool, timeout: float = CALL_SECONDS) -> Snapshot:
        """Repository `repo`'s snapshot from this node (its owner), unpacked into `into`. Raises
        MoveFailed if it cannot be had (the node refuses, is busy, or does not answer within
        `timeout` seconds)."""
        path = f"/internal/cluster/repositories/{quote(repo)}/snapshot?seal={'true' if seal else 'false'}"
        try:
            with self._open("POST", path, b"", timeout) as answer:
                return read_snapshot(answer, into)
        except urllib.error.HTTPError as exc:
            with contextlib.closing(exc):
                raise MoveFailed(f"node {self.name} refused the snapshot of {repo}: {_detail(exc.read())}") from None

    def fetch_url(self, repo: str) -> str:
        """The node's remote for other nodes copying `repo`: the whole repository, as it is."""
        return f"{self.url}/internal/cluster/git/{quote(repo)}.git"

    def fetch_password(self, repo: str) -> tuple[str, str]:
        return ("node", git_password(self._secret, self.me, repo))

    # -- plumbing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _open(
        self, method: str, path: str, data: bytes | None, timeout: float, headers: dict[str, str] | None = None
    ) -> Iterator[http.client.HTTPResponse]:
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        signed = path.split("?", 1)[0].encode()  # the signature covers the path, not the query
        request.add_header(HEADER, forwarded_header(self._secret, self.me, method, signed, self._client))
        if data is not None and not headers:
            request.add_header("Content-Type", "application/json")
        try:
            answer = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, OSError) as exc:  # refused, unreachable, timed out
            reason = getattr(exc, "reason", exc)
            raise MoveFailed(f"node {self.name} at {self.url} did not answer: {reason}", node=self.name) from None
        with answer:
            yield answer


def peer_of(node: ClusterNode, name: str, *, alive: bool = False, client: str = "") -> Peer:
    """Node `name` as `node` calls it, on behalf of `client`. Raises UnknownNode, and NodeDown if
    it must be `alive` and is not."""
    found = node.plane.node(name)
    if found is None:
        raise UnknownNode(f"no node {name!r} in the cluster", node=name)
    if alive and not found.alive:
        raise NodeDown(f"node {name!r} is not alive (no heartbeat lately)", node=name)
    return Peer(node.name, node.secret, found.name, found.url, client=client)


class PeerSource:
    """The owner of a repository being moved, as the moving node's copy reaches it
    (gitstore.cluster.staging.Source). A snapshot the owner refuses because it is busy (its
    locks held past its budget) or does not answer for a moment (paused) is asked again until
    `patience` runs out."""

    def __init__(
        self,
        peer: Peer,
        repo: str,
        *,
        patience: float = 0.0,
        call_seconds: float = CALL_SECONDS,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self.peer, self.repo, self.patience, self.call_seconds = peer, repo, patience, call_seconds
        self._pause = pause

    def fetch_url(self) -> str:
        return self.peer.fetch_url(self.repo)

    def fetch_password(self) -> tuple[str, str]:
        return self.peer.fetch_password(self.repo)

    def snapshot(self, into: Path, *, seal: bool) -> Snapshot:
        deadline = time.monotonic() + self.patience
        for attempt in range(10_000):
            try:
                return self.peer.snapshot(self.repo, into, seal=seal, timeout=self.call_seconds)
            except MoveFailed:
                if time.monotonic() >= deadline:
                    raise
                self._pause(min(1.0, 0.05 * 2**attempt))
        raise MoveFailed(f"node {self.peer.name} never gave a snapshot of {self.repo}")


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return {"detail": raw[:200].decode(errors="replace")}


def _detail(raw: bytes) -> str:
    body = _json(raw)
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)


def send_to_each(
    me: str,
    secret: bytes,
    pool: Executor,
    targets: Sequence[tuple[str, str]],
    path: str,
    data: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
) -> dict[str, str]:
    """POST `data` to `path` on every node of `targets` (name, URL) at once, as node `me`; the
    nodes that did not answer 200 within `timeout` (and half a second), each with why. What the
    owner does with each round and relay file it ships to its in-sync replicas."""

    def one(name: str, url: str) -> None:
        status, body = Peer(me, secret, name, url).send(path, data, headers, timeout=timeout)
        if status != 200:
            raise ReplicaOutOfSync(f"node {name} answered {status}: {body[:200]!r}", node=name)

    sent = {name: pool.submit(one, name, url) for name, url in targets}
    deadline = time.monotonic() + timeout + 0.5
    failed = {}
    for name, future in sent.items():
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
        except (FutureTimeout, Exception) as exc:
            failed[name] = exc.detail if isinstance(exc, GitstoreError) else f"{type(exc).__name__}: {exc}"
    return failed
